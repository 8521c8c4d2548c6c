"""tnml.spectrum, the one rank / entropy vocabulary, against brute force and numpy; and the callers agree with it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from tnml.dynamics import effective_rank, hierarchical_rank, matricization_rank
from tnml.entanglement import cut_rank, entanglement_entropy, separation_rank
from tnml.spectrum import ROUTES, default_rtol, gram_factor, matricize, numerical_rank, renyi_entropy


def _low_rank(rng, m, n, r, dtype=np.float64):
    return (rng.standard_normal((m, r)) @ rng.standard_normal((r, n))).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numerical_rank_with_the_svd_default_is_numpys_matrix_rank(dtype):
    rng = np.random.default_rng(0)
    for m, n, r in [(6, 9, 3), (20, 7, 7), (12, 12, 1), (30, 40, 11)]:
        a = _low_rank(rng, m, n, r, dtype)
        s = np.linalg.svd(a, compute_uv=False)
        ours = numerical_rank(s, default_rtol(max(a.shape), dtype))
        assert ours == np.linalg.matrix_rank(a) == r
        st = torch.linalg.svdvals(torch.from_numpy(a))
        assert numerical_rank(st, default_rtol(max(a.shape), st.dtype)) == r


def test_numerical_rank_thresholds_and_edge_cases():
    s = np.array([10.0, 1.0, 1e-3, 0.0])
    assert numerical_rank(s, 1e-3) == 2  # strictly above 1e-3 * 10
    assert numerical_rank(s, 1e-5) == 3
    assert numerical_rank(s, atol=1e-3) == 2
    assert numerical_rank(s[::-1].copy(), 1e-3) == 2  # order does not matter
    assert numerical_rank(np.zeros(3), 0.1) == 0
    assert numerical_rank(np.zeros(0), 0.1) == 0
    assert numerical_rank(torch.zeros(0), 0.1) == 0
    with pytest.raises(ValueError, match="exactly one of rtol and atol"):
        numerical_rank(s)
    with pytest.raises(ValueError, match="exactly one of rtol and atol"):
        numerical_rank(s, 0.1, atol=0.1)


def test_default_rtol_policy():
    eps64, eps32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps
    assert default_rtol(7, torch.float64) == 7 * eps64
    assert default_rtol(7, np.float32) == pytest.approx(7 * eps32)
    assert default_rtol(7, torch.complex128) == 7 * eps64
    assert default_rtol(16, torch.float64, "gram") == pytest.approx(10 * math.sqrt(16 * eps64))
    assert default_rtol(0, torch.float64, "gram") == pytest.approx(10 * math.sqrt(eps64))
    assert default_rtol(123, torch.float32, "sampled") == pytest.approx(math.sqrt(eps32))
    assert set(ROUTES) == {"svd", "gram", "sampled"}
    with pytest.raises(ValueError, match="route='exact' is unknown"):
        default_rtol(3, torch.float64, "exact")


def _renyi_brute(w, alpha):
    w = np.clip(np.asarray(w, dtype=np.float64), 0, None)
    if w.sum() == 0:
        return 0.0
    p = w / w.sum()
    p = p[p > 0]
    if alpha == 0:
        return math.log(p.size)
    if alpha == 1:
        return float(-sum(x * math.log(x) for x in p))
    if math.isinf(alpha):
        return -math.log(p.max())
    return math.log(sum(x**alpha for x in p)) / (1 - alpha)


@pytest.mark.parametrize("alpha", [0, 0.5, 1, 2, 3.5, math.inf])
def test_renyi_entropy_matches_the_definition(alpha):
    rng = np.random.default_rng(1)
    for w in [rng.random(7), np.array([3.0, 0.0, 1.0, 0.0]), np.array([1.0]), np.array([2.0, -1e-17, 2.0])]:
        ref = _renyi_brute(w, alpha)
        assert renyi_entropy(w, alpha) == pytest.approx(ref, abs=1e-12)
        got = renyi_entropy(torch.tensor(w), alpha)
        assert isinstance(got, torch.Tensor) and float(got) == pytest.approx(ref, abs=1e-12)
    assert renyi_entropy(np.zeros(4), alpha) == 0.0
    assert float(renyi_entropy(torch.zeros(0), alpha)) == 0.0


def test_renyi_entropy_orders_and_gradient():
    w = torch.rand(6, dtype=torch.float64) + 0.1
    values = [float(renyi_entropy(w, a)) for a in (0, 0.5, 1, 2, math.inf)]
    assert all(a >= b - 1e-12 for a, b in zip(values, values[1:]))  # Renyi entropies decrease with the order
    assert values[0] == pytest.approx(math.log(6))
    w.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: renyi_entropy(x, 1.0), (w,))
    assert torch.autograd.gradcheck(lambda x: renyi_entropy(x, 2.0), (w,))


def test_matricize_matches_the_index_definition():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((2, 3, 4, 5))
    for rows in [(0,), (2, 0), (3, 1, 2), (1, 3)]:
        cols = [k for k in range(4) if k not in rows]
        m = matricize(w, rows)
        mt = matricize(torch.from_numpy(w), rows)
        assert isinstance(mt, torch.Tensor) and np.array_equal(mt.numpy(), m)
        for idx in itertools.product(*(range(d) for d in w.shape)):
            r = np.ravel_multi_index([idx[k] for k in rows], [w.shape[k] for k in rows])
            c = np.ravel_multi_index([idx[k] for k in cols], [w.shape[k] for k in cols]) if cols else 0
            assert m[r, c] == w[idx]
    with pytest.raises(ValueError, match="rows must be distinct modes in 0..3"):
        matricize(w, [1, 1])
    with pytest.raises(ValueError, match="rows must be distinct modes in 0..3"):
        matricize(w, [4])


def test_gram_factor_reproduces_the_gram_matrix():
    g0 = torch.Generator().manual_seed(3)
    a = torch.randn(5, 8, generator=g0, dtype=torch.float64)
    g = a.T @ a  # PSD, rank 5 of 8
    f = gram_factor(g)
    assert f.shape == (8, 8)
    torch.testing.assert_close(f.T @ f, g, atol=1e-12, rtol=0)
    fd = gram_factor(g, drop_null=True)
    assert fd.shape == (5, 8)
    torch.testing.assert_close(fd.T @ fd, g, atol=1e-12, rtol=0)
    c = torch.randn(3, 4, generator=g0, dtype=torch.complex128)
    h = c.conj().T @ c
    fc = gram_factor(h)
    torch.testing.assert_close(fc.conj().T @ fc, h.conj(), atol=1e-12, rtol=0)


def test_every_rank_in_the_library_uses_the_one_rule():
    """Dense cut ranks, matricization ranks and hierarchical ranks count the same values the same way."""
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 4, 2)), rng.standard_normal((2, 5, 3))
    w = np.einsum("ijr,rkl->ijkl", a, b)  # rank 2 across {0,1} | {2,3}
    s = np.linalg.svd(matricize(w, [0, 1]), compute_uv=False)
    want = numerical_rank(s, default_rtol(20, np.float64))
    assert want == 2
    assert cut_rank(w, [0, 1]) == matricization_rank(w, [0, 1]) == want
    assert matricization_rank(w, [0, 1], rtol=0.5) == numerical_rank(s, 0.5)
    assert hierarchical_rank(w, ((0, 1), (2, 3)))[(0, 1)] == want
    with pytest.raises(ValueError, match="at most one of tol"):
        matricization_rank(w, [0, 1], tol=1e-3, rtol=1e-3)
    # entropies: the network routes and the dense route agree with renyi_entropy of the squared values
    p = s**2
    assert float(entanglement_entropy(w, [0, 1])) == pytest.approx(renyi_entropy(p), abs=1e-12)
    assert float(entanglement_entropy(w, [0, 1], alpha=2)) == pytest.approx(renyi_entropy(p, 2), abs=1e-12)
    # effective rank = exp(Shannon entropy of sigma / sum sigma)
    m = matricize(w, [0, 1])
    assert effective_rank(m) == pytest.approx(math.exp(renyi_entropy(s[s > default_rtol(20, np.float64) * s[0]])))


def test_separation_rank_default_tolerance_is_the_sampled_route():
    f64 = lambda x: (x[:, 0] * x[:, 1]).double()  # noqa: E731
    f32 = lambda x: (x[:, 0] * x[:, 1]).float()  # noqa: E731
    assert separation_rank(f64, [0], n_sites=2).tol == default_rtol(1, torch.float64, "sampled")
    assert separation_rank(f32, [0], n_sites=2).tol == default_rtol(1, torch.float32, "sampled")
    assert separation_rank(f64, [0], n_sites=2).rank == 1
