"""Suitability report (P5): will a locally connected network fit this data, and would rearranging features help?

A locally connected tensor network with inner width ``R`` can only represent tensors whose entanglement across
each canonical partition ``K`` is at most ``ln R`` (more generally, at most the network's min-cut bound across
``K``); P5's theorem says data is fit well iff the QE of its empirical data tensor is low on every canonical
partition. The report sets, per canonical partition, the data's QE (:func:`data_entanglement`) beside that
capacity, gives a verdict per partition and overall, and measures what :class:`FeatureRearrangement` would gain:
the QE (and the surrogate entanglement) of the rearranged data on the same partitions.

**The two sides of the theorem, as implemented** (SPEC §5 marks P5's constants [check]; these are the versions
proved below and tested as inequalities on exact small cases in ``tests/test_suitability.py``). Let ``A`` be the
data tensor, ``ε`` a *relative* error ``‖W − A‖ / ‖A‖`` (Frobenius), ``R_K`` the rank a network allows across a
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
  blocks (``n_K = 2N − 3`` in 1-D) implies a fit to ``ε``: SPEC's form ``ε² ln R / ((2N − 3)‖A‖²)`` with absolute
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

import numpy as np

from tnml.entanglement.data_entanglement import data_entanglement
from tnml.entanglement.mincut import mincut_bounds
from tnml.entanglement.partitions import canonical_partitions
from tnml.entanglement.surrogate import surrogate_entanglement

__all__ = [
    "SuitabilityRecord",
    "SuitabilityResult",
    "necessary_qe_max",
    "sufficient_error_bound",
    "suitability",
    "truncated_hsvd",
]

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
    return "within capacity" if k == 0 else f"exceeds capacity at {k} partition{'s' if k != 1 else ''}"


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
    eps: float = 0.1,
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
        Sample batching of :func:`data_entanglement`.
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
    parts = canonical_partitions(shape=shape) if shape is not None else canonical_partitions(n)
    capacity, source, is_tree = _capacities(model_or_width, parts, n)
    data = _standardize(arr) if standardize else arr
    kw = dict(theta=theta, batch_size=batch_size, n_batches=n_batches, seed=seed, shape=shape)
    res = data_entanglement(data, y, parts, **kw)
    se = surrogate_entanglement(data, parts)
    fits = res.qe <= capacity + tol
    n_rows = min(batch_size, arr.shape[0])
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
            qe_necessary_max=float(nec[k]), qe_sufficient_max=float(suff[k]), cannot_fit=bool(cannot[k]),
        )
        for k, p in enumerate(parts)
    ]
    k_bad = int((~fits).sum())
    return SuitabilityResult(
        records=records, verdict=_verdict(k_bad), n_exceeding=k_bad, capacity_source=source, levels=res.levels,
        dims=dims, shape=shape, theta=float(theta), eps=float(eps), fit_verdict=_fit_verdict(kind, eps),
        error_bound=bound, n_cannot_fit=int(cannot.sum()), **extra,
    )
