"""The streaming Nyström sketch of data entanglement against the exact whole-data route, and its routes."""

from __future__ import annotations

import functools
import importlib

import numpy as np
import pytest
import torch

import tnml.entanglement.data_entanglement_sketch as sk
from tnml import settings
from tnml.datasets.embedded import digits
from tnml.entanglement import canonical_partitions
from tnml.entanglement.data_entanglement import data_entanglement

de = importlib.import_module("tnml.entanglement.data_entanglement")  # the package re-exports the function's name


def _data(m, n, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n)), (None if n_classes is None else rng.integers(0, n_classes, size=m))


def _digits(m):
    xtr, _, ytr, _ = digits()
    x = xtr.numpy().astype(np.float64)[:m]
    s = x.std(0)
    return (x - x.mean(0)) / np.where(s > 0, s, 1.0), ytr.numpy()[:m]


@functools.lru_cache(maxsize=1)
def _digits_exact(m=200):
    """The exact whole-data QE of the first ``m`` digits (computed once for the tests that compare with it)."""
    X, y = _digits(m)
    return data_entanglement(X, y, method="exact").qe.copy()


@pytest.mark.parametrize("m,n,n_classes", [(40, 16, 2), (30, 12, 3), (25, 10, None)])
def test_all_rows_as_landmarks_is_the_exact_route(m, n, n_classes):
    X, y = _data(m, n, n_classes, seed=m)
    exact = data_entanglement(X, y, theta=0.5, method="exact")
    got = data_entanglement(X, y, theta=0.5, method="sketch", sketch_size=m, batch_size=7)
    np.testing.assert_allclose(got.qe, exact.qe, atol=1e-8, rtol=0)
    assert got.method == "sketch" and got.sketch_size == m and got.n_samples == m
    assert np.all(got.residual < 1e-8)


def test_2d_all_rows_as_landmarks_is_the_exact_route():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(24, 4, 4)), rng.integers(0, 2, size=24)
    exact = data_entanglement(X, y, theta=0.6, method="exact")
    got = data_entanglement(X, y, theta=0.6, method="sketch", sketch_size=24, batch_size=5)
    np.testing.assert_allclose(got.qe, exact.qe, atol=1e-8, rtol=0)


def test_exact_route_is_one_batch_of_all_samples():
    X, y = _data(60, 8, 3, seed=1)
    a = data_entanglement(X, y, theta=0.5, method="exact")
    b = data_entanglement(X, y, theta=0.5, batch_size=60, n_batches=1, seed=None)
    np.testing.assert_allclose(a.qe, b.qe, atol=1e-12)
    assert a.method == "exact" and a.batch_sizes == [60]


def test_sketch_does_not_depend_on_the_batch_size():
    X, y = _data(90, 16, 3, seed=2)
    ref = data_entanglement(X, y, theta=0.5, method="sketch", sketch_size=20, batch_size=90)
    for b in (1, 7, 32):
        got = data_entanglement(X, y, theta=0.5, method="sketch", sketch_size=20, batch_size=b)
        np.testing.assert_allclose(got.qe, ref.qe, atol=1e-10, rtol=0)
        np.testing.assert_allclose(got.residual, ref.residual, atol=1e-12)
    other = data_entanglement(X, y, theta=0.5, method="sketch", sketch_size=20, random_state=5)
    assert np.abs(other.qe - ref.qe).max() > 1e-6  # another landmark sample


def test_sketch_converges_in_k_on_digits():
    X, y = _digits(200)
    exact = _digits_exact()
    errs, res = [], []
    for k in (25, 50, 100, 200):
        got = data_entanglement(X, y, method="sketch", sketch_size=k)
        errs.append(float(np.abs(got.qe - exact).max()))
        res.append(float(got.residual.max()))
    assert errs[-1] < 1e-8 and res[-1] < 1e-8
    assert errs[0] > errs[1] > errs[2] > errs[3]
    assert res[0] > res[1] > res[2]
    assert errs[2] < 0.02  # k = M / 2 within 0.02 nats on every canonical partition


_BORDERED = sk._bordered_entropy


def _no_residual_terms(s, f1, f2, bulk, bulk_xlogx):
    return _BORDERED(s, 0 * f1, 0 * f2, 0.0, 0.0)


def test_claim_sketch_residual_terms_reduce_the_error(monkeypatch):
    """The residual directions (diagonal terms) make the sketch accurate at k < M; without them (plain Nyström:
    at most k singular values, QE <= ln k) the error is several times larger on the large-large partitions."""
    X, y = _digits(200)
    exact = _digits_exact()
    with_terms = np.abs(data_entanglement(X, y, method="sketch", sketch_size=50).qe - exact).max()
    monkeypatch.setattr(sk, "_bordered_entropy", _no_residual_terms)
    plain = np.abs(data_entanglement(X, y, method="sketch", sketch_size=50).qe - exact).max()
    assert with_terms < 0.5 * plain


