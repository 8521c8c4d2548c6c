"""Schmidt values, cut ranks and entanglement entropies across a split, for dense tensors and tensor networks.

For a tensor ``W`` and a side ``A`` of its axes, the Schmidt values are the singular values of the matricization
``[[W]]_A`` (rows: the axes in A). Its rank is the separation rank of ``f(x) = <W, phi(x_0) x ... x phi(x_N-1)>``
across ``(A, A^c)``; with ``p = s^2 / sum(s^2)`` the entanglement entropy is ``-sum p ln p`` (natural log), the
Renyi-alpha entropy ``ln(sum p^alpha) / (1 - alpha)``.

Routes (``method="auto"`` takes the first that applies):

- dense numpy array / torch tensor: SVD of the matricization (``part`` = axes); accurate to ``eps``;
- ``"tree"``: a tree network (MPS, TTN) and a split realized by one edge of the tree (every contiguous split of an
  MPS, every tree-node block of a TTN, any single site): QR messages towards that edge, ``O(N D^3)``, cached across
  parts (see :mod:`tnml.entanglement.spectra_tree`); accurate to ``eps`` times the largest value;
- ``"factor"``: any network and split (multi-bond cuts of trees, interleaved parts, networks with loops) whose sides
  can be reduced to (open x cut) factors within ``tnml.settings.max_dense_bytes``: each side of a minimum cut is
  contracted with its open legs QR-compressed at every step, then one SVD of the small core (see
  :mod:`tnml.entanglement.spectra_factor`); accurate to a few ``eps`` times the largest value;
- ``"gram"``: what the factor route cannot hold: Gram matrices of both sides over the bonds of a minimum cut (see
  :mod:`tnml.entanglement.spectra_gram`); resolves values only above about ``sqrt(eps)`` times the largest
  (~1e-7 in float64), so :func:`cut_rank` warns (:class:`RankUncertaintyWarning`) when values fall in that band
  and :func:`cut_rank_bounds` returns the interval the true rank lies in; refused with
  :class:`tnml.MemoryLimitError` beyond ``tnml.settings.max_dense_bytes``.

No route densifies a network. Torch inputs (tensors, TNModels) give torch results that carry gradients
(``torch.linalg.svdvals``/``qr``/``eigh``; entropies are usable as regularizers where the spectrum has no
repeated values), numpy and quimb inputs give numpy results.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import torch

from tnml import settings
from tnml.entanglement._inputs import Network, base_network, with_sides
from tnml.entanglement.partitions import validate_partition
from tnml.entanglement.spectra_factor import factor_bytes, factor_spectrum
from tnml.entanglement.spectra_gram import cut_split, gram_spectrum
from tnml.entanglement.spectra_tree import TreeSpectra
from tnml.options import SpectraMethod
from tnml.rooting import is_tree
from tnml.spectrum import default_rtol, matricize, numerical_rank, renyi_entropy
from tnml.validation import as_float, check_option, optional_tol

__all__ = [
    "RankUncertaintyWarning",
    "cut_rank",
    "cut_rank_bounds",
    "entanglement_entropies",
    "entanglement_entropy",
    "schmidt_spectra",
    "schmidt_values",
]


class RankUncertaintyWarning(UserWarning):
    """A rank was counted from values the route does not resolve (the Gram route's ``sqrt(eps)`` band)."""


class Spectrum(NamedTuple):
    """The Schmidt values of one split, as a route computed them."""

    #: unit-norm values, descending (torch)
    values: torch.Tensor
    #: log of the norm the values were divided by (0-dim torch float64)
    log_norm: torch.Tensor
    #: relative threshold below which a value counts as zero
    rtol: float
    #: return numpy results (numpy arrays and quimb networks in) rather than torch
    numpy_out: bool
    #: None where the values are accurate to ``eps``, else the relative resolution of the route (Gram route)
    band: float | None = None
    #: an upper bound on the rank: the fewer of the matrix's rows and columns, or the values' count
    size_bound: int = 0


class _RouteResult(NamedTuple):
    values: torch.Tensor
    log_norm: torch.Tensor
    rtol: float
    band: float | None


def _is_dense(obj) -> bool:
    return isinstance(obj, (np.ndarray, torch.Tensor))


def _dense_spectrum(obj, part) -> Spectrum:
    """The spectrum of a dense array's matricization."""
    numpy_out = isinstance(obj, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(obj)) if numpy_out else obj
    if x.dim() < 2:
        raise ValueError(f"obj has {x.dim()} axis; a dense tensor needs >= 2 axes to be split (part = axes)")
    axes = validate_partition(part, x.dim())
    if not (x.is_floating_point() or x.is_complex()):
        x = x.to(torch.get_default_dtype())
    elif x.dtype in (torch.float16, torch.bfloat16):  # no half-precision SVD: the values in float32
        x = x.float()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"obj has NaN or infinite entries ({int((~torch.isfinite(x)).sum())} of {x.numel()}); "
                         "the Schmidt spectrum of such a tensor is undefined")
    mat = matricize(x, axes)
    s = torch.linalg.svdvals(mat)
    nrm = torch.linalg.norm(s)
    if nrm > 0:
        log_norm = torch.log(nrm).to(torch.float64)
        s = s / nrm
    else:
        log_norm = torch.full((), -math.inf, dtype=torch.float64)
    return Spectrum(s, log_norm, default_rtol(max(mat.shape), s.dtype), numpy_out, None, s.numel())


