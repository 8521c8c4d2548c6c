"""Suitability report: QE per canonical partition vs capacity, verdicts, rearrangement gain."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tnml.entanglement import (
    canonical_partitions,
    data_entanglement,
    mincut_bounds,
    necessary_qe_max,
    sufficient_error_bound,
    truncated_hsvd,
)
from tnml.networks import TTN
from tnml.workflows.suitability import SuitabilityResult, suitability


def planted(m=200, half=4, seed=0):
    """Features j and j + half nearly equal (long-range pairs in the given order); labels from two pairs."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(m, half))
    X = np.concatenate([base, base + 0.1 * rng.normal(size=(m, half))], axis=1)
    y = (np.sign(base[:, 0]) * np.sign(base[:, 1]) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def report():
    X, y = planted()
    return suitability(X, y, 4, theta=0.3)


def test_rearrangement_lowers_coarse_qe(report):
    assert report.levels[1] > report.levels_rearranged[1] + 0.5
    assert report.levels[2] > report.levels_rearranged[2]
    assert report.gain > 0
    assert report.objective_after < 0.6 * report.objective_before
    # the pairs end up side by side
    perm = report.permutation.tolist()
    assert {frozenset(perm[i:i + 2]) for i in range(0, 8, 2)} == {frozenset((j, j + 4)) for j in range(4)}
    level1 = report.records[0]
    assert level1.level == 1 and level1.qe > level1.qe_rearranged


def test_verdicts_and_records(report):
    assert isinstance(report, SuitabilityResult)
    assert len(report.records) == len(canonical_partitions(8)) == 13
    assert report.verdict == "exceeds capacity at 1 partition" and not report.fits
    assert report.verdict_rearranged == "within capacity" and report.n_exceeding_rearranged == 0
    bad = [r for r in report.records if not r.fits]
    assert [r.level for r in bad] == [1] and bad[0].qe > np.log(4)
    assert all(r.capacity == pytest.approx(np.log(4)) for r in report.records)


def test_large_width_fits():
    X, y = planted()
    rep = suitability(X, y, 2 ** 4, theta=0.3, gain=None)  # ln 16 >= the largest possible QE (4 ln 2)
    assert rep.verdict == "within capacity" and rep.fits and rep.n_exceeding == 0
    assert rep.permutation is None and rep.records[0].qe_rearranged is None


def test_width_one_exceeds_everywhere():
    X, y = planted()
    rep = suitability(X, y, 1, theta=0.3, gain=None)
    assert rep.verdict == "exceeds capacity at 13 partitions"


def test_model_capacity_is_mincut():
    X, y = planted()
    model = TTN(n_sites=8, bond_dim=3)
    rep = suitability(X, y, model, theta=0.3, gain=None)
    expect = [b.log_bound for b in mincut_bounds(model, canonical_partitions(8))]
    assert [r.capacity for r in rep.records] == pytest.approx(expect)
    assert rep.capacity_source == "TTN"
    assert suitability(X, y, TTN(n_sites=8, bond_dim=16), theta=0.3, gain=None).verdict == "within capacity"


def test_surrogate_gain():
    X, y = planted()
    rep = suitability(X, y, 4, theta=0.3, gain="surrogate")
    assert rep.gain_kind == "surrogate" and 0.4 < rep.gain <= 1
    assert rep.levels_rearranged == {} and rep.records[0].qe_rearranged is None
    assert rep.records[0].se > rep.records[0].se_rearranged


def test_two_d():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 4, 4))
    y = (X[:, 0, 0] > 0).astype(int)
    rep = suitability(X, y, 4, dims=2, theta=0.3)
    assert rep.shape == (4, 4) and len(rep.records) == len(canonical_partitions(shape=(4, 4)))
    flat = suitability(X.reshape(120, 16), y, 4, dims=2, shape=(4, 4), theta=0.3)
    assert [r.qe for r in flat.records] == pytest.approx([r.qe for r in rep.records])


