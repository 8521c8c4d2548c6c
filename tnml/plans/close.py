"""The closing contraction of the chain routes as one autograd function with a hand-written backward.

Both chain routes (:class:`tnml.plans.chain.ChainRoute`) end with two per-sample vectors, ``l`` from the chain's
first end and ``r`` from its last, that meet at the output core ``C`` (left bond, input, right bond[, output]) and
its embedded input ``phi``::

    out[beta, y] = sum_{i, a, j} l[beta, i] phi[beta, a] C[i, a, j, y] r[beta, j]

computed as ``w = l (x) phi`` ``(batch, D d)``, ``T = w C`` ``(batch, D, y)`` (one GEMM) and ``out = r T`` (one
batched vector-matrix product), then rescaled per sample by a power of two. Its backward through autograd is a
dozen nodes (views, a multiply, two matmuls; about 35 aten ops); written out it is four products::

    dr = T g,  dT = r (x) g,  dC = w^T dT,  dw = dT C^T  (then dl = dw phi, dphi = l dw)

with ``g`` the output's gradient times the (constant) scale. Under ``torch.compile``, ``torch.func`` transforms
and autocast the chain routes use :func:`close_reference` (plain autograd); second derivatives are recomputed
through it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def close_reference(
    vl: torch.Tensor, vr: torch.Tensor, core: torch.Tensor, phi_out: torch.Tensor,
    scale_of: Callable[[torch.Tensor], Any],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The closing contraction through plain autograd: ``(values, exponent)``, values ``(batch, y)`` rescaled per
    sample (see the module docstring; ``core`` of shape ``(D, d, D)`` or ``(D, d, D, y)``)."""
    b, D = vl.shape
    d = phi_out.shape[1]
    y = core.shape[3] if core.dim() == 4 else 1
    w = (vl.view(b, D, 1) * phi_out.view(b, 1, d)).view(b, D * d)
    t = torch.mm(w, core.reshape(D * d, D * y)).view(b, D, y)
    out = torch.bmm(vr.view(b, 1, D), t).view(b, y)
    scale, e = scale_of(out)
    return out * scale.view(b, 1), e


class CloseChain(torch.autograd.Function):
    """The closing contraction (see the module docstring), eager mode.

    Called as ``CloseChain.apply(vl, vr, core, phi_out, scale_of)``.

    Parameters
    ----------
    vl, vr : Tensor, shape (batch, D)
    core : Tensor, shape (D, d, D) or (D, d, D, y)
    phi_out : Tensor, shape (batch, d)
        The output core's embedded input.
    scale_of : callable
        Maps ``(batch, y)`` to per-sample power-of-two scales ``(batch,)`` and exponents.

    Returns
    -------
    values : Tensor, shape (batch, y)
    exponent : Tensor, shape (batch,)
        No gradient.
    """

    @staticmethod
    def forward(ctx: Any, vl, vr, core, phi_out, scale_of) -> Any:
        b, D = vl.shape
        d = phi_out.shape[1]
        y = core.shape[3] if core.dim() == 4 else 1
        w = (vl.view(b, D, 1) * phi_out.view(b, 1, d)).view(b, D * d)
        mat = core.reshape(D * d, D * y)
        t = torch.mm(w, mat).view(b, D, y)
        out = torch.bmm(vr.view(b, 1, D), t).view(b, y)
        scale, e = scale_of(out)
        scale = scale.view(b, 1)
        ctx.scale_of = scale_of
        ctx.save_for_backward(vl, vr, core, phi_out, w, mat, t, scale)
        ctx.mark_non_differentiable(e)
        return out * scale, e

    @staticmethod
    def backward(ctx: Any, g_out: torch.Tensor, _: Any) -> Any:
        vl, vr, core, phi_out, w, mat, t, scale = ctx.saved_tensors
        if torch.is_grad_enabled():  # a graph of the backward is asked for: recompute through plain autograd
            needs = ctx.needs_input_grad[:4]
            with torch.enable_grad():
                leaves = [x if need else x.detach() for x, need in zip((vl, vr, core, phi_out), needs)]
                out, _ = close_reference(leaves[0], leaves[1], leaves[2], leaves[3], ctx.scale_of)
                wanted = [x for x, need in zip(leaves, needs) if need]
                grads = iter(torch.autograd.grad(out, wanted, g_out, create_graph=True, allow_unused=True))
            return (*(next(grads) if need else None for need in needs), None)
        b, D = vl.shape
        d = phi_out.shape[1]
        y = t.shape[2]
        g = g_out * scale  # (b, y)
        need_l, need_r, need_c, need_phi = ctx.needs_input_grad[:4]
        g_r = torch.bmm(t, g.view(b, y, 1)).view(b, D) if need_r else None
        g_l = g_c = g_phi = None
        if need_l or need_c or need_phi:
            dt = (vr.view(b, D, 1) * g.view(b, 1, y)).view(b, D * y)
            if need_c:
                g_c = torch.mm(w.t(), dt).view(core.shape)
            if need_l or need_phi:
                dw = torch.mm(dt, mat.t()).view(b, D, d)
                if need_l:
                    g_l = torch.bmm(dw, phi_out.view(b, d, 1)).view(b, D)
                if need_phi:
                    g_phi = torch.bmm(vl.view(b, 1, D), dw).view(b, d)
        return g_l, g_r, g_c, g_phi, None
