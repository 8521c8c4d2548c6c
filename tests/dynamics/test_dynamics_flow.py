"""Dynamics: conserved quantities of gradient flow, tasks, trackers and the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnml.dynamics import (
    CompletionTask,
    ComponentNormTracker,
    GroupRMSprop,
    LocalComponentNormTracker,
    SingularValueTracker,
    completion_loss,
    fit,
    random_completion_task,
    random_cp_tensor,
    random_sensing_task,
    sensing_loss,
)
from tnml.networks import DeepMatrixFactorization, HierarchicalTensorFactorization, TensorFactorization

F64 = {"dtype": torch.float64}


def _balancedness(m: TensorFactorization) -> torch.Tensor:
    """‖w_r^n‖² − ‖w_r^0‖² for n = 1..N-1, shape (N-1, R)."""
    sq = torch.stack([f.detach().pow(2).sum(0) for f in m.factors()])
    return sq[1:] - sq[0]


def test_gradient_flow_conserves_cp_balancedness():
    torch.manual_seed(0)
    target = random_cp_tensor((3, 3, 3), rank=2, seed=1, dtype=torch.float64)
    task = random_completion_task(target, 15, seed=2, reduction="sum")
    m = TensorFactorization((3, 3, 3), rank=4, init_scale=0.5, **F64)
    before = _balancedness(m)
    norms_before = torch.stack([f.detach().pow(2).sum(0) for f in m.factors()])
    opt = torch.optim.SGD(m.parameters(), lr=1e-4)
    fit(m, task, opt, max_steps=400)
    after = _balancedness(m)
    norms_after = torch.stack([f.detach().pow(2).sum(0) for f in m.factors()])
    moved = float((norms_after - norms_before).abs().max())
    drift = float((after - before).abs().max())
    assert moved > 1e-2  # the factors did move...
    assert drift < 1e-3 * moved  # ...but the differences of squared norms stayed put (O(lr) per unit time)


def test_gradient_flow_conserves_dmf_balancedness():
    torch.manual_seed(0)
    m = DeepMatrixFactorization((3, 3), depth=3, balanced=False, init_scale=0.3, **F64)

    def gaps():
        ws = [w.detach() for w in m.factors()]
        return torch.stack([ws[j + 1].T @ ws[j + 1] - ws[j] @ ws[j].T for j in range(2)])

    g0 = gaps()
    target = torch.randn(3, 3, dtype=torch.float64)
    fit(m, lambda mod: 0.5 * (mod.tensor() - target).pow(2).sum(), torch.optim.SGD(m.parameters(), lr=1e-4), 400)
    assert float((gaps() - g0).abs().max()) < 1e-4
    assert float(g0.abs().max()) > 1e-3  # an unbalanced start: the gaps are not trivially zero


def test_completion_and_sensing_losses_match_hand_computation():
    w = torch.arange(8.0, dtype=torch.float64).reshape(2, 2, 2)
    idx = torch.tensor([[0, 0, 1], [1, 1, 1]])
    vals = torch.tensor([0.0, 7.5], dtype=torch.float64)
    assert float(completion_loss(w, idx, vals, "sum")) == pytest.approx(1.0 + 0.25)
    assert float(completion_loss(w, idx, vals, "half_sum")) == pytest.approx(0.625)
    assert float(completion_loss(w, idx, vals)) == pytest.approx(0.625)
    a = torch.randn(5, 2, 2, 2, dtype=torch.float64)
    y = torch.randn(5, dtype=torch.float64)
    expect = ((torch.einsum("mijk,ijk->m", a, w) - y) ** 2).mean()
    torch.testing.assert_close(sensing_loss(w, a, y), expect)
    with pytest.raises(ValueError, match="indices must have shape"):
        completion_loss(w, idx[:, :2], vals)
    with pytest.raises(ValueError, match="measurements must have shape"):
        sensing_loss(w, a[:, 0], y)


def test_tasks_built_from_a_target_are_solved_by_the_target():
    t = random_cp_tensor((4, 4, 4), 2, seed=0, dtype=torch.float64)
    comp = random_completion_task(t, 20, seed=0)
    sens = random_sensing_task(t, 20, seed=0)
    assert isinstance(comp, CompletionTask) and comp.indices.shape == (20, 3)
    assert float(comp(t)) == 0.0 and float(sens(t)) < 1e-25
    assert comp.reconstruction_error(t) == 0.0
    with pytest.raises(ValueError, match="n_observed"):
        random_completion_task(t, 65)


def test_fit_with_group_rmsprop_and_trackers_learns_low_rank_target():
    torch.manual_seed(0)
    target = random_cp_tensor((4, 4, 4), 1, seed=0, dtype=torch.float64)
    task = random_completion_task(target, 40, seed=0)
    m = TensorFactorization((4, 4, 4), rank=10, init_scale=0.05, **F64)
    tr = ComponentNormTracker(every=50)
    sv = SingularValueTracker(every=50, rows=[0])
    out = fit(m, task, GroupRMSprop(m.parameters(), lr=1e-2), max_steps=1500, stop_loss=1e-7, callbacks=[tr, sv])
    assert out["stopped"] and out["loss"] < 1e-7
    assert task.reconstruction_error(m) < 1e-2
    assert tr.as_array().shape[1] == 10 and sv.as_array().shape[1] == 4
    assert tr.top(2)[-1, 0] > 10 * tr.top(2)[-1, 1]  # one component carries the rank-1 target
    assert sv.steps[0] == 0 and tr.losses[0] > tr.losses[-1]


def test_local_component_tracker_on_ht():
    torch.manual_seed(0)
    m = HierarchicalTensorFactorization((2, 2, 2, 2), ranks=3, init_scale=0.3, **F64)
    tr = LocalComponentNormTracker(every=1)
    fit(m, lambda mod: mod.tensor().pow(2).sum(), torch.optim.SGD(m.parameters(), lr=1e-2), 3, callbacks=[tr])
    assert tr.steps == [0, 1, 2, 3]
    assert tr.node((0, 1)).shape == (4, 3)
    assert np.all(np.diff(tr.node((0, 1, 2, 3)).sum(1)) < 0)  # minimizing ||W||^2 shrinks the components
    with pytest.raises(KeyError, match="internal node"):
        tr.node((0,))
