"""Locally connected CNNs and the ``data-suitability`` experiment's helpers (fast)."""

import numpy as np
import pytest
import torch

from tnml.baselines import CNN1D, CNN2D
from tnml.datasets import planted_pairs
from tnml.experiments import EXPERIMENTS
from tnml.experiments import data_suitability as ds
from tnml.experiments.registry import cell_problems


@pytest.mark.parametrize("n", [64, 13, 30, 1])
def test_cnn1d_shapes_and_gradients(n):
    torch.manual_seed(0)
    m = CNN1D(n, 3, channels=(4, 8))
    x = torch.randn(5, n)
    out = m(x)
    assert out.shape == (5, 3)
    assert torch.allclose(m(x.unsqueeze(1)), out)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    with pytest.raises(ValueError):
        m(torch.randn(5, n + 1))


@pytest.mark.parametrize("shape", [(8, 8), (5, 3)])
def test_cnn2d_shapes_and_gradients(shape):
    torch.manual_seed(0)
    m = CNN2D(shape, 10, channels=(4, 8, 8))
    x = torch.randn(4, *shape)
    out = m(x)
    assert out.shape == (4, 10)
    assert torch.allclose(m(x.reshape(4, -1)), out)
    out.square().mean().backward()
    assert sum(p.grad.abs().sum() for p in m.parameters()) > 0
    with pytest.raises(ValueError):
        CNN2D(shape, 10, kernel_size=2)


def test_cnn_is_locally_connected():
    """Output at one early conv position depends only on a window of inputs."""
    m = CNN1D(16, 2, channels=(1,), kernel_size=3)
    conv = m.features[0]
    x = torch.zeros(1, 1, 16, requires_grad=True)
    conv(x)[0, 0, 5].backward()
    assert set(torch.nonzero(x.grad[0, 0]).flatten().tolist()) <= {4, 5, 6}


@pytest.mark.parametrize("dims", [1, 2])
def test_build_orders_are_permutations_and_keep_rows(dims):
    task = ds.load_task(f"digits-{dims}d", 0)
    x = task.x_train[:200]
    orders, info = ds.build_orders(x, dims, task.shape, seed=1)
    assert set(orders) == set(ds.ORDERS)
    assert info["backend"] in ("auto", "kl")
    n = x.shape[1]
    np.testing.assert_array_equal(orders["original"], np.arange(n))
    for name, p in orders.items():
        np.testing.assert_array_equal(np.sort(p), np.arange(n)), name
        xp = ds.apply_order(x, p)
        assert xp.shape == x.shape
        # same rows, in the same sample order, with their entries reordered
        np.testing.assert_array_equal(np.sort(xp, axis=1), np.sort(x, axis=1))
        np.testing.assert_array_equal(xp[:, np.argsort(p)], x)
    assert not np.array_equal(orders["random"], np.arange(n))


def test_swap_pairs():
    assert np.array_equal(ds.swap_pairs(10, 0), np.arange(10))
    p = ds.swap_pairs(10, 3, seed=2)
    assert np.array_equal(np.sort(p), np.arange(10))
    assert (p != np.arange(10)).sum() == 6
    with pytest.raises(ValueError):
        ds.swap_pairs(5, 3)


def test_tiny_core_loop():
    s = ds.Settings(seeds=1, epochs=1, channels=(4,), qe_batch=64, qe_batches=1, qe_all_seeds=True,
                    swap_ks=(0, 2), swap_seeds=1, tabular=False)
    r = ds.compare_orders("wine", [0], s)
    for name in ds.ORDERS:
        o = r["orders"][name]
        assert 0.0 <= o["acc_mean"] <= 1.0 and len(o["acc"]) == 1
        assert set(o["qe_levels"]) == {1, 2, 3, 4}
        assert all(np.isfinite(v) and v >= 0 for v in o["qe_levels"].values())
    sw = ds.swap_curve("wine", (0, 2), [0], s)
    assert [row["k"] for row in sw["rows"]] == [0, 2]


def test_registered():
    assert "data-suitability" in EXPERIMENTS


