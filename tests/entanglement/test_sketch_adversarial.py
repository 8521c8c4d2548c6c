"""Adversarial checks of the whole-data QE routes (``method="sketch"``, ``"auto"``, the distributed sketch and the
``tnml suitability`` options) against references: the exact route, the explicitly formed data tensor, and a dense
float64 rebuild of the sketch's own model (Nyström features ``z = W^{-1/2} g`` of the landmarks)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import tnml.entanglement.data_entanglement_sketch as sk
from tnml import settings
from tnml.entanglement.data_entanglement import (
    data_entanglement,
    explicit_data_entanglement,
    labels_to_signs,
    side_gram,
)
from tnml.entanglement.partitions import Partition

de = importlib.import_module("tnml.entanglement.data_entanglement")  # the package re-exports the function's name

TOL = 1e-8


def _gauss(m, n, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n)), (None if n_classes is None else rng.integers(0, n_classes, size=m))


def _case(name):
    """Adversarial inputs ``(X, y, kwargs)``; every one has ``2^N > M`` or small ``N`` with ``M < 2^N``."""
    rng = np.random.default_rng(len(name))
    if name == "odd_n":
        X, y = _gauss(33, 13, 2, seed=1)
        return X, y, {}
    if name == "2d_non_square":
        X = rng.normal(size=(26, 3, 5))
        return X, rng.integers(0, 2, size=26), {}
    if name == "2d_flat_with_shape":
        return rng.normal(size=(21, 16)), rng.integers(0, 3, size=21), dict(shape=(4, 4))
    if name == "unlabeled":
        X, _ = _gauss(29, 10, None, seed=2)
        return X, None, {}
    if name == "five_classes_uneven":  # one class with a single sample, one with 20
        X, _ = _gauss(31, 9, None, seed=3)
        y = np.array([0] * 20 + [1] * 5 + [2] * 3 + [3] * 2 + [4])
        return X, rng.permutation(y), {}
    if name == "duplicate_rows":  # the landmark Gram matrix is singular
        X, y = _gauss(12, 11, 2, seed=4)
        X = np.concatenate([X, X[:8], X[:4]])
        return X, np.concatenate([y, y[:8], 1 - y[:4]]), {}
    if name == "near_duplicate_rows":  # landmark Gram eigenvalues ~1e-12 of the largest: kept, badly conditioned
        X, y = _gauss(15, 12, 2, seed=9)
        return np.concatenate([X, X + 1e-6 * rng.normal(size=X.shape)]), np.r_[y, y], {}
    if name == "2d_one_row":  # blocks one row thick split in two
        return rng.normal(size=(20, 1, 8)), rng.integers(0, 2, size=20), {}
    if name == "constant_features":
        X, y = _gauss(25, 12, 2, seed=5)
        X[:, [0, 5, 6, 11]] = 1.7
        return X, y, {}
    if name == "binary_orthogonal":  # theta = 0.5: phi(0) = (1, 0), phi(1) = (0, 1) -- an orthonormal basis
        X = rng.integers(0, 2, size=(30, 10)).astype(float)
        return X, rng.integers(0, 2, size=30), dict(theta=0.5)
    if name == "n3":
        X, y = _gauss(7, 3, 2, seed=6)
        return X, y, {}
    if name == "n2":
        X, y = _gauss(3, 2, 2, seed=7)
        return X, y, {}
    if name == "m2":
        X, _ = _gauss(2, 9, None, seed=8)
        return X, np.array([3, 1]), {}
    raise KeyError(name)


CASES = ["odd_n", "2d_non_square", "2d_flat_with_shape", "2d_one_row", "unlabeled", "five_classes_uneven",
         "duplicate_rows", "near_duplicate_rows", "constant_features", "binary_orthogonal", "n3", "n2", "m2"]


@pytest.mark.parametrize("name", CASES)
def test_all_rows_as_landmarks_equal_the_exact_route(name):
    X, y, kw = _case(name)
    kw = dict(dict(theta=0.4), **kw)
    m = X.shape[0]
    exact = data_entanglement(X, y, method="exact", **kw)
    got = data_entanglement(X, y, method="sketch", sketch_size=m, batch_size=5, **kw)
    np.testing.assert_allclose(got.qe, exact.qe, atol=TOL, rtol=0)
    np.testing.assert_allclose(got.qe_per_batch, exact.qe_per_batch, atol=TOL, rtol=0)  # every one-vs-rest labeling
    assert got.residual.max() < TOL and got.error_estimate.max() < TOL
    assert got.levels.keys() == exact.levels.keys()
    if X.ndim == 2 and X.shape[1] <= 13 and "shape" not in kw:  # the explicitly formed tensor, a second reference
        ref = explicit_data_entanglement(X, y, got.partitions, theta=kw["theta"])
        np.testing.assert_allclose(got.qe, ref, atol=TOL, rtol=0)


def test_all_rows_as_landmarks_with_conflicting_near_duplicates():
    # near-duplicate rows (1e-5 apart) with opposite labels: the label signal lives in the landmark Gram matrix's
    # tiny eigenvalues (a relative cutoff of 1e-11 dropped it: 4e-3 nats off while residual said ~1e-12)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(15, 12)), rng.integers(0, 2, size=15)
    X, y = np.concatenate([X, X + 1e-5 * rng.normal(size=X.shape)]), np.r_[y, 1 - y]
    exact = data_entanglement(X, y, theta=0.4, method="exact")
    ref = explicit_data_entanglement(X, y, exact.partitions, theta=0.4)
    assert np.abs(exact.qe - ref).max() < 1e-6  # the exact route resolves it
    got = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=30)
    assert got.residual.max() < 1e-10  # the indicator says: exact
    np.testing.assert_allclose(got.qe, ref, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------ few features: 2^N <= k
# (these raised TypeError when the root block counted as "small": _Plan walked past the root to nodes[None])


@pytest.mark.parametrize("m,n,k", [(10, 2, 4), (20, 3, 8), (30, 4, None), (40, 5, 40)])
def test_sketch_with_fewer_features_than_log2_k_equals_the_exact_route(m, n, k):
    X, y = _gauss(m, n, 3, seed=m)
    exact = data_entanglement(X, y, theta=0.4, method="exact")
    got = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=k)
    np.testing.assert_allclose(got.qe, exact.qe, atol=TOL, rtol=0)


def test_auto_past_the_threshold_with_eight_features(monkeypatch):
    # P5-style tabular data with few features and more than AUTO_EXACT_MAX_SAMPLES rows takes the sketch with the
    # default 512 landmarks >= 2^8
    monkeypatch.setattr(de, "AUTO_EXACT_MAX_SAMPLES", 280)
    X, y = _gauss(300, 8, 2, seed=9)  # k = min(512, 300) >= 2^8
    got = data_entanglement(X, y, theta=0.4, method="auto")
    assert got.method == "sketch"
    np.testing.assert_allclose(got.qe, data_entanglement(X, y, theta=0.4, method="exact").qe, atol=TOL, rtol=0)


# ------------------------------------------------------------------------------ the sketch's own model, dense
def _entropy(lam):
    lam = np.clip(lam, 0.0, None)
    p = lam[lam > 0] / lam.sum()
    return float(-(p * np.log(p)).sum())


def _nystrom(g, landmarks):
    """Nyström coordinates ``z = W^{-1/2} g[L, :]`` (r, M) of a kernel (M, M) and the residual ``1 - |z|^2``."""
    lam, vec = np.linalg.eigh(g[np.ix_(landmarks, landmarks)])
    keep = lam > sk._RTOL * lam[-1]
    z = (vec[:, keep] / np.sqrt(lam[keep])).T @ g[landmarks]
    return z, np.clip(1.0 - (z * z).sum(0), 0.0, None)


def _dense_sketch_model(X, y, sites, theta, landmarks):
    """Per labeling: QE of the plain sketch ``S = Σ y z_K z_Kcᵀ`` and of the bordered matrix ``[[S, B1], [B2, 0]]``
    (``B1``'s column m ``y_m sqrt(e_Kc^m) z_K^m``, ``B2``'s row m ``y_m sqrt(e_K^m) z_Kc^m``) whose squared singular
    values are joined by the diagonal's squares ``e_K^m e_Kc^m``; and the mean residual of each side."""
    m, n = X.shape
    xt = torch.as_tensor(X)
    rest = sorted(set(range(n)) - set(sites))
    zk, ek = _nystrom(side_gram(xt, sorted(sites), theta).numpy(), landmarks)
    zc, ec = _nystrom(side_gram(xt, rest, theta).numpy(), landmarks)
    plain, bordered = [], []
    for s in labels_to_signs(y, m)[0]:
        S = (zk * s) @ zc.T
        plain.append(_entropy(np.linalg.svd(S, compute_uv=False) ** 2))
        big = np.block([[S, zk * (s * np.sqrt(ec))], [(zc * (s * np.sqrt(ek))).T, np.zeros((m, m))]])
        bordered.append(_entropy(np.concatenate([np.linalg.svd(big, compute_uv=False) ** 2, ek * ec])))
    return np.array(plain), np.array(bordered), float(ek.mean()), float(ec.mean())


