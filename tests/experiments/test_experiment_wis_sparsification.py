"""GCN (plain torch), the contextual SBMs (plain and with a real graph's statistics), and the experiment
wis-sparsification: its core loop, its paired statistics, and its claims at CI size with their mutation checks."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from tnml.baselines import GCN, normalized_adjacency
from tnml.datasets.graphs import (
    GRAPH_STATISTICS,
    contextual_sbm,
    edge_homophily,
    graph_like,
    karate_club,
    statistics_csbm,
)
from tnml.experiments import EXPERIMENTS
from tnml.experiments.wis_sparsification import paired_difference, removal_order, sparsification_curve, split_indices
from tnml.preprocessing import random_sparsification


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
    for m in ("random", "spectral", "degree", "1-wis", "2-wis"):
        order = removal_order(g, m, 20, seed=0)
        assert len(order) == 20 and len(set(order)) == 20
        assert {tuple(sorted(e)) for e in order} <= edges
    with pytest.raises(ValueError):
        removal_order(g, "nope", 1, seed=0)


def test_methods_remove_different_edges_on_the_cora_like_graph():
    """The experiment's methods are distinct on its graph: the degree heuristic's first edge maximizes the degree
    sum, 1-WIS's the smaller degree, and no two methods remove the same half of the edges."""
    import tnml.experiments.wis_sparsification as wis

    g, _, _ = wis.make_graph(wis.GRAPHS["cora-like"], seed=0)
    k = g.number_of_edges() // 2
    orders = {m: removal_order(g, m, k, seed=0) for m in ("random", "spectral", "degree", "1-wis")}
    deg = dict(g.degree())
    assert sum(deg[v] for v in orders["degree"][0]) == max(deg[u] + deg[v] for u, v in g.edges())
    assert min(deg[v] for v in orders["1-wis"][0]) == max(min(deg[u], deg[v]) for u, v in g.edges())
    halves = {m: frozenset(map(frozenset, o)) for m, o in orders.items()}
    assert len(set(halves.values())) == len(halves)


def test_experiment_core_loop_tiny():
    kw = dict(n=60, n_classes=2, p_in=0.2, p_out=0.02, feature_dim=4, signal=1.0)
    res = sparsification_curve(kw, fractions=(0.0, 0.5), seeds=(0, 1), epochs=30, hidden=8)
    acc = res["acc"]
    assert set(acc) == {"random", "spectral", "degree", "1-wis", "2-wis"}
    for d in acc.values():
        assert len(d[0.0]) == 2 and len(d[0.5]) == 2
        assert all(0.0 <= a <= 1.0 for a in d[0.5])
        assert d[0.0] == acc["random"][0.0]  # the unsparsified graph is trained once per seed
    assert res["graph"]["mean_homophily"] > 0.6
    assert "wis-sparsification" in EXPERIMENTS


def test_statistics_csbm_matches_the_requested_statistics():
    """Cora's statistics: exact vertex, edge and class counts, homophily near the target, no isolated vertex,
    heavy-tailed degrees; seeded; features binary and carrying class information only through ``signal``."""
    st = GRAPH_STATISTICS["cora"]
    g, x, y = graph_like("cora", seed=3, feature_dim=64, signal=0.2)
    assert (g.number_of_nodes(), g.number_of_edges()) == (2708, 5278)
    assert sorted(np.bincount(y).tolist(), reverse=True) == list(st["class_sizes"])
    assert abs(edge_homophily(g, y) - 0.81) < 0.03
    deg = np.array([d for _, d in g.degree()])
    assert deg.min() >= 1 and deg.max() > 10 * deg.mean()  # heavy tail (mean degree 3.9)
    assert nx.number_of_selfloops(g) == 0
    assert x.shape == (2708, 64) and x.dtype == np.float32 and set(np.unique(x).tolist()) <= {0.0, 1.0}
    g2, x2, y2 = graph_like("cora", seed=3, feature_dim=64, signal=0.2)
    assert sorted(g.edges()) == sorted(g2.edges()) and np.array_equal(x, x2) and np.array_equal(y, y2)
    assert sorted(graph_like("cora", seed=4, feature_dim=64)[0].edges()) != sorted(g.edges())

    # class information in the features: nearest class-mean accuracy, chance-level at signal 0
    def centroid_acc(signal):
        _, xs, ys = statistics_csbm(2000, 4000, 4, 0.8, feature_dim=40, signal=signal, seed=0)
        mu = np.stack([xs[ys == c].mean(0) for c in range(4)])
        return float((np.argmax(xs @ mu.T - 0.5 * (mu**2).sum(1), axis=1) == ys).mean())

    assert centroid_acc(0.0) < 0.35 < 0.6 < centroid_acc(0.5)
    # homophily 0 and 1 are exact
    for h in (0.0, 1.0):
        gh, _, yh = statistics_csbm(300, 900, 3, h, feature_dim=9, seed=1)
        assert edge_homophily(gh, yh) == h


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_edges=50), "n_edges"),
        (dict(n_edges=10**6), "n_edges"),
        (dict(homophily=1.5), "homophily"),
        (dict(signal=-0.1), "signal"),
        (dict(degree_exponent=2.0), "degree_exponent"),
        (dict(class_sizes=(50, 50)), "class_sizes"),
        (dict(feature_dim=2), "feature_dim"),
        (dict(words=0.5), "words"),
    ],
)
def test_statistics_csbm_refuses_bad_arguments(kwargs, name):
    base = dict(n=100, n_edges=300, n_classes=3, homophily=0.8)
    with pytest.raises(ValueError, match=name):
        statistics_csbm(**{**base, **kwargs})
    with pytest.raises(ValueError, match="cora"):
        graph_like("citeseer")