# ---------------------------------------------------------------------------------------------- planted pairs
def test_planted_pairs_have_the_designed_correlation():
    rho = 0.8
    x, y = planted_pairs(40_000, 8, rho=rho, seed=3)
    assert x.shape == (40_000, 8) and y.shape == (40_000,) and set(np.unique(y)) == {0, 1}
    c = np.corrcoef(x.T)
    for i in range(4):
        assert c[i, i + 4] == pytest.approx(rho, abs=0.01)
    off = c.copy()
    for i in range(4):
        off[i, i + 4] = off[i + 4, i] = 0.0
    np.fill_diagonal(off, 0.0)
    assert np.abs(off).max() < 0.03  # different pairs independent
    assert 0.4 < y.mean() < 0.6  # about balanced
    # seeded
    np.testing.assert_array_equal(planted_pairs(50, 8, seed=1)[0], planted_pairs(50, 8, seed=1)[0])


def test_planted_label_is_invisible_to_single_features():
    """f_i = x_i x_{i+h} − ρ/(1+ρ²)(x_i² + x_{i+h}²) − c has E[f_i | x_i] = E[f_i | x_{i+h}] = const: least squares
    on polynomials of one pair member explains ~nothing, on the pair's degree-2 monomials everything."""
    rho, n = 0.8, 200_000
    x, _ = planted_pairs(n, 2, rho=rho, seed=0)
    u, v = x[:, 0], x[:, 1]
    f = u * v - rho / (1 + rho**2) * (u**2 + v**2) - rho * (rho**2 - 1) / (1 + rho**2)
    assert abs(f.mean()) < 0.01

    def r2(feats):
        a = np.column_stack([np.ones(n), *feats])
        res = f - a @ np.linalg.lstsq(a, f, rcond=None)[0]
        return 1 - res.var() / f.var()

    assert r2([u, u**2, u**3, u**4]) < 0.005
    assert r2([v, v**2, v**3, v**4]) < 0.005
    assert r2([u, v, u**2, v**2, u**3, v**3]) < 0.005  # additive in the two members: still nothing
    assert r2([u * v, u**2, v**2]) == pytest.approx(1.0)
    # and the label is the sign of the sum of the pairs' f
    x4, y4 = planted_pairs(1000, 4, rho=rho, seed=5)
    f4 = sum(x4[:, i] * x4[:, i + 2] - rho / (1 + rho**2) * (x4[:, i] ** 2 + x4[:, i + 2] ** 2) for i in range(2))
    np.testing.assert_array_equal(y4, (f4 - 2 * rho * (rho**2 - 1) / (1 + rho**2) > 0).astype(int))


@pytest.mark.parametrize("bad", [{"n_features": 7}, {"n_features": 0}, {"rho": 1.0}, {"n_samples": 1}])
def test_planted_pairs_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        planted_pairs(**({"n_samples": 10, "n_features": 8} | bad))


def test_pair_placement():
    n = 8
    assert ds.pair_placement(np.arange(n)) == {"same_half": 0.0, "adjacent": 0.0}
    interleaved = np.array([0, 4, 1, 5, 2, 6, 3, 7])
    assert ds.pair_placement(interleaved) == {"same_half": 1.0, "adjacent": 1.0}
    assert ds.pair_placement(np.array([0, 1, 4, 5, 2, 3, 6, 7])) == {"same_half": 1.0, "adjacent": 0.0}


def test_rearrangement_finds_the_planted_pairs():
    """FeatureRearrangement (on a randomly permuted copy, as in the experiment) puts every pair into one level-1
    block and into one bottom block; random orders do so at the chance rate (~(h-1)/(N-1) and ~1/(N-1))."""
    task = ds.load_task("planted", 0, ds.SETTINGS[True])
    orders, _ = ds.build_orders(task.x_train[:600], 1, None, seed=2, orders=("original", "random", "rearranged"))
    n = task.x_train.shape[1]
    rearr = ds.pair_placement(orders["rearranged"])
    assert ds.pair_placement(orders["original"])["same_half"] == 0.0
    rand = [ds.pair_placement(np.random.default_rng(s).permutation(n)) for s in range(200)]
    rand_half = np.mean([r["same_half"] for r in rand])
    rand_adj = np.mean([r["adjacent"] for r in rand])
    assert rand_half == pytest.approx((n / 2 - 1) / (n - 1), abs=0.03)
    assert rand_adj == pytest.approx(1 / (n - 1), abs=0.02)
    assert rearr["same_half"] == 1.0 and rearr["adjacent"] >= 0.9


