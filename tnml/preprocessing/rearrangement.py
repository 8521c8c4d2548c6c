"""Feature rearrangement (P5, Algorithm 1): reorder features so that a locally connected network fits the data.

Minimizes the sum of surrogate entanglements ``Σ_K SE(K)`` over the canonical partitions ``K`` of the new order by
recursive balanced min-cut partitioning of the complete feature graph with weights ``|Pearson(x_n, x_n')|``:
the features are split into the sizes of the tree's children (2 in 1-D; 4 in 2-D: top/bottom rows, then
left/right columns) so that the weight cut between the parts is minimal, and each part is placed in its child's
block, recursively. For a node ``P`` with children ``K_1..K_c``, ``Σ_j SE(K_j) = 2·cut(K_1..K_c) + w(P, outside)``
with the second term fixed by the split above, so each split minimizes exactly its level's share of the objective.

Bisection: METIS (through ``pymetis``) when it is installed, else a spectral split (Fiedler vector); either is
then balanced exactly and refined by Kernighan–Lin swaps (``networkx.algorithms.community.kernighan_lin_bisection``).
Blocks of at most 12 features are split exhaustively (optimal).
"""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from tnml.entanglement.partitions import canonical_partitions
from tnml.entanglement.surrogate import abs_correlation
from tnml.options import BisectBackend, RearrangeMethod
from tnml.validation import check_option, grid_shape

__all__ = ["FeatureRearrangement", "RandomRearrangement", "rearrangement_objective"]

_EXHAUSTIVE = 12


def rearrangement_objective(corr: np.ndarray, perm: np.ndarray, shape: tuple[int, int] | None = None) -> float:
    """``Σ_K SE(K)`` over the canonical partitions of the order ``perm`` (position p holds feature ``perm[p]``).

    Parameters
    ----------
    corr : ndarray (n_features, n_features)
        ``|Pearson|`` matrix (:func:`tnml.entanglement.surrogate.abs_correlation`).
    perm : ndarray (n_features,)
    shape : tuple (h, w), optional
        2-D canonical partitions.

    Returns
    -------
    float
    """
    c = corr[np.ix_(perm, perm)]
    n = c.shape[0]
    parts = canonical_partitions(shape=shape) if shape is not None else canonical_partitions(n)
    total = 0.0
    for p in parts:
        mask = np.zeros(n, dtype=bool)
        mask[list(p.sites)] = True
        total += float(c[mask][:, ~mask].sum())
    return total


def _metis_split(w: np.ndarray, size_a: int, seed: int) -> np.ndarray | None:
    try:
        import pymetis
    except ImportError:
        return None
    k = w.shape[0]
    scaled = np.rint(w / max(float(w.max()), 1e-300) * 1000).astype(np.int64)
    adjacency, weights = [], []
    for i in range(k):
        nb = [j for j in range(k) if j != i and scaled[i, j] > 0]
        adjacency.append(nb)
        weights.append(scaled[i, nb])
    if not any(adjacency):
        return None
    xadj = np.cumsum([0] + [len(a) for a in adjacency])
    # int arrays even where a feature has no neighbour (an empty Python list would concatenate as float64)
    csr = pymetis.CSRAdjacency(xadj, np.concatenate([np.asarray(a, dtype=np.int64) for a in adjacency]))
    _, parts = pymetis.part_graph(
        2,
        csr,
        eweights=np.concatenate([np.asarray(x, dtype=np.int64) for x in weights]),
        tpwgts=[float(size_a) / k, 1.0 - float(size_a) / k],
        options=pymetis.Options(seed=seed),
    )
    return np.asarray(parts) == 0