def test_auto_picks_by_size(monkeypatch):
    X, y = _data(50, 8, 2, seed=4)
    assert data_entanglement(X, y, method="auto").method == "exact"
    monkeypatch.setattr(de, "AUTO_EXACT_MAX_SAMPLES", 40)
    res = data_entanglement(X, y, method="auto", sketch_size=30)
    assert res.method == "sketch" and res.sketch_size == 30 and res.residual is not None


def test_auto_takes_the_sketch_when_exact_memory_does_not_fit(monkeypatch):
    X, y = _data(300, 32, 2, seed=5)
    monkeypatch.setattr(settings, "max_dense_bytes", 2 * 2**20)
    with pytest.raises(settings.MemoryLimitError, match="use method='sketch'"):
        data_entanglement(X, y, method="exact")
    assert data_entanglement(X, y, method="auto", sketch_size=16).method == "sketch"


def test_sketch_memory_flat_in_the_number_of_samples():
    parts = canonical_partitions(784)
    nodes = de._build_tree(784, None)
    index = {frozenset(node.sites.tolist()): i for i, node in enumerate(nodes) if i}
    wanted = {index[frozenset(p.sites)] for p in parts}
    work, acc = sk.sketch_bytes(nodes, wanted, 256, 200, 10)
    assert work < 2**30 and acc > 0  # fixed k and batch: no term grows with M


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="fast"), "method=.fast. is unknown; choose one of .*auto. picks by the number of samples"),
    (dict(method="sketch", sketch_size=1), "sketch_size"),
    (dict(method="sketch", partitions=[[0, 2]]), "not a block"),
    (dict(method="sketch", random_state=-1), "random_state"),
])
def test_errors(kwargs, match):
    X, y = _data(20, 8)
    with pytest.raises(ValueError, match=match):
        data_entanglement(X, y, **kwargs)


def test_sketch_refuses_accumulators_past_the_memory_limit(monkeypatch):
    X, y = _data(300, 64, 2, seed=6)
    monkeypatch.setattr(settings, "max_dense_bytes", 2**18)
    with pytest.raises(settings.MemoryLimitError, match="sketch_size"):
        data_entanglement(X, y, method="sketch", sketch_size=200)


def test_sketch_does_not_depend_on_the_row_order_beyond_the_landmarks():
    # rows stream grouped by class; with the first k rows as landmarks (no seed) any order of the other rows is
    # the same sum
    X, y = _data(70, 12, 4, seed=5)
    ref = data_entanglement(X, y, theta=0.5, method="sketch", sketch_size=15, batch_size=9, seed=None)
    order = np.concatenate([np.arange(15), 15 + np.random.default_rng(0).permutation(55)])
    got = data_entanglement(X[order], y[order], theta=0.5, method="sketch", sketch_size=15, batch_size=9, seed=None)
    np.testing.assert_allclose(got.qe, ref.qe, atol=1e-10, rtol=0)
    np.testing.assert_allclose(got.residual, ref.residual, atol=1e-12)


@pytest.mark.parametrize("method,batch_size,want", [("batches", 40, 30), ("batches", 45, 45), ("batches", None, 90),
                                                     ("exact", None, 90), ("sketch", 7, 90), ("batches", 500, 90)])
def test_tensor_samples_and_qe_batch_rows_agree(method, batch_size, want):
    X, y = _data(90, 8, 2, seed=6)
    res = data_entanglement(X, y, theta=0.5, method=method, batch_size=batch_size, sketch_size=20)
    assert res.tensor_samples == want == de.qe_batch_rows(batch_size, 90, method)


def test_qe_batch_rows_errors():
    with pytest.raises(ValueError, match=r"method='auto' is unknown; choose one of .*; resolve 'auto' first"):
        de.qe_batch_rows(10, 100, "auto")
    with pytest.raises(ValueError, match="batch_size"):
        de.qe_batch_rows(1, 100)


def _tensors_left_alive(monkeypatch, module, name, picks, run):
    """Weak references to tensors a spy on ``module.name`` sees, and how many survive ``run()`` with the cyclic
    garbage collector off (reference counting alone must free every batch's workspace)."""
    import gc
    import weakref

    seen = []
    orig = getattr(module, name)

    def spy(*args, **kwargs):
        out = orig(*args, **kwargs)
        if hasattr(out, "__next__"):  # a generator: spy on what it yields
            def gen():
                for item in out:
                    seen.extend(weakref.ref(t) for t in picks(item))
                    yield item
            return gen()
        seen.extend(weakref.ref(t) for t in picks(args))
        return out

    monkeypatch.setattr(module, name, spy)
    gc.collect()
    gc.disable()
    try:
        run()
        alive = sum(r() is not None for r in seen)
    finally:
        gc.enable()
    return len(seen), alive


def test_batches_free_their_gram_matrices_without_the_cyclic_collector(monkeypatch):
    X, y = _data(60, 16, 2, seed=7)
    seen, alive = _tensors_left_alive(monkeypatch, de, "_spectra_gram", lambda a: a[:2], lambda: data_entanglement(
        X, y, theta=0.5, batch_size=30, n_batches=None, explicit_max_rank=1))
    assert seen > 0 and alive == 0


