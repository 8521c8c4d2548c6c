"""Unknown option strings of the graph datasets and the sparsifiers: one wording, naming the parameter and choices."""

import networkx as nx
import numpy as np
import pytest

from tnml.datasets.graphs import GRAPH_STATISTICS, graph_like, karate_club
from tnml.preprocessing.one_wis import one_wis
from tnml.preprocessing.sparsify_baselines import spectral_sparsification

EDGES = [(0, 1), (1, 2), (0, 2), (2, 3)]


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: karate_club(features="binary"),
         r"^features='binary' is unknown; choose one of \['onehot', 'random'\]$"),
        (lambda: graph_like("pubmed"),
         r"^name='pubmed' is unknown; choose one of \['arxiv', 'cora', 'dblp'\]; or call statistics_csbm"),
        (lambda: spectral_sparsification(EDGES, 1, method="exact"),
         r"^method='exact' is unknown; choose one of \['sample', 'greedy'\]$"),
        (lambda: one_wis(EDGES, 1, tie_break="lowest"),
         r"^tie_break='lowest' is unknown; choose one of \['vertex', 'first', 'last', 'authors'\]$"),
    ],
)
def test_unknown_option_is_refused_in_one_wording(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_known_options_still_work():
    g, x, y = karate_club(features="random", feature_dim=3, seed=1)
    assert x.shape == (34, 3) and nx.is_connected(g) and set(np.unique(y)) == {0, 1}
    _, x1, _ = karate_club()
    assert np.array_equal(x1, np.eye(34, dtype=np.float32))
    assert sorted(GRAPH_STATISTICS) == ["arxiv", "cora", "dblp"]
    # the greedy spectral order is deterministic: its documented example
    assert spectral_sparsification(EDGES, 4, method="greedy") == [(0, 1), (0, 2), (1, 2), (2, 3)]
    assert len(one_wis(EDGES, 2, tie_break="first")) == 2


def test_signatures_carry_the_literal_aliases_that_are_checked():
    """The annotation a type checker reads is the list the run-time check uses."""
    from typing import get_type_hints

    from tnml import options
    from tnml.dynamics.tasks import completion_loss
    from tnml.preprocessing import IGTDRearrangement, walk_index_sparsification
    from tnml.preprocessing.one_wis import TIE_BREAKS

    assert get_type_hints(one_wis)["tie_break"] is options.TieBreak
    assert get_type_hints(walk_index_sparsification)["tie_break"] is options.TieBreak
    assert get_type_hints(spectral_sparsification)["method"] is options.SparsifyMethod
    assert get_type_hints(karate_club)["features"] is options.KarateFeatures
    assert get_type_hints(IGTDRearrangement.__init__)["distance"] is options.IGTDDistance
    assert get_type_hints(completion_loss)["reduction"] is options.LossReduction
    assert TIE_BREAKS == ("vertex", "first", "last", "authors")
