"""Suitability report (P5): will a locally connected network fit this data, and would rearranging features help?

A workflow over three layers: the QE of the data (:func:`~tnml.entanglement.data_entanglement`), the capacity of
the network (its min-cut bounds, :func:`~tnml.entanglement.mincut_bounds`) and feature rearrangement
(:class:`~tnml.preprocessing.FeatureRearrangement`), so it lives above both the analysis and the preprocessing
layer. The two sides of P5's theorem it applies (:func:`~tnml.entanglement.suitability.necessary_qe_max`,
:func:`~tnml.entanglement.suitability.sufficient_error_bound`) and its result types stay with the analysis, in
:mod:`tnml.entanglement.suitability`, which also keeps :func:`suitability` under its old name.
"""

from __future__ import annotations

import math

import numpy as np

from tnml.entanglement.data_entanglement import data_entanglement
from tnml.entanglement.mincut import mincut_bounds
from tnml.entanglement.partitions import canonical_partitions
from tnml.entanglement.suitability import (
    SuitabilityRecord,
    SuitabilityResult,
    necessary_qe_max,
    sufficient_error_bound,
)
from tnml.entanglement.surrogate import surrogate_entanglement
from tnml.preprocessing.rearrangement import FeatureRearrangement
from tnml.validation import check_dense_bytes

__all__ = ["suitability"]

_GAIN = ("qe", "surrogate", None)


def _verdict(k: int) -> str:
    return "within capacity" if k == 0 else f"exceeds capacity at {k} partition{'s' if k != 1 else ''}"


def _tree_blocks(tree) -> set[frozenset]:
    """Leaf sets of every node of a mode tree (nested tuples of site ids)."""
    out: set[frozenset] = set()

    def walk(node) -> frozenset:
        leaves = frozenset([int(node)]) if not isinstance(node, tuple) else frozenset().union(*map(walk, node))
        out.add(leaves)
        return leaves

    walk(tree)
    return out


def _fit_verdict(kind: str, eps: float) -> str:
    return f"{kind} to ε = {eps:g}" if kind != "undetermined" else f"undetermined at ε = {eps:g}"


def _resolve_shape(arr: np.ndarray, dims, shape) -> tuple[np.ndarray, tuple[int, int] | None]:
    if isinstance(dims, bool) or dims not in (1, 2):
        raise ValueError(f"dims must be 1 (sequence) or 2 (grid), got {dims!r}")
    if arr.ndim == 3:
        if dims != 2:
            raise ValueError(f"X has shape {arr.shape} (2-D data) but dims={dims}; pass dims=2 or flatten X")
        if shape is not None and tuple(shape) != arr.shape[1:]:
            raise ValueError(f"shape={tuple(shape)} disagrees with X of shape {arr.shape}; drop shape or reshape X")
        return arr.reshape(arr.shape[0], -1), (int(arr.shape[1]), int(arr.shape[2]))
    if arr.ndim != 2:
        raise ValueError(f"X must be (n_samples, n_features) or (n_samples, h, w), got shape {arr.shape}")
    n = arr.shape[1]
    if dims == 1:
        if shape is not None:
            raise ValueError(f"shape={tuple(shape)} is for 2-D data; pass dims=2 with it or drop it")
        return arr, None
    if shape is None:
        r = math.isqrt(n)
        if r * r != n:
            raise ValueError(f"dims=2 needs the grid shape: X has {n} features, not a square; pass shape=(h, w)")
        return arr, (r, r)
    if len(tuple(shape)) != 2:
        raise ValueError(f"shape must be (h, w), got {shape!r}")
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1 or h * w != n:
        raise ValueError(f"shape=({h}, {w}) must have h * w = n_features = {n}")
    return arr, (h, w)


def _capacities(model_or_width, parts, n: int) -> tuple[np.ndarray, str, bool]:
    if isinstance(model_or_width, (int, np.integer)) and not isinstance(model_or_width, bool):
        if model_or_width < 1:
            raise ValueError(f"model_or_width={model_or_width} must be a width R >= 1 or a TNModel (e.g. a TTN)")
        r = int(model_or_width)
        return np.full(len(parts), math.log(r)), f"width R = {r}", True
    from tnml.model import TNModel
    from tnml.structure import TNStructure

    structure = model_or_width.structure if isinstance(model_or_width, TNModel) else model_or_width
    if not isinstance(structure, TNStructure):
        raise TypeError(
            f"model_or_width must be an int width R >= 1 or a tnml.TNModel (e.g. TTN), got "
            f"{type(model_or_width).__name__}"
        )
    if structure.n_sites != n:
        raise ValueError(
            f"the model has {structure.n_sites} input sites but X has {n} features; build it with n_sites={n}"
        )
    bounds = mincut_bounds(model_or_width, parts)
    tree = getattr(model_or_width, "tree", None)
    # the hierarchical SVD is a network of the canonical tree: sufficiency needs the model to be that tree
    is_tree = tree is not None and {frozenset(p.sites) for p in parts} <= _tree_blocks(tree)
    return np.array([b.log_bound for b in bounds]), type(model_or_width).__name__, bool(is_tree)