def test_outputs(report):
    md = report.to_markdown()
    assert md.startswith("**Verdict: exceeds capacity at 1 partition**")
    assert "| 1 | 0-3 |" in md and md.count("\n|") >= 13 + 3
    dicts = report.to_dicts()
    assert len(dicts) == 13 and dicts[0]["sites"] == [0, 1, 2, 3]
    json.dumps({"summary": report.summary(), "records": dicts})  # JSON-ready


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(model_or_width=0), ValueError, "width R >= 1"),
        (dict(model_or_width="wide"), TypeError, "int width R"),
        (dict(model_or_width=TTN(n_sites=4, bond_dim=2)), ValueError, "4 input sites but X has 8"),
        (dict(model_or_width=4, dims=3), ValueError, r"^dims=3 is unknown; choose one of \[1, 2\]; 1 for a sequence"),
        (dict(model_or_width=4, dims=2), ValueError, "not a square"),
        (dict(model_or_width=4, dims=2, shape=(3, 3)), ValueError, "h \\* w = n_features = 8"),
        (dict(model_or_width=4, shape=(2, 4)), ValueError, "pass dims=2"),
        (dict(model_or_width=4, gain="all"), ValueError,
         r"^gain='all' is unknown; choose one of \['qe', 'surrogate', None\]"),
        (dict(model_or_width=4, eps=0.0), ValueError, "eps must be a relative error"),
        (dict(model_or_width=4, eps=1.5), ValueError, "eps must be a relative error"),
    ],
)
def test_errors(kwargs, exc, match):
    X, y = planted(m=20)
    with pytest.raises(exc, match=match):
        suitability(X, y, **kwargs)


def test_non_finite():
    X, y = planted(m=20)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="sample 3, feature 2"):
        suitability(X, y, 4)


# ---------------------------------------------------------------------------------------------- two-sided bounds
def _dense_qe(a: np.ndarray, sites) -> tuple[float, int]:
    """Exact QE and rank of a dense tensor across ``sites`` (float64 SVD)."""
    rest = [i for i in range(a.ndim) if i not in sites]
    m = np.transpose(a, list(sites) + rest).reshape(2 ** len(sites), -1)
    s = np.linalg.svd(m, compute_uv=False)
    p = s**2 / np.sum(s**2)
    p = p[p > 1e-15]
    return float(-(p * np.log(p)).sum()), int(np.sum(s > 1e-10 * s[0]))


def _data_tensor(X, y, theta):
    """The explicit data tensor (1/M) Σ_m y_m ⊗_n φ(x_n^m), trig map (N small)."""
    n = X.shape[1]
    phi = np.stack([np.cos(np.pi * theta * X), np.sin(np.pi * theta * X)], -1)  # (M, N, 2)
    t = phi[:, 0]
    for i in range(1, n):
        t = np.einsum("ma,mb->mab", t.reshape(len(X), -1), phi[:, i]).reshape(len(X), -1)
    return (y[:, None] * t).mean(0).reshape((2,) * n)


def _random_instances():
    """Dense 8-site tensors from low to high entanglement: data tensors of random data (with and without long-range
    pairs), random low-rank tree tensors plus noise, Gaussian tensors."""
    rng = np.random.default_rng(7)
    out = []
    for k in range(4):
        X, y = planted(m=60 + 40 * k, seed=k)
        out.append(_data_tensor(X, 2.0 * y - 1.0, theta=0.2 + 0.2 * k))
    parts = canonical_partitions(8)
    for noise in (0.0, 1e-3, 1e-2, 0.1):
        a = truncated_hsvd(rng.normal(size=(2,) * 8), parts, 2)
        out.append(a + noise * rng.normal(size=a.shape) * np.linalg.norm(a) / 16)
    out += [rng.normal(size=(2,) * 8) for _ in range(2)]
    return out


@pytest.mark.parametrize("case", range(10))
@pytest.mark.parametrize("R", [1, 2, 3, 4])
def test_hsvd_is_a_width_R_tree_and_the_sufficient_bound_holds(case, R):
    a = _random_instances()[case]
    parts = canonical_partitions(8)
    w = truncated_hsvd(a, parts, R)
    for p in parts:
        assert _dense_qe(w, p.sites)[1] <= R  # rank across every canonical block
    err = np.linalg.norm(w - a) / np.linalg.norm(a)
    # Grasedyck: err^2 <= sum of discarded squared singular values (relative) ...
    tails = []
    for p in parts:
        rest = [i for i in range(8) if i not in p.sites]
        s = np.linalg.svd(np.transpose(a, list(p.sites) + rest).reshape(2 ** len(p.sites), -1), compute_uv=False)
        tails.append(np.sum(s[R:] ** 2) / np.sum(s**2))
    assert err**2 <= np.sum(tails) + 1e-12
    # ... and each tail is at most QE / ln(R + 1): the bound the report uses
    qe = np.array([_dense_qe(a, p.sites)[0] for p in parts])
    assert np.all(np.array(tails) <= qe / np.log(R + 1) + 1e-12)
    assert err <= sufficient_error_bound(qe, R) + 1e-12
    dims = [2 ** min(len(p.sites), 8 - len(p.sites)) for p in parts]
    assert err <= sufficient_error_bound(qe, R, dims) + 1e-12
    # SPEC's uniform form (ln R, absolute error) follows: QE <= eps^2 ln R / ((2N-3)||A||^2) everywhere => err <= eps
    if R > 1:
        eps_abs = np.sqrt(qe.max() * len(parts) * np.linalg.norm(a) ** 2 / np.log(R))
        assert np.linalg.norm(w - a) <= eps_abs + 1e-12