@pytest.mark.parametrize("n_classes,seed", [(3, 2), (None, 4)])
def test_large_sides_equal_a_dense_rebuild_of_the_sketch_model(n_classes, seed):
    """Between two sides with ``2^|K| > k`` the sketch's QE is the bordered model's, ``error_estimate`` is the mean
    ``|QE - QE_plain|`` over labelings, and ``residual`` the larger side's mean ``1 - |z^m|^2`` (all to 1e-8)."""
    m, n, k, theta = 60, 16, 10, 0.5
    rng = np.random.default_rng(1)
    X = rng.normal(size=(m, n))
    X[:, 1::2] = X[:, ::2] + 0.3 * rng.normal(size=(m, n // 2))  # neighbours correlate
    y = None if n_classes is None else rng.integers(0, n_classes, size=m)
    res = data_entanglement(X, y, theta=theta, method="sketch", sketch_size=k, random_state=seed)
    landmarks = np.sort(np.random.default_rng(seed).choice(m, k, replace=False))
    checked = 0
    for part, qe, residual, estimate in zip(res.partitions, res.qe, res.residual, res.error_estimate):
        if min(len(part.sites), n - len(part.sites)) < 4:  # 2^3 <= k: explicit sides, covered elsewhere
            continue
        plain, bordered, ek, ec = _dense_sketch_model(X, y, part.sites, theta, landmarks)
        assert qe == pytest.approx(bordered.mean(), abs=TOL)
        assert estimate == pytest.approx(np.abs(bordered - plain).mean(), abs=TOL)
        assert residual == pytest.approx(max(ek, ec), abs=TOL) and residual > 0.1  # a real sketch
        checked += 1
    assert checked == 5  # level 1 and the four blocks of level 2


def _three_datasets(m=120, n=16):
    rng = np.random.default_rng(0)
    gauss = rng.normal(size=(m, n))
    binary = rng.integers(0, 2, size=(m, n)).astype(float)
    corr = rng.normal(size=(m, n))
    corr[:, 1::2] = corr[:, ::2] + 0.3 * rng.normal(size=(m, n // 2))
    return {"gauss": (gauss, rng.integers(0, 2, size=m)), "binary": (binary, rng.integers(0, 2, size=m)),
            "corr": (corr, (corr[:, 0] + corr[:, -1] > 0).astype(int))}


@pytest.mark.parametrize("theta", [0.085, 0.5])
def test_error_estimate_covers_the_error_on_random_data(theta):
    """``error_estimate`` is documented as an empirical estimate (on DNA and digits the error exceeded it by at most
    0.011 nats); on random, binary and neighbour-correlated data at ``k = M / 4`` it holds to the same 0.02 nats."""
    for name, (X, y) in _three_datasets().items():
        exact = data_entanglement(X, y, theta=theta, method="exact").qe
        got = data_entanglement(X, y, theta=theta, method="sketch", sketch_size=30, random_state=0)
        err = np.abs(got.qe - exact)
        assert np.all(err <= got.error_estimate + 0.02), (name, float((err - got.error_estimate).max()))
        assert got.residual.max() > 0.01  # a real sketch


# ------------------------------------------------------------------------------ partitions and levels
def test_levels_and_explicit_blocks_and_complements_equal_the_full_run():
    X, y = _gauss(50, 13, 3, seed=10)
    kw = dict(theta=0.4, method="sketch", sketch_size=12, random_state=1)
    full = data_entanglement(X, y, **kw)
    by_sites = {tuple(p.sites): q for p, q in zip(full.partitions, full.qe)}
    for levels in (2, [1, 3], (4,)):
        sub = data_entanglement(X, y, levels=levels, **kw)
        want = {levels} if isinstance(levels, int) else set(levels)
        assert {p.level for p in sub.partitions} == want
        np.testing.assert_allclose(sub.qe, [by_sites[tuple(p.sites)] for p in sub.partitions], atol=1e-12, rtol=0)
    blocks = [sorted(p.sites) for p in full.partitions][::3]
    complements = [sorted(set(range(13)) - set(b)) for b in blocks]
    for given in (blocks, complements, [Partition(tuple(b), None) for b in complements]):
        got = data_entanglement(X, y, partitions=given, **kw)
        np.testing.assert_allclose(got.qe, [by_sites[tuple(b)] for b in blocks], atol=1e-10, rtol=0)
    mixed = data_entanglement(X, y, partitions=[blocks[1], complements[1]], **kw)
    assert mixed.qe[0] == pytest.approx(mixed.qe[1], abs=1e-12)


def test_non_canonical_parts_are_refused_by_the_sketch_and_go_exact_under_auto(monkeypatch):
    X, y = _gauss(40, 12, 2, seed=11)
    with pytest.raises(ValueError, match=r"\[0, 2, 5\] is not a block"):
        data_entanglement(X, y, partitions=[[0, 2, 5]], method="sketch")
    monkeypatch.setattr(de, "AUTO_EXACT_MAX_SAMPLES", 10)  # past the threshold, yet a non-tree part: exact
    got = data_entanglement(X, y, partitions=[[0, 2, 5], list(range(6))], method="auto", theta=0.4)
    ref = data_entanglement(X, y, partitions=[[0, 2, 5], list(range(6))], method="exact", theta=0.4)
    assert got.method == "exact" and got.residual is None
    np.testing.assert_allclose(got.qe, ref.qe, atol=1e-12, rtol=0)
    np.testing.assert_allclose(ref.qe, explicit_data_entanglement(X, y, [[0, 2, 5], list(range(6))], 0.4),
                               atol=TOL, rtol=0)


def test_auto_with_a_non_tree_part_past_the_memory_limit_reports_the_memory_limit(monkeypatch):
    X, y = _gauss(40, 12, 2, seed=11)
    monkeypatch.setattr(de, "AUTO_EXACT_MAX_SAMPLES", 10)
    monkeypatch.setattr(settings, "max_dense_bytes", 40 * 40 * 8 * 5)
    with pytest.raises(settings.MemoryLimitError, match="max_dense_bytes"):
        data_entanglement(X, y, partitions=[[0, 2, 5]], method="auto", sketch_size=8)


# ------------------------------------------------------------------------------ streaming and landmarks
def _spy_sketch(monkeypatch):
    """Record every :class:`SketchOutput` (landmarks, batch size, number of passes)."""
    seen = []
    orig = sk.sketch_tree_qe

    def spy(*args, **kwargs):
        out = orig(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(sk, "sketch_tree_qe", spy)
    return seen


@pytest.mark.parametrize("shape,n_classes", [(None, None), ((4, 4), 2)])
def test_batch_size_changes_nothing_but_round_off(shape, n_classes):
    m = 23
    X, y = _gauss(m, 16, n_classes, seed=12)
    kw = dict(theta=0.4, method="sketch", sketch_size=9, random_state=3, shape=shape)
    ref = data_entanglement(X, y, batch_size=m, **kw)
    assert ref.residual.max() > 0.05  # k < M: a real sketch
    for b in (1, 2, 7, 100):
        got = data_entanglement(X, y, batch_size=b, **kw)
        np.testing.assert_allclose(got.qe, ref.qe, atol=1e-10, rtol=0)
        np.testing.assert_allclose(got.residual, ref.residual, atol=1e-12, rtol=0)
        np.testing.assert_allclose(got.error_estimate, ref.error_estimate, atol=1e-10, rtol=0)
        assert sum(got.batch_sizes) == m and max(got.batch_sizes) == min(b, m)


def test_landmarks_follow_random_state_then_seed_then_the_first_rows(monkeypatch):
    m, k = 30, 8
    X, y = _gauss(m, 12, 2, seed=13)
    seen = _spy_sketch(monkeypatch)
    a = data_entanglement(X, y, method="sketch", sketch_size=k, random_state=4)
    b = data_entanglement(X, y, method="sketch", sketch_size=k, random_state=4, seed=99)
    c = data_entanglement(X, y, method="sketch", sketch_size=k, seed=4)  # random_state defaults to seed
    np.testing.assert_array_equal(a.qe, b.qe)
    np.testing.assert_array_equal(a.qe, c.qe)
    want = np.sort(np.random.default_rng(4).choice(m, k, replace=False))
    assert all(np.array_equal(s.landmarks, want) for s in seen)
    first = data_entanglement(X, y, method="sketch", sketch_size=k, seed=None)
    np.testing.assert_array_equal(seen[-1].landmarks, np.arange(k))
    assert np.abs(first.qe - a.qe).max() > 1e-6
    # the first k rows as landmarks: moving the landmark rows to the front with a seeded sample gives the same QE
    order = np.concatenate([want, np.setdiff1d(np.arange(m), want)])
    moved = data_entanglement(X[order], y[order], method="sketch", sketch_size=k, seed=None)
    np.testing.assert_allclose(moved.qe, a.qe, atol=1e-10, rtol=0)


def test_permuting_samples_changes_the_seeded_landmarks_not_the_exact_route():
    # documented: landmarks are a seeded sample of row *indices*, so a row permutation picks other samples
    X, y = _gauss(40, 12, 2, seed=14)
    perm = np.random.default_rng(1).permutation(40)
    kw = dict(theta=0.4, sketch_size=8, random_state=0)
    ex, ex_p = (data_entanglement(a, b, method="exact", theta=0.4) for a, b in ((X, y), (X[perm], y[perm])))
    np.testing.assert_allclose(ex_p.qe, ex.qe, atol=1e-10, rtol=0)
    sk0, sk_p = (data_entanglement(a, b, method="sketch", **kw) for a, b in ((X, y), (X[perm], y[perm])))
    assert np.abs(sk_p.qe - sk0.qe).max() > 1e-6


def test_inputs_labels_and_dtypes_that_must_not_matter():
    X, y = _gauss(30, 10, 2, seed=15)
    kw = dict(theta=0.4, method="sketch", sketch_size=7, random_state=2)
    ref = data_entanglement(X, y, **kw).qe
    for labels in (np.where(y == 1, 7, 5), np.where(y == 1, "b", "a"), 1 - y, y.astype(float) * 2.5):
        np.testing.assert_allclose(data_entanglement(X, labels, **kw).qe, ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(data_entanglement(X.tolist(), y.tolist(), **kw).qe, ref, atol=0, rtol=0)
    x32 = X.astype(np.float32)
    np.testing.assert_allclose(data_entanglement(x32, y, **kw).qe,
                               data_entanglement(x32.astype(np.float64), y, **kw).qe, atol=0, rtol=0)
    np.testing.assert_allclose(data_entanglement(torch.as_tensor(X), torch.as_tensor(y), **kw).qe, ref,
                               atol=0, rtol=0)


def test_sketch_size_past_the_samples_is_clipped_to_the_exact_route():
    X, y = _gauss(17, 10, 2, seed=16)
    got = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=10_000)
    assert got.sketch_size == 17
    np.testing.assert_allclose(got.qe, data_entanglement(X, y, theta=0.4, method="exact").qe, atol=TOL, rtol=0)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(sketch_size=1), ValueError, r"sketch_size must be an integer >= 2, got 1; the number of landmark"),
    (dict(sketch_size=2.5), TypeError, r"sketch_size must be an integer >= 2, got 2.5"),
    (dict(batch_size=0), ValueError, r"batch_size must be an integer >= 1, got 0"),
    (dict(random_state=1.5), TypeError, "random_state"),
    (dict(theta=float("nan")), ValueError, "theta must be a finite number > 0"),
])
def test_bad_options_name_the_parameter(kwargs, exc, match):
    X, y = _gauss(20, 8, 2, seed=17)
    with pytest.raises(exc, match=match):
        data_entanglement(X, y, **dict(dict(method="sketch"), **kwargs))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x_is_refused_naming_x_and_the_first_place(bad):
    X, y = _gauss(20, 8, 2, seed=18)
    X[3, 4] = bad
    for method in ("sketch", "auto"):
        with pytest.raises(ValueError, match=r"X holds non-finite values \(first at sample 3, feature 4\)"):
            data_entanglement(X, y, method=method)


# ------------------------------------------------------------------------------ memory
def test_several_passes_give_the_one_pass_result(monkeypatch):
    X, y = _gauss(80, 32, 3, seed=19)
    k, b = 30, 8
    seen = _spy_sketch(monkeypatch)
    ref = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=k, batch_size=b)
    assert seen[-1].n_groups == 1
    nodes = de._build_tree(32, None)
    wanted = set(range(1, len(nodes)))
    work, acc = sk.sketch_bytes(nodes, wanted, k, b, 3)
    plan = sk._Plan(nodes, wanted, k)
    largest = max(sk._accum_bytes(plan, i, k, 3) for i in plan.accum)
    groups = []
    for budget in (work + largest, work + 3 * largest, work + acc // 2):
        monkeypatch.setattr(settings, "max_dense_bytes", budget)
        got = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=k, batch_size=b)
        groups.append(seen[-1].n_groups)
        np.testing.assert_allclose(got.qe, ref.qe, atol=1e-12, rtol=0)
        np.testing.assert_allclose(got.residual, ref.residual, atol=1e-14, rtol=0)
    assert groups[0] > groups[1] > groups[2] > 1
    monkeypatch.setattr(settings, "max_dense_bytes", work + largest - 1)
    with pytest.raises(settings.MemoryLimitError, match=r"lower sketch_size .* or batch_size, or raise "
                                                        r"tnml.settings.max_dense_bytes"):
        data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=k, batch_size=b)