def _check_sizes(m: int, n: int, gain: str | None) -> None:
    """Refuse, before any work, data whose N x N feature statistics (surrogate entanglement, rearrangement)
    would exceed ``tnml.settings.max_dense_bytes`` (the same estimate as :func:`surrogate_entanglement`'s)."""
    check_dense_bytes(
        8 * (3 * n * n + 2 * m * n),
        f"the suitability report's {n}x{n} feature correlations (surrogate entanglement"
        + (", rearrangement)" if gain is not None else ")"),
        "use fewer features (e.g. select or pool them first)",
    )


def _standardize(arr: np.ndarray) -> np.ndarray:
    std = arr.std(axis=0)
    return (arr - arr.mean(axis=0)) / np.where(std > 0, std, 1.0)


def suitability(
    X,
    y,
    model_or_width,
    dims: int = 1,
    shape: tuple[int, int] | None = None,
    *,
    theta: float = 0.085,
    standardize: bool = True,
    gain: str | None = "qe",
    batch_size: int | None = None,
    n_batches: int | None = 2,
    seed: int | None = 0,
    random_state: int | None = 0,
    tol: float = 1e-9,
    eps: float = 0.1,
    method: str = "auto",
    sketch_size: int | None = None,
) -> SuitabilityResult:
    """Per canonical partition, the data's QE against the capacity of a locally connected network, a verdict, and
    the gain expected from feature rearrangement.

    Capacity across a block ``K``: ``ln R`` for a width ``R`` (every canonical block of a locally connected network
    of inner width ``R`` is cut off by one bond of size ``R``), or, for a model, its min-cut bound
    :func:`~tnml.entanglement.mincut_bound` across ``K`` (which also accounts for the physical legs and uneven
    bond widths). A block is *within capacity* when ``QE(K) <= capacity(K) + tol``; the verdict is
    ``"within capacity"`` or ``"exceeds capacity at k partitions"``. That is the necessary side at ``ε = 0`` only;
    the two-sided verdict at relative error ``eps`` (``fit_verdict``: cannot fit / fits / undetermined) uses the
    bounds of the module docstring: :func:`necessary_qe_max` per block, :func:`sufficient_error_bound` over all
    blocks (the latter only for a width or a model whose tree has the canonical blocks, e.g. a 1-D ``TTN`` of
    ``2^L`` sites).

    Parameters
    ----------
    X : array-like (n_samples, n_features) or (n_samples, h, w)
        Numeric samples (a 3-D array is 2-D data).
    y : array-like (n_samples,) or None
        Labels, at least two classes (see :func:`data_entanglement`); None: unlabeled data (every sign +1).
    model_or_width : int or TNModel
        Width ``R >= 1`` of the network, or a network over ``n_features`` sites (e.g. ``TTN(n_sites=N,
        bond_dim=R)``) whose min-cut bounds give the capacity per partition.
    dims : {1, 2}
        1: canonical partitions of a sequence (binary tree); 2: of an ``(h, w)`` grid (quad-tree).
    shape : tuple (h, w), optional
        Grid of 2-D data given flat (default: ``X``'s own for 3-D input, else a square).
    theta : float
        Trig map parameter of the data tensor (P5: 0.085).
    standardize : bool
        Z-score each feature first (default; constant features become 0) so that ``πθx`` has a comparable range
        for every feature, as P5 does.
    gain : {"qe", "surrogate", None}
        How to measure what rearrangement would bring: "qe" fits :class:`FeatureRearrangement` and recomputes the
        QE of the rearranged data on the same partitions (with the same sample batches); "surrogate" only compares
        the surrogate objective ``Σ_K SE(K)`` (cheap); None skips it.
    batch_size, n_batches, seed
        Sample batching of :func:`data_entanglement` (``method="batches"``: 500 and 2 by default; the sketch
        streams all rows in batches of ``batch_size``).
    method : {"auto", "exact", "sketch", "batches"}
        QE route of :func:`data_entanglement`: ``"auto"`` (default) is exact on all samples up to
        :data:`~tnml.entanglement.data_entanglement.AUTO_EXACT_MAX_SAMPLES` and a streaming sketch beyond;
        ``"batches"`` is P5's average over sample batches. The report records the route and, for the sketch, its
        largest residual.
    sketch_size : int, optional
        Landmarks of the sketch route.
    random_state : int or None
        Seed of the rearrangement's partitioner.
    tol : float
        Slack of the verdict (round-off).
    eps : float
        Relative error ``‖W − A‖ / ‖A‖`` of the two-sided verdict (``0 < eps < 1``).

    Returns
    -------
    SuitabilityResult
        ``.records`` (one per partition), ``.verdict``, ``.to_markdown()``, ``.to_dicts()``, ``.summary()``.

    References
    ----------
    Alexander, De La Vega, Razin, Cohen. *What Makes Data Suitable for a Locally Connected Neural Network?
    A Necessary and Sufficient Condition Based on Quantum Entanglement.* NeurIPS 2023.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 8)); y = (X[:, 0] + X[:, 7] > 0).astype(int)
    >>> rep = suitability(X, y, 16, theta=0.5)
    >>> rep.verdict, len(rep.records)
    ('within capacity', 13)
    >>> suitability(X, y, 1, gain=None, eps=0.01).fit_verdict
    'cannot fit to ε = 0.01'
    >>> suitability(X, y, 16, gain=None).fit_verdict  # 16 >= 2^4: exact on every block
    'fits to ε = 0.1'
    """
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {arr.dtype}; convert non-numeric columns first")
    arr, shape = _resolve_shape(arr.astype(np.float64), dims, shape)
    if gain not in _GAIN:
        raise ValueError(f"gain must be 'qe', 'surrogate' or None, got {gain!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ValueError(f"eps must be a relative error in (0, 1), got {eps!r}; e.g. eps=0.1")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"X holds non-finite values (first at sample {bad[0]}, feature {bad[1]}); impute or drop them first"
        )
    n = arr.shape[1]
    if n < 2:
        raise ValueError(f"X has {n} feature(s); a partition needs at least 2")
    _check_sizes(arr.shape[0], n, gain)
    parts = canonical_partitions(shape=shape) if shape is not None else canonical_partitions(n)
    capacity, source, is_tree = _capacities(model_or_width, parts, n)
    data = _standardize(arr) if standardize else arr
    kw = dict(theta=theta, batch_size=batch_size, n_batches=n_batches, seed=seed, shape=shape, method=method,
              sketch_size=sketch_size)
    res = data_entanglement(data, y, parts, **kw)
    kw["method"] = res.method  # the rearranged data takes the same route
    se = surrogate_entanglement(data, parts)
    fits = res.qe <= capacity + tol
    n_rows = min(500 if batch_size is None else batch_size, arr.shape[0]) if res.method == "batches" \
        else arr.shape[0]
    dim = [min(2 ** min(len(p.sites), 62), 2 ** min(n - len(p.sites), 62), n_rows) for p in parts]
    nec = np.array([necessary_qe_max(c, eps, d) for c, d in zip(capacity, dim)])
    cannot = res.qe > nec + tol
    rank_k = np.floor(np.exp(capacity) + 1e-9)
    suff = np.where(rank_k >= np.array(dim), np.inf, eps**2 * np.log(rank_k + 1.0) / len(parts)) if is_tree \
        else np.full(len(parts), math.nan)
    bound = sufficient_error_bound(res.qe, rank_k, dim) if is_tree else math.nan
    kind = "cannot fit" if cannot.any() else ("fits" if bound <= eps else "undetermined")

    qe_after = se_after = fits_after = None
    extra: dict = {}
    if gain is not None:
        fr = FeatureRearrangement(dims=dims, shape=shape, random_state=random_state).fit(data)
        moved = fr.transform(data)
        se_after = surrogate_entanglement(moved, parts)
        extra.update(permutation=fr.permutation_, objective_before=float(fr.objective_before_),
                     objective_after=float(fr.objective_after_), gain_kind=gain)
        if gain == "qe":
            res_after = data_entanglement(moved, y, parts, **kw)
            qe_after = res_after.qe
            fits_after = qe_after <= capacity + tol
            k_after = int((~fits_after).sum())
            extra.update(levels_rearranged=res_after.levels, verdict_rearranged=_verdict(k_after),
                         n_exceeding_rearranged=k_after, gain=float(np.mean(res.qe) - np.mean(qe_after)))
        else:
            before = float(fr.objective_before_)
            extra["gain"] = 1.0 - float(fr.objective_after_) / before if before > 0 else 0.0

    records = [
        SuitabilityRecord(
            level=int(p.level), sites=tuple(p.sites), qe=float(res.qe[k]), capacity=float(capacity[k]),
            fits=bool(fits[k]), se=float(se[k]),
            qe_rearranged=None if qe_after is None else float(qe_after[k]),
            se_rearranged=None if se_after is None else float(se_after[k]),
            fits_rearranged=None if fits_after is None else bool(fits_after[k]),
            qe_necessary_max=float(nec[k]), qe_sufficient_max=float(suff[k]), cannot_fit=bool(cannot[k]),
        )
        for k, p in enumerate(parts)
    ]
    k_bad = int((~fits).sum())
    return SuitabilityResult(
        records=records, verdict=_verdict(k_bad), n_exceeding=k_bad, capacity_source=source, levels=res.levels,
        dims=dims, shape=shape, theta=float(theta), eps=float(eps), fit_verdict=_fit_verdict(kind, eps),
        error_bound=bound, n_cannot_fit=int(cannot.sum()), qe_method=res.method, qe_sketch_size=res.sketch_size,
        qe_residual_max=None if res.residual is None else float(np.max(res.residual)), n_samples=int(arr.shape[0]),
        **extra,
    )
