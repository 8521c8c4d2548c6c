"""GroupRMSprop: RMSprop with a single adaptive scale shared by all parameters (P2/P3's optimizer)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

__all__ = ["GroupRMSprop"]

_GLOBAL = "group_rmsprop"


class GroupRMSprop(Optimizer):
    r"""RMSprop whose second-moment estimate is one scalar for all parameters together.

    With :math:`g_t = \sum_p \lVert \nabla p \rVert^2` summed over every parameter of every group,

    .. math::
        v_t = \beta v_{t-1} + (1 - \beta) g_t,\qquad
        p \leftarrow p - \eta\, \frac{\nabla p}{\sqrt{v_t / (1 - \beta^t)} + \varepsilon},

    so every parameter moves along its plain gradient; only the step length adapts (a global learning-rate
    schedule). Unlike per-coordinate RMSprop/Adam this keeps the direction of gradient descent, which is why
    P2/P3 use it to speed up the (otherwise very slow) dynamics near small initialization.

    Parameters
    ----------
    params : iterable of Tensor or dict
        Parameters or parameter groups (groups may set their own ``lr``).
    lr : float
        :math:`\eta` (P2/P3: 1e-2).
    beta : float
        Smoothing :math:`\beta \in [0, 1)` (default 0.99).
    eps : float
        :math:`\varepsilon` added to the bias-corrected root (default 1e-6).

    References
    ----------
    Razin, Maman & Cohen, Implicit Regularization in Tensor Factorization, ICML 2021 (released code).

    Examples
    --------
    >>> p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    >>> opt = GroupRMSprop([p], lr=0.1)
    >>> p.grad = torch.tensor([3.0, 4.0])   # ||grad||^2 = 25, v = 0.25, v_hat = 25, step = 0.1 * grad / 5
    >>> opt.step()
    >>> p.data
    tensor([2.9400, 3.9200])
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, beta: float = 0.99, eps: float = 1e-6) -> None:
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if not (isinstance(beta, (int, float)) and 0.0 <= beta < 1.0):
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        if not (isinstance(eps, (int, float)) and eps >= 0.0 and math.isfinite(eps)):
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}; e.g. eps=1e-6")
        super().__init__(params, {"lr": float(lr), "beta": float(beta), "eps": float(eps)})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One update of every parameter that has a gradient (the shared scale uses the first group's
        ``beta`` and ``eps``)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return loss
        if any(gr.is_sparse for gr in grads):
            raise RuntimeError("GroupRMSprop does not support sparse gradients; use dense parameters")
        beta, eps = self.param_groups[0]["beta"], self.param_groups[0]["eps"]
        sq = torch.stack([gr.pow(2).sum() for gr in grads]).sum()
        prev = self.state.get(_GLOBAL) or {"step": 0, "square_avg": torch.zeros_like(sq)}
        # a fresh dict and tensor each step (no in-place update): a loaded or saved state_dict shares no
        # mutable object with the running optimizer
        step = prev["step"] + 1
        v = prev["square_avg"].to(sq) * beta + (1.0 - beta) * sq
        self.state[_GLOBAL] = {"step": step, "square_avg": v}
        denom = (v / (1.0 - beta**step)).sqrt() + eps
        if eps == 0:  # v = 0 only while every gradient so far was zero: the update is 0, not 0 / 0 = NaN
            denom = torch.where(denom > 0, denom, torch.ones_like(denom))
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.addcdiv_(p.grad, denom.to(p.dtype), value=-g["lr"])
        return loss

    @property
    def square_avg(self) -> float:
        """The shared second-moment estimate :math:`v_t` (0 before the first step)."""
        st = self.state.get(_GLOBAL, {})
        return float(st["square_avg"]) if st else 0.0
