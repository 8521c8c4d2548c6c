"""Suitability report (P5): will a locally connected network fit this data, and would rearranging features help?

A workflow over three layers: the QE of the data (:func:`~tnml.entanglement.data_entanglement`), the capacity of
the network (its min-cut bounds, :func:`~tnml.entanglement.mincut_bounds`) and feature rearrangement
(:class:`~tnml.preprocessing.FeatureRearrangement`), so it lives above both the analysis and the preprocessing
layer. The two sides of P5's theorem it applies (:func:`~tnml.entanglement.necessary_qe_max`,
:func:`~tnml.entanglement.sufficient_error_bound`) are statements about a tensor and stay with the analysis, in
:mod:`tnml.entanglement.fit_bounds`; the report's records (:class:`SuitabilityRecord`, :class:`SuitabilityResult`)
live here with it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np

from tnml.entanglement.data_entanglement import data_entanglement
from tnml.entanglement.fit_bounds import necessary_qe_max, sufficient_error_bound
from tnml.entanglement.mincut import mincut_bounds
from tnml.entanglement.partitions import Partition, canonical_partitions
from tnml.entanglement.surrogate import surrogate_entanglement
from tnml.network_form import as_network
from tnml.options import QEMethod, SuitabilityGain
from tnml.preprocessing.rearrangement import FeatureRearrangement
from tnml.validation import check_dense_bytes, check_option

__all__ = ["SuitabilityRecord", "SuitabilityResult", "suitability"]



@dataclass
class SuitabilityRecord:
    """One canonical partition of the report.

    Attributes
    ----------
    level : int
        Tree level of the block (1 = a child of the root).
    sites : tuple of int
        The features of the block (positions in the given order).
    qe : float
        QE of the data tensor across the block (natural log).
    capacity : float
        ``ln R`` (width given) or the min-cut bound ``log_bound`` of the model across the block.
    fits : bool
        ``qe <= capacity + tol``: within capacity (the necessary condition at ``ε = 0``; not a fit by itself).
    se : float
        Surrogate entanglement across the block.
    qe_rearranged, se_rearranged : float or None
        The same after :class:`~tnml.preprocessing.FeatureRearrangement` (positions in the new order); QE only when
        ``gain="qe"``, both None when ``gain=None``.
    fits_rearranged : bool or None
    qe_necessary_max : float
        :func:`necessary_qe_max` at the report's ``eps``: a larger QE proves no network of this capacity fits to
        ``eps``.
    qe_sufficient_max : float
        ``eps² ln(R_K + 1) / n_partitions``: QE at most this on *every* block guarantees a fit to ``eps`` (NaN when
        the model is not a tree over the canonical blocks).
    cannot_fit : bool
        ``qe > qe_necessary_max + tol``.
    """

    level: int
    sites: tuple[int, ...]
    qe: float
    capacity: float
    fits: bool
    se: float
    qe_rearranged: float | None = None
    se_rearranged: float | None = None
    fits_rearranged: bool | None = None
    qe_necessary_max: float = math.nan
    qe_sufficient_max: float = math.nan
    cannot_fit: bool = False


@dataclass
class SuitabilityResult:
    """Result of :func:`suitability`.

    Attributes
    ----------
    records : list of SuitabilityRecord
        One per canonical partition, breadth first.
    verdict : str
        ``"within capacity"`` or ``"exceeds capacity at k partitions"`` (QE against ``ln R_K``: the necessary
        condition at ``ε = 0``).
    eps : float
        Relative error of the two-sided verdict.
    fit_verdict : str
        ``"cannot fit to ε = …"`` (a block breaks :func:`necessary_qe_max`), ``"fits to ε = …"``
        (:func:`sufficient_error_bound` ``<= ε``) or ``"undetermined at ε = …"``.
    error_bound : float
        :func:`sufficient_error_bound`: the truncated hierarchical SVD's relative error is at most this (NaN when
        the model is not a tree over the canonical blocks).
    n_cannot_fit : int
    n_exceeding : int
        Partitions whose QE exceeds the capacity.
    n_exceeding_rearranged : int or None
        The same after rearrangement (``gain="qe"`` only).
    verdict_rearranged : str or None
        The verdict for the rearranged order (``gain="qe"`` only).
    capacity_source : str
        ``"width R"`` or the model's class name.
    levels, levels_rearranged : dict int -> float
        Mean QE per level before / after rearrangement (``levels_rearranged`` empty unless ``gain="qe"``).
    objective_before, objective_after : float or None
        ``Σ_K SE(K)`` over the canonical partitions in the given order / the rearranged one.
    permutation : ndarray or None
        The learned order (position ``p`` holds feature ``permutation[p]``).
    gain : float or None
        Mean QE over partitions before minus after (``gain="qe"``), or the relative drop of the surrogate objective
        ``1 - objective_after / objective_before`` (``gain="surrogate"``); positive means rearranging helps.
    gain_kind : str or None
        ``"qe"``, ``"surrogate"`` or None.
    dims : int
    shape : tuple (h, w) or None
    theta : float
    qe_method : str
        The route of :func:`~tnml.entanglement.data_entanglement` that gave the QE: ``"batches"`` (P5's batch
        average), ``"exact"`` (all samples) or ``"sketch"`` (all samples, Nyström sketch).
    qe_sketch_size : int or None
        Landmarks of the sketch route.
    qe_residual_max : float or None
        Sketch route: the largest Nyström residual over the partitions (0 = exact; the error indicator).
    qe_error_estimate_max : float or None
        Sketch route: the largest error estimate over the partitions (nats; see
        :attr:`~tnml.entanglement.data_entanglement.DataEntanglementResult.error_estimate`, an empirical estimate,
        not a bound). None for the other routes.
    n_samples : int
        Samples the QE was computed from.
    """

    records: list[SuitabilityRecord]
    verdict: str
    n_exceeding: int
    capacity_source: str
    levels: dict[int, float]
    dims: int
    shape: tuple[int, int] | None
    theta: float
    eps: float = 0.1
    fit_verdict: str = ""
    error_bound: float = math.nan
    n_cannot_fit: int = 0
    verdict_rearranged: str | None = None
    n_exceeding_rearranged: int | None = None
    levels_rearranged: dict[int, float] = field(default_factory=dict)
    objective_before: float | None = None
    objective_after: float | None = None
    permutation: np.ndarray | None = None
    gain: float | None = None
    gain_kind: str | None = None
    qe_method: str = "batches"
    qe_sketch_size: int | None = None
    qe_residual_max: float | None = None
    qe_error_estimate_max: float | None = None
    n_samples: int = 0

    @property
    def fits(self) -> bool:
        """True when the data's QE is within capacity on every canonical partition."""
        return self.n_exceeding == 0

    def to_dicts(self) -> list[dict]:
        """The records as plain dicts (JSON-ready: lists, floats, bools)."""
        out = []
        for r in self.records:
            d = asdict(r)
            d["sites"] = list(r.sites)
            out.append(d)
        return out

    def summary(self) -> dict:
        """Everything but the records, JSON-ready."""
        return {
            "verdict": self.verdict,
            "fits": self.fits,
            "eps": self.eps,
            "fit_verdict": self.fit_verdict,
            "error_bound": self.error_bound,
            "n_cannot_fit": self.n_cannot_fit,
            "n_exceeding": self.n_exceeding,
            "n_partitions": len(self.records),
            "capacity_source": self.capacity_source,
            "dims": self.dims,
            "shape": list(self.shape) if self.shape is not None else None,
            "theta": self.theta,
            "levels": {str(k): v for k, v in self.levels.items()},
            "levels_rearranged": {str(k): v for k, v in self.levels_rearranged.items()},
            "verdict_rearranged": self.verdict_rearranged,
            "n_exceeding_rearranged": self.n_exceeding_rearranged,
            "objective_before": self.objective_before,
            "objective_after": self.objective_after,
            "permutation": self.permutation.tolist() if self.permutation is not None else None,
            "gain": self.gain,
            "gain_kind": self.gain_kind,
            "qe_method": self.qe_method,
            "qe_sketch_size": self.qe_sketch_size,
            "qe_residual_max": self.qe_residual_max,
            "qe_error_estimate_max": self.qe_error_estimate_max,
            "n_samples": self.n_samples,
        }

    def to_markdown(self) -> str:
        """A summary paragraph, a per-level table and a per-partition table."""
        lines = [
            f"**Verdict: {self.verdict}** ({len(self.records)} canonical partitions, {self.dims}-D"
            + (f" {self.shape[0]}x{self.shape[1]}" if self.shape is not None else "")
            + f", capacity from {self.capacity_source}, θ = {self.theta:g})",
            "",
            f"**At relative error ε = {self.eps:g}: {self.fit_verdict}** (blocks breaking the necessary bound: "
            f"{self.n_cannot_fit}; sufficient bound on the truncated hierarchical SVD's error: "
            f"{self.error_bound:.4g}).",
            "",
            f"QE route: {_route_text(self)}.",
            "",
        ]
        if self.gain_kind == "qe":
            lines += [f"After feature rearrangement: **{self.verdict_rearranged}**; mean QE lowered by "
                      f"{self.gain:.4g} nats (surrogate objective {self.objective_before:.4g} → "
                      f"{self.objective_after:.4g}).", ""]
        elif self.gain_kind == "surrogate" and self.gain is not None:
            lines += [f"Feature rearrangement lowers the surrogate objective Σ SE {self.objective_before:.4g} → "
                      f"{self.objective_after:.4g} ({100 * self.gain:.1f} %).", ""]
        after = self.gain_kind == "qe"
        head = "| level | mean QE |" + (" mean QE rearranged |" if after else "")
        lines += [head, "|---|---|" + ("---|" if after else "")]
        for lv, v in self.levels.items():
            lines.append(f"| {lv} | {v:.4f} |" + (f" {self.levels_rearranged.get(lv, math.nan):.4f} |" if after
                                                    else ""))
        lines += ["", "| level | sites | QE | capacity | verdict | necessary max | sufficient max |"
                  + (" QE rearranged | verdict rearranged |" if after else ""),
                  "|---|---|---|---|---|---|---|" + ("---|---|" if after else "")]
        for r in self.records:
            row = (f"| {r.level} | {Partition(r.sites).compact()} | {r.qe:.4f} | {r.capacity:.4f} | "
                   f"{'within' if r.fits else 'exceeds'} | {r.qe_necessary_max:.4f} | {r.qe_sufficient_max:.4g} |")
            if after:
                row += f" {r.qe_rearranged:.4f} | {'within' if r.fits_rearranged else 'exceeds'} |"
            lines.append(row)
        return "\n".join(lines) + "\n"


