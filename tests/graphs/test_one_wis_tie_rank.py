"""1-WIS tie ranks: the input-order rules read :attr:`IndexedGraph.first_seen`; a graph without it is refused with
the fix named, also when :func:`tie_rank` is called directly (past :func:`check_tie_break`)."""

from __future__ import annotations

import numpy as np
import pytest

from tnml.graphs import IndexedGraph
from tnml.preprocessing.one_wis import check_tie_break, tie_rank


def _graph(first_seen):
    edges = np.array([[0, 1], [0, 2], [1, 2]], dtype=np.int64)
    return IndexedGraph(labels=[0, 1, 2], index={0: 0, 1: 1, 2: 2}, edges=edges, first_seen=first_seen)


def test_input_order_ranks():
    g = _graph(np.array([2, 0, 1], dtype=np.int64))
    assert tie_rank(g, "first", "first").tolist() == [2, 0, 1]
    assert tie_rank(g, "last", "first").tolist() == [-2, 0, -1]
    assert tie_rank(g, "authors", "last").tolist() == [-2, 0, -1]
    assert tie_rank(g, "vertex", "first").tolist() == [0, 1, 2]


@pytest.mark.parametrize("rule", ["first", "last", "authors"])
def test_input_order_rules_need_the_input_order(rule):
    g = _graph(None)
    with pytest.raises(ValueError, match=f"tie_break='{rule}' needs the input order.*tie_break='vertex'"):
        check_tie_break(rule, g)
    with pytest.raises(ValueError, match=f"tie_break='{rule}' needs the input order.*tie_break='vertex'"):
        tie_rank(g, rule, "first")
    assert tie_rank(g, "vertex", "first").tolist() == [0, 1, 2]
