"""Separation rank of any function, measured numerically: the rank of its matricized grid tensor.

For template points ``v^1, ..., v^M`` the *grid tensor* of ``f`` is ``V[k_1, ..., k_N] = f(v^{k_1}, ..., v^{k_N})``
(``M^N`` evaluations). If ``f = sum_{r<R} g_r(x_A) h_r(x_B)`` then ``[[V]]_A`` has rank ``<= R``, so its numerical
rank is a *lower bound* on the separation rank of ``f`` across ``(A, A^c)`` — a ground truth against which any
upper bound (min-cut, walk index) can be checked, for any callable: a :class:`tnml.TNModel`, a conv net, a GNN or
a python function. For ``f(x) = <W, phi(x_1) x ... x phi(x_N)>`` it *equals* ``rank [[W]]_A`` as soon as the
embedded templates ``phi(v^1..v^M)`` span the feature space (``V = W x_n Phi`` with ``Phi`` of full column rank).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from tnml import settings
from tnml.entanglement.partitions import validate_partition
from tnml.feature_maps import IdentityMap, OneHotMap
from tnml.graphs import IndexedGraph, vertex_set
from tnml.io import format_bytes
from tnml.model import TNModel
from tnml.network_form import network_kind
from tnml.spectrum import default_rtol, matricize, numerical_rank
from tnml.validation import positive_int

__all__ = ["SeparationRankResult", "separation_rank"]

#: default number of template points per site for callables that are not TNModels
DEFAULT_N_TEMPLATES = 4
#: default cap on the number of grid entries (evaluations of ``f``)
DEFAULT_MAX_ENTRIES = 2**22


@dataclass(frozen=True)
class SeparationRankResult:
    """Result of :func:`separation_rank`.

    Attributes
    ----------
    rank : int
        Number of singular values ``> tol * singular_values[0]``: a lower bound on the separation rank.
    singular_values : numpy.ndarray, shape (min(rows, cols),)
        Singular values of the matricized grid tensor, descending (float64, unnormalized).
    tol : float
        The relative tolerance used for :attr:`rank`.
    grid_shape : tuple of int
        Shape of the grid tensor, ``(M,) * n_sites``.
    matrix_shape : (int, int)
        Shape of its matricization: ``(M ** len(part), M ** (n_sites - len(part)))``.
    part : tuple of int
        Side A of the split (sorted).
    templates : numpy.ndarray, shape (M,) or (M, in_dim)
        The template points used.
    """

    rank: int
    singular_values: np.ndarray
    tol: float
    grid_shape: tuple[int, ...]
    matrix_shape: tuple[int, int]
    part: tuple[int, ...]
    templates: np.ndarray

    def rank_at(self, tol: float) -> int:
        """The numerical rank for another relative tolerance (no re-evaluation of ``f``)."""
        return numerical_rank(self.singular_values, _check_tol(tol))

    def __repr__(self) -> str:
        return (
            f"SeparationRankResult(rank={self.rank}, tol={self.tol:.3g}, grid_shape={self.grid_shape}, "
            f"part={self.part})"
        )


def _check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
        raise ValueError(f"tol={tol!r} must be a number in [0, 1): singular values > tol * max count towards the rank")
    return float(tol)


def _model_input(f) -> tuple[int, str | None]:
    """(input size per site, special template kind) for a TNModel: vectors for pre-embedded inputs, the
    discrete values for one-hot maps."""
    fm = f.feature_map
    if isinstance(fm, IdentityMap):
        return f.phys_dim, None
    if isinstance(fm, OneHotMap):
        return 1, "onehot"
    return int(getattr(fm, "in_features", 1)), None


def _templates(f, templates, n_templates, phys_dim, seed) -> np.ndarray:
    if templates is not None:
        t = np.asarray(templates.detach().cpu() if isinstance(templates, torch.Tensor) else templates, dtype=float)
        if t.ndim not in (1, 2) or t.shape[0] < 1:
            raise ValueError(
                f"templates has shape {t.shape}; give (M,) scalars or (M, in_dim) vectors, one row per template point"
            )
        if n_templates is not None and n_templates != t.shape[0]:
            raise ValueError(f"n_templates={n_templates} disagrees with the {t.shape[0]} templates given; drop one")
        if phys_dim is not None and (t.ndim != 2 or t.shape[1] != phys_dim):
            raise ValueError(f"phys_dim={phys_dim} disagrees with templates of shape {t.shape}; drop phys_dim")
        if not np.isfinite(t).all():
            raise ValueError("templates contain NaN or inf")
        return t
    rng = np.random.default_rng(seed)
    is_model = network_kind(f) == "model"
    kind: str | None = None
    in_dim = phys_dim if phys_dim is not None else 1
    if phys_dim is None and is_model:
        in_dim, kind = _model_input(f)
    if n_templates is None:
        n_templates = f.phys_dim if is_model else (phys_dim or DEFAULT_N_TEMPLATES)
    m = positive_int("n_templates", n_templates)
    if kind == "onehot":
        k = f.feature_map.k
        if m > k:
            raise ValueError(
                f"n_templates={m} but the model's one-hot map takes only the values 0..{k - 1}; use n_templates <= {k}"
            )
        return np.arange(m, dtype=float)
    if in_dim == 1:
        t = rng.uniform(0.0, 1.0, size=m)
        if is_model:
            t = _well_spread(f, rng, m)
        return t
    return rng.standard_normal((m, in_dim))


def _well_spread(model: TNModel, rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` scalar templates whose embeddings are well conditioned: column-pivoted QR picks them among
    ``max(64, 8m)`` seeded uniform candidates in ``[0, 1)`` (random points make e.g. a polynomial map's
    Vandermonde matrix nearly singular, which hides small singular values below the tolerance)."""
    cand = np.sort(rng.uniform(0.0, 1.0, size=max(64, 8 * m)))
    with torch.no_grad():
        ref = next(model.parameters())
        phi = model.feature_map(torch.as_tensor(cand, dtype=ref.dtype, device=ref.device)[:, None])
    phi = phi.reshape(len(cand), -1).detach().cpu().double().numpy()
    _, _, piv = scipy.linalg.qr(phi.T, pivoting=True, mode="economic")
    picked = list(piv[: min(m, phi.shape[1])])
    rest = [k for k in rng.permutation(len(cand)) if k not in set(picked)]
    return cand[np.asarray(picked + rest[: m - len(picked)], dtype=int)]


