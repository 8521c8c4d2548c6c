"""Entanglement of a data set (P5): QE of the empirical data tensor across partitions, from samples.

The empirical data tensor of samples ``x^1..x^M`` with labels ``y_m = ±1`` under the trig map
``φ(x) = (cos(πθx), sin(πθx))`` is

    D = (1/M) Σ_m y_m φ(x_1^m) ⊗ … ⊗ φ(x_N^m),

an order-``N`` tensor with ``2^N`` entries that is never formed. Its matricization across a side ``K`` is
``[[D]]_K = (1/M) A_K Y A_{K^c}^T`` with ``A_K`` the ``(2^|K|, M)`` matrix of per-sample product features of the
features in ``K`` and ``Y = diag(y)``. Its squared singular values are the eigenvalues of

* ``F_K (Y G_{K^c} Y) F_K^T`` where ``G_S = A_S^T A_S`` is the ``(M, M)`` Gram matrix of side ``S``
  (``G_S[m, m'] = Π_{n∈S} cos(πθ(x_n^m − x_n^{m'}))``) and ``G_K = F_K^T F_K`` (an eigendecomposition); or
* ``ρ_K = A_K Y G_{K^c} Y A_K^T``, the ``(2^|K|, 2^|K|)`` reduced density matrix of block ``K``, when ``2^|K|`` is
  at most the number of samples (the *cheap route*: a side with few features has rank ``<= 2^|K|`` and never needs an
  ``M x M`` eigendecomposition). A child's ``ρ`` is the partial trace of its parent's, so below the first block with
  ``2^|K| <= M`` no Gram matrix is needed at all.

All canonical partitions of a tree are computed together: Gram matrices are accumulated up the tree (a node's
Gram matrix is the elementwise product of its children's) and the complements' Gram matrices down the tree
(``G_{c^c} = G_{P^c} ∘ Π_{siblings s} G_s``), instead of recomputing ``Π_{n∈K}`` for every partition.

The released code of P5 splits the *features* of a large side into batches and offsets batch ``b`` by ``b``
(its index) instead of by the number of features before it, so most features are skipped when a side is larger
than the feature batch. Here the per-partition route (:func:`side_gram`, used for partitions that are not blocks
of the tree and by the benchmark's naive reference) batches features with cumulative offsets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from tnml import settings
from tnml.entanglement.partitions import Partition, canonical_partitions, validate_partition
from tnml.io import format_bytes
from tnml.options import QEMethod
from tnml.spectrum import gram_factor, matricize, renyi_entropy
from tnml.validation import as_int, check_option, positive_int

__all__ = [
    "AUTO_EXACT_MAX_SAMPLES",
    "DEFAULT_SKETCH_SIZE",
    "DataEntanglementResult",
    "data_entanglement",
    "explicit_data_entanglement",
    "labels_to_signs",
    "qe_batch_rows",
    "side_gram",
]

_DTYPE = torch.float64

#: ``method="auto"`` takes the exact route for at most this many samples (and when its Gram matrices fit
#: ``tnml.settings.max_dense_bytes``), the sketch route beyond
AUTO_EXACT_MAX_SAMPLES = 2000

#: samples per batch of ``method="batches"`` when ``batch_size`` is not given (P5)
_DEFAULT_BATCH = 500

#: landmarks of the sketch route when ``sketch_size`` is not given
DEFAULT_SKETCH_SIZE = 512


# ---------------------------------------------------------------------------------------------- result
@dataclass
class DataEntanglementResult:
    """QE of the empirical data tensor per partition.

    Attributes
    ----------
    partitions : list of Partition
        The partitions, in the order of :attr:`qe`.
    qe : ndarray (n_partitions,)
        Entanglement entropy (natural log) across each partition, averaged over batches and, for more than two
        classes, over the one-vs-rest labelings.
    qe_per_batch : ndarray (n_batches, n_labelings, n_partitions)
        The values averaged into :attr:`qe` (``n_labelings`` is 1 for two classes, else the number of classes).
    levels : dict int -> float
        Mean of :attr:`qe` over the partitions of each tree level (partitions with ``level=None`` left out).
    classes : ndarray
        The distinct label values; with two classes the second is mapped to +1, the first to -1; with more, class
        ``c`` is +1 in labeling ``c``. Empty for unlabeled data (``y=None``).
    batch_sizes : list of int
        Samples in each batch used (the sketch: rows per streamed batch, one entry per batch of this process).
    method : str
        The route taken: ``"batches"``, ``"exact"`` or ``"sketch"`` (``method="auto"`` records its choice here).
    sketch_size : int or None
        Landmarks of the sketch route (None for the other routes).
    residual : ndarray (n_partitions,) or None
        Sketch route: the Nyström residual per partition, ``1 − mean_m |z^m|²`` of the worse side (0: the sketch
        is exact on that partition; the error indicator). It measures the feature norm the landmarks miss, not
        the label-weighted signal: directions of the landmark Gram matrix below ``1e-14`` of its largest
        eigenvalue (rows closer than about ``1e-7`` in feature space) are dropped unflagged. None for the other
        routes.
    n_samples : int
        Samples of ``X`` (all of them enter the ``"exact"`` and ``"sketch"`` routes).
    error_estimate : ndarray (n_partitions,) or None
        Sketch route: how much the residual terms change the QE (nats; mean over labelings of
        ``|QE − QE_plain|``, ``QE_plain`` the plain Nyström sketch without them). An empirical error estimate, not
        a bound: on the tested data (DNA and digits, 200 – 500 samples, ``k`` = 25 – 350) the sketch's error
        exceeded it by at most 0.011 nats, and the largest estimate was 4 – 25 times the largest error; at 2 000
        samples (``k`` = 128 – 1 000) by at most 0.011 nats on DNA and by up to 0.035 nats on 8 x 8 digits at
        ``k`` = 128 (0.014 at ``k`` = 256, none at ``k`` = 1 000), where the sketch is low and the residual terms
        change little. None for the other routes.
    """

    partitions: list[Partition]
    qe: np.ndarray
    qe_per_batch: np.ndarray
    levels: dict[int, float]
    classes: np.ndarray
    batch_sizes: list[int] = field(default_factory=list)
    method: str = "batches"
    sketch_size: int | None = None
    residual: np.ndarray | None = None
    n_samples: int = 0
    error_estimate: np.ndarray | None = None

    @property
    def mean(self) -> float:
        """Mean QE over all partitions."""
        return float(np.mean(self.qe))

    @property
    def tensor_samples(self) -> int:
        """Samples in each data tensor whose QE was taken: the largest batch for ``"batches"``, all ``M`` for the
        whole-data routes (the rank of a tensor across any partition is at most this)."""
        if self.method == "batches":
            return int(max(self.batch_sizes))
        return int(self.n_samples)


# ---------------------------------------------------------------------------------------------- validation
def _check_X(X, shape) -> tuple[np.ndarray, tuple[int, int] | None]:
    """X as float64 (M, N) plus the 2-D shape (h, w) if any."""
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {arr.dtype}; convert non-numeric columns first")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 3:
        if shape is not None and tuple(shape) != arr.shape[1:]:
            raise ValueError(f"shape={tuple(shape)} disagrees with X of shape {arr.shape}; drop shape or reshape X")
        shape = (int(arr.shape[1]), int(arr.shape[2]))
        arr = arr.reshape(arr.shape[0], -1)
    elif arr.ndim != 2:
        raise ValueError(
            f"X must be (n_samples, n_features) or (n_samples, h, w) for 2-D data, got an array of shape {arr.shape}"
        )
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or shape[0] * shape[1] != arr.shape[1]:
            raise ValueError(f"shape={shape} must be (h, w) with h * w = n_features = {arr.shape[1]}")
    if arr.shape[1] < 2:
        raise ValueError(f"X has {arr.shape[1]} feature(s); a partition needs at least 2")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"X holds non-finite values (first at sample {bad[0]}, feature {bad[1]}); impute or drop them first"
        )
    return arr, shape


def labels_to_signs(y, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels as ±1 labelings.

    Parameters
    ----------
    y : array-like (n_samples,) or None
        Labels of any type with at least two distinct values; None: unlabeled data (every sign +1, no classes).
    n_samples : int
        Expected length.

    Returns
    -------
    signs : ndarray (n_labelings, n_samples)
        One row for two classes (the larger value is +1), else one-vs-rest rows (class ``c`` is +1); one row of
        ones for ``y=None``.
    classes : ndarray (n_classes,)
        Empty for ``y=None``.

    Examples
    --------
    >>> labels_to_signs(["a", "b", "a"], 3)[0]
    array([[-1.,  1., -1.]])
    """
    if y is None:
        return np.ones((1, n_samples)), np.empty(0)
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(f"y must be a 1-D array of {n_samples} labels (one per sample of X), got shape {arr.shape}")
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():  # NaN would become a class of its own
        bad = np.flatnonzero(~np.isfinite(arr))
        raise ValueError(
            f"y holds {bad.size} NaN or infinite label(s) (first at sample {int(bad[0])}); drop those samples or "
            "impute their labels first"
        )
    classes, inv = np.unique(arr, return_inverse=True)
    if classes.size < 2:
        raise ValueError(
            f"y has a single value {classes.tolist()}; the data tensor needs at least two classes (labels ±1)"
        )
    if classes.size == 2:
        return (2.0 * inv - 1.0)[None, :], classes
    return np.stack([np.where(inv == c, 1.0, -1.0) for c in range(classes.size)]), classes