def test_paired_difference_matches_scipys_paired_t_test():
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.random(10), rng.random(10)
    d = paired_difference(a, b)
    ci = stats.ttest_rel(100 * a, 100 * b).confidence_interval(0.95)
    assert d["mean"] == pytest.approx(100 * (a - b).mean())
    assert (d["low"], d["high"]) == pytest.approx((ci.low, ci.high))
    assert d["n"] == 10 and d["per_seed"] == pytest.approx(list(100 * (a - b)))
    one = paired_difference([0.5], [0.4])
    assert one["mean"] == pytest.approx(10.0) and np.isnan(one["low"]) and np.isnan(one["high"])


def test_run_reports_every_graph_method_and_fraction(tmp_path, monkeypatch):
    import json

    import tnml.experiments.wis_sparsification as wis
    from tnml.experiments import RunConfig
    from tnml.experiments.registry import cell_problems

    tiny = {
        "a": dict(n=40, n_classes=2, p_in=0.25, p_out=0.03, feature_dim=4, signal=1.0),
        "b": dict(like="cora", n=120, n_edges=240, class_sizes=None, feature_dim=14, signal=0.3),
    }
    monkeypatch.setattr(wis, "GRAPHS", tiny)
    monkeypatch.setitem(
        wis.SETTINGS, True, dict(fractions=(0.0, 0.5, 0.8), n_seeds=3, epochs=3, hidden=4, graphs=("a", "b"))
    )
    res = wis.run(RunConfig(tmp_path, quick=True))
    json.dumps(res.metrics, default=float)
    assert not cell_problems(res, "wis-sparsification")
    for g in ("a", "b"):
        m_g = res.metrics["graphs"][g]
        acc = m_g["accuracy"]
        for m in wis.METHODS:
            for f in ("0.5", "0.8"):
                assert len(acc[m][f]["per_seed"]) == 3
                assert acc[m][f]["mean"] == pytest.approx(np.mean(acc[m][f]["per_seed"]))
        for f in ("0.5", "0.8"):
            p = m_g["paired"][f]
            ref = paired_difference(acc["1-wis"][f]["per_seed"], acc["random"][f]["per_seed"])
            assert p["1-wis - random"]["per_seed"] == pytest.approx(ref["per_seed"])
            for k in ("mean", "low", "high"):
                assert p["1-wis - random"][k] == pytest.approx(ref[k], nan_ok=True)
            cost = paired_difference(acc["random"]["0.0"]["per_seed"], acc["random"][f]["per_seed"])
            assert p["all edges - random"]["mean"] == pytest.approx(cost["mean"])
            assert {"2-wis - spectral", "degree - random", "spectral - random"} <= set(p)
            assert "random - spectral" not in p
            wd = paired_difference(acc["1-wis"][f]["per_seed"], acc["degree"][f]["per_seed"])
            assert p["1-wis - degree"]["per_seed"] == pytest.approx(wd["per_seed"])
        cost = m_g["paired"]["0.5"]["all edges - random"]["mean"]
        assert m_g["removal_matters"] == (cost >= wis.REMOVAL_MATTERS_POINTS)
        assert m_g["points_per_test_vertex"] == pytest.approx(100 / m_g["test_vertices"])
    assert res.metrics["graphs"]["b"]["n_vertices"] == 120 and res.metrics["graphs"]["b"]["mean_edges"] == 240
    assert len(res.claims) == 4 and all(c.verdict in ("reproduced", "reproduced with differences",
                                                       "not reproduced") for c in res.claims)  # fmt: skip
    # per graph: the removal-cost row, 5 methods x 2 fractions, 7 paired differences x 2 fractions
    assert len(res.comparisons) == 2 * (1 + 2 * len(wis.METHODS) + 2 * 7)
    assert sum("1-WIS - degree heuristic" in n for n in res.notes) == 2
    assert (tmp_path / "accuracy_vs_removed.png").exists()


