"""The dynamics theorems of P1-P3 as numerical checks against their formulas, on small float64 instances.

* P2 (CP components): under gradient flow ``d/dt ‖W_r‖ = γ_r ‖W_r‖² Σ_n ‖w_r^n‖⁻²`` with
  ``γ_r = ⟨−∇ℓ(W), W_r/‖W_r‖⟩``, which for a balanced component is ``N ‖W_r‖^{2−2/N} γ_r``; every
  ``‖w_r^n‖² − ‖w_r^{n'}‖²`` is conserved.
* P3 (HT local components): the same law for the ``K`` vectors of a local component (the children's columns ``r``
  and the node's row ``r``) with ``W_{ν,r}`` the part of the end tensor that runs through index ``r`` at ``ν``.
* P1 (depth-N matrix factorization completing ``[[*, 1], [1, 0]]``): gradient flow from a balanced start with
  det W(0) > 0 keeps det W > 0, so ``|W_11| >= (1 − sqrt(2ℓ))² / sqrt(2ℓ)``: it grows like ``1/sqrt(loss)``.

The rates are measured on the real training path: one :class:`GroupRMSprop` step through
:func:`tnml.dynamics.fit` with the trackers. GroupRMSprop scales every gradient by one shared factor, so a step of
learning rate ``η`` is an Euler step of gradient flow of length ``dt = η / (sqrt(Σ_p ‖∇p‖²) + ε)``; with
``η = 1e-7`` the finite difference matches the derivative to ~1e-6 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tnml.experiments.dmf_norms as dmf
from tnml.dynamics import (
    ComponentNormTracker,
    GroupRMSprop,
    LocalComponentNormTracker,
    fit,
    random_completion_task,
    random_cp_tensor,
)
from tnml.networks import HierarchicalTensorFactorization, TensorFactorization

F64 = {"dtype": torch.float64}
LR, EPS = 1e-7, 1e-6


def _end_gradient(task, w: torch.Tensor) -> torch.Tensor:
    """∇ℓ(W) of the completion loss with ``reduction="sum"``, in closed form: ``2 (W − y)`` on observed entries."""
    g = torch.zeros_like(w)
    idx = tuple(task.indices.T)
    g.index_put_(idx, 2 * (w[idx] - task.values.to(w.dtype)), accumulate=True)
    return g


def _one_step(model, task, trackers) -> float:
    """One GroupRMSprop step through ``fit``; returns its gradient-flow time ``dt``."""
    opt = GroupRMSprop(model.parameters(), lr=LR, eps=EPS)
    fit(model, task, opt, max_steps=1, callbacks=trackers)
    sq = sum(float(p.grad.pow(2).sum()) for p in model.parameters())
    return LR / (sq**0.5 + EPS)


def _cp_problem(balanced: bool):
    target = random_cp_tensor((4, 4, 4), 2, seed=0, dtype=torch.float64)
    task = random_completion_task(target, 30, seed=1, reduction="sum")
    torch.manual_seed(0)
    model = TensorFactorization((4, 4, 4), rank=5, init_scale=0.6, balanced=balanced, **F64)
    return model, task


@pytest.mark.parametrize("balanced", [True, False])
def test_p2_component_norm_rate_law(balanced):
    model, task = _cp_problem(balanced)
    fs = [f.detach().clone() for f in model.factors()]  # (4, R) each
    w = model.tensor().detach()
    grad = _end_gradient(task, w)
    comps = torch.einsum("ir,jr,kr->rijk", *fs)  # W_r, the rank-1 components
    norms = comps.flatten(1).norm(dim=1)
    gamma = -(comps * grad).flatten(1).sum(1) / norms
    vec_norms = torch.stack([f.norm(dim=0) for f in fs])  # (N, R)
    predicted = gamma * norms**2 * vec_norms.pow(-2).sum(0)
    if balanced:  # P2's form: N ‖W_r‖^{2 - 2/N} γ_r
        n = len(fs)
        torch.testing.assert_close(predicted, n * norms ** (2 - 2 / n) * gamma, rtol=1e-10, atol=0)
    tracker = ComponentNormTracker(every=1)
    dt = _one_step(model, task, [tracker])
    assert tracker.steps == [0, 1]
    measured = (tracker.values[1] - tracker.values[0]) / dt
    np.testing.assert_allclose(tracker.values[0], norms.numpy(), rtol=1e-12)
    np.testing.assert_allclose(measured, predicted.numpy(), rtol=1e-4, atol=1e-6 * float(predicted.abs().max()))
    # the law is not vacuous here: every component moves, at rates that differ by more than 2x
    rates = predicted.abs()
    assert float(rates.min()) > 1e-2 and float(rates.max()) > 2 * float(rates.min())


def test_p2_conservation_of_factor_norm_differences():
    model, task = _cp_problem(balanced=False)
    sq0 = torch.stack([f.detach().pow(2).sum(0) for f in model.factors()])  # (N, R): ‖w_r^n‖²
    w = model.tensor().detach()
    comps = torch.einsum("ir,jr,kr->rijk", *[f.detach() for f in model.factors()])
    inner = (comps * _end_gradient(task, w)).flatten(1).sum(1)  # ⟨∇ℓ, W_r⟩
    dt = _one_step(model, task, [])
    sq1 = torch.stack([f.detach().pow(2).sum(0) for f in model.factors()])
    rate = (sq1 - sq0) / dt
    # d/dt ‖w_r^n‖² = −2 ⟨∇ℓ(W), W_r⟩, the same for every n ...
    torch.testing.assert_close(rate, (-2 * inner).expand_as(rate), rtol=1e-5, atol=1e-8 * float(inner.abs().max()))
    # ... so the differences ‖w_r^n‖² − ‖w_r^0‖² do not move (to O(dt²)) while each term moves at O(1) rate
    drift = ((sq1[1:] - sq1[0]) - (sq0[1:] - sq0[0])).abs().max() / dt
    assert float(drift) < 1e-5 * float(rate.abs().max())
    assert float(rate.abs().max()) > 1e-2


def _ht_problem():
    torch.manual_seed(0)
    target = random_cp_tensor((3, 3, 3, 3), 2, seed=2, dtype=torch.float64)
    task = random_completion_task(target, 40, seed=3, reduction="sum")
    model = HierarchicalTensorFactorization((3, 3, 3, 3), ((0, 1), (2, 3)), (3, 4), init_scale=0.7, **F64)
    return model, task


def _ht_local_parts(c: dict) -> dict:
    """``{block: (W_{ν,r} stacked over r (r, 3, 3, 3, 3), [vectors of each local component: (r, len) each])}``
    for the tree ((0,1),(2,3)), by explicit einsums over the cores."""
    full = "ia,ja,ac,kb,lb,bc,c->"
    cores = [c[k] for k in ("leaf0", "leaf1", "node_0_1", "leaf2", "leaf3", "node_2_3", "root")]
    # the component index of each block's node: a (node {0,1}), b (node {2,3}), c (the root)
    vectors = {
        (0, 1): ("a", [c["leaf0"].T, c["leaf1"].T, c["node_0_1"]]),
        (2, 3): ("b", [c["leaf2"].T, c["leaf3"].T, c["node_2_3"]]),
        (0, 1, 2, 3): ("c", [c["node_0_1"].T, c["node_2_3"].T, c["root"][:, None]]),
    }
    return {
        block: (torch.einsum(full.replace("->", f"->{r}ijkl"), *cores), vecs) for block, (r, vecs) in vectors.items()
    }


def test_p3_local_component_rate_law_and_conservation():
    model, task = _ht_problem()
    cores = {k: v.detach().clone() for k, v in model.core_dict().items()}
    w = model.tensor().detach()
    parts = _ht_local_parts(cores)
    torch.testing.assert_close(parts[(0, 1, 2, 3)][0].sum(0), w)  # the local components at a node sum to W
    grad = _end_gradient(task, w)
    tracker = LocalComponentNormTracker(every=1)
    before = {b: [v.norm(dim=1) ** 2 for v in vecs] for b, (_, vecs) in parts.items()}
    dt = _one_step(model, task, [tracker])
    after_cores = {k: v.detach() for k, v in model.core_dict().items()}
    after = {b: [v.norm(dim=1) ** 2 for v in vecs] for b, (_, vecs) in _ht_local_parts(after_cores).items()}
    checked = 0
    for block, (w_parts, vecs) in parts.items():
        vnorm = torch.stack([v.norm(dim=1) for v in vecs])  # (K, width)
        lc = vnorm.prod(0)  # ‖local component (ν, r)‖
        np.testing.assert_allclose(tracker.node(block)[0], lc.numpy(), rtol=1e-12)
        inner = (w_parts * grad).flatten(1).sum(1)  # ⟨∇ℓ, W_{ν,r}⟩
        gamma = -inner / lc
        predicted = gamma * lc**2 * vnorm.pow(-2).sum(0)
        measured = (tracker.node(block)[1] - tracker.node(block)[0]) / dt
        np.testing.assert_allclose(measured, predicted.numpy(), rtol=1e-4, atol=1e-6 * float(predicted.abs().max()))
        # conservation: d/dt ‖v_k‖² = −2 ⟨∇ℓ, W_{ν,r}⟩ for each of the K vectors, so their differences stay put
        for k in range(len(vecs)):
            rate = (after[block][k] - before[block][k]) / dt
            torch.testing.assert_close(rate, -2 * inner, rtol=1e-4, atol=1e-7 * float(inner.abs().max()))
        checked += int((predicted.abs() > 1e-3 * predicted.abs().max()).sum())
    assert checked >= 8  # most local components move: the check is not over zeros


# ---------------------------------------------------------------------------------------------- P1
@pytest.fixture(scope="module")
def flow_depth3():
    model = dmf.init_positive_det(0, 3, balanced=True)
    start = [w.detach().numpy().copy() for w in model.factors()]
    return start, dmf.run_flow(model, stop_loss=1e-2), model


def test_p1_det_sign_kept_and_w11_grows_like_inverse_sqrt_loss(flow_depth3):
    start, out, _ = flow_depth3
    assert dmf.factor_det(start) > 0
    assert out["stopped"] and out["det_positive_throughout"] and out["min_det"] > 0
    assert out["min_factor_sigma_ratio"] > 1e-6  # the sign is resolved: far above float64 noise
    h = [x for x in out["history"] if x["loss"] < 0.1]
    assert len(h) >= 10
    for x in h:  # det > 0 and loss ℓ  =>  |W_11| > W_12 W_21 / |W_22| >= (1 − sqrt(2ℓ))² / sqrt(2ℓ)
        r = np.sqrt(2 * x["loss"])
        assert abs(x["w11"]) >= (1 - r) ** 2 / r
    c = out["crossings"]
    w11 = [abs(c[lv]["w11"]) for lv in (1e-1, 1e-2)]
    assert w11[1] > 3 * w11[0]  # |W_11| ~ 1/sqrt(loss): x sqrt(10) per decade
    assert 0.6 < w11[1] * np.sqrt(c[1e-2]["loss"]) < 0.75  # -> 1/sqrt(2)


def test_p1_flow_conserves_balancedness_and_matches_a_tighter_integrator(flow_depth3):
    """The LSODA flow keeps W_{j+1}ᵀW_{j+1} − W_jW_jᵀ = 0 (gradient flow's conserved quantity) and agrees with an
    explicit 8th-order integrator at 100x tighter tolerance at the time the loss crosses 0.1."""
    from scipy.integrate import solve_ivp

    start, out, model = flow_depth3
    fs = [w.detach().numpy() for w in model.factors()]
    gaps = [fs[j + 1].T @ fs[j + 1] - fs[j] @ fs[j].T for j in range(2)]
    assert max(np.abs(g).max() for g in gaps) < 1e-7 * max(np.abs(f).max() ** 2 for f in fs)
    t1 = out["crossings"][1e-1]["time"]

    def rhs(_t, y):
        ws = [y[4 * j : 4 * j + 4].reshape(2, 2) for j in range(3)]
        return -np.concatenate([g.ravel() for g in dmf.end_to_end_gradients(ws, dmf.MASK, dmf.TARGET)[2]])

    ref = solve_ivp(rhs, (0, t1), np.concatenate([w.ravel() for w in start]), "DOP853", rtol=1e-12, atol=1e-16)
    ws = [ref.y[:, -1][4 * j : 4 * j + 4].reshape(2, 2) for j in range(3)]
    loss, end, _ = dmf.end_to_end_gradients(ws, dmf.MASK, dmf.TARGET)
    assert loss == pytest.approx(0.1, rel=1e-5)
    assert end[0, 0] == pytest.approx(out["crossings"][1e-1]["w11"], rel=1e-5)


def test_p1_flow_from_an_unbalanced_start_can_cross_det_zero():
    """Why the theorem needs its premise: from P1's code's i.i.d. start (seed 0) the exact flow itself takes one
    factor through a singular matrix while escaping the origin, and det W changes sign (at flow time ≈ 20)."""
    out = dmf.run_flow(dmf.init_positive_det(0, 3, balanced=False), stop_loss=1e-1)
    assert not out["det_positive_throughout"]
    assert 15 < out["first_time_det_le_0"] < 25
