"""Suitability report (P5): will a locally connected network fit this data, and would rearranging features help?

A locally connected tensor network with inner width ``R`` can only represent tensors whose entanglement across
each canonical partition ``K`` is at most ``ln R`` (more generally, at most the network's min-cut bound across
``K``); P5's theorem says data is fit well iff the QE of its empirical data tensor is low on every canonical
partition. The report sets, per canonical partition, the data's QE (:func:`data_entanglement`) beside that
capacity, gives a verdict per partition and overall, and measures what :class:`FeatureRearrangement` would gain:
the QE (and the surrogate entanglement) of the rearranged data on the same partitions.

**The two sides of the theorem, as implemented** (P5's constants are stated up to unspecified factors;
these are the versions proved below and tested as inequalities on exact small cases in
``tests/test_suitability.py``). Let ``A`` be the data tensor,
``ε`` a *relative* error ``‖W − A‖ / ‖A‖`` (Frobenius), ``R_K`` the rank a network allows across a
canonical block ``K`` (``R`` for a width-``R`` locally connected network), ``r_K = rank [[A]]_K`` and
``h(t) = −t ln t − (1 − t) ln(1 − t)``.

* *Necessary* (:func:`necessary_qe_max`): if some ``W`` with ``rank [[W]]_K <= R_K`` has relative error ``<= ε``,
  then ``QE(A; K) <= ln R_K + t ln(r_K − 1) + h(t)`` with ``t = min(ε, 1 − 1/r_K)``. Proof: the reduced states of
  the unit vectors ``A/‖A‖`` and ``W/‖W‖`` (after projecting ``W``'s ``K`` side onto the ``r_K``-dimensional
  support of ``A``'s, which lowers neither error nor rank) are within trace distance ``sin∠(A, W) <= ε``; the
  Fannes–Audenaert inequality in dimension ``r_K`` and ``QE(W) <= ln R_K`` finish it. A block above this bound
  proves that **no** such network fits to ``ε``.
* *Sufficient* (:func:`sufficient_error_bound`): the truncated hierarchical SVD (Grasedyck 2010), a network of
  the canonical tree with ranks ``R_K``, has ``‖A − W‖² <= Σ_K Σ_{i > R_K} σ_i(K)²`` and, since sorted
  probabilities have ``p_i <= 1/i``, ``Σ_{i > R} p_i <= QE / ln(R + 1)``; so relative error
  ``<= sqrt(Σ_K QE(A; K) / ln(R_K + 1))``. In particular ``QE(A; K) <= ε² ln(R + 1) / n_K`` on all ``n_K`` canonical
  blocks (``n_K = 2N − 3`` in 1-D) implies a fit to ``ε``: P5's form ``ε² ln R / ((2N − 3)‖A‖²)`` with absolute
  ``ε`` follows from it (``ln R < ln(R + 1)``).

Verdicts at ``ε`` (:attr:`SuitabilityResult.fit_verdict`): *cannot fit* when some block breaks the necessary
bound, *fits* when the sufficient bound is ``<= ε``, else *undetermined*; never "fits" from the necessary side
alone. Both are exact statements about the tensor whose QE is given; the report's QE is an estimate from sample
batches (averaged over batches and, for more than two classes, one-vs-rest labelings), ``r_K`` is bounded by
``min(2^|K|, 2^|K^c|, batch size)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from importlib import import_module
from typing import Any

import numpy as np

__all__ = [
    "SuitabilityRecord",
    "SuitabilityResult",
    "necessary_qe_max",
    "sufficient_error_bound",
    "suitability",
    "truncated_hsvd",
]


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
        elif self.gain_kind == "surrogate":
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
            row = (f"| {r.level} | {_sites_text(r.sites)} | {r.qe:.4f} | {r.capacity:.4f} | "
                   f"{'within' if r.fits else 'exceeds'} | {r.qe_necessary_max:.4f} | {r.qe_sufficient_max:.4g} |")
            if after:
                row += f" {r.qe_rearranged:.4f} | {'within' if r.fits_rearranged else 'exceeds'} |"
            lines.append(row)
        return "\n".join(lines) + "\n"


def _route_text(res: SuitabilityResult) -> str:
    if res.qe_method == "sketch":
        return (f"streaming Nyström sketch of all {res.n_samples} samples with {res.qe_sketch_size} landmarks "
                f"(largest residual {res.qe_residual_max:.3g}; 0 = exact)")
    if res.qe_method == "exact":
        return f"exact, all {res.n_samples} samples"
    return f"average over sample batches (P5's estimator; {res.n_samples} samples)"


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


def _binary_entropy(t: float) -> float:
    return 0.0 if t <= 0.0 or t >= 1.0 else float(-t * math.log(t) - (1.0 - t) * math.log1p(-t))


def necessary_qe_max(log_rank: float, eps: float, dim: int) -> float:
    """Largest QE across a block that a tensor can have if a tensor of rank ``<= exp(log_rank)`` across that block
    is within relative error ``eps`` of it (Fannes–Audenaert; see the module docstring).

    ``log_rank + t ln(dim − 1) + h(t)`` with ``t = min(eps, 1 − 1/dim)`` and ``h`` the binary entropy (natural
    log), capped at ``ln dim``.

    Parameters
    ----------
    log_rank : float
        ``ln R_K`` (``>= 0``).
    eps : float
        Relative Frobenius error ``‖W − A‖ / ‖A‖`` (``>= 0``).
    dim : int
        An upper bound on ``rank [[A]]_K`` (e.g. ``min(2^|K|, 2^|K^c|, n_samples)``).

    Returns
    -------
    float

    Examples
    --------
    >>> round(necessary_qe_max(math.log(2), 0.0, 16), 6) == round(math.log(2), 6)
    True
    >>> round(necessary_qe_max(math.log(2), 0.1, 16), 4)
    1.289
    """
    if not (log_rank >= 0 and eps >= 0):
        raise ValueError(f"log_rank and eps must be >= 0, got {log_rank!r}, {eps!r}")
    d = int(dim)
    if d < 1:
        raise ValueError(f"dim must be >= 1, got {dim!r}")
    if d == 1:
        return float(log_rank)
    t = min(float(eps), 1.0 - 1.0 / d)
    return float(min(log_rank + t * math.log(d - 1) + _binary_entropy(t), max(log_rank, math.log(d))))


def sufficient_error_bound(qe, ranks, dims=None) -> float:
    """Upper bound on the relative error of the truncated hierarchical SVD with ranks ``R_K`` (hence on the best
    network of the canonical tree with those ranks): ``sqrt(Σ_K QE_K / ln(R_K + 1))`` (module docstring), where a
    block with ``R_K >= dims_K >= rank [[A]]_K`` contributes nothing (nothing is truncated there).

    Parameters
    ----------
    qe : array-like (n_partitions,)
        QE across every canonical block (all of them: the bound sums over the tree).
    ranks : int or array-like (n_partitions,)
        ``R_K`` per block (``>= 1``), or one width ``R``.
    dims : array-like (n_partitions,), optional
        Upper bounds on ``rank [[A]]_K`` (e.g. ``min(2^|K|, 2^|K^c|, n_samples)``).

    Returns
    -------
    float

    Examples
    --------
    >>> round(sufficient_error_bound([0.01, 0.02, 0.0], 2), 4)
    0.1652
    >>> sufficient_error_bound([0.01, 0.02, 0.0], 2, dims=[2, 2, 2])
    0.0
    """
    q = np.clip(np.asarray(qe, dtype=np.float64), 0.0, None)
    r = np.broadcast_to(np.asarray(ranks, dtype=np.float64), q.shape)
    if (r < 1).any():
        raise ValueError(f"ranks must be >= 1, got {np.asarray(ranks).tolist()}")
    if dims is not None:
        q = np.where(r >= np.broadcast_to(np.asarray(dims, dtype=np.float64), q.shape), 0.0, q)
    return float(math.sqrt(float(np.sum(q / np.log(r + 1.0)))))


def truncated_hsvd(tensor, blocks, rank) -> np.ndarray:
    """Truncated hierarchical SVD (Grasedyck 2010) of a dense tensor: a tensor of the tree whose blocks are
    ``blocks``, with ``rank [[W]]_K <= R_K`` for every block, and
    ``‖A − W‖² <= Σ_K Σ_{i > R_K} σ_i([[A]]_K)²``.

    Every block's top-``R_K`` left singular space is computed from ``A``; the projections are applied from the
    largest blocks to the smallest (an ancestor before its descendants, so a later projection acts inside one side
    of every earlier block and cannot raise its rank). A dense reference for small tensors.

    Parameters
    ----------
    tensor : ndarray (d_0, ..., d_{N-1})
    blocks : list of parts
        Blocks of a tree over the axes (e.g. :func:`canonical_partitions`), nested or disjoint.
    rank : int or sequence of int
        ``R`` for every block, or ``R_K`` per block.

    Returns
    -------
    ndarray, the shape of ``tensor``

    Examples
    --------
    >>> from tnml.entanglement import canonical_partitions
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(2,) * 4)
    >>> w = truncated_hsvd(a, canonical_partitions(4), 1)
    >>> int(np.linalg.matrix_rank(w.reshape(4, 4)))
    1
    """
    a = np.asarray(tensor, dtype=np.float64)
    n = a.ndim
    sides = [tuple(sorted(int(i) for i in b)) for b in blocks]
    ranks = [int(rank)] * len(sides) if np.ndim(rank) == 0 else [int(r) for r in rank]
    if len(ranks) != len(sides) or min(ranks, default=1) < 1:
        raise ValueError(f"rank must be an int >= 1 or one int >= 1 per block ({len(sides)}), got {rank!r}")
    projectors = []
    for side, r in zip(sides, ranks):
        rest = [i for i in range(n) if i not in side]
        mat = np.transpose(a, side + tuple(rest)).reshape(int(np.prod([a.shape[i] for i in side])), -1)
        u = np.linalg.svd(mat, full_matrices=False)[0][:, :r]
        projectors.append((side, rest, u @ u.T))
    w = a
    for side, rest, proj in sorted(projectors, key=lambda t: -len(t[0])):
        order = side + tuple(rest)
        shape = [w.shape[i] for i in order]
        mat = np.transpose(w, order).reshape(proj.shape[0], -1)
        w = np.transpose((proj @ mat).reshape(shape), np.argsort(order))
    return w


def suitability(*args: Any, **kwargs: Any) -> SuitabilityResult:
    """The suitability report, :func:`tnml.workflows.suitability` (kept here under its old name).

    The report is a workflow over the data's QE, the model's min-cut bounds and feature rearrangement, so it lives
    above both the analysis and the preprocessing layer; this alias imports it when called, so that importing
    :mod:`tnml.entanglement` never imports :mod:`tnml.preprocessing`.

    Parameters
    ----------
    *args, **kwargs
        Those of :func:`tnml.workflows.suitability.suitability`.

    Returns
    -------
    SuitabilityResult
    """
    return import_module("tnml.workflows.suitability").suitability(*args, **kwargs)