def test_default_batch_size_fits_beside_the_accumulators(monkeypatch):
    X, y = _gauss(80, 32, 10, seed=20)  # 10 classes: large per-class accumulators
    k = 30
    nodes = de._build_tree(32, None)
    wanted = set(range(1, len(nodes)))
    plan = sk._Plan(nodes, wanted, k)
    fixed = sk.sketch_bytes(nodes, wanted, k, 0, 10)[0]
    row = sk.sketch_bytes(nodes, wanted, k, 1, 10)[0] - fixed
    monkeypatch.setattr(settings, "max_dense_bytes", fixed + row + max(sk._accum_bytes(plan, i, k, 10)
                                                                      for i in plan.accum))
    one = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=k, batch_size=1)
    got = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=k)
    np.testing.assert_allclose(got.qe, one.qe, atol=1e-10, rtol=0)


# ------------------------------------------------------------------------------ two gloo processes
def _dist_configs():
    """``(X, y, kwargs, max_dense_bytes or None)``: uneven shards, a class only on the last rank, 3 samples,
    2-D data, several passes over the data."""
    x1, _ = _gauss(37, 16, None, seed=21)
    y1 = np.r_[np.zeros(18, int), np.ones(18, int), [2]]  # class 2: one sample, on rank 1 only
    x2, _ = _gauss(3, 8, None, seed=22)
    x3, y3 = _gauss(25, 16, 2, seed=23)
    x4, y4 = _gauss(41, 32, 3, seed=24)
    nodes = de._build_tree(32, None)
    wanted = set(range(1, len(nodes)))
    plan = sk._Plan(nodes, wanted, 12)
    budget = sk.sketch_bytes(nodes, wanted, 12, 5, 3)[0] + 2 * max(sk._accum_bytes(plan, i, 12, 3)
                                                                     for i in plan.accum)
    base = dict(theta=0.4, method="sketch")
    return [
        (x1, y1, dict(base, sketch_size=10, batch_size=4, random_state=3), None),
        (x2, None, dict(base, sketch_size=2), None),
        (x3.reshape(25, 4, 4), y3, dict(base, sketch_size=9, batch_size=3, random_state=1), None),
        (x4, y4, dict(base, sketch_size=12, batch_size=5, random_state=0), budget),
    ]