def _check_method(method: SpectraMethod) -> None:
    check_option("method", method, SpectraMethod, fix="'auto' takes the first route that applies")


def _network_spectrum(net: Network, method: SpectraMethod, cache: dict) -> _RouteResult:
    """Unit-norm values, log_norm, rtol and band of one split; ``band`` is None for the accurate routes, else the
    relative level below which the route does not resolve values (the Gram route)."""
    if method in ("auto", "tree") and "tree" not in cache:  # once per network, not per part
        cache["tree"] = TreeSpectra(net.structure, net.cores) if is_tree(net.structure) else None
    tree = cache.get("tree")
    if method in ("auto", "tree") and tree is not None:
        edge = tree.find_edge(net.side_a, net.side_b) if net.sites is None else tree.find_edge_sites(net.sites)
        if edge is not None:
            s, log_norm, size = tree.spectrum(*edge)
            return _RouteResult(s, log_norm, default_rtol(size, s.dtype), None)
    if method == "tree":
        why = (
            "it is not a tree (loops, parallel bonds or hyper-indices)"
            if tree is None
            else (f"the split {net.side_a[:6]}{'...' if len(net.side_a) > 6 else ''} is not realized by one edge")
        )
        raise ValueError(f"method='tree' cannot be used: {why}; use method='auto', 'factor' or 'gram'")
    if "is_tree" not in cache:
        cache["is_tree"] = (cache["tree"] is not None) if "tree" in cache else is_tree(net.structure)
    on_tree = cache["is_tree"]
    split = cut_split(net.structure, net.side_a, net.side_b, tree=on_tree)
    if method in ("auto", "factor"):
        item = next(iter(net.cores.values())).element_size()
        fits = method == "factor" or factor_bytes(
            net.structure, split[0], split[1], net.side_a, net.side_b, split[2], tree=on_tree, item=item
        ) <= settings.max_dense_bytes
        if fits:
            s, log_norm, size = factor_spectrum(
                net.structure, net.cores, split[0], split[1], net.side_a, net.side_b, split[2], tree=on_tree
            )
            return _RouteResult(s, log_norm, default_rtol(size, s.dtype), None)
    s, log_norm, rtol, _ = gram_spectrum(net.structure, net.cores, net.side_a, net.side_b, split=split)
    return _RouteResult(s, log_norm, rtol, rtol)


def _spectra(obj, parts: Iterable, output, method: SpectraMethod) -> Iterator[Spectrum]:
    """One :class:`Spectrum` per part; a network is read once (:func:`~tnml.network_form.as_network`) for all."""
    _check_method(method)
    if _is_dense(obj):
        if output is not None:
            raise ValueError("output= applies to TNModels only; for a dense tensor choose the axes in part")
        for part in parts:
            yield _dense_spectrum(obj, part)
        return
    cache: dict = {}
    base = base_network(obj, output)
    for part in parts:
        net = with_sides(base, obj, part)
        s, log_norm, rtol, band = _network_spectrum(net, method, cache)
        bound = s.numel()
        if band is not None:
            sd = net.structure.size_dict
            bound = min(bound, math.prod(sd[i] for i in net.side_a), math.prod(sd[i] for i in net.side_b))
        yield Spectrum(s, log_norm, rtol, net.from_quimb, band, bound)


def _finish_values(sp: Spectrum, normalize: bool):
    s = sp.values if normalize else sp.values * torch.exp(sp.log_norm).to(sp.values.dtype)
    if sp.numpy_out:
        return s.detach().cpu().numpy()
    return s


