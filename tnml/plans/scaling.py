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
        ``t == t_normalized * 2**exponent[..., None, ...]`` exactly. An all-zero slice stays zero (its exponent
        is that of the smallest normal number); a non-finite slice stays non-finite.
    """
    d = t.detach()
    if t.dim() == n_lead:
        mag = d.abs()
    else:
        mag = d.abs().flatten(n_lead).amax(-1)  # (two cheap kernels: faster than vector_norm(ord=inf) on CPU)
    # all-zero slices: scale by the smallest normal power of two instead of dividing by zero
    mag = mag.clamp_min(torch.finfo(t.dtype).tiny)
    mant, e = torch.frexp(mag)
    # mag = mant * 2**e, so mant / mag is exactly 2**-e (a correctly rounded, representable quotient)
    shape = mag.shape + (1,) * (t.dim() - n_lead)
    return t * (mant / mag).view(shape), e.to(t.dtype)
