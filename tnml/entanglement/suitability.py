"""Suitability report (P5): will a locally connected network fit this data, and would rearranging features help?

A locally connected tensor network with inner width ``R`` can only represent tensors whose entanglement across
each canonical partition ``K`` is at most ``ln R`` (more generally, at most the network's min-cut bound across
``K``); P5's theorem says data is fit well iff the QE of its empirical data tensor is low on every canonical
partition. The report sets, per canonical partition, the data's QE (:func:`data_entanglement`) beside that
capacity, gives a verdict per partition and overall, and measures what :class:`FeatureRearrangement` would gain:
the QE (and the surrogate entanglement) of the rearranged data on the same partitions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from tnml.entanglement.data_entanglement import data_entanglement
from tnml.entanglement.mincut import mincut_bounds
from tnml.entanglement.partitions import canonical_partitions
from tnml.entanglement.surrogate import surrogate_entanglement

__all__ = ["SuitabilityRecord", "SuitabilityResult", "suitability"]

_GAIN = ("qe", "surrogate", None)


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
        ``qe <= capacity + tol``.
    se : float
        Surrogate entanglement across the block.
    qe_rearranged, se_rearranged : float or None
        The same after :class:`~tnml.preprocessing.FeatureRearrangement` (positions in the new order); QE only when
        ``gain="qe"``, both None when ``gain=None``.
    fits_rearranged : bool or None
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


@dataclass
class SuitabilityResult:
    """Result of :func:`suitability`.

    Attributes
    ----------
    records : list of SuitabilityRecord
        One per canonical partition, breadth first.
    verdict : str
        ``"fits"`` or ``"exceeds capacity at k partitions"``.
    n_exceeding : int
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
    """

    records: list[SuitabilityRecord]
    verdict: str
    n_exceeding: int
    capacity_source: str
    levels: dict[int, float]
    dims: int
    shape: tuple[int, int] | None
    theta: float
    verdict_rearranged: str | None = None
    n_exceeding_rearranged: int | None = None
    levels_rearranged: dict[int, float] = field(default_factory=dict)
    objective_before: float | None = None
    objective_after: float | None = None
    permutation: np.ndarray | None = None
    gain: float | None = None
    gain_kind: str | None = None

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
        }

    def to_markdown(self) -> str:
        """A summary paragraph, a per-level table and a per-partition table."""
        lines = [
            f"**Verdict: {self.verdict}** ({len(self.records)} canonical partitions, {self.dims}-D"
            + (f" {self.shape[0]}x{self.shape[1]}" if self.shape is not None else "")
            + f", capacity from {self.capacity_source}, θ = {self.theta:g})",
            "",
        ]
        if self.gain_kind == "qe":
            lines += [f"After feature rearrangement: **{self.verdict_rearranged}**; mean QE lowered by "
                      f"{self.gain:.4g} nats (surrogate objective {self.objective_before:.4g} → "
                      f"{self.objective_after:.4g}).", ""]
        elif self.gain_kind == "surrogate":
            lines += [f"Feature rearrangement lowers the surrogate objective Σ SE {self.objective_before:.4g} → "
                      f"{self.objective_after:.4g} ({100 * self.gain:.1f} %).", ""]
        after = self.gain_kind == "qe"
        head = "| level | mean QE |" + (" mean QE rearranged |" if after else "")
        lines += [head, "|---|---|" + ("---|" if after else "")]
        for lv, v in self.levels.items():
            lines.append(f"| {lv} | {v:.4f} |" + (f" {self.levels_rearranged.get(lv, math.nan):.4f} |" if after
                                                    else ""))
        lines += ["", "| level | sites | QE | capacity | verdict |" + (" QE rearranged | verdict rearranged |"
                                                                       if after else ""),
                  "|---|---|---|---|---|" + ("---|---|" if after else "")]
        for r in self.records:
            row = (f"| {r.level} | {_sites_text(r.sites)} | {r.qe:.4f} | {r.capacity:.4f} | "
                   f"{'fits' if r.fits else 'exceeds'} |")
            if after:
                row += f" {r.qe_rearranged:.4f} | {'fits' if r.fits_rearranged else 'exceeds'} |"
            lines.append(row)
        return "\n".join(lines) + "\n"


def _sites_text(sites) -> str:
    """``(0, 1, 2, 5, 7, 8)`` -> ``"0-2,5,7-8"``."""
    out, start, prev = [], None, None
    for s in list(sites) + [None]:
        if start is not None and (s is None or s != prev + 1):
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = None
        if s is not None and start is None:
            start = s
        prev = s
    return ",".join(out)


def _verdict(k: int) -> str:
    return "fits" if k == 0 else f"exceeds capacity at {k} partition{'s' if k != 1 else ''}"


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


def _capacities(model_or_width, parts, n: int) -> tuple[np.ndarray, str]:
    if isinstance(model_or_width, (int, np.integer)) and not isinstance(model_or_width, bool):
        if model_or_width < 1:
            raise ValueError(f"model_or_width={model_or_width} must be a width R >= 1 or a TNModel (e.g. a TTN)")
        r = int(model_or_width)
        return np.full(len(parts), math.log(r)), f"width R = {r}"
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
    return np.array([b.log_bound for b in bounds]), type(model_or_width).__name__


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
    batch_size: int = 500,
    n_batches: int | None = 2,
    seed: int | None = 0,
    random_state: int | None = 0,
    tol: float = 1e-9,
) -> SuitabilityResult:
    """Per canonical partition, the data's QE against the capacity of a locally connected network, a verdict, and
    the gain expected from feature rearrangement.

    Capacity across a block ``K``: ``ln R`` for a width ``R`` (every canonical block of a locally connected network
    of inner width ``R`` is cut off by one bond of size ``R``), or, for a model, its min-cut bound
    :func:`~tnml.entanglement.mincut_bound` across ``K`` (which also accounts for the physical legs and uneven
    bond widths). A block *fits* when ``QE(K) <= capacity(K) + tol``; the overall verdict is ``"fits"`` or
    ``"exceeds capacity at k partitions"``. P5's theorem makes this the criterion (up to the approximation error's
    terms): a network of width ``R`` can fit the data well only if ``QE(K) <= ln R`` on every canonical ``K``.

    Parameters
    ----------
    X : array-like (n_samples, n_features) or (n_samples, h, w)
        Numeric samples (a 3-D array is 2-D data).
    y : array-like (n_samples,)
        Labels, at least two classes (see :func:`data_entanglement`).
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
        Sample batching of :func:`data_entanglement`.
    random_state : int or None
        Seed of the rearrangement's partitioner.
    tol : float
        Slack of the verdict (round-off).

    Returns
    -------
    SuitabilityResult
        ``.records`` (one per partition), ``.verdict``, ``.to_markdown()``, ``.to_dicts()``, ``.summary()``.

    References
    ----------
    Alexander, Ben-David, Cohen, Razin, Levine. *What Makes Data Suitable for a Locally Connected Neural Network?
    A Necessary and Sufficient Condition Based on Quantum Entanglement.* NeurIPS 2023.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 8)); y = (X[:, 0] + X[:, 7] > 0).astype(int)
    >>> rep = suitability(X, y, 16, theta=0.5)
    >>> rep.verdict, len(rep.records)
    ('fits', 13)
    >>> suitability(X, y, 1, gain=None).verdict
    'exceeds capacity at 13 partitions'
    """
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {arr.dtype}; convert non-numeric columns first")
    arr, shape = _resolve_shape(arr.astype(np.float64), dims, shape)
    if gain not in _GAIN:
        raise ValueError(f"gain must be 'qe', 'surrogate' or None, got {gain!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"X holds non-finite values (first at sample {bad[0]}, feature {bad[1]}); impute or drop them first"
        )
    n = arr.shape[1]
    if n < 2:
        raise ValueError(f"X has {n} feature(s); a partition needs at least 2")
    parts = canonical_partitions(shape=shape) if shape is not None else canonical_partitions(n)
    capacity, source = _capacities(model_or_width, parts, n)
    data = _standardize(arr) if standardize else arr
    kw = dict(theta=theta, batch_size=batch_size, n_batches=n_batches, seed=seed, shape=shape)
    res = data_entanglement(data, y, parts, **kw)
    se = surrogate_entanglement(data, parts)
    fits = res.qe <= capacity + tol

    qe_after = se_after = fits_after = None
    extra: dict = {}
    if gain is not None:
        from tnml.preprocessing.rearrangement import FeatureRearrangement

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
        )
        for k, p in enumerate(parts)
    ]
    k_bad = int((~fits).sum())
    return SuitabilityResult(
        records=records, verdict=_verdict(k_bad), n_exceeding=k_bad, capacity_source=source, levels=res.levels,
        dims=dims, shape=shape, theta=float(theta), **extra,
    )
