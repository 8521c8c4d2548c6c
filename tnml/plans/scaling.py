"""Per-sample power-of-two rescaling, so long products neither overflow nor underflow.

A batched intermediate ``t`` is kept as ``t_normalized * 2**e``: ``e`` collects an integer exponent per sample.
Multiplying by a power of two is exact in floating point, and the exponent (an integer stored in the tensor's
float dtype) is exact up to 2**24 in float32. The normalizer is computed from detached values: the function is
invariant to it, so treating it as a constant gives the exact gradient.
"""

from __future__ import annotations

import torch


def normalize(t: torch.Tensor, n_lead: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each slice ``t[i_1, ..., i_n_lead]`` to max-abs in [0.5, 1).

    Parameters
    ----------
    t : Tensor, shape (*lead, *rest)
    n_lead : int
        Number of leading (batch-like) dimensions that keep their own exponent.

    Returns
    -------
    t_normalized : Tensor, same shape as ``t``
    exponent : Tensor, shape lead, dtype of ``t``
        ``t == t_normalized * 2**exponent[..., None, ...]``.
    """
    if t.dim() == n_lead:
        mag = t.detach().abs()
    else:
        mag = t.detach().abs().flatten(n_lead).amax(-1)
    _, e = torch.frexp(mag)
    # zero or non-finite slices keep exponent 0 (frexp gives 0 for them)
    e = e.to(t.dtype)
    shape = e.shape + (1,) * (t.dim() - n_lead)
    return t * torch.exp2(-e).view(shape), e
