"""Unknown option strings of the experiments' helpers (and of the IGTD baseline they use): one wording."""

import numpy as np
import pytest
import torch

from tnml.dynamics.tasks import completion_loss
from tnml.experiments import data_suitability as ds
from tnml.experiments import gnn_interactions as gi
from tnml.experiments import htf_dynamics as htf
from tnml.experiments import wis_sparsification as ws
from tnml.preprocessing import IGTDRearrangement


def _bad_features():
    t = torch.zeros(2, 64)
    return gi.graph_inputs(t, t, gi.make_layout("cliques-separate", 4), features="vertex")


def _bad_reduction():
    return completion_loss(torch.zeros(2, 2), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1), reduction="max")


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: htf.make_target("CP", 0), r"^kind='CP' is unknown; choose one of \['MF', 'TF', 'HTF'\]$"),
        (lambda: htf.make_model("CP", 2), r"^kind='CP' is unknown; choose one of \['MF', 'TF', 'HTF'\]$"),
        (lambda: htf.make_tracker("CP", 1), r"^kind='CP' is unknown; choose one of \['MF', 'TF', 'HTF'\]$"),
        (lambda: ws.removal_order([(0, 1)], "none", 1, 0), r"^method='none' is unknown; choose one of \["),
        (lambda: ds.build_orders(np.zeros((4, 3)), orders=("original", "sorted")),
         r"^order='sorted' is unknown; choose one of \['original', 'random', 'rearranged', 'igtd'\]$"),
        (lambda: ds.load_task("mnist", 0), r"^task='mnist' is unknown; choose one of \['dna', 'digits-1d', "),
        (_bad_features, r"^features='vertex' is unknown; choose one of \['in-place', 'pixels'\]$"),
        (_bad_reduction, r"^reduction='max' is unknown; choose one of \['mean', 'sum', 'half_sum'\]$"),
        (lambda: IGTDRearrangement(distance="euclid").fit(np.random.default_rng(0).normal(size=(20, 4))),
         r"^distance='euclid' is unknown; choose one of \['pearson', 'abs_pearson'\]$"),
    ],
)
def test_unknown_option_is_refused_in_one_wording(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_orders_are_checked_before_any_fit(monkeypatch):
    """A bad order name fails at once, before the (slow) rearrangements of the valid names run."""
    monkeypatch.setattr(ds, "_fit_rearrangement", lambda *a, **k: pytest.fail("fitted before the check"))
    with pytest.raises(ValueError, match="order='x' is unknown"):
        ds.build_orders(np.zeros((4, 3)), orders=("rearranged", "x"))


def test_valid_options_keep_their_behaviour():
    idx = torch.tensor([[0, 0], [1, 1]])
    t = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    vals = torch.zeros(2)
    assert completion_loss(t, idx, vals, "mean").item() == pytest.approx(5.0)
    assert completion_loss(t, idx, vals, "sum").item() == pytest.approx(10.0)
    assert completion_loss(t, idx, vals, "half_sum").item() == pytest.approx(5.0)
    for kind in htf.MODELS:
        assert isinstance(htf.make_model(kind, 2), torch.nn.Module)
    x = np.random.default_rng(0).normal(size=(30, 4))
    orders, _ = ds.build_orders(x, orders=("original", "random", "igtd"), seed=0)
    assert np.array_equal(orders["original"], np.arange(4))
    for p in orders.values():
        assert sorted(p.tolist()) == [0, 1, 2, 3]