def _run_config(X, y, kw, budget):
    old = settings.max_dense_bytes
    settings.max_dense_bytes = old if budget is None else budget
    try:
        res = data_entanglement(X, y, **kw)
    finally:
        settings.max_dense_bytes = old
    return np.concatenate([res.qe, res.residual, res.error_estimate, [sum(res.batch_sizes)]])


def _dist_worker(rank: int, world: int, out: str) -> None:
    from tnml.distributed import setup

    setup("gloo")
    for j, cfg in enumerate(_dist_configs()):
        np.save(f"{out}.{j}.{rank}.npy", _run_config(*cfg))


def test_two_ranks_with_uneven_shards_equal_one_process(tmp_path, monkeypatch):
    from tnml.distributed import launch_local

    out = str(tmp_path / "r")
    launch_local(_dist_worker, 2, out, timeout_s=300)
    seen = _spy_sketch(monkeypatch)
    for j, cfg in enumerate(_dist_configs()):
        ref = _run_config(*cfg)
        n_parts = (len(ref) - 1) // 3
        assert ref[n_parts:2 * n_parts].max() > 0.05, j  # k < M: a real sketch on every config
        m = cfg[0].shape[0]
        got = [np.load(f"{out}.{j}.{r}.npy") for r in (0, 1)]
        for g in got:
            np.testing.assert_allclose(g[:-1], ref[:-1], atol=1e-10, rtol=0, err_msg=f"config {j}")
        assert got[0][-1] == m - m // 2 and got[1][-1] == m // 2  # row blocks of ceil(M/2) and floor(M/2) rows
    assert [s.n_groups > 1 for s in seen] == [False, False, False, True]  # the last config streams several passes


