"""The pairwise levels of the log-depth chain route as one autograd function with a hand-written backward.

Level ``l`` multiplies the first half of a stack of per-sample ``D x D`` matrices by its second half
(``X[:h] @ X[h:]``, one batched matmul), rescaling the products by powers of two every few levels. Through
autograd each level costs a view, an unbind and a matmul forward, and a view, a stack and a two-matmul backward
(about 24 aten ops). Here the forward runs without a graph (two views and one matmul per level) and the backward
carries the *transposed* gradient ``H = G^T`` down the levels, so that both factors' gradients of a level come from
the untransposed factors::

    [dA^T; dB^T] = [B H; H A]      (dA = G B^T, dB = A^T G)

two batched matmuls and one concatenation in the storage order of the level's input (about 15 aten ops per level,
forward and backward together, at D = 10 on CPU). The function computed is the same; the power-of-two scales are
constants (the function does not depend on them), so the gradient is exact. The input's gradient is handed back
transposed (a view of a contiguous ``G^T``); :class:`tnml.plans.blocks.BlockMatrices` reads it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from tnml.plans.base import traced
from tnml.plans.scaling import exponent_dtype


def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x[:h]`` and ``x[h:]`` of a stack of ``2 h`` matrices: on a contiguous tensor outside ``torch.compile`` and
    ``torch.func`` transforms two ``as_strided`` views (one aten op each; a slice is two), else two slices."""
    h = x.shape[0] // 2
    if x.is_contiguous() and not traced(x):
        shape, stride = (h, *x.shape[1:]), x.stride()
        return x.as_strided(shape, stride), x.as_strided(shape, stride, x.storage_offset() + h * stride[0])
    return x[:h], x[h:]


class PairwiseLevels(torch.autograd.Function):
    """``levels`` pairwise products of a stack ``mats`` ``(2**levels * m, D, D)`` (see the module docstring).

    Called as ``PairwiseLevels.apply(mats, b, levels, every, scale_of)``.

    Parameters
    ----------
    mats : Tensor, shape (2**levels * m, D, D)
        Storage-major per-sample matrices; at every level, storage index ``s`` of ``q`` matrices per sample holds
        half ``s % 2`` of the chain (exponents are summed per half and sample).
    b : int
        The batch.
    levels : int
    every : int
        Rescale after every ``every``-th level, except the last (rescaled with the output).
    scale_of : callable
        Maps a stack ``(h, D, D)`` to per-matrix power-of-two scales ``(h,)`` and exponents
        (:func:`tnml.plans.chain.power_of_two_scale`).

    Returns
    -------
    left, right : Tensor, shape (m / 2, D)
        Row 0 of the first ``m / 2`` products, column 0 of the others (the chain's two end vectors).
    exponent : Tensor, shape (2, b)
        To add per half and sample (no gradient).
    *saved : Tensors
        The inputs of levels 2, 3, ... and the scales (outputs so that ``torch.func`` transforms see them).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        mats: torch.Tensor, b: int, levels: int, every: int, scale_of: Callable[[torch.Tensor], Any]
    ) -> Any:
        exp = None
        saved: list[torch.Tensor] = []
        scales: list[torch.Tensor] = []
        x = mats
        for level in range(1, levels + 1):
            h = x.shape[0] // 2
            saved.append(x)
            x = torch.bmm(*halves(x))
            if level % every == 0 and level < levels:  # the last product is rescaled with the output
                scale, e = scale_of(x)
                scale = scale.view(h, 1, 1)
                x = x * scale
                scales.append(scale)
                e = e.view(-1, 2, b).sum(0)
                exp = e if exp is None else exp + e
        if exp is None:
            exp = mats.new_zeros((2, b), dtype=exponent_dtype(mats.dtype))
        b2 = x.shape[0] // 2
        # the chain needs row 0 of the left products and column 0 of the right ones (its end vectors)
        return (x[:b2, 0], x[b2:, :, 0], exp, *saved[1:], *scales)  # saved[0]: the input, saved by setup_context

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _, _, levels, every, _ = inputs
        ctx.levels, ctx.every = levels, every
        ctx.set_materialize_grads(False)  # no zero gradients for the outputs that have none
        ctx.save_for_backward(inputs[0], *output[3:])
        ctx.mark_non_differentiable(*output[2:])

    @staticmethod
    def backward(ctx: Any, g_left: torch.Tensor | None, g_right: torch.Tensor | None, *_: Any) -> Any:
        saved = ctx.saved_tensors
        levels, every = ctx.levels, ctx.every
        xs, scales = saved[:levels], list(saved[levels:])
        ref = g_left if g_left is not None else g_right
        if ref is None:
            return None, None, None, None, None
        b2, D = ref.shape
        # the transposed gradient H = G^T is carried down the levels: a level's input gets [dA^T; dB^T] =
        # [B H; H A] from the untransposed factors A = X[:h], B = X[h:] (no transposed views per level)
        # complex matrices: dA = G B^H, dB = A^H G, so H = G^H (conjugated) satisfies the same recursion
        cplx = ref.is_complex()
        g = ref.new_zeros((2 * b2, D, D))
        if g_left is not None:
            g[:b2, :, 0] = g_left.conj() if cplx else g_left
        if g_right is not None:
            g[b2:, 0] = g_right.conj() if cplx else g_right
        for level in range(levels, 0, -1):
            if level % every == 0 and level < levels:
                g = g * scales.pop()
            a, b = halves(xs[level - 1])
            g = torch.cat((torch.bmm(b, g), torch.bmm(g, a)))
        return (g.mH if cplx else g.mT), None, None, None, None