def _route_text(res: SuitabilityResult) -> str:
    if res.qe_method == "sketch":
        estimate = "" if res.qe_error_estimate_max is None else (
            f"; error estimate up to {res.qe_error_estimate_max:.3g} nats per partition")
        return (f"streaming Nyström sketch of all {res.n_samples} samples with {res.qe_sketch_size} landmarks "
                f"(largest residual {res.qe_residual_max:.3g}; 0 = exact{estimate})")
    if res.qe_method == "exact":
        return f"exact, all {res.n_samples} samples"
    return f"average over sample batches (P5's estimator; {res.n_samples} samples)"


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
    check_option("dims", dims, (1, 2), fix="1 for a sequence, 2 for a grid")
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
    form = as_network(
        model_or_width, accept=("model", "structure"), values=False, name="model_or_width", also=("int width R >= 1",)
    )
    structure = form.structure
    if structure.n_sites != n:
        raise ValueError(
            f"the model has {structure.n_sites} input sites but X has {n} features; build it with n_sites={n}"
        )
    bounds = mincut_bounds(form, parts)
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
    gain: SuitabilityGain | None = "qe",
    batch_size: int | None = None,
    n_batches: int | None = 2,
    seed: int | None = 0,
    random_state: int | None = 0,
    tol: float = 1e-9,
    eps: float = 0.1,
    method: QEMethod = "auto",
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
    check_option("gain", gain, SuitabilityGain | None, fix="None skips the rearrangement")
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
    kw: dict[str, Any] = dict(theta=theta, batch_size=batch_size, n_batches=n_batches, seed=seed, shape=shape,
                              method=method, sketch_size=sketch_size)
    res = data_entanglement(data, y, parts, **kw)
    kw["method"] = res.method  # the rearranged data takes the same route
    se = surrogate_entanglement(data, parts)
    fits = res.qe <= capacity + tol
    n_rows = res.tensor_samples  # samples per data tensor: a rank bound on every partition's matricization
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
            level=int(cast(int, p.level)), sites=tuple(p.sites), qe=float(res.qe[k]), capacity=float(capacity[k]),
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
        qe_residual_max=None if res.residual is None else float(np.max(res.residual)),
        qe_error_estimate_max=None if res.error_estimate is None else float(np.max(res.error_estimate)),
        n_samples=int(arr.shape[0]),
        **extra,
    )