def _spectral_split(w: np.ndarray) -> np.ndarray:
    lap = np.diag(w.sum(1)) - w
    _, vec = np.linalg.eigh(lap)
    mask = np.zeros(w.shape[0], dtype=bool)
    mask[np.argsort(vec[:, 1], kind="stable")[: w.shape[0] // 2]] = True
    return mask


def _balance(w: np.ndarray, mask: np.ndarray, size_a: int) -> np.ndarray:
    """Move the features with the smallest cut increase until side A has exactly ``size_a`` features."""
    mask = mask.copy()
    while mask.sum() != size_a:
        grow = mask.sum() < size_a
        src = ~mask if grow else mask
        # gain of moving i from its side to the other: (links to the other side) - (links to its own side)
        to_a, to_b = w[:, mask].sum(1), w[:, ~mask].sum(1)
        gain = np.where(mask, to_b - to_a, to_a - to_b)
        cand = np.flatnonzero(src)
        mask[cand[np.argmax(gain[cand])]] = grow
    return mask


def bisect(w: np.ndarray, size_a: int, backend: BisectBackend = "auto", seed: int = 0) -> np.ndarray:
    """Split nodes ``0..k-1`` of a weighted graph into sides of exactly ``size_a`` and ``k - size_a`` nodes with a
    small cut weight. Returns the mask of side A, shape (k,)."""
    k = w.shape[0]
    if size_a in (0, k):
        return np.full(k, size_a == k)
    if k <= _EXHAUSTIVE:
        best, best_cut = None, math.inf
        for a in itertools.combinations(range(1, k), size_a - 1):  # node 0 fixed on side A (symmetry halves work)
            m = np.zeros(k, dtype=bool)
            m[[0, *a]] = True
            cut = w[m][:, ~m].sum()
            if cut < best_cut - 1e-12:
                best, best_cut = m, cut
        assert best is not None  # the first combination always improves on an infinite cut
        if 2 * size_a == k:
            return best
        for a in itertools.combinations(range(1, k), size_a):  # unequal sizes: node 0 may sit on side B
            m = np.zeros(k, dtype=bool)
            m[list(a)] = True
            cut = w[m][:, ~m].sum()
            if cut < best_cut - 1e-12:
                best, best_cut = m, cut
        return best
    mask = _metis_split(w, size_a, seed) if backend in ("auto", "metis") else None
    if mask is None:
        if backend == "metis":
            raise ImportError("backend='metis' needs pymetis (pip install pymetis); use backend='kl' otherwise")
        mask = _spectral_split(w)
    mask = _balance(w, mask, size_a)
    g = nx.Graph()
    g.add_nodes_from(range(k))
    iu = np.triu_indices(k, 1)
    g.add_weighted_edges_from((int(i), int(j), float(w[i, j])) for i, j in zip(*iu) if w[i, j] > 0)
    a, _ = nx.algorithms.community.kernighan_lin_bisection(
        g,
        partition=(set(np.flatnonzero(mask).tolist()), set(np.flatnonzero(~mask).tolist())),
        weight="weight",
        seed=seed,
    )
    out = np.zeros(k, dtype=bool)
    out[list(a)] = True
    if out.sum() != size_a:  # networkx may hand the sides back in the other order
        out = ~out
    if out.sum() != size_a or w[out][:, ~out].sum() > w[mask][:, ~mask].sum():
        return mask
    return out


def _check_X(X, dims: int, shape) -> tuple[np.ndarray, tuple[int, int] | None]:
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {arr.dtype}; convert non-numeric columns first")
    if arr.ndim == 3:
        if dims != 2:
            raise ValueError(f"X has shape {arr.shape} (2-D data) but dims={dims}; pass dims=2 or flatten X")
        shape = (int(arr.shape[1]), int(arr.shape[2]))
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2:
        raise ValueError(f"X must be (n_samples, n_features) or (n_samples, h, w), got shape {arr.shape}")
    n = arr.shape[1]
    if dims != 2 and shape is not None:
        raise ValueError(f"shape={tuple(shape)} describes a grid but dims={dims}; pass dims=2 to rearrange on the "
                         "grid, or drop shape")
    if dims == 2 and shape is None:
        r = math.isqrt(n)
        if r * r != n:
            raise ValueError(f"dims=2 needs the grid shape: X has {n} features, not a square; pass shape=(h, w)")
        shape = (r, r)
    if shape is not None:
        shape = grid_shape(shape, n)
    if n < 2:
        raise ValueError(f"X has {n} feature(s); rearranging needs at least 2")
    if not np.isfinite(arr.astype(np.float64)).all():
        raise ValueError("X holds non-finite values; impute or drop them first")
    return arr, shape


class _BaseRearrangement(TransformerMixin, BaseEstimator):
    """Shared ``transform`` / ``inverse_transform`` for estimators that learn ``permutation_``.

    After ``fit``: ``permutation_`` (n_features,) with position ``p`` of the output holding input feature
    ``permutation_[p]``; ``objective_before_`` and ``objective_after_`` (``Σ_K SE(K)`` over the canonical
    partitions, input order vs learned order); ``n_features_in_``; ``shape_`` (2-D grid or None).
    """

    dims: int = 1
    shape = None

    def _learn(self, X, corr: np.ndarray, shape) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X, y=None):
        """Learn ``permutation_`` from ``X`` (n_samples, n_features) or (n_samples, h, w); ``y`` is ignored."""
        check_option("dims", self.dims, (1, 2), fix="1: a chain of features; 2: a grid (pass shape=(h, w))")
        arr, shape = _check_X(X, self.dims, self.shape)
        corr = abs_correlation(arr)
        perm = np.asarray(self._learn(arr, corr, shape), dtype=np.int64)
        self.n_features_in_ = arr.shape[1]
        self.shape_ = shape
        self.permutation_ = perm
        self.objective_before_ = rearrangement_objective(corr, np.arange(arr.shape[1]), shape)
        self.objective_after_ = rearrangement_objective(corr, perm, shape)
        return self

    def _prepare(self, X):
        if not hasattr(self, "permutation_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")
        arr = np.asarray(X)
        flat = arr.reshape(arr.shape[0], -1) if arr.ndim == 3 else arr
        if flat.ndim != 2 or flat.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has shape {arr.shape}; this rearrangement was fitted on {self.n_features_in_} features"
            )
        return arr, flat

    def transform(self, X):
        """Reorder features: output position ``p`` holds input feature ``permutation_[p]`` (shape kept)."""
        arr, flat = self._prepare(X)
        return flat[:, self.permutation_].reshape(arr.shape)

    def inverse_transform(self, X):
        """Undo :meth:`transform`."""
        arr, flat = self._prepare(X)
        return flat[:, np.argsort(self.permutation_)].reshape(arr.shape)