def test_sketch_frees_each_batch_workspace_without_the_cyclic_collector(monkeypatch):
    X, y = _data(80, 16, 3, seed=8)
    seen, alive = _tensors_left_alive(monkeypatch, sk, "_walk", lambda item: item[1:], lambda: data_entanglement(
        X, y, theta=0.5, method="sketch", sketch_size=10, batch_size=20))
    assert seen > 0 and alive == 0


def test_claim_sketch_error_estimate_covers_the_error_on_digits():
    """The change the residual terms make (``error_estimate``) bounds the sketch's error on every partition up to the
    0.02-nat tolerance of the convergence table (it is an estimate, not a bound: measured excess up to 0.008 here)."""
    X, y = _digits(200)
    exact = _digits_exact()
    largest = []
    for k in (25, 50, 100):
        got = data_entanglement(X, y, method="sketch", sketch_size=k)
        err = np.abs(got.qe - exact)
        assert np.all(err <= got.error_estimate + 0.02), (k, float((err - got.error_estimate).max()))
        largest.append(float(got.error_estimate.max()))
    assert largest[0] > largest[1] > largest[2]  # shrinks with k (conservative: about 10x the error here)
    full = data_entanglement(X, y, method="sketch", sketch_size=200)
    assert full.error_estimate.max() < 1e-8
    assert data_entanglement(X[:30], y[:30], method="exact").error_estimate is None


def test_claim_sketch_error_estimate_mutation(monkeypatch):
    """Without the residual terms the estimate is 0 on the large-large partitions and no longer covers the error."""
    X, y = _digits(200)
    exact = _digits_exact()
    monkeypatch.setattr(sk, "_bordered_entropy", _no_residual_terms)
    got = data_entanglement(X, y, method="sketch", sketch_size=50)
    assert np.any(np.abs(got.qe - exact) > got.error_estimate + 0.02)


def _nystrom_plus_diagonal(g, landmarks):
    """The sketch's model of a kernel (M, M): its Nyström part on the landmark rows plus the diagonal residual."""
    idx = np.asarray(landmarks)
    lam, vec = np.linalg.eigh(g[np.ix_(idx, idx)])
    keep = lam > sk._RTOL * lam[-1]
    z = (vec[:, keep] / np.sqrt(lam[keep])).T @ g[idx]
    nys = z.T @ z
    return nys + np.diag(np.clip(1.0 - np.diag(nys), 0.0, None))


def _dense_qe(a_side, g_rest, signs):
    """QE (mean over labelings) of ``ρ = A Y G_rest Y Aᵀ`` from explicit side features ``A`` (d, M), dense."""
    out = []
    for s in signs:
        ay = a_side * s
        lam = np.clip(np.linalg.eigvalsh(ay @ g_rest @ ay.T), 0.0, None)
        p = lam / lam.sum()
        out.append(float(-(p[p > 0] * np.log(p[p > 0])).sum()))
    return float(np.mean(out))


def test_sketch_is_the_exact_spectrum_of_its_kernel_model_on_explicit_sides():
    """Where one side has few features (``2^|K| <= k``) the sketch is exact on that side and replaces only the
    complement's kernel by its Nyström part plus the diagonal residual: its QE equals the dense float64 spectrum of
    that model. Below such a block the complement is the block's modelled complement times the exact kernel of the
    rest of the block (a partial trace)."""
    m, n, k, theta, seed = 120, 16, 20, 0.5, 3
    X, y = _data(m, n, 3, seed=11)
    res = data_entanglement(X, y, theta=theta, method="sketch", sketch_size=k, random_state=seed)
    landmarks = np.sort(np.random.default_rng(seed).choice(m, k, replace=False))
    signs, _ = de.labels_to_signs(y, m)
    xt = torch.as_tensor(X)
    nodes = de._build_tree(n, None)

    def gram(sites):
        return de.side_gram(xt, list(sites), theta).numpy()

    checked = 0
    for part, got in zip(res.partitions, res.qe):
        sites = sorted(part.sites)
        if 2 ** len(sites) > k:
            continue
        node = next((i for i, nd in enumerate(nodes) if sorted(nd.sites.tolist()) == sites), None)
        if node is None:
            continue
        top = node  # the block whose reduced density matrix the sketch accumulates: its highest small ancestor
        while nodes[top].parent not in (None, 0) and 2 ** nodes[nodes[top].parent].sites.size <= k:
            top = nodes[top].parent
        top_sites = nodes[top].sites.tolist()
        rest_of_top = sorted(set(top_sites) - set(sites))
        g_rest = _nystrom_plus_diagonal(gram(sorted(set(range(n)) - set(top_sites))), landmarks)
        if rest_of_top:
            g_rest = g_rest * gram(rest_of_top)
        a = np.pi * theta * X[:, sites]
        feats = np.ones((1, m))
        for j in range(len(sites)):
            feats = (feats[:, None, :] * np.stack((np.cos(a[:, j]), np.sin(a[:, j])))[None]).reshape(-1, m)
        assert got == pytest.approx(_dense_qe(feats, g_rest, signs), abs=1e-8), sites
        checked += 1
    assert checked >= 20
