"""The per-sample block matrices of the chain routes as one autograd function with a hand-written backward.

The chain routes (:class:`tnml.plans.chain.ChainRoute`) start from a table of ``D x d x D`` sites (the inner cores,
the two end tensors embedded as sites, an identity site; for the blocked route also the same table with left and
right bonds swapped). Block ``s`` multiplies ``k`` of its sites into a batch-free block core

    ``B_s[l, (a_0 .. a_{k-1}), r] = sum_m S_0[l, a_0, m_1] S_1[m_1, a_1, m_2] ... S_{k-1}[m_{k-1}, a_{k-1}, r]``

(prefix products ``P_{j+1} = P_j S_j``, one batched matmul each), and one batched GEMM absorbs the outer product
``z`` of the block's ``k`` input vectors: ``M_s[beta] = sum_a z_s[beta, a] B_s[:, a, :]``, a ``D x D`` matrix per
block and sample, rescaled per matrix by a power of two. Through autograd every view, slice and concatenation of
this forward has its own backward node (about 130 aten ops for a 784-site chain). Here the backward is written out:

    ``dB_s = z_s^T dM_s``;  for ``j = k - 1 .. 1``:  ``dS_j = P_j^T dP_{j+1}``,  ``dP_j = dP_{j+1} S_j^T``

(two batched matmuls per merged site), the site gradients added into the table's rows with ``index_add_``, and the
table's gradient split into the inner cores and the two end tensors. The function computed is the same; the
power-of-two scales are constants (the function does not depend on them), so the gradient is exact. A gradient of
the input vectors (a learned feature map) is recomputed through autograd, as are second derivatives; under
``torch.compile`` and ``torch.func`` transforms the chain routes use the plain-autograd forward
(:func:`block_matrices_reference`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class BlockSpec:
    """What one call of :class:`BlockMatrices` needs besides the tensors.

    Attributes
    ----------
    d, bond, k : int
        Input dimension, bond dimension, sites per block.
    rows : LongTensor, shape (k, q)
        Per position ``j`` in a block, the table row of that site for every block (storage order).
    cols : LongTensor, shape (k, q)
        Per position, the input column read for that site (``n_sites`` reads the padding column of ones).
    transposed : bool
        The table is followed by its copy with left and right bonds swapped (the blocked route's right half).
    scale_of : callable
        Maps a stack ``(m, D, D)`` to per-matrix power-of-two scales ``(m,)`` and exponents.
    """

    d: int
    bond: int
    k: int
    rows: torch.Tensor
    cols: torch.Tensor
    transposed: bool
    scale_of: Callable[[torch.Tensor], Any]


def site_table(
    inner: torch.Tensor, first: torch.Tensor, last: torch.Tensor, constants: Sequence[torch.Tensor], transposed: bool
) -> torch.Tensor:
    """The table of sites ``(rows, D, d, D)``: ``inner`` ``(n, D, d, D)``, the first end tensor ``(d, D)`` as row 0
    of a zero site, the last ``(D, d)`` as column 0, the identity site ``constants[0]``; with ``transposed``,
    followed by the same table with left and right bonds swapped."""
    ident, zl, zr = constants[0], constants[1], constants[2]
    D, d = ident.shape[1], ident.shape[2]
    first = torch.cat([first.reshape(1, 1, d, D), zl], 1)  # (1, D, d, D)
    last = torch.cat([last.reshape(1, D, d, 1), zr], 3)  # (1, D, d, D)
    parts = [inner, first, last, ident]
    if transposed:
        parts += [p.transpose(1, 3) for p in parts]
    return torch.cat(parts)


def outer_inputs(phi: torch.Tensor, ones: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``z[s, beta, (a_0 .. a_{k-1})] = prod_j phi'[beta, cols[j, s], a_j]``, ``(q, batch, d^k)``, where ``phi'`` is
    ``phi`` followed by a column of ones (plain autograd)."""
    b, d = phi.shape[0], phi.shape[2]
    ph = torch.cat([phi.transpose(0, 1), ones.expand(1, b, d)])  # (n_sites + 1, b, d)
    z = ph.index_select(0, cols[0])
    q = z.shape[0]
    for c in cols[1:]:
        # (q, b, X, 1) * (q, b, 1, d): the outer product grows along the third axis
        z = (z.view(q, b, -1, 1) * ph.index_select(0, c).view(q, b, 1, d)).view(q, b, -1)
    return z


def block_matrices_reference(
    table: torch.Tensor, phi: torch.Tensor, ones: torch.Tensor, spec: BlockSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same function as :class:`BlockMatrices` through plain autograd, from a site table (:func:`site_table`):
    rescaled block matrices ``(q * batch, D, D)`` and their exponents ``(q * batch,)``."""
    d, D, k = spec.d, spec.bond, spec.k
    p = table.index_select(0, spec.rows[0]).reshape(-1, D * d, D)
    q = p.shape[0]
    for r in spec.rows[1:]:
        p = torch.bmm(p, table.index_select(0, r).reshape(q, D, d * D)).view(q, -1, D)
    block = p.view(q, D, d**k, D).transpose(1, 2).reshape(q, d**k, D * D)
    z = outer_inputs(phi, ones, spec.cols)
    mats = torch.bmm(z, block).view(-1, D, D)
    scale, e = spec.scale_of(mats)
    return mats * scale.view(-1, 1, 1), e


def _part(t: torch.Tensor, j: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The ``j``-th consecutive block of ``prod(shape)`` elements of the contiguous ``t``, viewed as ``shape`` (one
    ``as_strided``: an index and a view are two or three aten ops)."""
    stride, acc = [], 1
    for s in reversed(shape):
        stride.append(acc)
        acc *= s
    return t.as_strided(shape, stride[::-1], t.storage_offset() + j * acc)


def _mt(t: torch.Tensor) -> torch.Tensor:
    """The transpose of the last two axes of a contiguous stack of matrices (one ``as_strided``)."""
    n, r, c = t.shape
    return t.as_strided((n, c, r), (r * c, 1, c), t.storage_offset())


class BlockMatrices(torch.autograd.Function):
    """Rescaled per-sample block matrices (see the module docstring); eager mode only (its views assume contiguous
    tensors; :func:`block_matrices_reference` is the traced form).

    Called as ``BlockMatrices.apply(inner, first, last, phi, constants, spec)``.

    Parameters
    ----------
    inner : Tensor, shape (n_inner, D, d, D)
        The inner cores in (left bond, input, right bond) order.
    first, last : Tensor, shapes (d, D) and (D, d)
        The two end tensors.
    phi : Tensor, shape (batch, n_sites, d)
        Embedded inputs.
    constants : tuple of Tensor
        The identity site ``(1, D, d, D)``, the zeros that embed the ends, the padding input ``(1, 1, d)``.
    spec : BlockSpec

    Returns
    -------
    mats : Tensor, shape (q * batch, D, D)
        Block-major, rescaled per matrix.
    exponent : Tensor, shape (q * batch,)
        No gradient.
    """

    @staticmethod
    def forward(ctx: Any, inner, first, last, phi, constants, spec: BlockSpec) -> Any:
        d, D, k = spec.d, spec.bond, spec.k
        table = site_table(inner, first, last, constants, spec.transposed)
        q, b = spec.rows.shape[1], phi.shape[0]
        # every block's k sites with one gather: (k, q, D, d D), position j at the j-th q-block of the result
        sites = table.view(table.shape[0], D, d * D)[spec.rows]
        prefix = [_part(sites, 0, (q, D * d, D))]  # P_1 .. P_k, P_j of shape (q, D d^j, D)
        for j in range(1, k):
            prefix.append(torch.bmm(prefix[-1], _part(sites, j, (q, D, d * D))).view(q, -1, D))
        block = prefix.pop().view(q, D, d**k, D).transpose(1, 2).reshape(q, d**k, D * D)
        # the outer product of each block's k input vectors, (q, b, d^k)
        ph = torch.cat([phi.transpose(0, 1), constants[3].expand(1, b, d)])  # (n_sites + 1, b, d)
        cs = ph.view(ph.shape[0], b, 1, d)[spec.cols]  # (k, q, b, 1, d)
        z = _part(cs, 0, (q, b, d, 1))
        for j in range(1, k):
            z = (z * _part(cs, j, (q, b, 1, d))).view(q, b, -1, 1)
        z = z.view(q, b, d**k)
        mats = torch.bmm(z, block).view(-1, D, D)
        scale, e = spec.scale_of(mats)
        scale = scale.view(-1, 1, 1)
        ctx.spec, ctx.rows, ctx.n_inner, ctx.constants = spec, table.shape[0], inner.shape[0], constants
        ctx.save_for_backward(z, block, scale, inner, first, last, phi, sites, *prefix)
        ctx.mark_non_differentiable(e)
        return mats * scale, e

    @staticmethod
    def backward(ctx: Any, g_mats: torch.Tensor, _: Any) -> Any:
        spec = ctx.spec
        d, D, k = spec.d, spec.bond, spec.k
        z, block, scale, inner, first, last, phi, sites, *prefix = ctx.saved_tensors
        if torch.is_grad_enabled():  # a graph of the backward is asked for: recompute through plain autograd
            return _reference_grads(ctx, g_mats, inner, first, last, phi)
        q, b = z.shape[0], z.shape[1]
        g_phi = None
        if ctx.needs_input_grad[3]:
            g = (g_mats * scale).reshape(q, b, D * D)
            with torch.enable_grad():
                p = phi.detach().requires_grad_()
                zz = outer_inputs(p, constants_ones(ctx), spec.cols)
            g_phi = torch.autograd.grad(zz, p, torch.bmm(g, block.transpose(1, 2)))[0]
        if not any(ctx.needs_input_grad[:3]):
            return None, None, None, g_phi, None, None
        # the pairwise levels hand back the gradient transposed (a contiguous G^T): used as it is, (right, left)
        transposed = g_mats.dim() == 3 and g_mats.stride() == (D * D, 1, D)
        # (G^T read contiguously: one as_strided)
        g = _part(g_mats, 0, tuple(g_mats.shape)) if transposed else g_mats.contiguous()
        g = (g * scale).view(q, b, D * D)
        # the block's gradient in (left bond, inputs, right bond) order, shaped as the last prefix product's output
        db = torch.bmm(_mt(z), g).view(q, d**k, D, D)
        dp = (db.permute(0, 3, 1, 2) if transposed else db.transpose(1, 2)).reshape(q, -1, d * D)
        # the site gradients, position j at the j-th q-block (as the gathered sites), then added into the table
        g_sites = g.new_empty((k, q, D, d * D))
        for j in range(k - 1, 0, -1):
            # P_{j+1} = P_j S_j: dS_j = P_j^T dP_{j+1}, dP_j = dP_{j+1} S_j^T
            torch.bmm(_mt(prefix[j - 1]), dp, out=_part(g_sites, j, (q, D, d * D)))
            out = _part(g_sites, 0, (q, D * d, D)) if j == 1 else None
            dp = torch.bmm(dp, _mt(_part(sites, j, (q, D, d * D))), out=out).view(q, -1, d * D)
        if k == 1:
            g_sites = dp.view(1, q, D, d * D)
        table_grad = g.new_zeros((ctx.rows, D, d, D))
        table_grad.index_add_(0, spec.rows.view(-1), g_sites.view(k * q, D, d, D))
        if spec.transposed:
            half = ctx.rows // 2
            table_grad = table_grad[:half] + table_grad[half:].transpose(1, 3)
        n, site = ctx.n_inner, D * d * D
        g_inner = table_grad.as_strided(inner.shape, (site, d * D, D, 1)) if ctx.needs_input_grad[0] else None
        g_first = table_grad.as_strided((d, D), (D, 1), n * site) if ctx.needs_input_grad[1] else None
        g_last = table_grad.as_strided((D, d), (d * D, D), (n + 1) * site) if ctx.needs_input_grad[2] else None
        return g_inner, g_first, g_last, g_phi, None, None


def constants_ones(ctx: Any) -> torch.Tensor:
    """The padding input ``(1, 1, d)`` saved on ``ctx``."""
    return ctx.constants[3]


def _reference_grads(ctx: Any, g_mats: torch.Tensor, inner, first, last, phi) -> tuple:
    """The backward of :class:`BlockMatrices` through plain autograd (differentiable: double backward)."""
    needs = ctx.needs_input_grad[:4]
    with torch.enable_grad():
        # the saved inputs keep their graph (the gradient is a function of them: second derivatives flow)
        leaves = [t if need else t.detach() for t, need in zip((inner, first, last, phi), needs)]
        table = site_table(leaves[0], leaves[1], leaves[2], ctx.constants, ctx.spec.transposed)
        mats, _ = block_matrices_reference(table, leaves[3], ctx.constants[3], ctx.spec)
        wanted = [t for t, need in zip(leaves, needs) if need]
        grads = iter(torch.autograd.grad(mats, wanted, g_mats, create_graph=True, allow_unused=True))
    return (*(next(grads) if need else None for need in needs), None, None)
