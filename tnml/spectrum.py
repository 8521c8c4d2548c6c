"""One vocabulary for spectra: matricization, numerical rank, Rényi entropy and Gram factors.

Every rank and entropy tnml reports — of a dense tensor or a network across a cut (:mod:`tnml.entanglement`), of a
model's function on a template grid (:func:`tnml.entanglement.separation_rank`), of data
(:func:`tnml.entanglement.data_entanglement`), of a trained factorization's end tensor (:mod:`tnml.dynamics`) and
in the experiments — is computed by the functions of this module, so that "rank" and "entropy" mean one thing.

Tolerance policy
----------------
A value ``σ_i`` of a spectrum counts towards the numerical rank iff ``σ_i > rtol · σ_max`` (strictly; an all-zero or
empty spectrum has rank 0). The default ``rtol`` depends only on *how the values were computed*
(:func:`default_rtol`), never on who asks:

``"svd"``
    singular values of an explicit matrix (a dense matricization, a tree network's QR messages, the factor route's
    core), ``size`` the matrix's larger side: ``rtol = size · eps``, the rule of ``numpy.linalg.matrix_rank``
    (a backward-stable SVD perturbs every value by about ``eps · σ_max`` per row or column).
``"gram"``
    square roots of the eigenvalues of ``size × size`` Gram matrices (the Gram route squares the condition
    number, so round-off enters at ``sqrt(eps)`` relative to the largest value): ``rtol = 10 · sqrt(size · eps)``.
``"sampled"``
    singular values of a matrix of *evaluations* of a function in a floating dtype (the separation rank's grid
    tensor), whose entries carry their own rounding noise: ``rtol = sqrt(eps)`` of the dtype the function returns.

A caller that passes its own tolerance states it relative to the largest value (``rtol``) except where an API
follows numpy's absolute ``tol`` (:func:`tnml.dynamics.matricization_rank`, :func:`tnml.dynamics.effective_rank`);
both go through :func:`numerical_rank`.

Entropies are Rényi entropies (natural log) of the normalized weights ``p = w / Σ w``; for Schmidt values
``w = |σ|²``, for quantum entanglement of data ``w`` are the eigenvalues of the reduced density matrix, for the
effective rank ``w = σ``. Zero weights are left out (``0 ln 0 = 0``); an all-zero spectrum has entropy 0.

Examples
--------
>>> import numpy as np
>>> from tnml.spectrum import default_rtol, matricize, numerical_rank, renyi_entropy
>>> w = np.zeros((2, 2, 2)); w[0, 0, 0] = w[1, 1, 1] = 1.0   # GHZ
>>> s = np.linalg.svd(matricize(w, [0, 2]), compute_uv=False)
>>> numerical_rank(s, default_rtol(max(matricize(w, [0, 2]).shape), np.float64))
2
>>> round(float(renyi_entropy(s**2)), 6)  # ln 2
0.693147
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from tnml.options import SpectrumRoute, choices
from tnml.validation import as_float, as_int, check_option

__all__ = ["ROUTES", "default_rtol", "gram_factor", "matricize", "numerical_rank", "renyi_entropy"]

#: the ways a spectrum can have been computed, each with its default relative tolerance (see the module docstring)
ROUTES = choices(SpectrumRoute)


def _eps(dtype) -> float:
    if isinstance(dtype, torch.dtype):
        if dtype.is_complex:
            dtype = torch.float64 if dtype == torch.complex128 else torch.float32
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(np.dtype(dtype)).eps)


def default_rtol(size: int, dtype, route: SpectrumRoute = "svd") -> float:
    """The default relative tolerance of a spectrum computed by ``route`` (the tolerance policy above).

    Parameters
    ----------
    size : int
        ``"svd"``: the larger side of the decomposed matrix; ``"gram"``: the side of the Gram matrices (the number
        of values); ``"sampled"``: unused.
    dtype : torch.dtype or numpy dtype
        The precision the values were computed in (complex dtypes use their real part's ``eps``).
    route : {"svd", "gram", "sampled"}

    Returns
    -------
    float
        ``size · eps``, ``10 · sqrt(max(size, 1) · eps)`` or ``sqrt(eps)``.

    Examples
    --------
    >>> default_rtol(4, torch.float64) == 4 * torch.finfo(torch.float64).eps
    True
    >>> round(default_rtol(1, torch.float32, "sampled"), 6)
    0.000345
    """
    size = as_int("size", size, 0, fix="the number of rows, columns or values of the spectrum")
    check_option("route", route, SpectrumRoute)
    eps = _eps(dtype)
    if route == "svd":
        return size * eps
    if route == "gram":
        return 10.0 * math.sqrt(max(size, 1) * eps)
    return math.sqrt(eps)  # "sampled"


def numerical_rank(values, rtol: float | None = None, *, atol: float | None = None) -> int:
    """Number of values above the threshold ``rtol · max(values)`` (or above ``atol``): a numerical rank.

    Parameters
    ----------
    values : numpy.ndarray or torch.Tensor, shape (k,)
        Singular values (or any non-negative magnitudes: norms of components), in any order.
    rtol : float, optional
        Relative threshold (see :func:`default_rtol` for the library's defaults).
    atol : float, optional
        Absolute threshold instead (numpy's ``matrix_rank(tol=...)`` convention). Exactly one of the two is given.

    Returns
    -------
    int
        0 for an empty or all-zero spectrum.

    Examples
    --------
    >>> numerical_rank(np.array([10.0, 1.0, 1e-3, 0.0]), rtol=1e-3)
    2
    >>> numerical_rank(np.array([10.0, 1.0, 1e-3, 0.0]), atol=1e-4)
    3
    """
    if (rtol is None) == (atol is None):
        raise ValueError(f"give exactly one of rtol and atol, got rtol={rtol!r}, atol={atol!r}")
    fix = "a threshold such as 1e-10"
    if rtol is not None:
        rtol = as_float("rtol", rtol, minimum=0.0, fix=fix)
    else:
        atol = as_float("atol", atol, minimum=0.0, fix=fix)
    if isinstance(values, torch.Tensor):
        values = values.detach()
        if values.numel() == 0:
            return 0
        if values.is_complex() or not bool(torch.isfinite(values).all()):
            raise ValueError(_bad_values("values", values))
        top = values.max()
        if not top > 0:
            return 0
        return int((values > (atol if atol is not None else rtol * top)).sum())
    values = np.asarray(values)
    if values.size == 0:
        return 0
    if np.iscomplexobj(values) or not np.isfinite(values).all():
        raise ValueError(_bad_values("values", values))
    if not values.max() > 0:
        return 0
    return int((values > (atol if atol is not None else rtol * values.max())).sum())


def _bad_values(name: str, values) -> str:
    return (
        f"{name} must be finite real magnitudes (singular values, norms, weights), got NaN, infinite or complex "
        f"entries in an array of {int(np.prod(values.shape))}; check the computation that produced them"
    )


def renyi_entropy(weights, alpha: float = 1.0):
    """Rényi-``alpha`` entropy (natural log) of the distribution ``p = w / Σ w`` of non-negative weights.

    ``alpha = 1``: von Neumann / Shannon ``-Σ p ln p``; ``alpha = inf``: min-entropy ``-ln max p``; ``alpha = 0``:
    ``ln #{p > 0}`` (for a rank with a tolerance use ``ln numerical_rank(...)``); otherwise
    ``ln(Σ p^alpha) / (1 - alpha)``.

    Parameters
    ----------
    weights : torch.Tensor or numpy.ndarray, shape (k,)
        Unnormalized weights, e.g. squared Schmidt values or the eigenvalues of a reduced density matrix;
        negative entries (round-off of an eigensolver) count as 0.
    alpha : float
        Order, ``>= 0``.

    Returns
    -------
    torch.Tensor (0-d, differentiable in ``weights``) for a tensor, float for an array.
        0 for an all-zero or empty spectrum.

    Examples
    --------
    >>> round(float(renyi_entropy(torch.tensor([1.0, 1.0, 0.0]))), 6)  # ln 2
    0.693147
    >>> round(renyi_entropy(np.array([2.0, 2.0, 0.0]), alpha=2), 6)  # Renyi-2 of (1/2, 1/2, 0): ln 2
    0.693147
    """
    if not isinstance(weights, torch.Tensor):
        return float(renyi_entropy(torch.as_tensor(np.asarray(weights, dtype=np.float64)), alpha))
    alpha = as_float("alpha", alpha, minimum=0.0, finite=False, fix="an order such as 1 (von Neumann) or 2")
    if weights.is_complex() or not bool(torch.isfinite(weights.detach()).all()):
        raise ValueError(_bad_values("weights", weights))
    w = weights.clamp_min(0)
    total = w.sum()
    if w.numel() == 0 or not bool(total.detach() > 0):
        return torch.zeros((), dtype=w.dtype, device=w.device)
    p = w / total
    if alpha == 1 and bool(p.detach().min() > 0):  # no zero to leave out: the same sum, one mask fewer
        return -(p * torch.log(p)).sum()
    nz = p[p > 0]
    if alpha == 1:
        return -(nz * torch.log(nz)).sum()
    if alpha == 0:
        return torch.log(torch.tensor(float(nz.numel()), dtype=p.dtype, device=p.device))
    if math.isinf(alpha):
        return -torch.log(nz.max())
    if abs(alpha - 1.0) < 1e-3:  # ln Σ p^α = log1p(Σ p (p^(α-1) - 1)): no cancellation in ln(≈1) / (1 - α)
        return torch.log1p((nz * torch.expm1((alpha - 1.0) * torch.log(nz))).sum()) / (1.0 - alpha)
    return torch.log((nz**alpha).sum()) / (1.0 - alpha)


def matricize(tensor, rows: Iterable[int]):
    """``[[W]]_I``: the modes in ``rows`` (in the given order) index the rows, the other modes (ascending) the
    columns.

    Parameters
    ----------
    tensor : numpy.ndarray or torch.Tensor, shape (d_0, ..., d_{N-1})
    rows : iterable of int
        Distinct modes ``I ⊂ {0, ..., N-1}``.

    Returns
    -------
    Same type as ``tensor``, shape (Π_{i∈I} d_i, Π_{i∉I} d_i)

    Examples
    --------
    >>> matricize(np.arange(24).reshape(2, 3, 4), [2, 0]).shape
    (8, 3)
    """
    rows = [int(r) for r in rows]
    n = tensor.ndim
    if len(set(rows)) != len(rows) or any(not 0 <= r < n for r in rows):
        raise ValueError(f"rows must be distinct modes in 0..{n - 1}, got {rows}")
    cols = [k for k in range(n) if k not in set(rows)]
    n_rows = math.prod(int(tensor.shape[r]) for r in rows)
    n_cols = math.prod(int(tensor.shape[c]) for c in cols)
    if isinstance(tensor, torch.Tensor):
        return tensor.permute(rows + cols).reshape(n_rows, n_cols)
    return np.transpose(tensor, rows + cols).reshape(n_rows, n_cols)


def gram_factor(g: torch.Tensor, *, drop_null: bool = False) -> torch.Tensor:
    """A factor ``F`` of a Hermitian positive semi-definite Gram matrix: ``F^H F = conj(g)`` (``F^T F = g`` if
    real), from the eigendecomposition of ``(g + g^H) / 2``.

    Parameters
    ----------
    g : torch.Tensor, shape (k, k)
    drop_null : bool
        False: all ``k`` rows, negative eigenvalues (round-off) set to 0. True: only the rows of eigenvalues above
        ``k · eps · λ_max`` (the ``"svd"`` tolerance of the eigenvalues), so ``F`` has the numerical rank of ``g``
        as its number of rows.

    Returns
    -------
    torch.Tensor, shape (k, k) or (rank, k)

    Examples
    --------
    >>> g = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> f = gram_factor(g)
    >>> torch.allclose(f.T @ f, g)
    True
    >>> gram_factor(torch.ones(3, 3, dtype=torch.float64), drop_null=True).shape
    torch.Size([1, 3])
    """
    if not isinstance(g, torch.Tensor) or g.dim() != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"g must be a square torch.Tensor (k, k), got {getattr(g, 'shape', type(g).__name__)}")
    if not bool(torch.isfinite(g).all()):
        raise ValueError("g has NaN or infinite entries; a Gram matrix of finite vectors is finite")
    scale = float(g.detach().abs().max()) if g.numel() else 0.0
    # round-off of a contracted Gram product stays below the "gram" route's tolerance; far beyond it, g is no Gram
    slack = default_rtol(g.shape[0], g.dtype, "gram") * scale
    asym = float((g - g.transpose(0, 1).conj()).detach().abs().max()) if g.numel() else 0.0
    if asym > slack:
        raise ValueError(
            f"g is not Hermitian/symmetric (max |g - g^H| = {asym:.3g}, entries up to {scale:.3g}); gram_factor "
            "factors Gram matrices A^H A; pass such a matrix"
        )
    g = (g + g.transpose(0, 1).conj()) / 2
    lam, u = torch.linalg.eigh(g)
    low = float(lam[0].detach()) if g.numel() else 0.0
    if low < -slack:
        raise ValueError(
            f"g is not positive semi-definite (smallest eigenvalue {low:.3g}, entries up to {scale:.3g}); "
            "gram_factor factors Gram matrices A^H A; pass such a matrix"
        )
    if drop_null:
        keep = lam > lam[-1].clamp_min(0) * default_rtol(g.shape[0], g.dtype)
        return lam[keep].sqrt().to(u.dtype)[:, None] * u[:, keep].transpose(0, 1)
    return torch.sqrt(torch.clamp(lam, min=0.0)).to(u.dtype)[:, None] * u.transpose(0, 1)