def _as_values(y, batch: int, output) -> torch.Tensor:
    if isinstance(y, tuple):
        raise TypeError("f returned a tuple; wrap it so that it returns one array of shape (batch,) or (batch, out)")
    y = torch.as_tensor(y.detach() if isinstance(y, torch.Tensor) else np.asarray(y))
    if y.dim() == 0 or y.shape[0] != batch:
        raise ValueError(
            f"f returned shape {tuple(y.shape)} for a batch of {batch}; it must return (batch,) or (batch, out)"
        )
    if y.dim() == 1:
        if output is not None:
            raise ValueError(f"output={output!r} was given but f returns one value per sample; drop output")
        return y
    if y.dim() != 2:
        raise ValueError(f"f returned shape {tuple(y.shape)}; expected (batch,) or (batch, out)")
    if output is None:
        if y.shape[1] == 1:
            return y[:, 0]
        raise ValueError(
            f"f returns {y.shape[1]} outputs per sample; the separation rank is per output: pass output=k "
            f"with 0 <= k < {y.shape[1]}"
        )
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)) or not 0 <= output < y.shape[1]:
        raise ValueError(f"output={output!r} must be an integer in 0..{y.shape[1] - 1}")
    return y[:, int(output)]


def _reference(f) -> tuple[torch.dtype, torch.device]:
    if isinstance(f, torch.nn.Module):
        for p in f.parameters():
            if p.is_floating_point():
                return p.dtype, p.device
    return torch.float64, torch.device("cpu")


