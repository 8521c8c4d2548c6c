"""Absorb batched vectors into a stack of identical tensors: the one kernel every plan replays."""

from __future__ import annotations

import math

import torch

from tnml.plans.gemm_vecmat import gemm_vecmat

_SMALL_LEG = 32
#: per-call intermediate size (elements) above which a stacked group is contracted a few nodes at a time
#: (2^18 floats = 1 MiB, the L2 cache of one core here: bond-16 TTN train step 14.8 -> 10.4 ms against 2^20)
_CHUNK_ELEMENTS = 2**18
#: a single node whose intermediate exceeds this many elements is contracted in batch slices (bond 64, batch
#: 256 is exactly 2^20 and runs fastest whole: slicing it measured 5-10 % slower)
_SLICE_ELEMENTS = 2**20
#: largest outer product of the operands (elements) formed instead of absorbing legs one by one
_OUTER_ELEMENTS = 2**22
#: binary nodes with a second leg wider than _SMALL_LEG (and not on the outer-product route) use the fused kernel
#: of tnml.plans.gemm_vecmat (bond-64 TTN train step 216 -> 206 ms in one process). For legs <= 32 the same
#: fusion (with multiply-and-sum) measured 1-4 % slower than plain autograd on the bond-16 step, so it is not used.
_FUSE_BINARY = True


def absorb(core: torch.Tensor, operands: list[torch.Tensor]) -> torch.Tensor:
    """Contract each stacked tensor with one batched vector per leading leg.

    Parameters
    ----------
    core : Tensor, shape (g, a_1, ..., a_k, p)
        ``g`` stacked tensors whose first ``k`` legs are contracted, in order, with ``operands``; ``p`` is the
        remaining (parent/output) leg.
    operands : list of k Tensors, shapes (g, batch, a_i)
        Any operand may come as ``(g, batch, a_i, 1)`` (saves a view per call for the legs after the first).

    Returns
    -------
    Tensor, shape (g, batch, p)
        ``out[g, b, p] = sum_{a} core[g, a_1..a_k, p] * prod_i operands[i][g, b, a_i]``.

    Notes
    -----
    If the first leg is smaller than the parent leg (a TTN leaf: two d = 2 inputs, parent 16 or 64), the outer
    product of all operands ``(b, a_1 * ... * a_k)`` is the smaller intermediate and one batched GEMM against
    the whole core finishes (bond-64 leaf level fwd + bwd 3.3 -> 0.6 ms, bond 16: 1.0 -> 0.5 ms). Otherwise
    the first leg is contracted against the core with one batched GEMM and each further leg is a per-sample
    vector-matrix product: an elementwise multiply-and-sum for small legs (<= 32, where batched matmuls with one
    row are slow on CPU), a batched matmul otherwise. Legs should come largest first. The outer product for
    equal legs (MPS sites, TTN inner nodes) and einsum measured slower (see benchmarks/). Large levels are
    contracted in cache-sized pieces.
    """
    g = core.shape[0]
    if not operands:
        raise ValueError("absorb needs at least one operand")
    b = operands[0].shape[1]
    rest = math.prod(core.shape[2:])
    wide = len(operands) == 2 and operands[1].shape[2] > _SMALL_LEG
    if _FUSE_BINARY and wide and core.shape[1] >= rest // operands[1].shape[2]:
        # binary node with a wide second leg, first leg no smaller than the parent leg (TTN inner nodes, bond > 32)
        first, second = (op if op.dim() == 3 else op.squeeze(-1) for op in operands)
        return gemm_vecmat(core.reshape(g, core.shape[1], rest), first, second, _CHUNK_ELEMENTS // (b * rest))
    if g * b * rest > _CHUNK_ELEMENTS:
        # large levels in pieces (nodes, then batch slices) so that each intermediate stays cache-sized
        if b * rest <= _SLICE_ELEMENTS:
            step = max(1, _CHUNK_ELEMENTS // (b * rest))
            pieces = zip(core.split(step), *(op.split(step) for op in operands))
            return torch.cat([_absorb(c, list(ops)) for c, *ops in pieces])
        bstep = max(1, _SLICE_ELEMENTS // rest)
        nodes = []
        for c, *ops in zip(core.split(1), *(op.split(1) for op in operands)):
            parts = zip(*(op.split(bstep, dim=1) for op in ops))
            nodes.append(torch.cat([_absorb(c, list(p)) for p in parts], dim=1))
        return torch.cat(nodes)
    return _absorb(core, operands)


def _absorb(core: torch.Tensor, operands: list[torch.Tensor]) -> torch.Tensor:
    """:func:`absorb` in one piece."""
    g, a0 = core.shape[0], core.shape[1]
    b = operands[0].shape[1]
    first = operands[0] if operands[0].dim() == 3 else operands[0].squeeze(-1)
    sizes = [op.shape[2] for op in operands[1:]]
    legs = math.prod(sizes)
    if sizes and a0 * legs * g * b <= _OUTER_ELEMENTS and a0 * legs < math.prod(core.shape[2:]):
        # the outer product of all operands (b, a0 * a1 * ...) is smaller than the first leg's result
        # (b, a1 * ... * p), i.e. a0 < p: one GEMM against the whole core instead
        z = first
        for op, a in zip(operands[1:], sizes):
            z = (z.unsqueeze(-1) * op.reshape(g, b, 1, a)).reshape(g, b, -1)
        return torch.bmm(z, core.reshape(g, a0 * legs, -1))
    x = torch.bmm(first, core if core.dim() == 3 else core.reshape(g, a0, -1))  # (g, b, rest)
    for op in operands[1:]:
        a = op.shape[2]
        if a <= _SMALL_LEG:
            x = (x.view(g, b, a, -1) * (op if op.dim() == 4 else op.unsqueeze(-1))).sum(2)
        else:
            x = torch.bmm(op.reshape(g * b, 1, a), x.view(g * b, a, -1)).view(g, b, -1)
    return x
