"""GCN (plain torch), the contextual SBM, and the experiment wis-sparsification's core loop."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from tnml.datasets.graphs import contextual_sbm, edge_homophily, karate_club
from tnml.experiments import EXPERIMENTS
from tnml.experiments.wis_sparsification import removal_order, sparsification_curve, split_indices
from tnml.networks import GCN, normalized_adjacency


def _dense_reference(edges, n):
    a = np.zeros((n, n))
    for u, v in edges:
        if u != v:
            a[u, v] = a[v, u] = 1.0
    a += np.eye(n)
    d = a.sum(1)
    return a / np.sqrt(np.outer(d, d))


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_normalized_adjacency_matches_dense(layout):
    rng = np.random.default_rng(0)
    n = 12
    edges = [tuple(e) for e in rng.integers(0, n - 2, size=(30, 2))]  # repeats, self-loops, 2 isolated vertices
    ref = _dense_reference(edges, n)
    ei = torch.tensor(edges).T
    for graph in (ei, ei.flip(0), nx.Graph(edges), edges):
        adj = normalized_adjacency(graph, n, dtype=torch.float64, layout=layout)
        assert adj.shape == (n, n)
        np.testing.assert_allclose(adj.to_dense().numpy(), ref, atol=1e-12)
    with pytest.raises(ValueError):
        normalized_adjacency(ei, 3)


def test_gcn_forward_shapes_and_grad():
    g, x, y = contextual_sbm(40, 4, 0.3, 0.05, feature_dim=5, seed=0)
    adj = normalized_adjacency(g, 40)
    for depth in (1, 3):
        model = GCN(5, 8, 4, depth=depth)
        assert len(model.layers) == depth
        out = model(torch.from_numpy(x), adj)
        assert out.shape == (40, 4)
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
    model.eval()
    dense = model(torch.from_numpy(x), adj.to_dense())
    torch.testing.assert_close(model(torch.from_numpy(x), adj), dense)
    with pytest.raises(ValueError):
        model(torch.zeros(40, 3), adj)
    with pytest.raises(ValueError):
        GCN(5, 8, 4, depth=0)


def test_csbm_seeded_and_balanced():
    g1, x1, y1 = contextual_sbm(90, 3, 0.2, 0.01, feature_dim=6, signal=2.0, seed=4)
    g2, x2, y2 = contextual_sbm(90, 3, 0.2, 0.01, feature_dim=6, signal=2.0, seed=4)
    g3, _, _ = contextual_sbm(90, 3, 0.2, 0.01, feature_dim=6, signal=2.0, seed=5)
    assert sorted(g1.edges()) == sorted(g2.edges()) and sorted(g1.edges()) != sorted(g3.edges())
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert np.bincount(y1).tolist() == [30, 30, 30]
    assert sorted(np.bincount(contextual_sbm(31, 3, 0.1, 0.1, seed=0)[2]).tolist()) == [10, 10, 11]
    assert g1.number_of_nodes() == 90 and x1.shape == (90, 6) and x1.dtype == np.float32 and y1.dtype == np.int64
    assert edge_homophily(g1, y1) > 0.7  # p_in >> p_out
    # class means separate: per-class feature means differ by about `signal`
    means = np.stack([x1[y1 == c].mean(0) for c in range(3)])
    assert np.linalg.norm(means[0] - means[1]) > 1.0
    with pytest.raises(ValueError):
        contextual_sbm(10, 1, 0.1, 0.1)
    with pytest.raises(ValueError):
        contextual_sbm(10, 2, 1.5, 0.1)


def test_karate_club():
    g, x, y = karate_club()
    assert g.number_of_nodes() == 34 and g.number_of_edges() == 78
    assert x.shape == (34, 34) and set(y.tolist()) == {0, 1}
    assert karate_club("random", feature_dim=4)[1].shape == (34, 4)


def test_split_and_removal_orders():
    tr, va, te = split_indices(100, seed=0)
    assert (len(tr), len(va), len(te)) == (80, 10, 10)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(100))
    g, _, _ = contextual_sbm(60, 3, 0.2, 0.02, seed=0)
    edges = {tuple(sorted(e)) for e in g.edges()}
    for m in ("random", "spectral", "1-wis", "2-wis"):
        order = removal_order(g, m, 20, seed=0)
        assert len(order) == 20 and len(set(order)) == 20
        assert {tuple(sorted(e)) for e in order} <= edges
    with pytest.raises(ValueError):
        removal_order(g, "nope", 1, seed=0)


def test_experiment_core_loop_tiny():
    kw = dict(n=60, n_classes=2, p_in=0.2, p_out=0.02, feature_dim=4, signal=1.0)
    res = sparsification_curve(kw, fractions=(0.0, 0.5), seeds=(0, 1), epochs=30, hidden=8)
    acc = res["acc"]
    assert set(acc) == {"random", "spectral", "1-wis", "2-wis"}
    for d in acc.values():
        assert len(d[0.0]) == 2 and len(d[0.5]) == 2
        assert all(0.0 <= a <= 1.0 for a in d[0.5])
        assert d[0.0] == acc["random"][0.0]  # the unsparsified graph is trained once per seed
    assert res["graph"]["mean_homophily"] > 0.6
    assert "wis-sparsification" in EXPERIMENTS


def test_one_wis_verdicts_and_row():
    from tnml.experiments.wis_sparsification import _one_wis_row, _one_wis_verdicts

    summ = {
        "1-wis": {"0.5": {"mean": 0.80, "std": 0.01}, "0.8": {"mean": 0.70, "std": 0.05}},
        "random": {"0.5": {"mean": 0.70, "std": 0.01}, "0.8": {"mean": 0.72, "std": 0.05}},
        "spectral": {"0.5": {"mean": 0.75, "std": 0.01}, "0.8": {"mean": 0.60, "std": 0.05}},
    }
    v = _one_wis_verdicts(summ, [0.5, 0.8])
    assert v["0.5"] == {
        "1-wis": 0.80, "random": 0.70, "spectral": 0.75, "beats_random": True, "beats_random_beyond_std": True,
        "beats_spectral": True, "beats_spectral_beyond_std": True,
    }  # fmt: skip
    assert not v["0.8"]["beats_random"] and v["0.8"]["beats_spectral"] and not v["0.8"]["beats_spectral_beyond_std"]
    row = _one_wis_row("g", 0.71, v, 3)
    assert "edge homophily 0.71" in row.quantity
    assert row.measured.startswith("50%: yes: 1-WIS 80.0 vs random 70.0, spectral 75.0 | 80%: no:")


def test_run_reports_every_graph_method_and_fraction(tmp_path, monkeypatch):
    import json

    import tnml.experiments.wis_sparsification as wis
    from tnml.experiments import RunConfig

    tiny = {
        "a": dict(n=40, n_classes=2, p_in=0.25, p_out=0.03, feature_dim=4, signal=1.0),
        "b": dict(n=40, n_classes=2, p_in=0.03, p_out=0.25, feature_dim=4, signal=1.0),
    }
    monkeypatch.setattr(wis, "GRAPHS", tiny)
    monkeypatch.setitem(
        wis.SETTINGS, True, dict(fractions=(0.0, 0.5, 0.8), n_seeds=3, epochs=3, hidden=4, graphs=("a", "b"))
    )
    res = wis.run(RunConfig(tmp_path, quick=True))
    json.dumps(res.metrics, default=float)
    for g in ("a", "b"):
        acc = res.metrics["graphs"][g]["accuracy"]
        for m in wis.METHODS:
            for f in ("0.5", "0.8"):
                assert len(acc[m][f]["per_seed"]) == 3
                assert acc[m][f]["mean"] == pytest.approx(np.mean(acc[m][f]["per_seed"]))
        beats = res.metrics["graphs"][g]["one_wis_beats"]
        assert set(beats) == {"0.5", "0.8"}
        assert beats["0.8"]["beats_random"] == (acc["1-wis"]["0.8"]["mean"] > acc["random"]["0.8"]["mean"])
    hom = {g: res.metrics["graphs"][g]["mean_homophily"] for g in ("a", "b")}
    assert hom["a"] > 0.5 > hom["b"]
    rows = [c for c in res.comparisons if "beats random and spectral" in c.quantity]
    assert len(rows) == 2 and all("edge homophily" in c.quantity for c in rows)
    assert len(res.comparisons) == 2 * (2 * len(wis.METHODS) + 1)


def test_claim_wis_sparsification_one_wis_beats_random_at_half():
    """P4: with half of the edges removed, 1-WIS keeps a GCN more accurate than random removal. CI size: the
    experiment's homophilous contextual SBM (600 vertices), seeds 0-2, the quick run's GCN and 100 epochs; paired
    per seed (same graph, split and initialization). Measured while writing this test (5 seeds): 1-WIS 68.3 / 81.7
    / 70.0 / 83.3 / 86.7 % vs random 58.3 / 73.3 / 65.0 / 73.3 / 76.7 %. (At 80 % removed the same runs did *not*
    reproduce P4: 1-WIS 63.3 % vs random 69.7 % on average; see the issue-15 note.)"""
    import tnml.experiments.wis_sparsification as wis

    torch.set_num_threads(1)
    seeds = (0, 1, 2)
    res = sparsification_curve(wis.GRAPHS["csbm-homophilous"], ("random", "1-wis"), (0.5,), seeds, epochs=100)
    rnd, one = (np.array(res["acc"][m][0.5]) for m in ("random", "1-wis"))
    assert (one > rnd).all(), (one, rnd)
    assert (one - rnd).mean() > 0.03
