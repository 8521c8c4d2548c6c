"""Fused forward and backward of a stacked bilinear node: ``out[g, b] = second[g, b] . (first[g, b] @ core[g])``.

This is a binary TTN inner node with a wide second leg (the :func:`tnml.plans.absorb.absorb` route "one batched GEMM
for the first leg, then a per-sample vector-matrix product"). Under plain autograd its backward spends time on
things that are not arithmetic: the gradient of the per-sample product's matrix operand is a batched matmul with
inner size 1 (an outer product at a fraction of memory speed), and a level contracted node by node leaves one
``cat`` per operand to join the pieces' gradients. Here the backward writes every piece straight into
preallocated gradients, forms the outer product with one broadcast multiply and runs the weight gradient's GEMM
with a contiguous left operand (the transposed view ran 15-20 % slower on this BLAS). When a graph of the backward
is asked for (``create_graph=True``, double backpropagation) it is recomputed with plain autograd instead.
"""

from __future__ import annotations

import torch


def gemm_vecmat_reference(core: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Plain-autograd version of :func:`gemm_vecmat` (the same contraction, no fusion)."""
    g, b, a1 = second.shape
    x = torch.bmm(first, core)  # (g, b, a1 * p)
    out = torch.bmm(second.reshape(g * b, 1, a1), x.view(g * b, a1, -1))
    return out.view(g, b, -1)


class _GemmVecmat(torch.autograd.Function):
    @staticmethod
    def forward(ctx, core, first, second, step: int):
        g, a0, rest = core.shape
        b, a1 = first.shape[1], second.shape[2]
        p = rest // a1
        out = core.new_empty((g, b, p))
        # one intermediate per piece, not one buffer for the level: allocations past glibc's mmap threshold
        # (32 MiB) come back as fresh pages every step and the first GEMM writing them ran ~30 % slower
        xs = []
        for s in range(0, g, step):
            e = min(g, s + step)
            n = (e - s) * b
            x = torch.bmm(first[s:e], core[s:e])
            torch.bmm(second[s:e].reshape(n, 1, a1), x.view(n, a1, p), out=out[s:e].view(n, 1, p))
            xs.append(x)
        # saved (not ctx attributes): autograd frees them after backward unless the graph is retained
        ctx.save_for_backward(core, first, second, *xs)
        ctx.step = step
        return out

    @staticmethod
    def backward(ctx, gout):
        core, first, second, *xs = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: recompute with differentiable ops
            with torch.enable_grad():
                inputs = [t if t.requires_grad else t.detach().requires_grad_() for t in (core, first, second)]
                out = gemm_vecmat_reference(*inputs)
                grads = torch.autograd.grad(out, inputs, gout, create_graph=True, allow_unused=True)
            return (*grads, None)
        need_core, need_first, need_second = ctx.needs_input_grad[:3]
        g, a0, rest = core.shape
        b, a1 = first.shape[1], second.shape[2]
        p = rest // a1
        gout = gout.contiguous()
        gcore = torch.empty_like(core) if need_core else None
        gfirst = torch.empty_like(first) if need_first else None
        gsecond = torch.empty_like(second) if need_second else None
        step = ctx.step
        buf = core.new_empty((min(step, g), b, rest)) if need_core or need_first else None
        for s, x in zip(range(0, g, step), xs):
            e = min(g, s + step)
            n = (e - s) * b
            go = gout[s:e]
            if need_second:
                # as a row vector times a transposed matrix: the column form (a1 x p)(p x 1) ran 5x slower here
                torch.bmm(go.reshape(n, 1, p), x.view(n, a1, p).transpose(1, 2), out=gsecond[s:e].view(n, 1, a1))
            if need_core or need_first:
                # one buffer for every piece: a fresh 4 MiB product per node measured up to 3x slower (the
                # allocator hands freed memory back to the system and the next multiply page-faults it in)
                gx = buf[: e - s]
                torch.mul(second[s:e].unsqueeze(-1), go.unsqueeze(-2), out=gx.view(e - s, b, a1, p))
                if need_core:
                    torch.bmm(first[s:e].transpose(1, 2).contiguous(), gx, out=gcore[s:e])
                if need_first:
                    torch.bmm(gx, core[s:e].transpose(1, 2), out=gfirst[s:e])
        return gcore, gfirst, gsecond, None


def gemm_vecmat(core: torch.Tensor, first: torch.Tensor, second: torch.Tensor, step: int = 1) -> torch.Tensor:
    """``out[g, b, k] = sum_{i, j} first[g, b, i] * second[g, b, j] * core[g, i, j * p + k]``, fused.

    Parameters
    ----------
    core : Tensor, shape (g, a0, a1 * p)
        ``g`` stacked tensors, legs (a0, a1, p) with the last two flattened.
    first : Tensor, shape (g, batch, a0)
    second : Tensor, shape (g, batch, a1)
    step : int
        Nodes per piece (the forward's intermediate ``(step, batch, a1 * p)`` should fit the cache).

    Returns
    -------
    Tensor, shape (g, batch, p)
    """
    if core.dim() != 3 or first.dim() != 3 or second.dim() != 3:
        raise ValueError(
            f"gemm_vecmat needs core (g, a0, a1*p), first (g, b, a0), second (g, b, a1); got shapes "
            f"{tuple(core.shape)}, {tuple(first.shape)}, {tuple(second.shape)}"
        )
    return _GemmVecmat.apply(core.contiguous(), first.contiguous(), second.contiguous(), max(1, int(step)))