@pytest.mark.parametrize("case", range(10))
@pytest.mark.parametrize("R", [1, 2, 3])
def test_necessary_bound_holds_for_every_rank_R_approximation(case, R):
    """Any W of rank <= R across K within relative error eps of A: QE(A; K) <= necessary_qe_max(ln R, eps, r_K).
    W: the hierarchical SVD (rank <= R on every block), the best rank-R truncation of the one matricization, and
    random rank-R matrices near it."""
    a = _random_instances()[case]
    parts = canonical_partitions(8)
    rng = np.random.default_rng(case)
    hsvd = truncated_hsvd(a, parts, R)
    for p in parts:
        qe, r_k = _dense_qe(a, p.sites)
        rest = [i for i in range(8) if i not in p.sites]
        m = np.transpose(a, list(p.sites) + rest).reshape(2 ** len(p.sites), -1)
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        cands = [np.transpose(hsvd, list(p.sites) + rest).reshape(m.shape), (u[:, :R] * s[:R]) @ vt[:R]]
        for _ in range(3):
            k = min(R, len(s))
            scale = 0.3 * np.sqrt(s[0] / m.shape[0])
            cands.append((u[:, :k] * s[:k] + scale * rng.normal(size=(m.shape[0], k)))
                         @ (vt[:k] + scale * rng.normal(size=(k, m.shape[1]))))
        for wm in cands:
            assert np.linalg.matrix_rank(wm, tol=1e-9 * max(1.0, np.abs(wm).max())) <= R
            eps = np.linalg.norm(wm - m) / np.linalg.norm(m)
            assert qe <= necessary_qe_max(np.log(R), eps, r_k) + 1e-9
            assert qe <= necessary_qe_max(np.log(R), eps, max(r_k, 2 ** min(len(p.sites), 8 - len(p.sites)))) + 1e-9


def test_necessary_bound_is_not_vacuous():
    """Without the Fannes–Audenaert terms the statement is false: a tensor within small eps of rank 1 has QE > 0."""
    a = np.zeros((4, 4))
    a[0, 0], a[1, 1] = 1.0, 0.1
    s = np.linalg.svd(a, compute_uv=False)
    p = s**2 / np.sum(s**2)
    p = p[p > 0]
    qe = float(-(p * np.log(p)).sum())
    eps = 0.1 / np.linalg.norm(a)  # distance to the rank-1 truncation, relative
    assert qe > np.log(1) and qe <= necessary_qe_max(0.0, eps, 2)
    # and monotone in eps, capped at ln(dim)
    vals = [necessary_qe_max(np.log(2), e, 64) for e in np.linspace(0, 1, 21)]
    assert all(b >= a_ - 1e-12 for a_, b in zip(vals, vals[1:])) and vals[-1] <= np.log(64) + 1e-12


def test_two_sided_verdicts():
    """Low-entanglement data: fits to a loose eps; width 1 on entangled data: cannot fit; in between: undetermined."""
    X, y = planted()
    wide = suitability(X, y, 2 ** 4, theta=0.3, gain=None, eps=0.9)
    assert wide.error_bound == 0.0 and wide.fit_verdict == "fits to ε = 0.9"  # R >= 2^4: nothing truncated
    mid = suitability(X, y, 2, theta=0.3, gain=None, eps=0.5)
    assert mid.error_bound == pytest.approx(sufficient_error_bound([r.qe for r in mid.records], 2,
                                                                   [2 ** min(len(r.sites), 8 - len(r.sites))
                                                                    for r in mid.records]))
    narrow = suitability(X, y, 1, theta=0.3, gain=None, eps=0.1)
    assert narrow.fit_verdict == "cannot fit to ε = 0.1" and narrow.n_cannot_fit > 0
    assert all(r.cannot_fit == (r.qe > r.qe_necessary_max + 1e-9) for r in narrow.records)
    # a tiny eps never yields "fits" unless the data tensor is a product everywhere
    tight = suitability(X, y, 4, theta=0.3, gain=None, eps=1e-3)
    assert not tight.fit_verdict.startswith("fits")
    # verdict labels are consistent with the numbers
    for rep in (wide, mid, narrow, tight):
        if rep.fit_verdict.startswith("fits"):
            assert rep.error_bound <= rep.eps and rep.n_cannot_fit == 0
        elif rep.fit_verdict.startswith("cannot"):
            assert rep.n_cannot_fit > 0
        else:
            assert rep.n_cannot_fit == 0 and rep.error_bound > rep.eps


