"""Per-sample power-of-two rescaling, so long products neither overflow nor underflow.

A batched intermediate ``t`` is kept as ``t_normalized * 2**e``: ``e`` collects an integer exponent per sample.
Multiplying by a power of two is exact in floating point, and the exponent (an integer stored in the tensor's
float dtype) is exact up to 2**24 in float32. The normalizer is computed from detached values: the function is
invariant to it, so treating it as a constant gives the exact gradient.
"""

from __future__ import annotations

import math

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
    exponent : Tensor, shape lead, dtype of ``t`` (float32 for bfloat16 / float16, :func:`exponent_dtype`)
        ``t == t_normalized * 2**exponent[..., None, ...]`` exactly. An all-zero slice stays zero with exponent
        0 and scale 1 (so that the gradient reaching it, the product of its partners, is not scaled away: a scale
        of ``1 / tiny`` with exponent ``log2(tiny)`` per level made the exponent underflow in ``2**exponent`` and
        lost that gradient); a slice below the smallest normal number is scaled as if its max-abs were that
        number; a non-finite slice stays non-finite.
    """
    d = t.detach()
    if t.dim() == n_lead:
        mag = d.abs()
    else:
        mag = d.abs().flatten(n_lead).amax(-1)  # (two cheap kernels: faster than vector_norm(ord=inf) on CPU)
    shape = mag.shape + (1,) * (t.dim() - n_lead)
    if torch.compiler.is_compiling():
        # all-zero slices: scale 1 (frexp(0.5) = (0.5, 0)); subnormal ones: as if at the smallest normal number
        mag = torch.where(mag == 0, 0.5, mag.clamp_min(torch.finfo(mag.dtype).tiny))
        mant, e = _frexp_traced(mag)
        # mag = mant * 2**e, so mant / mag is exactly 2**-e (a correctly rounded, representable quotient)
        # (int32 -> float32 first: exact for every exponent, and inductor's C++ backend cannot vectorize int32 ->
        # float64)
        return t * (mant / mag).view(shape), e.to(torch.float32).to(exponent_dtype(t.dtype))
    # frexp: mag = m * 2**e with m in [0.5, 1); zero, inf and NaN give e = 0 (scale 1: a zero slice keeps its
    # gradient, a non-finite one stays non-finite); a subnormal slice is scaled as if at the smallest normal number
    _, e = torch.frexp(mag)
    ef = e.clamp_min_(_EMIN[mag.dtype]).to(mag.dtype)  # exact: |e| < 2**8 (bfloat16 holds integers up to 256)
    exponent = ef if ef.dtype == exponent_dtype(t.dtype) else ef.to(exponent_dtype(t.dtype))
    return t * torch.exp2(ef.neg()).view(shape), exponent


#: per real dtype, the frexp exponent of its smallest normal number (scales 2**-e stay finite)
_EMIN = {
    dt: math.frexp(torch.finfo(dt).tiny)[1] for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
}


def _frexp_traced(mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.frexp`` of positive normal numbers from ``log2`` (what ``torch.compile`` runs: inductor's C++ backend
    fails to vectorize frexp's int32 exponent next to float64). ``floor(log2(m)) + 1`` may be off by one next to a
    power of two; one correction step on the exactly computed mantissa makes it exact."""
    e = torch.floor(torch.log2(mag)) + 1
    mant = mag * torch.exp2(-e)
    e = e + (mant >= 1).to(e.dtype) - (mant < 0.5).to(e.dtype)
    return mag * torch.exp2(-e), e


def exponent_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype exponents are carried in: float32 for half-precision values (bfloat16 holds integers exactly only
    up to 256, float16 up to 2048, and float16 cannot hold 2**16), the values' own dtype otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def normalize_entries(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale every entry of ``t`` to magnitude in [0.5, 1) by its own power of two.

    Parameters
    ----------
    t : Tensor, any shape, real or complex

    Returns
    -------
    t_normalized : Tensor, same shape and dtype as ``t``
    exponent : Tensor, same shape, the real dtype of ``t``
        ``t == t_normalized * 2**exponent`` exactly. Zero entries stay zero with exponent 0 (so their gradient
        is not rescaled), entries below the smallest normal number are scaled as if they were it (exponent
        ``log2(tiny) + 1``; magnitude then below 0.5), non-finite entries stay non-finite.

    Notes
    -----
    A product of ``m`` normalized entries has magnitude at least ``2**-m``, so up to
    :func:`safe_product_length` of them multiply without underflow (or overflow: each is below 1). The exponents
    come from detached values, so the gradient through ``t_normalized`` is exact (see the module docstring).
    """
    mag = t.detach().abs()
    _, e = torch.frexp(mag.clamp_min(torch.finfo(mag.dtype).tiny))  # 2**-e stays finite (no subnormal e)
    e = torch.where(mag == 0, 0.0, e.to(mag.dtype))
    return t * torch.exp2(-e), e


def safe_product_length(dtype: torch.dtype) -> int:
    """How many entries of magnitude in [0.5, 1) (:func:`normalize_entries`) multiply to a normal number of
    ``dtype`` (its real part's dtype for complex): 125 in float32 and bfloat16, 1021 in float64, 13 in float16."""
    real = torch.empty(0, dtype=dtype).real.dtype if dtype.is_complex else dtype
    return max(2, int(-math.log2(torch.finfo(real).tiny)) - 1)
