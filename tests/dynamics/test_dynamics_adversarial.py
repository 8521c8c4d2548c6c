"""Adversarial tests of the rank-dynamics code against float64 references.

Rank measures against numpy SVD / ``numpy.linalg.matrix_rank`` on matrices of known rank; factorizations
against naive einsums (values and autograd gradients) and their documented initializations; completion and
sensing tasks against numpy formulas; trackers against the measures computed directly, also across a resume;
and a small P1 sanity claim (deep matrix factorization lowers the effective rank of a completion solution).
``xfail(strict=True)`` tests pin down known bugs: they start failing (and must be unmarked) once fixed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from tnml.checkpoint import Checkpointer
from tnml.dynamics import (
    CompletionTask,
    ComponentNormTracker,
    LocalComponentNormTracker,
    SensingTask,
    SingularValueTracker,
    Tracker,
    completion_loss,
    cp_als,
    cp_rank_estimate,
    effective_rank,
    fit,
    hierarchical_rank,
    matricization,
    matricization_rank,
    random_completion_task,
    random_cp_tensor,
    random_sensing_task,
    sensing_loss,
    singular_values,
)
from tnml.networks import DeepMatrixFactorization, HierarchicalTensorFactorization, TensorFactorization

torch.set_num_threads(1)


def _low_rank(m: int, n: int, r: int, seed: int, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
    return a + noise * rng.standard_normal((m, n))


def _erank_reference(a: np.ndarray) -> float:
    """Roy & Vetterli's effective rank over the singular values above numpy's default rank tolerance."""
    s = np.linalg.svd(a, compute_uv=False)
    s = s[s > s.max() * max(a.shape) * np.finfo(np.float64).eps]
    q = s / s.sum()
    return float(np.exp(-(q * np.log(q)).sum()))


# ------------------------------------------------------------------------------------------ rank measures
@pytest.mark.parametrize("shape,rank,seed", [((7, 5), 2, 0), ((1, 9), 1, 1), ((9, 1), 1, 2), ((12, 12), 5, 3)])
def test_singular_values_and_effective_rank_match_numpy(shape, rank, seed):
    a = _low_rank(*shape, rank, seed)
    np.testing.assert_allclose(singular_values(a), np.linalg.svd(a, compute_uv=False), rtol=1e-12, atol=1e-12)
    assert effective_rank(a) == pytest.approx(_erank_reference(a), rel=1e-12)
    assert 1.0 <= effective_rank(a) <= rank + 1e-9
    assert matricization_rank(a, [0]) == np.linalg.matrix_rank(a) == rank


def test_complex_matrix_rank_and_spectrum_match_numpy():
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((6, 2)) + 1j * rng.standard_normal((6, 2))) @ (
        rng.standard_normal((2, 5)) + 1j * rng.standard_normal((2, 5))
    )
    np.testing.assert_allclose(singular_values(a), np.linalg.svd(a, compute_uv=False), rtol=1e-12, atol=1e-12)
    # a complex rank-2 matrix: its real part alone generally has rank 4; the imaginary part must not be dropped
    assert matricization_rank(a, [0]) == 2
    assert matricization_rank(torch.from_numpy(a), [0]) == 2
    assert effective_rank(a) == pytest.approx(_erank_reference(a), rel=1e-12)


@pytest.mark.parametrize("noise", [1e-14, 1e-9])
def test_numerical_rank_follows_numpy_tolerances_on_low_rank_plus_noise(noise):
    a = _low_rank(10, 8, 3, seed=5, noise=noise)
    s = np.linalg.svd(a, compute_uv=False)
    for tol in (None, 1e-12, 1e-6, s[2] * 0.999, s[2]):
        assert matricization_rank(a, [0], tol) == np.linalg.matrix_rank(a, tol=tol), tol
    for rtol in (1e-15, 1e-6, 0.5):
        assert matricization_rank(a, [0], rtol=rtol) == int((s > rtol * s[0]).sum()), rtol
    # documented default: max(m, n) · eps · σ_max, so 1e-14 noise is "rank 3" only if it stays below that
    assert matricization_rank(a, [0], rtol=1e-6) == 3


def test_effective_rank_with_tol_matches_reference_over_kept_values():
    a = _low_rank(9, 9, 9, seed=6)
    s = np.linalg.svd(a, compute_uv=False)
    tol = float(s[4])  # "at or below tol count as zero": s[4] itself is dropped
    q = s[s > tol] / s[s > tol].sum()
    assert effective_rank(a, tol=tol) == pytest.approx(float(np.exp(-(q * np.log(q)).sum())), rel=1e-12)


def test_effective_rank_invariances_and_huge_dynamic_range():
    rng = np.random.default_rng(7)
    a = _low_rank(8, 6, 4, seed=7)
    q1, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    q2, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    base = effective_rank(a)
    for b in (q1 @ a @ q2, a.T, 1e-150 * a, 1e150 * a, -a):
        assert effective_rank(b) == pytest.approx(base, rel=1e-9)
    # σ = (1, 1e-20): the tiny value is below the default tolerance and the result is 1 up to 1e-18
    assert effective_rank(np.diag([1.0, 1e-20])) == 1.0
    # σ = (1, 1e-8): kept; entropy of q = (1, 1e-8)/(1 + 1e-8) by the formula
    q = np.array([1.0, 1e-8]) / (1 + 1e-8)
    assert effective_rank(np.diag([1.0, 1e-8])) == pytest.approx(math.exp(-(q * np.log(q)).sum()), rel=1e-12)


def test_effective_rank_of_rank_k_with_equal_singular_values_is_k():
    rng = np.random.default_rng(8)
    u, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    v, _ = np.linalg.qr(rng.standard_normal((7, 7)))
    for k in (1, 3, 7):
        a = 3.0 * u[:, :k] @ v[:, :k].T
        assert effective_rank(a) == pytest.approx(k, rel=1e-10)
        assert effective_rank(torch.from_numpy(a).float()) == pytest.approx(k, rel=1e-5)


def test_rank_measures_accept_half_precision_and_refuse_bad_input():
    a = torch.eye(3, dtype=torch.bfloat16)
    assert effective_rank(a) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="2-D"):
        singular_values(np.ones(3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        effective_rank(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="tol"):
        effective_rank(np.eye(2), tol=-1.0)
    with pytest.raises(ValueError, match="at most one"):
        matricization_rank(np.eye(2), [0], 1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="rows"):
        matricization(np.zeros((2, 2, 2)), [0, 0])


def test_effective_rank_is_zero_when_tol_drops_every_singular_value():
    a = np.diag([3.0, 1.0])
    # every singular value is "at or below tol" (counts as zero): the matrix is numerically zero, like
    # matricization_rank with the same threshold says, and the documented value for the zero matrix is 0.0
    assert matricization_rank(a, [0], 5.0) == 0
    assert effective_rank(a, tol=5.0) == 0.0


def test_matricization_rank_independent_of_row_mode_order_and_equals_numpy():
    rng = np.random.default_rng(9)
    # modes (0, 2) vs (1, 3) joined through a bond of size 2: rank 2 across that cut
    t = np.einsum("ar,cr,bs,ds,rs->abcd", *rng.standard_normal((4, 3, 2)), rng.standard_normal((2, 2)))
    for rows in ([0, 2], [2, 0], [1, 3], [3, 1]):
        assert matricization_rank(t, rows) == 2
        ref = np.transpose(t, rows + [k for k in range(4) if k not in rows]).reshape(9, 9)
        np.testing.assert_array_equal(matricization(t, rows), ref)
    assert matricization_rank(t, [0, 1]) == np.linalg.matrix_rank(t.reshape(9, 9))
    hr = hierarchical_rank(t, ((0, 2), (1, 3)))
    assert hr[(0, 2)] == hr[(1, 3)] == 2
    assert hr[(0,)] == np.linalg.matrix_rank(t.reshape(3, 27)) == 2  # mode 0 reaches the rest through r (size 2)


# ------------------------------------------------------------------------------------------ CP rank
def test_cp_als_fit_reconstructs_an_exact_rank_two_tensor_order_four():
    rng = np.random.default_rng(10)
    t = np.einsum("ir,jr,kr,lr->ijkl", *rng.standard_normal((4, 3, 2)))
    factors, mse = cp_als(t, 2, n_sweeps=500, tol=1e-20, seed=0)
    assert [f.shape for f in factors] == [(3, 2)] * 4
    recon = np.einsum("ir,jr,kr,lr->ijkl", *factors)
    assert mse == pytest.approx(float(np.mean((t - recon) ** 2)), rel=1e-6, abs=1e-24)
    assert mse < 1e-12
    _, mse1 = cp_als(t, 1, n_sweeps=200, seed=0)
    assert mse1 > 1e-3  # a generic rank-2 tensor has no rank-1 fit


def test_cp_als_refuses_complex_tensors_like_cp_rank_estimate():
    t = np.einsum("i,j->ij", [1.0, 2.0], [1j, 1.0])
    with pytest.raises(TypeError):
        cp_rank_estimate(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match="real"):
            cp_als(t, 1, n_sweeps=2, seed=0)


def test_cp_rank_estimate_does_not_report_a_rank_that_failed_to_fit():
    rng = np.random.default_rng(0)
    t = np.einsum("ir,jr,kr->ijk", *rng.standard_normal((3, 3, 3)))  # generic rank 3
    # documented: ``rank`` is the smallest rank tried whose fit reached mse < tol; none does up to max_rank = 1
    with pytest.raises(ValueError, match="max_rank=1"):
        cp_rank_estimate(t, max_rank=1, n_sweeps=50)
    assert cp_rank_estimate(t, n_sweeps=2000, n_restarts=3).rank >= 2


# ------------------------------------------------------------------------------------------ factorizations
def test_dmf_end_matrix_and_gradients_equal_naive_product_depths_and_widths():
    cases = [((4, 5), 1, None, False), ((4, 5), 3, None, False), ((3, 6), 4, [1, 2, 1], False), ((5, 3), 3, 7, True)]
    for shape, depth, hidden, balanced in cases:
        torch.manual_seed(11)
        m = DeepMatrixFactorization(shape, depth, hidden, init_scale=0.7, balanced=balanced, dtype=torch.float64)
        fs = [f.detach().clone().requires_grad_(True) for f in m.factors()]
        ref = fs[0]
        for f in fs[1:]:
            ref = f @ ref
        assert ref.shape == shape
        torch.testing.assert_close(m.tensor(), ref, rtol=1e-12, atol=1e-12)
        probe = torch.randn(shape, dtype=torch.float64)
        (m.tensor() * probe).sum().backward()
        (ref * probe).sum().backward()
        for k, f in enumerate(fs):
            torch.testing.assert_close(m.core(f"layer{k + 1}").grad, f.grad.T, rtol=1e-10, atol=1e-12)
        if hidden == [1, 2, 1]:
            assert np.linalg.matrix_rank(m.tensor().detach().numpy()) == 1  # width 1 caps the rank


def test_dmf_balanced_init_shares_singular_values_and_end_spectrum_is_their_power():
    torch.manual_seed(12)
    depth = 3
    m = DeepMatrixFactorization((4, 6), depth, hidden=[5, 6], init_scale=0.3, balanced=True, dtype=torch.float64)
    fs = [f.detach() for f in m.factors()]
    s = torch.linalg.svdvals(fs[0])[:4]
    for f in fs[1:]:
        torch.testing.assert_close(torch.linalg.svdvals(f)[:4], s, rtol=1e-10, atol=1e-12)
    for lo, hi in zip(fs[:-1], fs[1:]):
        torch.testing.assert_close(hi.T @ hi, lo @ lo.T, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.linalg.svdvals(m.tensor().detach()), s**depth, rtol=1e-10, atol=1e-14)


def test_dmf_init_scales_as_documented_over_seeds():
    # unbalanced: i.i.d. N(0, σ²) entries; balanced: singular values of an i.i.d. N(0, σ²) d x d' matrix, so
    # E ‖W_1‖_F² = σ² d d'. 200 seeds x 48 entries: the sample std is within ~1% (3 sigma: 3 / sqrt(2 * 9600))
    sigma, stds, fro2 = 0.05, [], []
    for seed in range(200):
        torch.manual_seed(seed)
        m = DeepMatrixFactorization((6, 8), 2, init_scale=sigma, balanced=False, dtype=torch.float64)
        stds.append(torch.cat([f.detach().reshape(-1) for f in m.factors()]))
        torch.manual_seed(seed)
        b = DeepMatrixFactorization((6, 8), 2, init_scale=sigma, balanced=True, dtype=torch.float64)
        fro2.append(float(b.factors()[0].detach().norm() ** 2))
    allv = torch.cat(stds)
    assert float(allv.std()) == pytest.approx(sigma, rel=0.03)
    assert abs(float(allv.mean())) < 3 * sigma / math.sqrt(allv.numel())
    # ‖W‖_F² / σ² ~ chi² with 48 d.o.f.: mean 48, std of the mean over 200 seeds sqrt(96 / 200) ≈ 0.7
    assert np.mean(fro2) / sigma**2 == pytest.approx(48.0, abs=3.0)


@pytest.mark.parametrize("shape,rank", [((3, 3), 1), ((2, 2, 2), 3), ((3, 3, 3, 3, 3), 2)])
def test_cp_end_tensor_and_gradients_equal_naive_einsum(shape, rank):
    torch.manual_seed(13)
    m = TensorFactorization(shape, rank, init_scale=0.8, dtype=torch.float64)
    fs = [f.detach().clone().requires_grad_(True) for f in m.factors()]
    letters = "abcde"[: len(shape)]
    ref = torch.einsum(",".join(c + "r" for c in letters) + "->" + letters, *fs)
    torch.testing.assert_close(m.tensor(), ref, rtol=1e-12, atol=1e-12)
    probe = torch.randn(shape, dtype=torch.float64)
    (m.tensor() * probe).sum().backward()
    (ref * probe).sum().backward()
    for n, f in enumerate(fs):
        torch.testing.assert_close(m.core(f"factor{n}").grad, f.grad, rtol=1e-10, atol=1e-12)
    naive_norms = torch.stack([f.detach().norm(dim=0) for f in fs]).prod(0)
    torch.testing.assert_close(m.component_norms(), naive_norms)


def test_cp_balanced_init_equalizes_factor_norms_and_keeps_each_component():
    torch.manual_seed(14)
    ref = TensorFactorization((4, 4, 4), 6, init_scale=0.3, dtype=torch.float64)
    torch.manual_seed(14)
    bal = TensorFactorization((4, 4, 4), 6, init_scale=0.3, balanced=True, dtype=torch.float64)
    norms = torch.stack([f.detach().norm(dim=0) for f in bal.factors()])
    torch.testing.assert_close(norms, norms[:1].expand_as(norms), rtol=1e-12, atol=0)
    # rescaling by positive factors whose product is 1 leaves every component, hence the end tensor, unchanged
    torch.testing.assert_close(bal.tensor(), ref.tensor(), rtol=1e-12, atol=1e-14)


def test_ht_widths_one_and_order_two_equal_naive_einsum():
    torch.manual_seed(15)
    m = HierarchicalTensorFactorization((3, 3, 3, 3), ranks=1, init_scale=0.9, dtype=torch.float64)
    c = m.core_dict()
    ref = torch.einsum(
        "ia,ja,ab,kc,lc,cb,b->ijkl",
        c["leaf0"],
        c["leaf1"],
        c["node_0_1"],
        c["leaf2"],
        c["leaf3"],
        c["node_2_3"],
        c["root"],
    )
    torch.testing.assert_close(m.tensor(), ref, rtol=1e-12, atol=1e-14)
    assert set(hierarchical_rank(m.tensor().detach()).values()) == {1}
    m2 = HierarchicalTensorFactorization((4, 4), ranks=3, init_scale=0.9, dtype=torch.float64)
    c2 = m2.core_dict()
    torch.testing.assert_close(m2.tensor(), torch.einsum("ir,jr,r->ij", c2["leaf0"], c2["leaf1"], c2["root"]))
    norms = m2.local_component_norms()[(0, 1)]
    torch.testing.assert_close(norms, c2["root"].abs() * c2["leaf0"].norm(dim=0) * c2["leaf1"].norm(dim=0))


# ------------------------------------------------------------------------------------------ tasks
@pytest.mark.parametrize("reduction", ["mean", "sum", "half_sum"])
def test_completion_and_sensing_losses_equal_numpy_formulas(reduction):
    rng = np.random.default_rng(16)
    w = rng.standard_normal((3, 4, 2))
    idx = np.array([[0, 0, 0], [2, 3, 1], [1, 2, 0], [2, 3, 1]])  # a repeated observation counts twice
    y = rng.standard_normal(4)
    sq = (w[tuple(idx.T)] - y) ** 2
    red = {"mean": np.mean, "sum": np.sum, "half_sum": lambda v: 0.5 * np.sum(v)}[reduction]
    got = completion_loss(torch.from_numpy(w), torch.from_numpy(idx), torch.from_numpy(y), reduction)
    assert float(got) == pytest.approx(red(sq), rel=1e-12)
    task = CompletionTask((3, 4, 2), torch.from_numpy(idx), torch.from_numpy(y), reduction=reduction)
    assert float(task(torch.from_numpy(w))) == pytest.approx(red(sq), rel=1e-12)
    a = rng.standard_normal((5, 3, 4, 2))
    ys = rng.standard_normal(5)
    ref = red((np.einsum("mijk,ijk->m", a, w) - ys) ** 2)
    got = sensing_loss(torch.from_numpy(w), torch.from_numpy(a), torch.from_numpy(ys), reduction)
    assert float(got) == pytest.approx(ref, rel=1e-12)


def test_completion_loss_gradient_is_residual_on_observed_entries_only():
    rng = np.random.default_rng(17)
    w = torch.from_numpy(rng.standard_normal((4, 4))).requires_grad_(True)
    idx = torch.tensor([[0, 1], [3, 3], [2, 0]])
    y = torch.from_numpy(rng.standard_normal(3))
    completion_loss(w, idx, y, "half_sum").backward()
    ref = np.zeros((4, 4))
    for (i, j), v in zip(idx.tolist(), y.tolist()):
        ref[i, j] += float(w.detach()[i, j]) - v
    np.testing.assert_allclose(w.grad.numpy(), ref, rtol=1e-12, atol=1e-15)


def test_random_completion_task_samples_distinct_entries_reproducibly():
    target = random_cp_tensor((4, 4, 4), 2, seed=3, dtype=torch.float64)
    t1 = random_completion_task(target, 64, seed=5)  # all entries: a permutation, no duplicate
    assert len({tuple(r) for r in t1.indices.tolist()}) == 64
    t2 = random_completion_task(target, 20, seed=5)
    t3 = random_completion_task(target, 20, seed=5)
    assert len({tuple(r) for r in t2.indices.tolist()}) == 20
    torch.testing.assert_close(t2.indices, t3.indices)
    torch.testing.assert_close(t2.values, target[tuple(t2.indices.T)])
    assert float(t2(target)) == 0.0
    t4 = random_completion_task(target, 20, seed=6)
    assert not torch.equal(t2.indices, t4.indices)
    # uniform without replacement: over 300 seeds every entry is observed 300 * 20/64 ≈ 94 times (sd ≈ 8)
    counts = np.zeros(64)
    for s in range(300):
        flat = np.ravel_multi_index(random_completion_task(target, 20, seed=s).indices.T.numpy(), (4, 4, 4))
        counts[flat] += 1
    assert counts.min() > 94 - 40 and counts.max() < 94 + 40


def test_random_cp_tensor_rank_norm_and_seed():
    t = random_cp_tensor((5, 5, 5), 2, seed=7, dtype=torch.float64)
    assert float(t.norm()) == pytest.approx(1.0, rel=1e-12)
    assert matricization_rank(t, [0]) == 2 and matricization_rank(t, [1]) == 2
    torch.testing.assert_close(t, random_cp_tensor((5, 5, 5), 2, seed=7, dtype=torch.float64))
    assert random_cp_tensor((5, 5), 3, normalize=False).dtype == torch.get_default_dtype()


def test_random_sensing_task_measurement_statistics_and_values():
    target = random_cp_tensor((6, 6), 2, seed=1, dtype=torch.float64)
    m = 400
    task = random_sensing_task(target, m, seed=2)
    a = task.measurements
    assert a.shape == (m, 6, 6)
    # entries N(0, 1/m): 14 400 samples, sample variance within 5% of 1/m (3 sigma ≈ 3.5%)
    assert float(a.var()) * m == pytest.approx(1.0, rel=0.05)
    np.testing.assert_allclose(task.values.numpy(), np.einsum("kij,ij->k", a.numpy(), target.numpy()), rtol=1e-12)
    assert float(task(target)) == pytest.approx(0.0, abs=1e-28)
    torch.testing.assert_close(random_sensing_task(target, m, seed=2).measurements, a)
    assert task.reconstruction_error(2 * target) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda t: random_completion_task(t, 0), "n_observed"),
        (lambda t: random_completion_task(t, 17), "n_observed"),
        (lambda t: random_sensing_task(t, 0), "n_measurements"),
        (lambda t: random_cp_tensor((3, 0), 2), "shape"),
        (lambda t: random_cp_tensor((3, 3), 0), "rank"),
        (lambda t: CompletionTask((4, 4), torch.tensor([[0, 4]]), torch.tensor([1.0])), "outside"),
        (lambda t: CompletionTask((4, 4), torch.tensor([[0.0, 1.0]]), torch.tensor([1.0])), "integer"),
        (lambda t: CompletionTask((4, 4), torch.tensor([[0, 1]]), torch.tensor([1.0, 2.0])), "values"),
        (lambda t: sensing_loss(t, torch.zeros(2, 4, 3), torch.zeros(2)), "measurements"),
        (lambda t: CompletionTask((4, 4), torch.tensor([[0, 1]]), torch.ones(1)).reconstruction_error(t), "target"),
    ],
)
def test_task_bad_input_names_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(torch.zeros(4, 4))


def test_sensing_values_of_wrong_shape_are_refused():
    w, a, y = torch.randn(3, 3), torch.randn(5, 3, 3), torch.randn(5)
    for bad in (y.reshape(5, 1), y[:1]):
        with pytest.raises(ValueError, match="values"):
            sensing_loss(w, a, bad)
        with pytest.raises(ValueError, match="values"):
            SensingTask((3, 3), a, bad)


# ------------------------------------------------------------------------------------------ trackers
def _dmf_run(max_steps: int, crash_at: int | None = None, path=None):
    torch.manual_seed(18)
    target = random_cp_tensor((5, 5), 1, seed=0, dtype=torch.float64) * 5
    task = random_completion_task(target, 15, seed=1)
    model = DeepMatrixFactorization((5, 5), 3, init_scale=0.1, balanced=False, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    tracker = SingularValueTracker(every=100)
    direct: dict[int, np.ndarray] = {}

    class Witness:  # the same measure computed directly, no state to checkpoint
        def __call__(self, step, model, loss):
            if crash_at is not None and step == crash_at:
                raise KeyboardInterrupt
            if step % 100 == 0:
                direct[step] = np.linalg.svd(model.tensor().detach().numpy(), compute_uv=False)

    ck = None if path is None else Checkpointer(path)
    fit(model, task, opt, max_steps, callbacks=[tracker, Witness()], checkpointer=ck)
    return tracker, direct


def test_singular_value_tracker_equals_direct_svd_and_survives_resume(tmp_path):
    tracker, direct = _dmf_run(1200)
    assert tracker.steps == list(range(0, 1201, 100))
    for step, vals in zip(tracker.steps, tracker.values):
        np.testing.assert_allclose(vals, direct[step], rtol=1e-12, atol=1e-15)
    with pytest.raises(KeyboardInterrupt):
        _dmf_run(1200, crash_at=750, path=tmp_path / "c.pt")  # saved at step 500
    resumed, _ = _dmf_run(1200, path=tmp_path / "c.pt")
    assert resumed.steps == tracker.steps
    np.testing.assert_array_equal(resumed.as_array(), tracker.as_array())  # bit-identical on CPU (documented)
    assert resumed.losses == tracker.losses


def test_tracker_with_matricization_rows_matches_hierarchical_cut():
    torch.manual_seed(19)
    m = TensorFactorization((3, 3, 3, 3), 2, init_scale=0.7, dtype=torch.float64)
    tr = SingularValueTracker(rows=[0, 2])
    tr(0, m, 0.5)
    tr(0, m, 0.5)  # the same step twice records once
    assert tr.steps == [0] and tr.losses == [0.5]
    ref = np.linalg.svd(np.transpose(m.tensor().detach().numpy(), (0, 2, 1, 3)).reshape(9, 9), compute_uv=False)
    np.testing.assert_allclose(tr.values[0], ref, rtol=1e-12, atol=1e-15)
    assert int((tr.values[0] > 1e-10 * tr.values[0][0]).sum()) == 2


# ------------------------------------------------------------------------------------------ P1 sanity claim
def _completion_end_erank(depth: int) -> tuple[float, float]:
    """Effective rank and training loss after fitting 30 of 64 entries of a rank-1 8 x 8 matrix by gradient
    descent from a small i.i.d. init (P1's setup, small)."""
    target = random_cp_tensor((8, 8), 1, seed=0, dtype=torch.float64) * 8
    task = random_completion_task(target, 30, seed=1)
    torch.manual_seed(0)
    model = DeepMatrixFactorization(
        (8, 8), depth, init_scale=1e-2 if depth > 1 else 1e-3, balanced=False, dtype=torch.float64
    )
    out = fit(model, task, torch.optim.SGD(model.parameters(), lr=0.5), 3000, stop_loss=1e-6)
    return effective_rank(model.tensor()), out["loss"]


def test_claim_p1_depth_lowers_effective_rank_of_completion_solution():
    erank, loss = _completion_end_erank(3)
    assert loss < 1e-6  # fits the observations
    assert erank < 1.1  # near the target's rank 1 (seed 0, 1: measured 1.0004)


def test_claim_p1_mutation_depth_one_does_not_lower_effective_rank(monkeypatch):
    # the same statistic with the depth removed: depth 1 keeps the unobserved entries near their tiny init and
    # ends far from rank 1 (seed 0, 1: measured 4.47)
    real = DeepMatrixFactorization.__init__

    def depth_one(self, shape, depth, *args, **kwargs):
        real(self, shape, 1, *args, **kwargs)

    monkeypatch.setattr(DeepMatrixFactorization, "__init__", depth_one)
    erank, loss = _completion_end_erank(3)
    assert loss < 1e-6
    assert not erank < 1.1
    assert erank > 2.0


# ------------------------------------------------------------------------------------------ fit semantics
def test_fit_stop_loss_and_final_record_semantics():
    target = random_cp_tensor((4, 4), 1, seed=0, dtype=torch.float64)
    task = random_completion_task(target, 8)
    torch.manual_seed(0)
    model = DeepMatrixFactorization((4, 4), 2, init_scale=0.1, dtype=torch.float64)
    loss0 = float(task(model).detach())
    tr = SingularValueTracker()
    out = fit(model, task, torch.optim.SGD(model.parameters(), lr=0.0), 5, stop_loss=1e9, callbacks=[tr])
    assert out == {"steps": 0, "loss": loss0, "stopped": True} and tr.steps == [0]
    tr = SingularValueTracker()
    out = fit(model, task, torch.optim.SGD(model.parameters(), lr=0.0), 3, callbacks=[tr])
    # before each of the 3 steps and once after the last, each step recorded once
    assert out == {"steps": 3, "loss": loss0, "stopped": False}
    assert tr.steps == [0, 1, 2, 3] and tr.losses == [loss0] * 4


# ------------------------------------------------------------------------------------------ init formulas
_EULER_GAMMA = 0.5772156649015329


def test_noncentral_chi2_log_mean_against_closed_forms_and_monte_carlo():
    from tnml.init import noncentral_chi2_log_mean

    # λ = 0: E ln χ²_k = ln 2 + ψ(k/2); ψ(1/2) = -γ - 2 ln 2, ψ(n) = -γ + H_{n-1}
    central = {1: -_EULER_GAMMA - math.log(2), 2: math.log(2) - _EULER_GAMMA, 6: math.log(2) - _EULER_GAMMA + 1.5}
    for k, ref in central.items():
        assert float(noncentral_chi2_log_mean(k, torch.tensor([0.0]))[0]) == pytest.approx(ref, abs=1e-12)
    g = torch.Generator().manual_seed(0)
    for k, lam in ((3, 2.5), (8, 30.0), (2, 500.0)):  # ‖√λ e_1 + z‖², z ~ N(0, I_k); 2e5 draws, 5 SE tolerance
        z = torch.randn(200_000, k, generator=g, dtype=torch.float64)
        z[:, 0] += math.sqrt(lam)
        x = torch.log((z**2).sum(1))
        se = float(x.std()) / math.sqrt(x.numel())
        assert float(noncentral_chi2_log_mean(k, torch.tensor([lam]))[0]) == pytest.approx(float(x.mean()), abs=5 * se)


def test_noncentral_chi2_asymptote_switch_error_is_as_documented():
    from tnml.init import CHI2_ASYMPTOTE_LAMBDA, noncentral_chi2_log_mean

    lam = torch.tensor([CHI2_ASYMPTOTE_LAMBDA * (1 - 1e-12), CHI2_ASYMPTOTE_LAMBDA * (1 + 1e-12)])
    for k, bound in ((1, 2e-7), (3, 2e-7), (32, 4e-5)):  # documented: 1e-7 for k <= 3, 3e-5 for k = 32
        below, above = noncentral_chi2_log_mean(k, lam).tolist()
        assert abs(below - above) < bound, k


def test_log_neutral_std_makes_expected_log_gain_zero():
    from tnml.init import log_neutral_std

    assert log_neutral_std(2) ** 2 == pytest.approx(math.exp(_EULER_GAMMA) / 2, rel=1e-12)  # ψ(1) = -γ
    g = torch.Generator().manual_seed(1)
    for k in (1, 8, 100):
        z = torch.randn(200_000 if k < 100 else 20_000, k, generator=g, dtype=torch.float64)
        x = torch.log(log_neutral_std(k) ** 2 * (z**2).sum(1))
        assert abs(float(x.mean())) < 5 * float(x.std()) / math.sqrt(x.numel()), k
    with pytest.raises(ValueError, match="k"):
        log_neutral_std(0)


# ------------------------------------------------------------------------------------------ forward, trackers
def test_forward_of_each_factorization_is_the_documented_contraction_with_the_end_tensor():
    torch.manual_seed(20)
    dmf = DeepMatrixFactorization((3, 4), 3, init_scale=0.5, dtype=torch.float64)
    x = torch.randn(5, 1, 4, dtype=torch.float64)
    torch.testing.assert_close(dmf(x), x[:, 0] @ dmf.tensor().T)  # documented: x @ W^T
    cp = TensorFactorization((3, 3, 3), 4, init_scale=0.5, dtype=torch.float64)
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    ref = torch.einsum("ijk,bi,bj,bk->b", cp.tensor(), *x.unbind(1))
    torch.testing.assert_close(cp(x).reshape(-1), ref)
    ht = HierarchicalTensorFactorization((3, 3, 3, 3), ranks=[2, 3], init_scale=0.5, dtype=torch.float64)
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    ref = torch.einsum("ijkl,bi,bj,bk,bl->b", ht.tensor(), *x.unbind(1))
    torch.testing.assert_close(ht(x).reshape(-1), ref)


def test_component_trackers_round_trip_through_weights_only_files(tmp_path):
    torch.manual_seed(21)
    cp = TensorFactorization((3, 3, 3), 5, init_scale=0.5, dtype=torch.float64)
    ht = HierarchicalTensorFactorization((2, 2, 2, 2), ranks=[2, 3], init_scale=0.5, dtype=torch.float64)
    cpt, htt = ComponentNormTracker(every=2), LocalComponentNormTracker(every=2)
    for step in range(5):
        with torch.no_grad():
            for p in [*cp.parameters(), *ht.parameters()]:
                p.mul_(1.1)
        cpt(step, cp, float(step))
        htt(step, ht, float(step))
    assert cpt.steps == htt.steps == [0, 2, 4]
    np.testing.assert_allclose(cpt.values[-1], cp.component_norms().numpy(), rtol=1e-12)
    for block, norms in ht.local_component_norms().items():
        np.testing.assert_allclose(htt.node(block)[-1], norms.numpy(), rtol=1e-12)
    top = cpt.top(2)
    order = np.argsort(-cpt.values[-1])[:2]
    np.testing.assert_array_equal(top, cpt.as_array()[:, order])
    for tr, fresh in ((cpt, ComponentNormTracker(every=2)), (htt, LocalComponentNormTracker(every=2))):
        torch.save(tr.state_dict(), tmp_path / "t.pt")
        fresh.load_state_dict(torch.load(tmp_path / "t.pt", weights_only=True))
        assert fresh.steps == tr.steps and fresh.losses == tr.losses
        np.testing.assert_array_equal(fresh.as_array(), tr.as_array())
    np.testing.assert_array_equal(fresh.node((0, 1)), htt.node((0, 1)))
    with pytest.raises(ValueError, match="every"):
        ComponentNormTracker(every=3).load_state_dict(cpt.state_dict())
    with pytest.raises(ValueError, match="rows"):
        SingularValueTracker(rows=[1]).load_state_dict(SingularValueTracker(rows=[0]).state_dict())
    with pytest.raises(ValueError, match="every"):
        Tracker(lambda m: 0.0, every=0)


def test_cp_rank_estimate_is_reproducible_for_a_seed_and_accepts_torch_input():
    t = random_cp_tensor((3, 3, 3), 2, seed=4, dtype=torch.float64)
    a = cp_rank_estimate(t, n_sweeps=200, seed=3)
    b = cp_rank_estimate(t.numpy(), n_sweeps=200, seed=3)
    assert a.rank == b.rank == 2 and a.mse == b.mse
    assert a.mse[a.rank] < 1e-6 and all(e >= 1e-6 for r, e in a.mse.items() if r < a.rank)


def test_cp_and_ht_init_are_iid_normal_with_the_documented_std():
    # 100 seeds: CP 3 x (6 x 10) = 180 entries, HT (4 leaves 6x4, two 4x5 nodes, root 5) = 141 entries per seed;
    # the sample std of >= 14 000 normals is within 3% (3 sigma ≈ 1.8%), its mean within 4 SE of 0
    sigma = 0.03
    for make in (
        lambda: TensorFactorization((6, 6, 6), 10, init_scale=sigma, dtype=torch.float64),
        lambda: HierarchicalTensorFactorization((6, 6, 6, 6), ranks=[4, 5], init_scale=sigma, dtype=torch.float64),
    ):
        vals = []
        for seed in range(100):
            torch.manual_seed(seed)
            vals.append(torch.cat([p.detach().reshape(-1) for p in make().parameters()]))
        v = torch.cat(vals)
        assert float(v.std()) == pytest.approx(sigma, rel=0.03)
        assert abs(float(v.mean())) < 4 * sigma / math.sqrt(v.numel())
        kurt = float(((v - v.mean()) ** 4).mean() / v.var() ** 2)
        assert kurt == pytest.approx(3.0, abs=0.3)  # Gaussian, not uniform (1.8)