def test_two_sided_verdict_fits_on_a_product_like_dataset():
    """Every feature a copy of one feature at theta small: QE tiny everywhere -> 'fits' at a moderate eps."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8)) * 0.05
    y = (rng.random(200) > 0.5).astype(int)
    rep = suitability(X, y, 4, theta=0.05, standardize=False, gain=None, eps=0.3)
    assert rep.fit_verdict == "fits to ε = 0.3" and rep.error_bound <= 0.3


def test_model_sufficiency_needs_the_canonical_tree():
    X, y = planted()
    ttn = suitability(X, y, TTN(n_sites=8, bond_dim=4), theta=0.3, gain=None)
    assert np.isfinite(ttn.error_bound) and np.isfinite(ttn.records[0].qe_sufficient_max)
    from tnml.networks import MPS

    mps = suitability(X, y, MPS(n_sites=8, bond_dim=4), theta=0.3, gain=None)
    assert np.isnan(mps.error_bound) and not mps.fit_verdict.startswith("fits")


def test_unlabeled_data():
    X, _ = planted()
    rep = suitability(X, None, 4, theta=0.3, gain=None)
    assert len(rep.records) == 13 and all(np.isfinite(r.qe) for r in rep.records)


def test_report_records_the_qe_route():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8))
    y = (X[:, 0] > 0).astype(int)
    rep = suitability(X, y, 4, gain=None)
    assert rep.qe_method == "exact" and rep.n_samples == 60 and "exact, all 60 samples" in rep.to_markdown()
    sk = suitability(X, y, 4, gain="qe", method="sketch", sketch_size=20)
    assert sk.summary()["qe_method"] == "sketch" and sk.qe_sketch_size == 20 and sk.qe_residual_max > 0
    assert "Nyström sketch of all 60 samples with 20 landmarks" in sk.to_markdown()
    old = suitability(X, y, 4, gain=None, method="batches", batch_size=30)
    assert old.qe_method == "batches" and old.records[0].qe != rep.records[0].qe


def test_sketch_report_states_its_route_and_error_estimate():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 8))
    y = (X[:, 0] + X[:, 7] > 0).astype(int)
    rep = suitability(X, y, 4, gain=None, method="sketch", sketch_size=12, standardize=False, theta=0.3)
    ref = data_entanglement(X, y, canonical_partitions(8), theta=0.3, method="sketch", sketch_size=12)
    assert ref.error_estimate is not None and float(np.max(ref.error_estimate)) > 0  # k < M: the estimate is live
    assert rep.qe_error_estimate_max == pytest.approx(float(np.max(ref.error_estimate)), rel=1e-12)
    assert rep.summary()["qe_error_estimate_max"] == rep.qe_error_estimate_max
    md = rep.to_markdown()
    assert "QE route: streaming Nyström sketch of all 80 samples with 12 landmarks" in md
    assert f"error estimate up to {rep.qe_error_estimate_max:.3g} nats per partition" in md
    for method in ("exact", "batches"):  # no sketch, no estimate
        other = suitability(X, y, 4, gain=None, method=method, batch_size=40 if method == "batches" else None)
        assert other.qe_error_estimate_max is None and "error estimate" not in other.to_markdown()


def test_fit_bounds_use_the_samples_of_each_data_tensor():
    # 100 samples in batches of at most 40: three near-equal batches of 34, 33, 33; each batch's tensor has rank at
    # most 34 across any partition, so the necessary bound is taken at dim = min(2^|K|, 2^(N-|K|), 34), not 40
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 12))
    y = (X[:, 0] > 0).astype(int)
    rep = suitability(X, y, 2, gain=None, method="batches", batch_size=40, n_batches=None, eps=0.3)
    res = data_entanglement(X, y, canonical_partitions(12), batch_size=40, n_batches=None, method="batches")
    assert res.tensor_samples == 34 and max(res.batch_sizes) == 34
    level1 = [r for r in rep.records if len(r.sites) == 6]
    assert level1 and all(r.qe_necessary_max == necessary_qe_max(r.capacity, 0.3, 34) for r in level1)
    assert necessary_qe_max(level1[0].capacity, 0.3, 34) != necessary_qe_max(level1[0].capacity, 0.3, 40)


def test_many_features_refused_before_any_work():
    import time

    from tnml import MemoryLimitError

    X = np.random.default_rng(0).normal(size=(4, 20_000))
    t0 = time.perf_counter()
    with pytest.raises(MemoryLimitError, match="20000x20000"):
        suitability(X, np.array([0, 1, 0, 1]), 4)
    assert time.perf_counter() - t0 < 5.0