def test_verdict_follows_the_intervals():
    from tnml.experiments.wis_sparsification import _verdict

    def row(low):
        return {"1-wis - random": {"mean": low + 1, "low": low, "high": low + 2}}

    assert _verdict({"0.5": row(0.5), "0.8": row(0.1)}, "random", [0.5, 0.8])[0] == "reproduced"
    assert _verdict({"0.5": row(0.5), "0.8": row(-0.1)}, "random", [0.5, 0.8])[0] == "reproduced with differences"
    verdict, evidence = _verdict({"0.5": row(-1.0), "0.8": row(-0.1)}, "random", [0.5, 0.8])
    assert verdict == "not reproduced" and evidence == "50%: +0.0 [-1.0, +1.0]; 80%: +0.9 [-0.1, +1.9]"


# --------------------------------------------------------------------------- claims at CI size
#: CI size: the Cora-like graph (2 708 vertices, 5 278 edges), 10 seeds, a smaller GCN trained for fewer epochs
#: than the experiment's quick run (hidden CI_HIDDEN, CI_EPOCHS epochs); 1-WIS and random removal at 50 %
CI_SEEDS = tuple(range(10))
CI_HIDDEN, CI_EPOCHS = 16, 50


@pytest.fixture(scope="module")
def cora_like_half():
    """Per seed: test accuracy with all edges, after random removal and after 1-WIS removal of half the edges."""
    import tnml.experiments.wis_sparsification as wis

    torch.set_num_threads(1)
    res = sparsification_curve(
        wis.GRAPHS["cora-like"], ("random", "1-wis"), (0.0, 0.5), CI_SEEDS, epochs=CI_EPOCHS, hidden=CI_HIDDEN
    )
    return {k: np.array(res["acc"][m][f]) for k, m, f in (("all", "random", 0.0), ("random", "random", 0.5),
                                                           ("1-wis", "1-wis", 0.5))}  # fmt: skip


def _removal_matters(acc) -> bool:
    import tnml.experiments.wis_sparsification as wis

    return paired_difference(acc["all"], acc["random"])["mean"] >= wis.REMOVAL_MATTERS_POINTS


def _one_wis_beats_random(one, rnd) -> bool:
    d = paired_difference(one, rnd)
    return d["mean"] > 0 and d["low"] > 0


def test_claim_wis_sparsification_removal_costs_accuracy_on_cora_like(cora_like_half):
    """The precondition of every comparison: on the Cora-like graph, removing half the edges at random costs the
    GCN at least 3 points (mean of the paired per-seed differences, 10 seeds)."""
    assert _removal_matters(cora_like_half), paired_difference(cora_like_half["all"], cora_like_half["random"])


def test_mutation_removal_costs_nothing_when_edges_carry_no_labels():
    """Mutation check of the precondition: with the edges made label-blind (homophily = 1/7, what uniform edges
    give) and everything else as above, removing half of them no longer costs 3 points."""
    import tnml.experiments.wis_sparsification as wis

    torch.set_num_threads(1)
    blind = {**wis.GRAPHS["cora-like"], "homophily": 1 / 7}
    res = sparsification_curve(blind, ("random",), (0.0, 0.5), CI_SEEDS[:5], epochs=CI_EPOCHS, hidden=CI_HIDDEN)
    acc = {"all": np.array(res["acc"]["random"][0.0]), "random": np.array(res["acc"]["random"][0.5])}
    assert not _removal_matters(acc), paired_difference(acc["all"], acc["random"])


