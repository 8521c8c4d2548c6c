"""CP rank estimation by CP-ALS and binary search (a stochastic upper bound, blind to border rank)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tnml.dynamics.rank_measures import _as_numpy
from tnml.validation import as_float, as_int

__all__ = ["CPRankEstimate", "cp_als", "cp_rank_estimate"]


def _khatri_rao_except(factors: list[np.ndarray], skip: int) -> np.ndarray:
    """Row-wise Khatri-Rao product of all factors but ``skip`` (C order of the remaining modes)."""
    out = None
    for n, f in enumerate(factors):
        if n == skip:
            continue
        out = f if out is None else (out[:, None, :] * f[None, :, :]).reshape(-1, f.shape[1])
    return out


def cp_als(
    tensor,
    rank: int,
    n_sweeps: int = 1000,
    tol: float = 1e-6,
    seed: int | np.random.Generator | None = None,
) -> tuple[list[np.ndarray], float]:
    """Fit a rank-``rank`` CP decomposition by alternating least squares from a random start.

    Parameters
    ----------
    tensor : array or Tensor of order N >= 2
    rank : int
    n_sweeps : int
        At most this many sweeps over the modes.
    tol : float
        Stop once the per-entry mean squared error is below ``tol``.
    seed : int or Generator, optional

    Returns
    -------
    factors : list of ndarray
        ``factors[n]`` of shape ``(d_n, rank)``.
    mse : float
        Per-entry mean squared error of the fit.
    """
    rank = as_int("rank", rank, 1, fix="the number of rank-one terms")
    n_sweeps = as_int("n_sweeps", n_sweeps, 1, fix="at least one ALS sweep (0 would return the random start)")
    tol = as_float("tol", tol, minimum=0.0)
    raw = _as_numpy(tensor)
    if np.iscomplexobj(raw):
        raise TypeError(f"tensor must be real (CP-ALS here fits real factors), got dtype {raw.dtype}; pass the real "
                        "and imaginary parts separately or a real tensor")
    t = raw.astype(np.float64)
    if t.ndim < 2:
        raise ValueError(f"tensor must have order >= 2, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("tensor contains NaN or inf; check its values")
    rng = np.random.default_rng(seed)
    scale = (np.linalg.norm(t) / math.sqrt(rank) + 1e-12) ** (1.0 / t.ndim)
    factors = [rng.standard_normal((d, rank)) * scale / math.sqrt(d) for d in t.shape]
    unfold = [np.moveaxis(t, n, 0).reshape(t.shape[n], -1) for n in range(t.ndim)]
    mse = float(np.mean(t**2))
    prev = np.inf
    for _ in range(n_sweeps):
        for n in range(t.ndim):
            kr = _khatri_rao_except(factors, n)  # (prod other dims, rank)
            gram = np.ones((rank, rank))
            for m, f in enumerate(factors):
                if m != n:
                    gram *= f.T @ f
            rhs = unfold[n] @ kr  # (d_n, rank)
            factors[n] = np.linalg.lstsq(gram, rhs.T, rcond=None)[0].T
        approx = factors[0] @ _khatri_rao_except(factors, 0).T
        mse = float(np.mean((unfold[0] - approx) ** 2))
        if mse < tol or (prev - mse) < 1e-12 * max(prev, 1e-300):
            break
        prev = mse
    return factors, mse


@dataclass
class CPRankEstimate:
    """Result of :func:`cp_rank_estimate`.

    Attributes
    ----------
    rank : int
        Smallest rank tried whose best ALS fit reached ``mse < tol`` (an upper bound on the CP rank when the
        search assumption holds; see :func:`cp_rank_estimate`).
    mse : dict
        ``{rank tried: best per-entry MSE over restarts}``.
    near_misses : list of int
        Ranks below ``rank`` whose error stayed under ``100 * tol``, i.e. were *almost* fit: the signature
        of a border-rank gap (a sequence of rank-r tensors converging to the target while the target's rank
        is larger; ALS then creeps towards zero error with diverging factors).
    """

    rank: int
    mse: dict[int, float] = field(default_factory=dict)
    near_misses: list[int] = field(default_factory=list)

    @property
    def border_rank_warning(self) -> bool:
        """True when some smaller rank nearly fits: the reported rank may exceed the border rank, and with
        more sweeps ALS might even "succeed" below the true CP rank."""
        return bool(self.near_misses)


def cp_rank_estimate(
    tensor,
    tol: float = 1e-6,
    n_sweeps: int = 1000,
    n_restarts: int = 1,
    max_rank: int | None = None,
    seed: int | None = 0,
) -> CPRankEstimate:
    """Estimate the CP rank of a tensor: binary search over ``r`` with a CP-ALS fit per ``r`` (P2's code).

    The search runs over ``r ∈ [1, max_rank]`` (default: the product of all dimensions except the largest, a
    bound on the CP rank) and returns the smallest ``r`` whose fit reaches a per-entry MSE below ``tol``.

    Parameters
    ----------
    tensor : array or Tensor of order N >= 2
    tol : float
        Success threshold on the per-entry MSE (P2: 1e-6).
    n_sweeps : int
        ALS sweeps per fit (P2: 1000).
    n_restarts : int
        Random starts per rank; the best is kept.
    max_rank : int, optional
        Largest rank tried. Default: the product of all dimensions but the largest, a bound on every tensor's CP
        rank (returned even if ALS falls short of ``tol`` there). A given ``max_rank`` at which no fit reaches
        ``tol`` raises ``ValueError``.
    seed : int, optional

    Returns
    -------
    CPRankEstimate

    Notes
    -----
    This is a **stochastic upper bound**, not the CP rank: ALS may miss a decomposition that exists (the
    estimate is then too high), and binary search assumes that success is monotone in ``r``. It is also
    **blind to border rank**: a tensor of CP rank ``r`` whose border rank is smaller (the W state
    ``e0e0e1 + e0e1e0 + e1e0e0``: rank 3, border rank 2) is a limit of rank-``r-1`` tensors, so at ``r - 1``
    ALS keeps lowering the error with diverging factors; depending on ``tol`` and ``n_sweeps`` it then stops
    just above ``tol`` (reporting ``r``) or below it (reporting the border rank). ``near_misses`` flags this.

    Examples
    --------
    >>> a, b = np.random.default_rng(0).standard_normal((2, 3, 3))
    >>> t = np.einsum("ir,jr,kr->ijk", a[:, :2], b[:, :2], a[:, 1:])  # rank 2
    >>> cp_rank_estimate(t).rank
    2
    """
    raw = _as_numpy(tensor)
    if np.iscomplexobj(raw):
        raise TypeError(f"tensor must be real (CP-ALS here fits real factors), got dtype {raw.dtype}; pass the real "
                        "and imaginary parts separately or a real tensor")
    t = raw.astype(np.float64)
    if t.ndim < 2:
        raise ValueError(f"tensor must have order >= 2, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("tensor contains NaN or inf; check its values")
    tol = as_float("tol", tol, positive=True, fix="the per-entry MSE below which a rank counts as fitting, e.g. 1e-6")
    n_sweeps = as_int("n_sweeps", n_sweeps, 1, fix="ALS sweeps per fit, e.g. 1000")
    n_restarts = as_int("n_restarts", n_restarts, 1, fix="random starts per rank, e.g. 1")
    trivial_cap = max_rank is None  # the product of all dimensions but the largest bounds every tensor's CP rank
    if max_rank is None:
        dims = sorted(t.shape)
        max_rank = int(np.prod(dims[:-1]))
    max_rank = as_int("max_rank", max_rank, 1, fix="or None (the product of all dimensions but the largest)")
    if np.mean(t**2) < tol:
        return CPRankEstimate(0, {0: float(np.mean(t**2))})
    rng = np.random.default_rng(seed)
    mse: dict[int, float] = {}

    def fits(r: int) -> bool:
        best = min(cp_als(t, r, n_sweeps, tol, rng)[1] for _ in range(max(1, n_restarts)))
        mse[r] = best
        return best < tol

    lo, hi = 1, max_rank  # invariant: answer in [lo, hi]; hi assumed to fit
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    if hi not in mse:
        fits(hi)
    if mse[hi] >= tol and not trivial_cap:  # at the trivial cap the rank bound holds even if ALS fell short
        raise ValueError(f"no rank up to max_rank={max_rank} fits (mse {mse[hi]:.3g} at rank {hi}, tol {tol:g}); raise "
                         "max_rank, n_sweeps or n_restarts, or tol")
    near = sorted(r for r, e in mse.items() if r < hi and e < 100 * tol)
    return CPRankEstimate(hi, dict(sorted(mse.items())), near)