def qe_batch_rows(batch_size: int | None, n_samples: int, method: str = "batches") -> int:
    """Samples in each data tensor of a route before it runs (see :attr:`DataEntanglementResult.tensor_samples`).

    Parameters
    ----------
    batch_size : int or None
        ``batch_size`` as passed to :func:`data_entanglement` (None: 500 for ``"batches"``).
    n_samples : int
        Samples of ``X``.
    method : {"batches", "exact", "sketch"}
        The route (``"auto"`` is resolved by :func:`data_entanglement`; pass its ``result.method``).

    Returns
    -------
    int
        ``"batches"``: the largest of the ``ceil(M / batch_size)`` near-equal batches (at most ``batch_size``);
        ``n_samples`` for the whole-data routes.

    Examples
    --------
    >>> qe_batch_rows(300, 1200), qe_batch_rows(300, 1000), qe_batch_rows(None, 200), qe_batch_rows(300, 1000, "sketch")
    (300, 250, 200, 1000)
    """
    n_samples = positive_int("n_samples", n_samples)
    check_option("method", method, ("batches", "exact", "sketch"),
                 fix="resolve 'auto' first (pass the result's method)")
    if method != "batches":
        return n_samples
    size = _DEFAULT_BATCH if batch_size is None else positive_int("batch_size", batch_size, 2)
    return -(-n_samples // -(-n_samples // size))  # the largest of ceil(M / size) near-equal batches


def _resolve_partitions(partitions, n: int, shape, levels) -> list[Partition]:
    if partitions is None:
        parts = canonical_partitions(shape=shape) if shape is not None else canonical_partitions(n)
    else:
        if isinstance(partitions, (Partition, str, bytes)):
            raise TypeError("partitions must be a list of parts (e.g. canonical_partitions(n)), not a single part")
        parts = []
        for p in partitions:
            sites = validate_partition(p, n)
            parts.append(p if isinstance(p, Partition) else Partition(sites, None))
        if not parts:
            raise ValueError("partitions is empty; pass None for the canonical partitions")
    if levels is not None:
        want = {int(level) for level in ([levels] if isinstance(levels, (int, np.integer)) else levels)}
        kept = [p for p in parts if p.level in want]
        if not kept:
            have = sorted({p.level for p in parts if p.level is not None})
            raise ValueError(f"levels={sorted(want)} selects no partition; the partitions have levels {have}")
        parts = kept
    return parts


# ---------------------------------------------------------------------------------------------- spectra
def _entropy(lam: torch.Tensor) -> float:
    """QE from the eigenvalues of a reduced density matrix (squared singular values); 0 for a zero tensor."""
    return float(renyi_entropy(lam))


def _spectra_gram(g_side: torch.Tensor, g_rest: torch.Tensor, signs: torch.Tensor) -> list[float]:
    """QE per labeling from the two sides' Gram matrices (M, M) and signs (L, M).

    ``G_side = F^T F`` by Cholesky (``F = L^T``; backward stable like the eigendecomposition but ~6x cheaper), or
    by an eigendecomposition when ``G_side`` is numerically singular."""
    chol, info = torch.linalg.cholesky_ex(g_side)
    f = chol.T if int(info) == 0 and bool(torch.isfinite(chol).all()) else gram_factor(g_side, drop_null=True)
    out = []
    for y in signs:
        fy = f * y
        s = fy @ g_rest @ fy.T
        out.append(_entropy(torch.linalg.eigvalsh(0.5 * (s + s.T))))
    return out


def _spectra_explicit(a_side: torch.Tensor, g_rest: torch.Tensor | None, signs: torch.Tensor) -> list[float]:
    """QE per labeling from the side's explicit features (r, M) and the rest's Gram matrix (None: all ones)."""
    out = []
    for y in signs:
        ay = a_side * y
        if g_rest is None:
            v = ay.sum(1)
            rho = torch.outer(v, v)
        else:
            rho = ay @ g_rest @ ay.T
        out.append(_entropy(torch.linalg.eigvalsh(0.5 * (rho + rho.T))))
    return out


def _leaf_features(xb: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    a = math.pi * theta * xb
    return torch.cos(a), torch.sin(a)


def _khatri_rao(mats: Sequence[torch.Tensor]) -> torch.Tensor:
    """Row-wise Khatri–Rao product: rows ``(i_1, …, i_c)`` in C order, shape (Π r_j, M)."""
    out = mats[0]
    for b in mats[1:]:
        out = (out[:, None, :] * b[None, :, :]).reshape(-1, out.shape[1])
    return out


def side_gram(xb: torch.Tensor, sites: Sequence[int], theta: float, feature_batch: int | None = None) -> torch.Tensor:
    """Gram matrix of one side from scratch: ``G[m, m'] = Π_{n∈sites} cos(πθ(x_n^m − x_n^{m'}))``.

    Features are processed ``feature_batch`` at a time (memory ``M² · feature_batch``), batch ``b`` starting at the
    cumulative offset ``b · feature_batch`` (the released code used ``b``; see the module docstring).

    Parameters
    ----------
    xb : Tensor (M, N)
        Samples (float64).
    sites : sequence of int
        The features of the side.
    theta : float
        Trig map parameter.
    feature_batch : int, optional
        Features per batch (default: all at once).

    Returns
    -------
    Tensor (M, M)

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    >>> side_gram(x, [0, 1], 0.5).diagonal().tolist()
    [1.0, 1.0]
    """
    sites = list(sites)
    m = xb.shape[0]
    fb = len(sites) if feature_batch is None else positive_int("feature_batch", feature_batch)
    need = _side_gram_bytes(m, min(fb, max(len(sites), 1)), xb.element_size())
    if need > settings.max_dense_bytes:
        raise settings.MemoryLimitError(
            f"side_gram of {m} samples x {len(sites)} features needs about {format_bytes(need)} ({m}x{m} Gram matrix "
            f"and a ({m}, {m}, {min(fb, len(sites))}) chunk of features) but tnml.settings.max_dense_bytes is "
            f"{format_bytes(settings.max_dense_bytes)}; pass a smaller feature_batch (memory grows with it), fewer "
            "samples (memory grows as their square), or raise tnml.settings.max_dense_bytes"
        )
    g = torch.ones(m, m, dtype=xb.dtype, device=xb.device)
    a = math.pi * theta * xb
    for start in range(0, len(sites), fb):  # cumulative offsets: start = b * fb
        chunk = a[:, sites[start:start + fb]]
        g = g * torch.cos(chunk[:, None, :] - chunk[None, :, :]).prod(-1)
    return g


# ---------------------------------------------------------------------------------------------- memory
def _side_gram_bytes(m: int, chunk: int, item: int = 8) -> int:
    """Peak bytes of :func:`side_gram`: the (M, M) product, and the (M, M, chunk) differences and their cosines."""
    return (1 + 2 * chunk) * m * m * item


def _tree_pass_bytes(nodes: list[_Node], limit: int, m: int, item: int = 8) -> int:
    """Peak bytes of :func:`_tree_pass` for a batch of ``m`` samples (an upper estimate).

    The up pass keeps one (M, M) Gram matrix per *large* node (``2^|K| > limit``, the root excluded) until the end;
    the down pass holds the Gram matrices of one node's children, the complement's, and the factor, product and
    eigensolver workspace of :func:`_spectra_gram` (8 more, measured); small nodes hold explicit features (2^|K|, M) and
    reduced density matrices (2^|K|, 2^|K|), each at most (limit, M).
    """
    small = [node.sites.size <= 62 and 2 ** node.sites.size <= limit for node in nodes]
    n_large = sum(1 for i in range(1, len(nodes)) if not small[i])
    arity = max((len(node.children) for node in nodes), default=0)
    grams = n_large + arity + 8 if not small[0] else 0
    explicit = sum(2 ** nodes[i].sites.size for i in range(len(nodes)) if small[i]
                   and ((p := nodes[i].parent) is None or not small[p]))
    return (grams * m * m + 3 * explicit * max(m, limit)) * item


def _check_memory(m: int, nodes: list[_Node], use_tree: bool, limit: int, direct: list[int], n: int,
                  feature_batch: int | None, exact: bool = False) -> None:
    """Refuse a batch whose Gram matrices would exceed ``tnml.settings.max_dense_bytes`` (before allocating);
    ``exact``: the batch is the whole data set (the exact route), so the way out is the sketch, not the batch size."""
    tree = _tree_pass_bytes(nodes, limit, m) if use_tree else 0
    side, chunk = 0, 0
    for size in direct:  # partitions outside the tree: two side Gram matrices from scratch
        big = max(size, n - size)
        c = big if feature_batch is None else min(feature_batch, big)
        if _side_gram_bytes(m, c) + 7 * m * m * 8 > side:
            side, chunk = _side_gram_bytes(m, c) + 7 * m * m * 8, c
    need = max(tree, side)
    cap = settings.max_dense_bytes
    if need > cap:
        what = (f"the tree pass keeps {need // (m * m * 8)} Gram matrices of {m}x{m} float64" if tree >= side
                else f"a partition outside the canonical tree builds {m}x{m}x{chunk} feature differences")
        hint = "" if tree >= side or feature_batch == 1 else ", pass a smaller feature_batch"
        if exact:
            way = ("use method='sketch' (memory independent of the number of samples; canonical partitions)"
                   if not direct else "use fewer samples")
            raise settings.MemoryLimitError(
                f"method='exact' needs about {format_bytes(need)} for all {m} samples at once ({what}) but "
                f"tnml.settings.max_dense_bytes is {format_bytes(cap)}; {way}{hint}, or raise "
                "tnml.settings.max_dense_bytes"
            )
        raise settings.MemoryLimitError(
            f"data_entanglement needs about {format_bytes(need)} per batch ({what}) but tnml.settings.max_dense_bytes "
            f"is {format_bytes(cap)}; lower batch_size (now {m}; memory grows as its square){hint}, use fewer "
            "features or partitions, or raise tnml.settings.max_dense_bytes"
        )


# ---------------------------------------------------------------------------------------------- tree
@dataclass
class _Node:
    sites: np.ndarray
    children: list[int]
    parent: int | None


def _build_tree(n: int, shape: tuple[int, int] | None) -> list[_Node]:
    """The canonical tree (1-D halving or 2-D quad-tree with ``array_split``), nodes breadth first, root = 0."""
    nodes = [_Node(np.arange(n), [], None)]
    grids = [np.arange(n).reshape(shape) if shape is not None else None]
    i = 0
    while i < len(nodes):
        node = nodes[i]
        if node.sites.size > 1:
            kids: list[tuple[np.ndarray, np.ndarray | None]]
            grid_i = grids[i]
            if grid_i is None:
                kids = [(c, None) for c in np.array_split(node.sites, 2)]
            else:
                kids = [(c.ravel(), c) for rows in np.array_split(grid_i, 2, axis=0)
                        for c in np.array_split(rows, 2, axis=1)]
            for sites, grid in kids:
                if sites.size:
                    node.children.append(len(nodes))
                    nodes.append(_Node(np.asarray(sites), [], i))
                    grids.append(grid)
        i += 1
    return nodes


def _tree_pass(xb: torch.Tensor, signs: torch.Tensor, theta: float, nodes: list[_Node], wanted: set[int],
               limit: int) -> dict[int, list[float]]:
    """QE of every wanted node's block (node id -> per-labeling QE), sharing Gram products along the tree."""
    m = xb.shape[0]
    small = [node.sites.size <= 62 and 2 ** node.sites.size <= limit for node in nodes]
    # nodes with a wanted node at or below them
    needed = [False] * len(nodes)
    for i in sorted(wanted, reverse=True):
        j: int | None = i
        while j is not None and not needed[j]:
            needed[j] = True
            j = nodes[j].parent
    cos, sin = _leaf_features(xb, theta)
    feats: dict[int, torch.Tensor] = {}   # explicit features of small nodes
    grams: dict[int, torch.Tensor] = {}   # Gram matrices of large nodes
    out: dict[int, list[float]] = {}

    # up pass (children before parents: reverse breadth-first order)
    for i in range(len(nodes) - 1, -1, -1):
        node = nodes[i]
        if not node.children:
            s = int(node.sites[0])
            leaf = torch.stack((cos[:, s], sin[:, s]))
            if small[i]:
                feats[i] = leaf
            else:  # limit < 2: Gram route even for single features
                grams[i] = leaf.T @ leaf
            continue
        if small[i]:
            feats[i] = _khatri_rao([feats[c] for c in node.children])
            for c in node.children:  # below a small node, reduced density matrices take over
                del feats[c]
        elif i != 0:
            g: torch.Tensor | None = None
            for c in node.children:
                gc = grams[c] if c in grams else feats[c].T @ feats[c]
                g = gc if g is None else g * gc
            assert g is not None  # a node that is not small has children
            grams[i] = g

    def gram_of(c: int) -> torch.Tensor:
        return grams[c] if c in grams else feats[c].T @ feats[c]

    def small_down(i: int, rho: list[torch.Tensor]) -> None:
        if i in wanted:
            out[i] = [_entropy(torch.linalg.eigvalsh(0.5 * (r + r.T))) for r in rho]
        kids = nodes[i].children
        if not any(needed[c] for c in kids):
            return
        dims = [2 ** nodes[c].sites.size for c in kids]
        k = len(kids)
        letters = "abcdefgh"
        for j, c in enumerate(kids):
            if not needed[c]:
                continue
            row = [letters[t] if t != j else "x" for t in range(k)]
            col = [letters[t] if t != j else "y" for t in range(k)]
            expr = "".join(row) + "".join(col) + "->xy"
            small_down(c, [torch.einsum(expr, r.reshape(dims + dims)) for r in rho])

    def big_down(i: int, g_out: torch.Tensor | None) -> None:
        kids = nodes[i].children
        # a child's Gram matrix serves its siblings' complements and, for a large child, its own spectrum
        gk = {c: gram_of(c) for c in kids
              if any(needed[s] for s in kids if s != c) or (needed[c] and not small[c])}
        for c in kids:
            if not needed[c]:
                continue
            g_rest = g_out
            for s in kids:
                if s != c:
                    g_rest = gk[s] if g_rest is None else g_rest * gk[s]
            if small[c]:
                ay = [feats[c] * y for y in signs]
                rho = [a @ g_rest @ a.T if g_rest is not None else torch.outer(a.sum(1), a.sum(1)) for a in ay]
                small_down(c, rho)
            else:
                if c in wanted:
                    out[c] = _spectra_gram(gk[c], g_rest, signs) if g_rest is not None else [0.0] * len(signs)
                big_down(c, g_rest)
        del gk

    if small[0]:
        v = [feats[0] @ y for y in signs]
        small_down(0, [torch.outer(a, a) for a in v])
    else:
        big_down(0, None)
    # the recursive closures refer to themselves (a reference cycle that keeps this frame's cells alive until the
    # cyclic garbage collector runs): release the Gram matrices now, not after the next batch has allocated its own
    grams.clear()
    feats.clear()
    del m
    return out


def _partition_direct(xb: torch.Tensor, signs: torch.Tensor, theta: float, sites: Sequence[int], n: int,
                      limit: int, feature_batch: int | None) -> list[float]:
    """Per-partition route from scratch (partitions that are not tree blocks; the benchmark's naive reference)."""
    rest = [s for s in range(n) if s not in set(sites)]
    if len(sites) > len(rest):
        sites, rest = rest, list(sites)
    g_rest = side_gram(xb, rest, theta, feature_batch)
    if len(sites) <= 62 and 2 ** len(sites) <= limit:
        cos, sin = _leaf_features(xb, theta)
        a = _khatri_rao([torch.stack((cos[:, s], sin[:, s])) for s in sites])
        return _spectra_explicit(a, g_rest, signs)
    return _spectra_gram(side_gram(xb, sites, theta, feature_batch), g_rest, signs)


def _class_index(y, signs_np: np.ndarray, classes: np.ndarray, m: int):
    """Per-sample class index, number of classes, and the map from per-class sums to per-labeling sums."""
    if y is None:
        return np.zeros(m, dtype=np.int64), 1, lambda t: [t[0]]
    _, inv = np.unique(np.asarray(y), return_inverse=True)
    if classes.size == 2:  # the larger value is +1
        return inv.astype(np.int64), 2, lambda t: [t[1] - t[0]]

    def one_vs_rest(t):
        total = sum(t)
        return [2.0 * tc - total for tc in t]

    return inv.astype(np.int64), int(classes.size), one_vs_rest


def _exact_fits(m: int, nodes, wanted, direct, n: int, explicit_max_rank, feature_batch) -> bool:
    try:
        _check_memory(m, nodes, bool(wanted), explicit_max_rank if explicit_max_rank is not None else m, direct, n,
                      feature_batch)
    except settings.MemoryLimitError:
        return False
    return True


def _sketch(arr, y, signs_np, classes, parts, part_node, nodes, theta, k, batch_size, random_state):
    from tnml.distributed import all_reduce_sum, process_group, row_range
    from tnml.entanglement.data_entanglement_sketch import sketch_tree_qe

    m = arr.shape[0]
    if any(node is None for node in part_node):
        bad = next(p for p, node in zip(parts, part_node) if node is None)
        raise ValueError(
            f"method='sketch' streams the canonical tree's blocks; the part {list(bad.sites)[:8]} is not a block of "
            "it (nor a block's complement); pass canonical partitions, or method='exact' / 'batches' for other parts"
        )
    cls, n_classes, labelings = _class_index(y, signs_np, classes, m)
    rank, world = process_group()
    rows = row_range(m, rank, world) if world > 1 else None
    out = sketch_tree_qe(torch.as_tensor(arr, dtype=_DTYPE), torch.as_tensor(cls), n_classes, labelings,
                         float(theta), nodes, set(part_node), k, batch_size, random_state, rows=rows,
                         reduce=all_reduce_sum if world > 1 else None)
    qe = np.array([out.qe[i] for i in part_node]).T[None]  # (1, n_labelings, n_partitions)
    plain = np.array([out.qe_plain[i] for i in part_node]).T[None]
    residual = np.array([out.residual[i] for i in part_node])
    estimate = np.abs(qe - plain).mean(axis=(0, 1))
    start, stop = rows if rows is not None else (0, m)
    sizes = [min(out.batch_size, stop - b) for b in range(start, stop, out.batch_size)]
    return qe, residual, estimate, sizes


# ---------------------------------------------------------------------------------------------- public
def data_entanglement(
    X,
    y=None,
    partitions: Iterable | None = None,
    theta: float = 0.085,
    batch_size: int | None = None,
    n_batches: int | None = 2,
    levels: Iterable[int] | int | None = None,
    seed: int | None = 0,
    *,
    shape: tuple[int, int] | None = None,
    explicit_max_rank: int | None = None,
    feature_batch: int | None = None,
    method: QEMethod = "batches",
    sketch_size: int | None = None,
    random_state: int | None = None,
) -> DataEntanglementResult:
    """Entanglement (QE) of the empirical data tensor across each partition, from samples.

    ``D = (1/M) Σ_m y_m ⊗_n φ(x_n^m)`` with the trig map ``φ(x) = (cos(πθx), sin(πθx))`` and labels ``y_m = ±1``
    (see the module docstring for the method). ``D`` is never formed. Four routes (``method``):

    * ``"batches"`` (default; P5's estimator): samples are shuffled (``seed``) and split into
      ``ceil(M / batch_size)`` near-equal batches; the first ``n_batches`` are used and their QEs averaged (P5:
      2 batches of 500 samples, θ = 0.085, levels 1–4). This is the QE of a *batch's* data tensor, a different,
      batch-size-dependent quantity: a batch of ``B`` samples has rank at most ``B`` across every partition, so
      its QE is at most ``ln B`` and saturates near it when the samples' features are nearly orthogonal.
    * ``"exact"``: the QE of the whole data set's tensor, all ``M`` samples in one Gram pass:
      ``O(M² N + n_large · M³)`` time and ``O(M²)`` memory (refused past ``tnml.settings.max_dense_bytes``).
    * ``"sketch"``: the whole data set's QE from a streaming Nyström sketch with ``sketch_size`` landmarks
      (:mod:`tnml.entanglement.data_entanglement_sketch`): time ``O(M k N + n_large (M k² + k³))``, memory
      independent of ``M``; rows stream in batches of ``batch_size``; under ``torch.distributed`` (e.g.
      ``torchrun``) each process streams its block of rows and the sums are all-reduced, once per partition (every
      process passes the whole ``X``). Canonical-tree blocks only. ``result.residual`` is the error indicator.
    * ``"auto"``: ``"exact"`` for at most :data:`AUTO_EXACT_MAX_SAMPLES` samples when its memory fits, else
      ``"sketch"``; partitions off the canonical tree always take ``"exact"`` (the sketch cannot compute them);
      ``result.method`` records the route taken.

    Parameters
    ----------
    X : array-like (n_samples, n_features) or (n_samples, h, w)
        Samples; a 3-D array is 2-D data (row-major sites ``r * w + c``). Scale features so that ``πθx`` spans a
        useful range (e.g. standardize them).
    y : array-like (n_samples,) or None
        Labels with at least two values: two classes map to ±1 (the larger value is +1); more classes are handled
        one-vs-rest and the mean over classes is reported. None: unlabeled data, every ``y_m = +1``, so
        ``D = (1/M) Σ_m ⊗_n φ(x_n^m)`` is the (unnormalized) mean of the feature products — the tensor a
        generative model such as a Born machine has to represent.
    partitions : list of parts, optional
        Default: :func:`~tnml.entanglement.canonical_partitions` of ``n_features`` (1-D) or of ``shape``. Blocks of
        the canonical tree (or their complements) share Gram products; any other part is computed on its own
        (not on the sketch route).
    theta : float
        Trig map parameter (> 0).
    batch_size : int, optional
        ``"batches"``: samples per batch (>= 2; default 500). ``"sketch"``: rows per streamed batch (default: as
        many as fit half of ``tnml.settings.max_dense_bytes``; the result does not depend on it beyond round-off).
        Ignored by ``"exact"``.
    n_batches : int or None
        ``"batches"`` only: number of batches to average; None: all ``ceil(M / batch_size)``.
    levels : int or iterable of int, optional
        Keep only the partitions of these tree levels (1 = children of the root).
    seed : int or None
        ``"batches"``: seed of the sample shuffle; None keeps the given order. Also the landmark seed of the sketch
        when ``random_state`` is None.
    shape : tuple (h, w), optional
        Grid shape of 2-D data given as (n_samples, h * w).
    explicit_max_rank : int, optional
        Gram routes: sides with ``2^|K|`` at most this use explicit features (the cheap route); default: the
        batch's sample count. 1 forces the Gram route everywhere (for tests).
    feature_batch : int, optional
        Features per chunk when a side's Gram matrix is built from scratch (non-tree partitions).
    method : {"batches", "exact", "sketch", "auto"}
        The route (see above).
    sketch_size : int, optional
        Landmarks ``k`` of the sketch (default :data:`DEFAULT_SKETCH_SIZE`, at most ``M``; ``k = M`` reproduces
        the exact route up to round-off).
    random_state : int or None
        Seed of the sketch's landmark sample (default: ``seed``); None with ``seed=None``: the first ``k`` rows.

    Returns
    -------
    DataEntanglementResult

    Raises
    ------
    tnml.MemoryLimitError
        Before any work, if one batch's Gram matrices (``O(batch_size²)`` each; see :func:`_tree_pass_bytes`), or
        the sketch's ``O(k²)`` accumulators, would exceed ``tnml.settings.max_dense_bytes``; the message gives the
        size and how to proceed.

    References
    ----------
    Alexander, De La Vega, Razin, Cohen. *What Makes Data Suitable for a Locally Connected Neural Network?
    A Necessary and Sufficient Condition Based on Quantum Entanglement.* NeurIPS 2023.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 8)); y = (X[:, 0] > 0).astype(int)
    >>> res = data_entanglement(X, y, theta=0.5)
    >>> len(res.qe), sorted(res.levels)
    (13, [1, 2, 3])
    >>> len(data_entanglement(X, None, theta=0.5).qe)  # unlabeled: the data distribution itself
    13
    >>> exact = data_entanglement(X, y, theta=0.5, method="exact")
    >>> full = data_entanglement(X, y, theta=0.5, method="sketch", sketch_size=40)  # k = M: exact
    >>> bool(np.allclose(full.qe, exact.qe, atol=1e-6)), full.method
    (True, 'sketch')
    >>> data_entanglement(X, y, theta=0.5, method="auto").method
    'exact'
    """
    check_option("method", method, QEMethod, fix="'auto' picks by the number of samples")
    arr, shape = _check_X(X, shape)
    m_total, n = arr.shape
    signs_np, classes = labels_to_signs(y, m_total)
    if isinstance(theta, bool) or not isinstance(theta, (int, float, np.floating)) or not (
            math.isfinite(theta) and theta > 0):
        raise ValueError(f"theta must be a finite number > 0 (P5 uses 0.085), got {theta!r}")
    if batch_size is not None:
        batch_size = positive_int("batch_size", batch_size, 2 if method == "batches" else 1)
    if n_batches is not None:
        n_batches = positive_int("n_batches", n_batches)
    if explicit_max_rank is not None:
        explicit_max_rank = positive_int("explicit_max_rank", explicit_max_rank)
    if feature_batch is not None:
        feature_batch = positive_int("feature_batch", feature_batch)
    if sketch_size is not None:
        sketch_size = positive_int("sketch_size", sketch_size, 2, fix="the number of landmark samples k")
    if random_state is not None:
        random_state = as_int("random_state", random_state, 0)
    if m_total < 2:
        raise ValueError(f"X has {m_total} sample(s); need at least 2")
    parts = _resolve_partitions(partitions, n, shape, levels)

    nodes = _build_tree(n, shape)
    index = {frozenset(node.sites.tolist()): i for i, node in enumerate(nodes) if i != 0}
    everything = frozenset(range(n))
    part_node = []
    for p in parts:
        key = frozenset(p.sites)
        part_node.append(index.get(key, index.get(everything - key)))
    wanted = {i for i in part_node if i is not None}
    direct = [len(p.sites) for p, node in zip(parts, part_node) if node is None]

    if method == "auto":  # parts off the canonical tree: only the exact route computes them (its memory check says
        # so when they do not fit); else exact up to AUTO_EXACT_MAX_SAMPLES samples when it fits, the sketch beyond
        small = m_total <= AUTO_EXACT_MAX_SAMPLES and _exact_fits(m_total, nodes, wanted, direct, n,
                                                                  explicit_max_rank, feature_batch)
        method = "exact" if direct or small else "sketch"
    residual = estimate = None
    k = None
    if method == "sketch":
        k = min(sketch_size if sketch_size is not None else DEFAULT_SKETCH_SIZE, m_total)
        qe, residual, estimate, sizes = _sketch(arr, y, signs_np, classes, parts, part_node, nodes, theta, k,
                                                batch_size, seed if random_state is None else random_state)
    else:
        if method == "exact":
            chunks = [np.arange(m_total)]
        else:
            bs = _DEFAULT_BATCH if batch_size is None else batch_size
            order = np.arange(m_total) if seed is None else np.random.default_rng(seed).permutation(m_total)
            chunks = np.array_split(order, math.ceil(m_total / bs))
            if n_batches is not None:
                chunks = chunks[:n_batches]
        qe = _gram_batches(arr, signs_np, chunks, parts, part_node, nodes, wanted, direct, n, theta,
                           explicit_max_rank, feature_batch, exact=method == "exact")
        sizes = [len(c) for c in chunks]
    mean = qe.mean(axis=(0, 1))
    by_level: dict[int, list[float]] = {}
    for p, v in zip(parts, mean):
        if p.level is not None:
            by_level.setdefault(int(p.level), []).append(float(v))
    return DataEntanglementResult(
        partitions=parts, qe=mean, qe_per_batch=qe,
        levels={lv: float(np.mean(v)) for lv, v in sorted(by_level.items())},
        classes=classes, batch_sizes=sizes, method=method, sketch_size=k, residual=residual, n_samples=m_total,
        error_estimate=estimate,
    )


def _gram_batches(arr, signs_np, chunks, parts, part_node, nodes, wanted, direct, n, theta, explicit_max_rank,
                  feature_batch, exact: bool = False) -> np.ndarray:
    """QE per (batch, labeling, partition) from each batch's Gram matrices (the exact and batch routes)."""
    m_max = max(len(c) for c in chunks)
    _check_memory(m_max, nodes, bool(wanted), explicit_max_rank if explicit_max_rank is not None else m_max,
                  direct, n, feature_batch, exact)
    x_t = torch.as_tensor(arr, dtype=_DTYPE)
    s_t = torch.as_tensor(signs_np, dtype=_DTYPE)
    qe = np.zeros((len(chunks), s_t.shape[0], len(parts)))
    for b, idx in enumerate(chunks):
        it = torch.as_tensor(idx)
        xb, sb = x_t[it], s_t[:, it]
        limit = explicit_max_rank if explicit_max_rank is not None else len(idx)
        tree_qe = _tree_pass(xb, sb, float(theta), nodes, wanted, limit) if wanted else {}
        for k, (p, node) in enumerate(zip(parts, part_node)):
            vals = tree_qe[node] if node is not None else _partition_direct(xb, sb, float(theta), p.sites, n,
                                                                             limit, feature_batch)
            qe[b, :, k] = vals
    return qe


def explicit_data_entanglement(X, y, partitions, theta: float = 0.085) -> np.ndarray:
    """Reference: QE of the explicitly formed data tensor ``D`` (``2^N`` entries; tiny ``N`` only), all samples,
    mean over one-vs-rest labelings as in :func:`data_entanglement`.

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    y : array-like (n_samples,) or None
        Labels; None: unlabeled (every sign +1).
    partitions : list of parts
    theta : float

    Returns
    -------
    ndarray (n_partitions,)
    """
    arr, _ = _check_X(X, None)
    m, n = arr.shape
    if n > 16:
        raise ValueError(f"the explicit reference forms 2^N entries; N={n} is too large (use N <= 16)")
    signs, _ = labels_to_signs(y, m)
    a = np.pi * theta * arr
    phi = np.stack((np.cos(a), np.sin(a)), axis=-1)  # (M, N, 2)
    out = []
    for sgn in signs:
        d = np.zeros((2,) * n)
        for k in range(m):
            t = np.array(sgn[k] / m)
            for j in range(n):
                t = np.multiply.outer(t, phi[k, j])
            d += t
        row = []
        for p in partitions:
            sites = list(validate_partition(p, n))
            sv = np.linalg.svd(matricize(d, sites), compute_uv=False)
            row.append(_entropy(torch.as_tensor(sv**2)))
        out.append(row)
    return np.mean(out, axis=0)
