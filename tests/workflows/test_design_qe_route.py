"""design_ttn's QE route (``qe_method``): the whole data's QE (exact, sketch, auto) against data_entanglement's exact
route cut by cut, the route recorded in the report, and P5's batch estimator kept as the default."""

from __future__ import annotations

import numpy as np
import pytest

from tnml.entanglement import data_entanglement
from tnml.networks.ttn import inner_edges
from tnml.workflows.design import design_ttn, edge_entanglement


def _data(m: int = 240, n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, n))
    x[:, n // 2:] += 0.8 * x[:, : n // 2]  # features i and i + n/2 correlated
    return x, (x[:, 0] * x[:, n - 1] > 0).astype(int)


def _standardized(x):
    return (x - x.mean(0)) / x.std(0)


def test_whole_data_routes_equal_the_exact_qe_of_each_cut():
    """Reference: data_entanglement(method="exact") on each inner edge's cut on its own (no shared tree pass, no
    learned layout); the sketch with every sample a landmark reproduces it."""
    x, y = _data()
    model, rep = design_ttn(x, y, random_state=0, qe_method="exact")
    edges = inner_edges(model.tree)
    ref = data_entanglement(_standardized(x), y, [list(e) for e in edges], method="exact").qe
    got = np.array([next(r.qe for r in rep.edges if r.sites == e) for e in edges])
    np.testing.assert_allclose(got, ref, atol=1e-8)
    _, rep_k = design_ttn(x, y, random_state=0, qe_method="sketch", sketch_size=len(x))
    np.testing.assert_allclose([r.qe for r in rep_k.edges], [r.qe for r in rep.edges], atol=1e-6)
    assert rep.settings["qe_method"] == "exact" and rep.settings["qe_samples"] == len(x)
    assert rep.settings["qe_sketch_size"] is None and rep.settings["qe_error_estimate_max"] is None
    assert rep_k.settings["qe_method"] == "sketch" and rep_k.settings["qe_sketch_size"] == len(x)
    assert rep_k.settings["qe_error_estimate_max"] < 1e-6


def test_batches_stay_the_default_and_differ_from_the_whole_data():
    """The default is P5's batch average (300-sample batches); its QE on the largest cuts is below the whole
    data's (a batch of B samples has QE at most ln B), and the report says which was used."""
    x, y = _data(m=600)
    _, rep_b = design_ttn(x, y, random_state=0)
    _, rep_e = design_ttn(x, y, random_state=0, qe_method="auto")
    assert rep_b.settings["qe_method"] == "batches" and rep_b.settings["qe_samples"] == 300
    assert rep_e.settings["qe_method"] == "exact" and rep_e.settings["qe_samples"] == 600  # auto: 600 <= 2 000
    qb = {r.sites: r.qe for r in rep_b.edges}
    qe = {r.sites: r.qe for r in rep_e.edges}
    assert qb.keys() == qe.keys()
    assert max(abs(qb[e] - qe[e]) for e in qb) > 1e-3  # different quantities, not a relabelling
    assert "P5's batch estimator, one batch of 300 samples (the QE saturates near ln 300)" in rep_b.to_markdown()
    assert "exact, the whole data set's tensor (600 samples)" in rep_e.to_markdown()


def test_sketch_route_reports_its_error_estimate():
    x, y = _data(m=300)
    _, rep = design_ttn(x, y, random_state=0, qe_method="sketch", sketch_size=40)
    s = rep.settings
    assert s["qe_method"] == "sketch" and s["qe_sketch_size"] == 40 and s["qe_samples"] == 300
    assert s["qe_error_estimate_max"] > 0
    assert f"with 40 landmarks; error estimate up to {s['qe_error_estimate_max']:.3g} nats" in rep.to_markdown()


def test_edge_entanglement_takes_the_route_and_given_trees():
    x, y = _data()
    tree = ((0, 4), (1, 5)), ((2, 6), (3, 7))
    qe, _ = edge_entanglement(x, y, tree, qe_method="exact")
    ref = data_entanglement(_standardized(x), y, [list(e) for e in qe], method="exact").qe
    np.testing.assert_allclose(list(qe.values()), ref, atol=1e-10)
    # a given (non-canonical) tree is not a set of canonical blocks: the sketch refuses it, naming the way out
    with pytest.raises(ValueError, match="method='exact' / 'batches' for other parts"):
        edge_entanglement(x, y, ((0, 4, 1), (5, 2, 6), (3, 7)), qe_method="sketch")


def test_bad_qe_method_names_the_parameter():
    x, y = _data(m=60)
    with pytest.raises(ValueError, match="qe_method='fast' is unknown"):
        design_ttn(x, y, qe_method="fast")