def separation_rank(
    f: Callable,
    part,
    n_sites: int | None = None,
    *,
    templates=None,
    n_templates: int | None = None,
    phys_dim: int | None = None,
    output: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    batch_size: int = 4096,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> SeparationRankResult:
    r"""Numerical rank of the matricized grid tensor of ``f`` across ``part`` — a lower bound on its separation
    rank.

    The grid tensor is :math:`V[k_1, \ldots, k_N] = f(v^{k_1}, \ldots, v^{k_N})` over ``M`` template points
    :math:`v^k` (the same for every site). Its matricization :math:`[[V]]_A` has rank at most the separation rank
    of ``f`` w.r.t. ``(A, A^c)`` (the least ``R`` with ``f = sum_{r<R} g_r(x_A) h_r(x_{A^c})``), so the result is
    a **lower bound**; more (or better spread) templates can only raise it. For a :class:`tnml.TNModel` with a
    feature map it equals ``cut_rank(model.to_dense(), part)`` whenever the embedded templates span the feature
    space (e.g. ``M >= phys_dim`` distinct random points for the trig or polynomial maps; the default for
    TNModels).

    Parameters
    ----------
    f : callable
        Maps a batch ``(batch, n_sites)`` (scalar templates) or ``(batch, n_sites, in_dim)`` (vector templates) to
        ``(batch,)`` or ``(batch, out)``; torch tensors in, torch tensors or arrays out (a TNModel, any
        ``nn.Module``, a python function). Evaluated under ``torch.no_grad()`` in the dtype/device of its
        parameters (float64 on CPU for plain callables).
    part : iterable of int
        Side A of the split (sites ``0..n_sites-1``).
    n_sites : int, optional
        Number of inputs of ``f``; default ``f.n_sites`` (TNModels).
    templates : array-like, shape (M,) or (M, in_dim), optional
        Template points shared by all sites. Default: ``n_templates`` seeded random points — uniform in
        ``[0, 1)`` for scalar inputs, standard normal vectors of size ``phys_dim`` when ``phys_dim`` is given or
        ``f`` is a TNModel taking embedded vectors, ``0..M-1`` for a one-hot model; for a TNModel with scalar
        inputs the first ``min(M, phys_dim)`` are chosen among random candidates (column-pivoted QR) so that
        their embeddings are well conditioned.
    n_templates : int, optional
        ``M``; default ``f.phys_dim`` for TNModels, else ``phys_dim``, else 4.
    phys_dim : int, optional
        Make the default templates vectors of this size (``f`` takes ``(batch, n_sites, phys_dim)``).
    output : int, optional
        Which output component to use when ``f`` returns ``(batch, out)`` with ``out > 1`` (required then).
    tol : float, optional
        Relative tolerance: count singular values ``> tol * max``. Default ``sqrt(eps)`` of the dtype ``f``
        returns (``1.5e-8`` for float64, ``3.5e-4`` for float32): rounding noise in evaluating ``f`` lies below
        it, and a larger tolerance only keeps the result a lower bound. Inspect ``.singular_values`` or use
        ``.rank_at(tol)`` to see how sharp the gap is.
    seed : int
        Seed of the random default templates.
    batch_size : int
        Evaluations of ``f`` per call.
    max_entries : int
        Refuse grids with more than this many entries ``M ** n_sites`` (default ``2**22``).

    Returns
    -------
    SeparationRankResult
        ``.rank``, ``.singular_values``, ``.tol``, ``.grid_shape``, ``.matrix_shape``, ``.part``, ``.templates``.

    Raises
    ------
    tnml.MemoryLimitError
        If ``M ** n_sites`` exceeds ``max_entries`` or the grid tensor (float64) exceeds
        ``tnml.settings.max_dense_bytes``.
    ValueError
        Bad ``part``, templates, ``output``, ``tol`` or an ``f`` whose output has the wrong shape.

    References
    ----------
    Cohen, Shashua. *Inductive bias of deep convolutional networks through pooling geometry*. ICLR 2017 (grid
    tensors). Razin, Verbin, Cohen. *On the ability of graph neural networks to model interactions between
    vertices*. NeurIPS 2023.

    Examples
    --------
    >>> g = lambda x: torch.cos(x[:, 0] + x[:, 1]) * x[:, 2]      # cos(a+b) = cos a cos b - sin a sin b
    >>> separation_rank(g, [0], n_sites=3).rank, separation_rank(g, [0, 1], n_sites=3).rank
    (2, 1)
    >>> from tnml.networks import MPS
    >>> m = MPS(n_sites=4, phys_dim=2, bond_dim=3, init="normal", init_std=1.0, dtype=torch.float64)
    >>> separation_rank(m, [0, 2]).rank          # = rank [[W]]_{0,2} = 4 for random cores
    4
    """
    if not callable(f):
        raise TypeError(f"f must be callable (a model or a function), got {type(f).__name__}")
    if n_sites is None:
        n_sites = getattr(f, "n_sites", None)
        if n_sites is None:
            raise ValueError("n_sites is required for a callable without an n_sites attribute; pass n_sites=N")
    n = positive_int("n_sites", n_sites)
    ig = getattr(f, "ig", None)
    if isinstance(ig, IndexedGraph):  # a GNN: part names vertex labels (as in its bounds), x[:, k] is labels[k]
        part = vertex_set(ig, part, "part")
    sites = validate_partition(part, n)
    if phys_dim is not None:
        positive_int("phys_dim", phys_dim)
    t = _templates(f, templates, n_templates, phys_dim, seed)
    m = t.shape[0]
    entries = m**n
    if entries > max_entries or entries * 8 > settings.max_dense_bytes:
        raise settings.MemoryLimitError(
            f"the grid tensor has {m}^{n} = {entries:,} entries ({format_bytes(entries * 8)} in float64), above "
            f"max_entries={max_entries:,} or tnml.settings.max_dense_bytes={format_bytes(settings.max_dense_bytes)}; "
            "use fewer templates (n_templates=...) or fewer sites, or raise the limits"
        )
    positive_int("batch_size", batch_size)
    dtype, device = _reference(f)
    tt = torch.as_tensor(t, dtype=dtype, device=device)
    # digits of each flat grid index in base m, most significant = site 0 (row-major, like reshape)
    powers = torch.tensor([m ** (n - 1 - i) for i in range(n)], dtype=torch.int64, device=device)
    chunks = []
    out_dtype = None
    with torch.no_grad():
        for start in range(0, entries, batch_size):
            flat = torch.arange(start, min(start + batch_size, entries), device=device)
            idx = (flat[:, None] // powers) % m
            y = _as_values(f(tt[idx]), idx.shape[0], output)
            out_dtype = y.dtype if out_dtype is None else out_dtype
            chunks.append(y.to("cpu", torch.complex128 if y.is_complex() else torch.float64))
    if any(c.is_complex() for c in chunks):  # a complex f keeps its phase: e^{i(x+y)} is a product (rank 1)
        chunks = [c.to(torch.complex128) for c in chunks]
    grid = torch.cat(chunks).reshape((m,) * n)
    if not torch.isfinite(grid).all():
        raise ValueError("f returned NaN or inf on the template grid; rescale f or choose other templates")
    mat = matricize(grid, sites)
    s = torch.linalg.svdvals(mat).numpy()
    if tol is None:
        eps_dtype = out_dtype if out_dtype is not None and out_dtype.is_floating_point else torch.float64
        tol = default_rtol(1, eps_dtype, "sampled")
    tol = _check_tol(tol)
    return SeparationRankResult(numerical_rank(s, tol), s, tol, (m,) * n, tuple(mat.shape), sites, t)