def schmidt_values(obj, part, *, output: int | None = None, normalize: bool = False, method: SpectraMethod = "auto"):
    """Schmidt values (singular values of the matricization) of ``obj`` across ``part``, descending.

    Parameters
    ----------
    obj : numpy.ndarray, torch.Tensor, tnml.TNModel or quimb.tensor.TensorNetwork
        A dense coefficient tensor, a model, or a network.
    part : iterable
        Side A of the split: axes (dense), input sites (TNModel) or outer index names (quimb network).
    output : int, optional
        For a TNModel with an output index: which output component's coefficient tensor to use (required then;
        the spectrum is defined per component). Must be None otherwise.
    normalize : bool
        Return ``s / ||s||_2`` (always finite, even where the raw values of a long chain over- or underflow).
    method : {"auto", "tree", "factor", "gram"}
        Network route (ignored for dense inputs); see the module docstring. ``"auto"``: the tree route for a split
        on one edge of a tree, else the factor route (accurate to ``eps``) when it fits in
        ``tnml.settings.max_dense_bytes``, else the Gram route (resolves values above ~``sqrt(eps)`` only).

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (k,)
        Descending. ``k`` depends on the route (the smaller side of the decomposed matrix); trailing values may be
        (numerically) zero, so count with :func:`cut_rank`.

    Raises
    ------
    ValueError
        Bad ``part`` (empty side, repeats, out of range), missing ``output``, unknown ``method``.
    tnml.MemoryLimitError
        The chosen route (for ``"auto"``: the Gram route, tried last) would allocate more than
        ``tnml.settings.max_dense_bytes``.

    Examples
    --------
    >>> ghz = np.zeros((2, 2, 2)); ghz[0, 0, 0] = ghz[1, 1, 1] = 1
    >>> schmidt_values(ghz, [0]).round(6)
    array([1., 1.])
    """
    return _finish_values(next(_spectra(obj, [part], output, method)), normalize)


def schmidt_spectra(
    obj, parts: Iterable, *, output: int | None = None, normalize: bool = False, method: SpectraMethod = "auto"
) -> list:
    """:func:`schmidt_values` for many parts of one object, sharing work (a tree network's QR messages are
    computed once for all cuts).

    Parameters
    ----------
    obj : numpy.ndarray, torch.Tensor, tnml.TNModel or quimb.tensor.TensorNetwork
        As in :func:`schmidt_values`.
    parts : iterable of iterables
        The sides A, one per split (each as ``part`` of :func:`schmidt_values`).
    output, normalize, method
        As in :func:`schmidt_values`.

    Returns
    -------
    list of numpy.ndarray or torch.Tensor
        One descending spectrum per part, each of shape ``(k,)``.

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> m = MPS(n_sites=6, phys_dim=2, bond_dim=3, dtype=torch.float64)
    >>> [len(s) for s in schmidt_spectra(m, [[0], [0, 1], [0, 1, 2]])]
    [2, 3, 3]
    """
    return [_finish_values(sp, normalize) for sp in _spectra(obj, parts, output, method)]


def _rank(s: torch.Tensor, rtol: float, tol: float | None) -> int:
    if tol is not None:
        if not tol >= 0:
            raise ValueError(f"tol={tol!r} must be a non-negative number (relative to the largest Schmidt value)")
        rtol = float(tol)
    return numerical_rank(s, rtol)


def _bounds(sp: Spectrum, tol: float | None) -> tuple[int, int]:
    """(low, high) rank: values above the threshold count; inside an unresolved band any value may be nonzero."""
    lo = _rank(sp.values, sp.rtol, tol)
    if sp.band is None or sp.values.numel() == 0:
        return lo, lo
    return lo, max(lo, sp.size_bound)


def cut_rank(
    obj, part, tol: float | None = None, *, output: int | None = None, method: SpectraMethod = "auto"
) -> int:
    """Numerical rank of the matricization across ``part`` (the separation rank of the function it defines).

    Parameters
    ----------
    obj, part, output, method
        As in :func:`schmidt_values`.
    tol : float, optional
        *Relative* threshold: count Schmidt values ``> tol * max``. Default: ``max(matrix dims) * eps`` for the
        dense, tree and factor routes, ``10 * sqrt(k * eps)`` for the Gram route (whose small values are resolved
        only to about ``sqrt(eps)``).

    Returns
    -------
    int
        With the default ``tol`` never silently below the truth: when the Gram route (taken by ``"auto"`` only
        when the factor route does not fit in memory) leaves values inside its unresolved band, the count of the
        resolved values is returned with a :class:`RankUncertaintyWarning` naming the band and the interval the
        rank lies in (see :func:`cut_rank_bounds`).

    Examples
    --------
    >>> w = np.zeros((2, 2, 2)); w[0, 0, 1] = w[0, 1, 0] = w[1, 0, 0] = 1
    >>> cut_rank(w, [0]), cut_rank(w, [0, 2])
    (2, 2)
    """
    tol = optional_tol(tol)
    sp = next(_spectra(obj, [part], output, method))
    lo, hi = _bounds(sp, tol)
    if tol is None and hi > lo:
        warnings.warn(
            f"cut_rank: the Gram route resolves Schmidt values only above {sp.band:.1e} x the largest; "
            f"{hi - lo} possible value(s) lie below it, so the rank is between {lo} and {hi} (returning {lo}); "
            "use method='factor' (raising tnml.settings.max_dense_bytes if needed) for an exact count",
            RankUncertaintyWarning,
            stacklevel=2,
        )
    return lo