class FeatureRearrangement(_BaseRearrangement):
    """Reorder features to minimize ``Σ_K SE(K)`` over canonical partitions (P5, Algorithm 1).

    Parameters
    ----------
    dims : {1, 2}
        1: binary tree over a sequence; 2: quad-tree over an ``(h, w)`` grid (row-major positions).
    method : {"mincut"}
        Recursive balanced min-cut partitioning of the ``|Pearson|`` feature graph.
    random_state : int or None
        Seed of the partitioner.
    shape : tuple (h, w), optional
        Grid shape for ``dims=2`` when ``X`` is (n_samples, h * w) (default: square, or X's own for 3-D input).
    backend : {"auto", "metis", "kl"}
        "auto": METIS (pymetis) if installed, else spectral; both refined by Kernighan–Lin.

    Attributes
    ----------
    permutation_ : ndarray (n_features,)
    objective_before_, objective_after_ : float
    n_features_in_ : int
    shape_ : tuple or None

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> base = rng.normal(size=(300, 4))
    >>> X = np.concatenate([base, base + 0.1 * rng.normal(size=(300, 4))], axis=1)
    >>> fr = FeatureRearrangement(random_state=0).fit(X)
    >>> fr.objective_after_ < 0.6 * fr.objective_before_
    True
    """

    def __init__(
        self,
        dims: int = 1,
        method: RearrangeMethod = "mincut",
        random_state: int | None = None,
        shape=None,
        backend: BisectBackend = "auto",
    ):
        self.dims = dims
        self.method = method
        self.random_state = random_state
        self.shape = shape
        self.backend = backend

    def _learn(self, X, corr, shape):
        check_option("method", self.method, RearrangeMethod)
        check_option("backend", self.backend, BisectBackend)
        seed = 0 if self.random_state is None else int(self.random_state)
        n = corr.shape[0]
        perm = np.empty(n, dtype=np.int64)

        def split(feats: np.ndarray, size_a: int) -> tuple[np.ndarray, np.ndarray]:
            mask = bisect(corr[np.ix_(feats, feats)], size_a, self.backend, seed)
            return feats[mask], feats[~mask]

        if shape is None:

            def rec(feats: np.ndarray, positions: np.ndarray) -> None:
                if len(positions) == 1:
                    perm[positions[0]] = feats[0]
                    return
                left, right = np.array_split(positions, 2)
                a, b = split(feats, len(left))
                rec(a, left)
                rec(b, right)

            rec(np.arange(n), np.arange(n))
        else:

            def rec2(feats: np.ndarray, grid: np.ndarray) -> None:
                if grid.size == 1:
                    perm[grid.ravel()[0]] = feats[0]
                    return
                top, bottom = np.array_split(grid, 2, axis=0)
                ft, fb = split(feats, top.size)
                for half, fh in ((top, ft), (bottom, fb)):
                    if half.size == 0:
                        continue
                    left, right = np.array_split(half, 2, axis=1)
                    fl, fr = split(fh, left.size)
                    for quad, fq in ((left, fl), (right, fr)):
                        if quad.size:
                            rec2(fq, quad)

            rec2(np.arange(n), np.arange(n).reshape(shape))
        return perm


class RandomRearrangement(_BaseRearrangement):
    """A uniformly random order (baseline), same interface as :class:`FeatureRearrangement`.

    Parameters
    ----------
    dims : {1, 2}
    random_state : int or None
    shape : tuple (h, w), optional
    """

    def __init__(self, dims: int = 1, random_state: int | None = None, shape=None):
        self.dims = dims
        self.random_state = random_state
        self.shape = shape

    def _learn(self, X, corr, shape):
        return np.random.default_rng(self.random_state).permutation(corr.shape[0])