def test_claim_wis_sparsification_one_wis_beats_random_at_half(cora_like_half):
    """P4: with half of the edges removed, 1-WIS keeps a GCN more accurate than random removal — here on the
    Cora-like graph, paired per seed (same graph, split and initialisation): the mean difference is positive and
    the 95 % t-interval lies above 0."""
    one, rnd = cora_like_half["1-wis"], cora_like_half["random"]
    assert _one_wis_beats_random(one, rnd), paired_difference(one, rnd)


def test_mutation_one_wis_replaced_by_random_removal_fails_the_claim(cora_like_half, monkeypatch):
    """Mutation check: 1-WIS replaced (in the experiment's METHODS) by random removal with another seed stream; the
    same statistic against the same random-removal runs must no longer pass the claim."""
    import tnml.experiments.wis_sparsification as wis

    torch.set_num_threads(1)
    monkeypatch.setitem(wis.METHODS, "1-wis", lambda g, k, seed: random_sparsification(g, k, seed=seed + 1000))
    res = sparsification_curve(
        wis.GRAPHS["cora-like"], ("1-wis",), (0.5,), CI_SEEDS, epochs=CI_EPOCHS, hidden=CI_HIDDEN
    )
    fake = np.array(res["acc"]["1-wis"][0.5])
    assert not np.array_equal(fake, cora_like_half["1-wis"])
    assert not _one_wis_beats_random(fake, cora_like_half["random"]), paired_difference(fake, cora_like_half["random"])


def test_per_graph_settings_narrow_methods_fractions_and_seeds(tmp_path, monkeypatch):
    """A graph of GRAPH_SETTINGS (dblp-like in the full run) gets its own fractions, seeds and methods; the other
    graphs keep SETTINGS'; the quick run never lists dblp-like."""
    import tnml.experiments.wis_sparsification as wis
    from tnml.experiments import RunConfig
    from tnml.experiments.registry import cell_problems

    assert "dblp-like" not in wis.SETTINGS[True]["graphs"] and "dblp-like" in wis.SETTINGS[False]["graphs"]
    d = wis.GRAPH_SETTINGS["dblp-like"]
    assert set(d["methods"]) <= set(wis.METHODS) and {"1-wis", "random", "spectral"} <= set(d["methods"])
    assert 0.0 in d["fractions"] and 0.8 in d["fractions"]  # all edges, and P4's DBLP fraction
    tiny = {
        "a": dict(n=40, n_classes=2, p_in=0.25, p_out=0.03, feature_dim=4, signal=1.0),
        "b": dict(n=50, n_classes=2, p_in=0.2, p_out=0.03, feature_dim=4, signal=1.0),
    }
    monkeypatch.setattr(wis, "GRAPHS", tiny)
    narrow = {"b": dict(fractions=(0.0, 0.8), n_seeds=2, methods=("random", "1-wis"))}
    monkeypatch.setattr(wis, "GRAPH_SETTINGS", narrow)
    monkeypatch.setitem(
        wis.SETTINGS, True, dict(fractions=(0.0, 0.5, 0.8), n_seeds=3, epochs=2, hidden=4, graphs=("a", "b"))
    )
    res = wis.run(RunConfig(tmp_path, quick=True))
    assert not cell_problems(res, "wis-sparsification")
    a, b = res.metrics["graphs"]["a"], res.metrics["graphs"]["b"]
    assert set(a["accuracy"]) == set(wis.METHODS) and a["seeds"] == [0, 1, 2] and a["fractions"] == [0.0, 0.5, 0.8]
    assert set(b["accuracy"]) == {"random", "1-wis"} and b["seeds"] == [0, 1] and b["fractions"] == [0.0, 0.8]
    assert all(len(v["per_seed"]) == 2 for m in b["accuracy"].values() for v in m.values())
    assert set(b["paired"]) == {"0.8"} and set(b["paired"]["0.8"]) == {"all edges - random", "1-wis - random"}
    b_rows = [c.quantity for c in res.comparisons if c.quantity.startswith("b:")]
    assert b_rows == ["b: all edges - random, 80% removed (pts)", "b: random test acc % at 80% removed",
                      "b: 1-wis test acc % at 80% removed", "b: 1-wis - random at 80% removed (pts)"]  # fmt: skip
    assert [c.text for c in res.claims if c.text.startswith("b:")] == [
        "b: 1-WIS keeps a GCN more accurate than random removal"
    ]
    assert sum(n.startswith("b: seeds 0-1") for n in res.notes) == 1
    assert (tmp_path / "accuracy_vs_removed.png").exists()