def cut_rank_bounds(obj, part, tol: float | None = None, *, output: int | None = None,
                    method: SpectraMethod = "auto") -> tuple[int, int]:
    """The interval ``(low, high)`` in which the rank across ``part`` lies, given the route's resolution.

    ``low == high`` (= :func:`cut_rank`) on the dense, tree and factor routes. On the Gram route ``low`` counts
    the values above the threshold and ``high`` adds every value the route cannot tell from zero (up to the
    min-cut bound and the matrix's dimensions).

    Parameters
    ----------
    obj, part, tol, output, method
        As in :func:`cut_rank`.

    Returns
    -------
    (int, int)

    Examples
    --------
    >>> ghz = np.zeros((2, 2, 2)); ghz[0, 0, 0] = ghz[1, 1, 1] = 1
    >>> cut_rank_bounds(ghz, [0])
    (2, 2)
    """
    tol = optional_tol(tol)
    return _bounds(next(_spectra(obj, [part], output, method)), tol)


def _entropy(s: torch.Tensor, alpha: float, rtol: float) -> torch.Tensor:
    """Rényi-``alpha`` entropy of the (real, non-negative) Schmidt values ``s``; ``alpha = 0`` counts the values
    above ``rtol``."""
    if alpha == 0:  # ln cut_rank; 0 for a zero tensor (rank 0), like every other order
        return torch.log(torch.tensor(float(max(numerical_rank(s, rtol), 1)), dtype=s.dtype, device=s.device))
    if s.numel() and bool((s.detach() > 0).any()):  # values at or below the rank tolerance are round-off: a small
        s = torch.where(s.detach() > rtol * s.detach().max(), s, torch.zeros_like(s))  # order would count them
    return renyi_entropy(s * s, alpha)


def _check_alpha(alpha) -> float:
    return as_float("alpha", alpha, minimum=0.0, finite=False,
                    fix="1: von Neumann, 2: Renyi-2, inf: min-entropy")


def entanglement_entropy(obj, part, alpha: float = 1.0, *, output: int | None = None, method: SpectraMethod = "auto"):
    """Entanglement entropy across ``part`` (natural log).

    With ``p = s^2 / sum(s^2)`` over the Schmidt values ``s``: von Neumann ``-sum p ln p`` at ``alpha = 1``,
    Renyi ``ln(sum p^alpha) / (1 - alpha)`` otherwise (``alpha = inf``: ``-ln max p``; ``alpha = 0``:
    ``ln cut_rank``). It is at most ``ln cut_rank`` and at most the min-cut ``log_bound``.

    Parameters
    ----------
    obj, part, output, method
        As in :func:`schmidt_values`.
    alpha : float
        Renyi order, >= 0.

    Returns
    -------
    float (numpy/quimb inputs) or 0-dim torch.Tensor (torch/TNModel inputs, differentiable).

    References
    ----------
    Levine, Yakira, Cohen, Shashua. *Deep learning and quantum entanglement*. ICLR 2018.

    Examples
    --------
    >>> w = np.zeros((2, 2, 2)); w[0, 0, 1] = w[0, 1, 0] = w[1, 0, 0] = 1
    >>> round(entanglement_entropy(w, [0]), 5)
    0.63651
    """
    return entanglement_entropies(obj, [part], alpha, output=output, method=method)[0]


def entanglement_entropies(
    obj, parts: Iterable, alpha: float = 1.0, *, output: int | None = None, method: SpectraMethod = "auto"
) -> list:
    """:func:`entanglement_entropy` for many parts of one object, sharing work (see :func:`schmidt_spectra`).

    Parameters
    ----------
    obj : numpy.ndarray, torch.Tensor, tnml.TNModel or quimb.tensor.TensorNetwork
        As in :func:`schmidt_values`.
    parts : iterable of iterables
        The sides A, one per split.
    alpha : float, default 1.0
        1 for von Neumann, else Rényi-``alpha`` (natural log), as in :func:`entanglement_entropy`.
    output, method
        As in :func:`schmidt_values`.

    Returns
    -------
    list of float or torch.Tensor of shape ()
        One entropy per part, of the type :func:`entanglement_entropy` returns for ``obj``.
    """
    alpha = _check_alpha(alpha)
    out = []
    for sp in _spectra(obj, parts, output, method):
        e = _entropy(sp.values, alpha, sp.rtol)
        out.append(float(e.detach()) if sp.numpy_out else e)
    return out
