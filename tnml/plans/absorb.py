"""Absorb batched vectors into a stack of identical tensors: the one kernel every plan replays."""

from __future__ import annotations

import torch


def absorb(core: torch.Tensor, operands: list[torch.Tensor]) -> torch.Tensor:
    """Contract each stacked tensor with one batched vector per leading leg.

    Parameters
    ----------
    core : Tensor, shape (g, a_1, ..., a_k, p)
        ``g`` stacked tensors whose first ``k`` legs are contracted, in order, with ``operands``; ``p`` is the
        remaining (parent/output) leg.
    operands : list of k Tensors, shapes (g, batch, a_i)

    Returns
    -------
    Tensor, shape (g, batch, p)
        ``out[g, b, p] = sum_{a} core[g, a_1..a_k, p] * prod_i operands[i][g, b, a_i]``.

    Notes
    -----
    The first leg is contracted against the (unbatched) tensor with one batched matmul; each further leg is a
    batched vector-matrix product per sample. Legs should come largest first so the first product shrinks most.
    """
    g = core.shape[0]
    if not operands:
        raise ValueError("absorb needs at least one operand")
    a0 = core.shape[1]
    x = torch.bmm(operands[0], core.reshape(g, a0, -1))  # (g, b, rest)
    b = x.shape[1]
    for op in operands[1:]:
        a = op.shape[-1]
        x = torch.bmm(op.reshape(g * b, 1, a), x.reshape(g * b, a, -1)).reshape(g, b, -1)
    return x