# ---------------------------------------------------------------------------------------------- tensor network
def test_ttn_is_the_locally_connected_tensor_network():
    """1-D: contiguous binary pooling; every canonical block is cut off by one bond of width R (min-cut ln R)."""
    from tnml.entanglement import canonical_partitions, mincut_bound
    from tnml.mode_trees import contiguous_tree

    task = ds.Task("t", np.zeros((4, 8)), np.zeros((2, 8)), np.array([0, 1, 0, 1]), np.array([0, 1]), 1, None, 2)
    m = ds.make_ttn(task, bond=3)
    assert m.tree == contiguous_tree(8) and m.out_dim == 2
    for p in canonical_partitions(8):
        if len(p.sites) > 1:
            assert mincut_bound(m, p.sites).rank_bound == 3
    task2 = ds.Task("t2", np.zeros((4, 16)), np.zeros((2, 16)), np.zeros(4), np.zeros(2), 2, (4, 4), 3)
    assert ds.make_ttn(task2, bond=2).shape == (4, 4)


def test_ttn_inputs_use_training_range_and_clip():
    rng = np.random.default_rng(0)
    xtr = rng.normal(2.0, 5.0, size=(500, 3))
    xtr[:, 2] = 1.0  # constant feature
    z = ds.ttn_inputs(xtr, xtr)
    np.testing.assert_allclose(z[:, :2].min(0), 0.0)
    np.testing.assert_allclose(z[:, :2].max(0), 1.0)
    np.testing.assert_allclose(z[:, 0], (xtr[:, 0] - xtr[:, 0].min()) / np.ptp(xtr[:, 0]))
    assert np.all(z[:, 2] == 0.0)
    far = ds.ttn_inputs(xtr, np.array([[1e6, -1e6, 5.0]]))
    np.testing.assert_array_equal(far, [[1.0, 0.0, 0.0]])