# ------------------------------------------------------------------------------ tnml suitability
def _csv(path, m, n, seed=0):
    X, y = _gauss(m, n, 3, seed=seed)
    lines = [",".join([f"f{j}" for j in range(n)] + ["label"])]
    lines += [",".join([repr(float(v)) for v in row] + [str(c)]) for row, c in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _cli(capsys, argv):
    from tnml.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("extra,match", [
    (["--sketch-size", "1"], "--sketch-size must be an integer >= 2"),
    (["--sketch-size", "0"], "--sketch-size must be an integer >= 2"),
    (["--sketch-size", "many"], "argument --sketch-size: invalid int value: 'many'"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1 with --method sketch"),
    (["--method", "fast"], "argument --method: invalid choice: 'fast'"),
    (["--theta", "inf"], "--theta must be a finite number > 0"),
])
def test_cli_bad_sketch_options_exit_2_with_one_line(tmp_path, capsys, extra, match):
    data = _csv(tmp_path / "d.csv", 30, 8)
    code, out, err = _cli(capsys, ["suitability", data, "--label", "label", "--width", "2", "--method", "sketch",
                                   *extra])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and match in err, err


def test_cli_batch_size_one_streams_rows_one_by_one_but_is_no_p5_batch(tmp_path, capsys):
    import json

    data = _csv(tmp_path / "d.csv", 30, 8, seed=1)
    argv = ["suitability", data, "--label", "label", "--width", "2", "--gain", "none", "--json"]
    code, out, _ = _cli(capsys, [*argv, "--method", "sketch", "--batch-size", "1"])
    assert code == 0
    code, ref, _ = _cli(capsys, [*argv, "--method", "sketch"])
    assert code == 0
    a, b = json.loads(out), json.loads(ref)
    la, lb = a["summary"]["levels"], b["summary"]["levels"]
    assert la.keys() == lb.keys() and a["summary"]["qe_method"] == "sketch"
    np.testing.assert_allclose([la[k] for k in la], [lb[k] for k in la], atol=1e-10)
    code, out, err = _cli(capsys, [*argv, "--method", "batches", "--batch-size", "1"])
    assert code == 2 and "--batch-size must be an integer >= 2 with --method batches" in err


def test_cli_sketch_equals_the_api_and_clips_the_sketch_size(tmp_path, capsys):
    import json

    data = _csv(tmp_path / "d.csv", 30, 8, seed=1)
    argv = ["suitability", data, "--label", "label", "--width", "2", "--gain", "none", "--json", "--no-standardize",
            "--theta", "0.4", "--method", "sketch", "--batch-size", "4"]
    code, out, _ = _cli(capsys, [*argv, "--sketch-size", "1000"])
    assert code == 0
    rep = json.loads(out)
    assert rep["summary"]["qe_method"] == "sketch" and rep["summary"]["qe_sketch_size"] == 30
    X, y = _gauss(30, 8, 3, seed=1)
    exact = data_entanglement(X, y, theta=0.4, method="exact")
    np.testing.assert_allclose([r["qe"] for r in rep["records"]], exact.qe, atol=TOL, rtol=0)
    code, out, _ = _cli(capsys, [*argv, "--sketch-size", "7", "--seed", "5"])
    api = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=7, random_state=5, batch_size=4)
    np.testing.assert_allclose([r["qe"] for r in json.loads(out)["records"]], api.qe, atol=1e-12, rtol=0)


def test_cli_negative_seed_names_the_option(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv", 30, 8)
    code, out, err = _cli(capsys, ["suitability", data, "--label", "label", "--width", "2", "--method", "sketch",
                                   "--seed", "-1"])
    assert code == 2 and out == ""
    assert "--seed" in err, err


def test_cli_sketch_on_few_features(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv", 30, 4)
    code, out, err = _cli(capsys, ["suitability", data, "--label", "label", "--width", "2", "--gain", "none",
                                   "--method", "sketch"])
    assert code == 0, err  # today: exit 2, "list indices must be integers or slices, not NoneType"


def test_python_m_tnml_bad_sketch_size_is_one_line(tmp_path):
    import subprocess
    import sys

    data = _csv(tmp_path / "d.csv", 12, 4)
    proc = subprocess.run([sys.executable, "-m", "tnml", "suitability", data, "--label", "label", "--width", "2",
                           "--method", "sketch", "--sketch-size", "1"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "tnml: error: --sketch-size must be an integer >= 2 (landmark samples), got 1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]  # nothing else written
