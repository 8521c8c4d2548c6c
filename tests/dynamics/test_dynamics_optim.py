"""GroupRMSprop follows its formula (docs/science/definitions.md) step by step."""

from __future__ import annotations

import math

import pytest
import torch

from tnml.dynamics import GroupRMSprop


def _hand(params, grads_per_step, lrs, beta=0.99, eps=1e-6):
    """Plain-Python reference: v <- beta v + (1-beta) sum ||g||^2; p <- p - lr g / (sqrt(v / (1-beta^t)) + eps)."""
    ps = [list(p) for p in params]
    v = 0.0
    for t, grads in enumerate(grads_per_step, start=1):
        sq = sum(x * x for g in grads for x in g)
        v = beta * v + (1 - beta) * sq
        denom = math.sqrt(v / (1 - beta**t)) + eps
        ps = [[x - lr * gx / denom for x, gx in zip(p, g)] for p, g, lr in zip(ps, grads, lrs)]
    return ps, v


def test_matches_hand_computation_step_by_step():
    p1 = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    p2 = torch.nn.Parameter(torch.tensor([[0.3, 0.7]], dtype=torch.float64))
    opt = GroupRMSprop([{"params": [p1]}, {"params": [p2], "lr": 0.05}], lr=0.1, beta=0.9, eps=1e-3)
    grads = [
        ([0.5, -1.0, 2.0], [0.1, 0.2]),
        ([0.0, 3.0, -1.0], [1.5, -0.4]),
        ([1e-3, 2e-3, 0.0], [0.0, 0.0]),
    ]
    start = ([1.0, -2.0, 0.5], [0.3, 0.7])
    for t in range(1, len(grads) + 1):
        g1, g2 = grads[t - 1]
        p1.grad = torch.tensor(g1, dtype=torch.float64)
        p2.grad = torch.tensor([g2], dtype=torch.float64)
        opt.step()
        (e1, e2), v = _hand(start, grads[:t], [0.1, 0.05], beta=0.9, eps=1e-3)
        torch.testing.assert_close(p1.detach(), torch.tensor(e1, dtype=torch.float64), rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(p2.detach(), torch.tensor([e2], dtype=torch.float64), rtol=1e-12, atol=1e-14)
        assert opt.square_avg == pytest.approx(v, rel=1e-12)


def test_one_scale_for_all_parameters_keeps_gradient_direction():
    a = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = GroupRMSprop([a, b], lr=1.0)
    ga, gb = torch.tensor([1.0, 100.0, -3.0], dtype=torch.float64), torch.tensor([0.01, 2.0], dtype=torch.float64)
    a.grad, b.grad = ga.clone(), gb.clone()
    opt.step()
    update = torch.cat([a.detach(), b.detach()])
    g = torch.cat([ga, gb])
    ratio = update / g
    torch.testing.assert_close(ratio, ratio[0].expand_as(ratio))  # one scalar step size
    assert float(ratio[0]) == pytest.approx(-1.0 / (float(g.norm()) + 1e-6))  # first step: v_hat = ||g||^2


def test_parameters_without_grad_are_skipped_and_state_round_trips():
    a = torch.nn.Parameter(torch.ones(2))
    b = torch.nn.Parameter(torch.ones(2))
    opt = GroupRMSprop([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2))
    opt2 = GroupRMSprop([a, b], lr=0.1)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.square_avg == pytest.approx(opt.square_avg)
    a2 = a.detach().clone()
    for o in (opt, opt2):
        a.data.copy_(a2)
        a.grad = torch.full((2,), 0.5)
        o.step()
        if o is opt:
            after = a.detach().clone()
    torch.testing.assert_close(a.detach(), after)


@pytest.mark.parametrize("kw, match", [({"lr": 0.0}, "lr"), ({"beta": 1.0}, "beta"), ({"eps": -1.0}, "eps")])
def test_invalid_hyperparameters(kw, match):
    with pytest.raises(ValueError, match=match):
        GroupRMSprop([torch.nn.Parameter(torch.ones(1))], **kw)