def test_train_ttn_learns_a_local_rule_and_is_seeded():
    """Label = sign of feature 1: a TTN reaches high accuracy; the untrained model's accuracy is the reference."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = (x[:, 1] > 0).astype(np.int64)
    task = ds.Task("local", x[:300], x[300:], y[:300], y[300:], 1, None, 2)
    r = ds.train_ttn(task, np.arange(8), epochs=15, bond=4, seed=0)
    assert r["test_acc"] >= 0.9 and r["train_acc"] >= 0.9
    assert ds.train_ttn(task, np.arange(8), epochs=15, bond=4, seed=0)["test_acc"] == r["test_acc"]


def test_stall_threshold_is_halfway_from_chance():
    assert ds.stall_threshold(2) == 0.75
    assert ds.stall_threshold(10) == pytest.approx(0.55)


# ---------------------------------------------------------------------------------------------- smoke
def test_smoke_run_with_tiny_settings(tmp_path, monkeypatch):
    import json

    from tnml.experiments import RunConfig

    tiny = ds.Settings(seeds=1, epochs=1, channels=(4,), qe_batch=64, qe_batches=1, qe_all_seeds=True,
                       swap_ks=(0, 2), swap_seeds=1, tabular=False, ttn_tasks=("planted",), ttn_epochs=1, ttn_bond=2,
                       planted_samples=150, planted_features=8)
    monkeypatch.setitem(ds.SETTINGS, True, tiny)
    res = ds.run(RunConfig(tmp_path, quick=True))
    assert res.plots == ["orders.png", "swap_curve.png"]
    assert all((tmp_path / p).exists() for p in res.plots)
    assert set(res.metrics["tasks"]) == {"digits-1d", "digits-2d", "planted"}
    planted = res.metrics["tasks"]["planted"]
    assert planted["ttn"] and not res.metrics["tasks"]["digits-1d"]["ttn"]
    for name in ds.ORDERS:
        o = planted["orders"][name]
        assert len(o["ttn_acc"]) == 1 and 0.0 <= o["ttn_acc_mean"] <= 1.0
        assert o["ttn_stalled"] in (0, 1)
        if o["ttn_stalled"] == 0:
            assert o["ttn_acc_mean_not_stalled"] == o["ttn_acc_mean"]
    assert planted["orders"]["original"]["pairs_same_half"] == 0.0
    qs = [c.quantity for c in res.comparisons]
    assert any(q.startswith("planted TTN") for q in qs) and any(q.startswith("planted CNN") for q in qs)
    ttn_note = next(c.note for c in res.comparisons if c.quantity.startswith("planted TTN"))
    assert "stalled" in ttn_note
    json.dumps(res.metrics, default=float)


# ---------------------------------------------------------------------------------------------- CNN defaults
@pytest.mark.parametrize("n, depth", [(180, 8), (64, 6), (13, 4), (2, 1), (1, 0)])
def test_cnn1d_default_pools_down_to_one_position(n, depth):
    from tnml.baselines.local_cnn import pooling_depth, tree_channels

    assert pooling_depth(n) == depth
    m = CNN1D(n, 3)
    assert m.pools_to_one and m.final_length == 1
    assert m.channels == tree_channels(n) and len(m.channels) == max(1, depth)
    assert sum(isinstance(layer, torch.nn.MaxPool1d) for layer in m.features) == depth
    assert m(torch.randn(2, n)).shape == (2, 3)


def test_cnn_shallow_option_and_2d_default():
    shallow = CNN1D(180, 3, channels=(32, 64, 128))
    assert not shallow.pools_to_one and shallow.final_length == 23  # 180 -> 90 -> 45 -> 23
    assert "final_length=23" in repr(shallow)
    assert CNN1D(180, 3).channels == (32, 32, 64, 64, 128, 128, 128, 128)  # the network of SPEC §5's DNA row
    assert CNN1D(180, 3, width=16, max_width=64).channels == (16, 16, 32, 32, 64, 64, 64, 64)
    m2 = CNN2D((8, 8), 10)
    assert m2.pools_to_one and m2.channels == (32, 32, 64)
    assert not CNN2D((8, 8), 10, channels=(4, 4)).pools_to_one
    with pytest.raises(ValueError, match="channels must be None"):
        CNN1D(8, 2, channels=())


def test_cnn_output_depends_on_every_input_position():
    """Pooled down to one position, the logits see the whole sequence (no position is left out)."""
    torch.manual_seed(0)
    m = CNN1D(180, 3, width=4, max_width=8).eval()
    x = torch.randn(1, 180, requires_grad=True)
    m(x).sum().backward()
    assert (x.grad.abs() > 0).float().mean() > 0.9


# ---------------------------------------------------------------------------------------------- DNA
def test_dna_task_split():
    t = ds.load_task("dna", 0)
    assert t.x_train.shape == (2548, 180) and t.x_test.shape == (638, 180) and t.n_classes == 3
    assert abs(np.mean(t.y_train == 2) - 1654 / 3186) < 0.005  # stratified
    assert not np.array_equal(ds.load_task("dna", 1).y_train, t.y_train)


def test_window_fit_curve_sandwich():
    """Exact 12-bit DNA window: lower bound <= HSVD error <= sufficient bound, for every order and width."""
    task = ds.load_task("dna", 0)
    w = ds.window_fit_curve(task, (2, 4), n_random=2, seed=0, width=12, start=84)
    assert [r["order"] for r in w["rows"]] == ["original", "rearranged", "random0", "random1"]
    for r in w["rows"]:
        assert 0 < r["max_qe"] <= 6 * np.log(2) + 1e-9
        for rank in (2, 4):
            f = r["fits"][rank]
            assert f["lower_bound"] <= f["hsvd_error"] + 1e-9 <= f["sufficient_bound"] + 2e-9
        assert r["fits"][4]["hsvd_error"] <= r["fits"][2]["hsvd_error"] + 1e-12


def test_smoke_run_with_dna(tmp_path, monkeypatch):
    from tnml.experiments import RunConfig

    tiny = ds.Settings(seeds=1, epochs=1, channels=(4,), qe_batch=64, qe_batches=1, qe_all_seeds=True,
                       swap_ks=(0, 2), swap_seeds=1, tabular=False, ttn_tasks=("dna",), ttn_epochs=1, ttn_bond=2,
                       planted_samples=150, planted_features=8, dna=True, dna_epochs=1, secondary_seeds=1,
                       swap_task="dna", window_ranks=(2,), window_random_orders=1)
    monkeypatch.setitem(ds.SETTINGS, True, tiny)
    monkeypatch.setattr(ds, "window_fit_curve", _small_window)  # an 8-bit window: seconds
    res = ds.run(RunConfig(tmp_path, quick=True))
    assert list(res.metrics["tasks"])[0] == "dna"
    assert res.plots == ["orders.png", "swap_curve.png", "window_fit.png"]
    assert all((tmp_path / p).exists() for p in res.plots)
    qs = [c.quantity for c in res.comparisons]
    assert qs[0] == "DNA CNN acc %, random → rearranged" and res.comparisons[0].thesis == "82.55 → 91.23"
    assert res.comparisons[0].key
    assert any(q.startswith("DNA QE of the TTN's inputs") for q in qs)
    assert any(q.startswith("digits-1d CNN") for q in qs)  # the secondary rows (digits' negative result) stay
    assert cell_problems(res, "data-suitability") == []  # short cells; long text in the notes
    texts = {c.text: c for c in res.claims}
    assert "DNA: rearrangement restores >= 50 % of the CNN's loss" in texts
    r = res.metrics["tasks"]["dna"]
    expected = "reproduced" if r["fraction_restored_rearranged"] >= 0.5 else "not reproduced"
    assert texts["DNA: rearrangement restores >= 50 % of the CNN's loss"].verdict == expected  # from the run's numbers
    o = res.metrics["tasks"]["dna"]["orders"]
    assert set(o["original"]["qe_ttn_levels"]) == {1, 2, 3, 4}
    assert res.metrics["swap_curve"]["task"] == "dna"


_REAL_WINDOW = ds.window_fit_curve


def _small_window(task, ranks, n, seed):
    return _REAL_WINDOW(task, ranks, n, seed, width=8)


# ---------------------------------------------------------------------------------------------- TTN bond sweep
def test_smallest_bond():
    from tnml.experiments.ttn_order_sweep import smallest_bond

    assert smallest_bond([1, 2, 4], [0.5, 0.9, 0.95], 0.9) == 2
    assert smallest_bond([1, 2, 4], [0.5, 0.6, 0.7], 0.9) is None
    assert smallest_bond([2, 3], [0.91, 0.5], 0.9) == 2  # the first bond reaching it, not the last


def test_spearman_matches_the_definition():
    """Spearman's rho = Pearson correlation of the ranks (no ties), against a direct computation; NaN when a side is
    constant or there are fewer than three points."""
    from tnml.experiments.ttn_order_sweep import spearman

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=12)
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    assert spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert spearman(a, 3 * a + 1) == pytest.approx(1.0)
    assert spearman(a, -np.exp(a)) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.ones(12))) and np.isnan(spearman([1, 2], [2, 1]))


def test_qe_bond_correlation_ranks_never_fitting_orders_last():
    from tnml.experiments.ttn_order_sweep import qe_bond_correlation

    pts = [{"qe": q, "bond": b, "acc_mean_over_bonds": a}
           for q, b, a in ((0.1, 2, 0.9), (0.2, 3, 0.8), (0.3, 4, 0.7), (0.4, None, 0.6))]
    c = qe_bond_correlation(pts)
    assert c["n"] == 4 and c["qe_vs_bond"] == pytest.approx(1.0) and c["qe_vs_acc_over_bonds"] == pytest.approx(-1.0)
    assert np.isnan(qe_bond_correlation([])["qe_vs_bond"])


def test_qe_profile_is_below_ln_m_and_flags_saturation():
    """From M samples the data tensor's matricization has rank <= M, so QE <= ln M at every level (fraction <= 1).
    On DNA (binary features, one-hot under the TTN's map) the top level is saturated and the deep levels are not."""
    from tnml.experiments.ttn_order_sweep import SATURATION, qe_profile, unsaturated_levels

    task = ds.load_task("dna", 0)
    p = qe_profile(task, np.arange(180), 300, seed=0)
    assert p["n_samples"] == 300
    for lv, q in p["levels"].items():
        assert p["fraction"][lv] == pytest.approx(q / np.log(300))
        assert 0 < p["fraction"][lv] <= 1 + 1e-9
    assert p["fraction"][1] > SATURATION
    unsat = unsaturated_levels({"original": p})
    assert unsat and 1 not in unsat and max(p["levels"]) in unsat


def test_bond_sweep_structure_on_a_small_task():
    from tnml.experiments import ttn_order_sweep as sw

    r = sw.bond_sweep("wine", [1, 2], [0, 1], epochs=1, qe_samples=60, qe_seeds=[0],
                      orders=("original", "random", "rearranged"))
    assert r["bonds"] == [1, 2] and r["seeds"] == [0, 1] and r["qe_seeds"] == [0]
    best = max(r["orders"]["original"]["acc_mean"])
    assert r["target"] == pytest.approx(0.9 * best)
    for o in r["orders"].values():
        assert all(len(o["acc"][b]) == 2 for b in (1, 2))
        assert o["acc_mean"] == pytest.approx([np.mean(o["acc"][b]) for b in (1, 2)])
        assert o["smallest_bond"] == sw.smallest_bond([1, 2], o["acc_mean"], r["target"])
        assert o["smallest_bond_strict"] == sw.smallest_bond([1, 2], o["acc_mean"], 0.99 * best)
        assert len(o["smallest_bond_strict_per_seed"]) == 2
        assert len(o["qe"]) == 1 and set(o["qe_fraction"]) == {1, 2, 3, 4}
    assert r["correlation"]["n"] == 3 and len(r["qe_points"]) == 3
    comps = sw.sweep_comparisons({"tasks": {"wine": r}})
    assert any(c.quantity.startswith("wine smallest bond") for c in comps)
    # short table cells (the long text goes to the notes)
    assert all(len(c.quantity) <= 60 and len(str(c.measured)) <= 40 for c in comps), [c.quantity for c in comps]


def test_smoke_run_with_the_sweep(tmp_path, monkeypatch):
    from tnml.experiments import RunConfig
    from tnml.experiments import ttn_order_sweep as sw

    tiny = ds.Settings(seeds=1, epochs=1, channels=(4,), qe_batch=64, qe_batches=1, qe_all_seeds=True,
                       swap_ks=(0,), swap_seeds=1, tabular=False, ttn_tasks=(), planted_samples=150,
                       planted_features=8, sweep=True)
    monkeypatch.setitem(ds.SETTINGS, True, tiny)
    monkeypatch.setitem(sw.SWEEP_SETTINGS, True, sw.SweepSettings(("wine",), (1, 2), seeds=1, epochs=1,
                                                                  qe_samples=(50,), qe_seeds=1))
    res = ds.run(RunConfig(tmp_path, quick=True))
    assert res.plots[-1] == "ttn_bond_sweep.png" and (tmp_path / "ttn_bond_sweep.png").exists()
    assert set(res.metrics["ttn_sweep"]["tasks"]) == {"wine"}
    qs = [c.quantity for c in res.comparisons]
    assert any(q.startswith("wine TTN bond 2 acc") for q in qs) and any(q.startswith("wine Spearman") for q in qs)
    assert cell_problems(res, "data-suitability") == []
    assert any(c.text.startswith("TTN: lower QE") for c in res.claims)


def test_quick_summary_text_has_only_measured_numbers():
    """The notes of the quick run's rows are built from the run's numbers: none of the earlier explorations'
    numbers (they live in docs/science/p5-evidence.md with how they were measured)."""
    import inspect

    src = inspect.getsource(ds) + inspect.getsource(__import__("tnml.experiments.ttn_order_sweep",
                                                               fromlist=["x"]))
    for stale in ("53-58", "0.5-1.1", "93 % on z-scored", "SPEC"):
        assert stale not in src
