"""Learned mode trees: a tree tensor network's pooling geometry chosen from the data's entanglement.

P5's theorem says a locally connected (tree) network fits data well iff the data's entanglement is low across
every cut the tree's nodes make. Feature rearrangement (:class:`~tnml.preprocessing.FeatureRearrangement`) reads it
one way: keep the tree, permute the data. :func:`learn_mode_tree` reads it the other way: keep the data, build the
tree. The features are split recursively into balanced blocks (the child sizes of the canonical halving tree in 1-D,
or of the quad-tree over an ``(h, w)`` grid in 2-D) so that the entanglement between the blocks is small:

* ``method="surrogate"``: each split is a balanced minimum cut of the complete feature graph with weights
  ``|Pearson(x_n, x_n')|`` (the bisection of :func:`tnml.preprocessing.rearrangement.bisect`, METIS when pymetis is
  installed, refined by Kernighan–Lin; exhaustive on blocks of at most 12 features). For a node with children
  ``K_1..K_c``, ``Σ_j SE(K_j)`` is twice the cut between the children plus a term fixed by the splits above, so
  each split minimizes its level's share of ``Σ_K SE(K)``.
* ``method="qe"``: several candidate splits (the partitioner under different seeds) are scored by the QE of the
  empirical data tensor across each child block (:func:`tnml.entanglement.data_entanglement`, from samples); the
  lowest sum wins, ties (QE from ``M`` samples saturates near ``ln M`` on large blocks) broken by the cut weight.

Both only read the data they are given (fit them on the training split). The data is never permuted: the leaves of
the returned tree are the original feature indices, so ``TTN(tree=learn_mode_tree(X_train, ...))`` reads ``X``
as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tnml.entanglement import data_entanglement
from tnml.entanglement.data_entanglement import qe_batch_rows
from tnml.entanglement.surrogate import abs_correlation
from tnml.mode_trees import ModeTree
from tnml.options import TreeMethod, choices
from tnml.preprocessing.rearrangement import bisect
from tnml.validation import check_option, grid_shape, positive_int

__all__ = ["LearnedTree", "learn_mode_tree", "learn_mode_tree_layout"]

METHODS = choices(TreeMethod)


@dataclass
class LearnedTree:
    """A learned mode tree and where its leaves sit on the canonical tree.

    Attributes
    ----------
    tree : ModeTree
        Nested tuples of feature indices.
    order : ndarray (n_features,)
        Position ``p`` of the canonical layout holds feature ``order[p]``; the tree's nodes are exactly the
        canonical blocks (1-D halving, or 2-D quad-tree over ``shape``) of ``X[:, order]`` (arity 2 / dims 2 only;
        for other arities the DFS order of the leaves).
    shape : (int, int) or None
        The grid of the 2-D layout.
    canonical : bool
        True when the nodes are the canonical blocks of ``X[:, order]`` (so the QE of every node comes from one
        shared pass of :func:`tnml.entanglement.data_entanglement`).
    """

    tree: ModeTree
    order: np.ndarray
    shape: tuple[int, int] | None
    canonical: bool


def _check(X, dims, shape):
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {arr.dtype}; convert non-numeric columns first")
    if arr.ndim == 3:
        shape = (int(arr.shape[1]), int(arr.shape[2])) if shape is None else shape
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"X must be (n_samples >= 2, n_features) or (n_samples, h, w), got shape {arr.shape}")
    n = arr.shape[1]
    if n < 2:
        raise ValueError(f"X has {n} feature(s); a mode tree needs at least 2")
    check_option("dims", dims, (1, 2), fix="1: binary / arity-way splits; 2: quad-tree block sizes")
    if dims == 2:
        if shape is None:
            r = math.isqrt(n)
            if r * r != n:
                raise ValueError(f"dims=2 needs shape=(h, w): X has {n} features, not a square number")
            shape = (r, r)
        shape = grid_shape(shape, n)
    else:
        shape = None
    if not np.isfinite(arr.astype(np.float64)).all():
        raise ValueError("X holds non-finite values; impute or drop them first")
    return arr.astype(np.float64), shape


class _Splitter:
    """Splits a block of features into parts of given sizes with low entanglement between them."""

    def __init__(self, X, y, corr, method, seed, n_candidates, theta, batch_size, qe_min_size):
        self.X, self.y, self.corr, self.method, self.seed = X, y, corr, method, seed
        self.n_candidates, self.theta, self.batch_size, self.qe_min_size = n_candidates, theta, batch_size, qe_min_size

    def _cut(self, feats, mask) -> float:
        return float(self.corr[np.ix_(feats[mask], feats[~mask])].sum())

    def two(self, feats: np.ndarray, size_a: int) -> tuple[np.ndarray, np.ndarray]:
        w = self.corr[np.ix_(feats, feats)]
        best = bisect(w, size_a, "auto", self.seed)
        if self.method == "qe" and len(feats) >= self.qe_min_size and 0 < size_a < len(feats):
            cands = [best] + [bisect(w, size_a, "auto", self.seed + 1 + k) for k in range(self.n_candidates - 1)]
            uniq: dict[bytes, np.ndarray] = {}
            for m in cands:
                key = np.sort(feats[m]).tobytes() if m[0] else np.sort(feats[~m]).tobytes()
                uniq.setdefault(key, m)
            cands = list(uniq.values())
            if len(cands) > 1:
                parts = [p for m in cands for p in (feats[m].tolist(), feats[~m].tolist())]
                qe = data_entanglement(self.X, self.y, parts, theta=self.theta, batch_size=self.batch_size,
                                       n_batches=1, seed=self.seed).qe
                scores = [(round(float(qe[2 * k] + qe[2 * k + 1]), 6), self._cut(feats, m)) for k, m in
                          enumerate(cands)]
                best = cands[min(range(len(cands)), key=lambda k: scores[k])]
        return feats[best], feats[~best]

    def many(self, feats: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
        out, rest = [], feats
        for k, s in enumerate(sizes[:-1]):
            a, rest = self.two(rest, s) if sum(sizes[k + 1:]) else (rest, rest[:0])
            out.append(a)
        out.append(rest)
        return out


def learn_mode_tree_layout(X, y=None, *, arity: int = 2, dims: int = 1, shape=None, method: TreeMethod = "surrogate",
                           random_state: int | None = None, n_candidates: int = 4, theta: float = 0.085,
                           batch_size: int = 300) -> LearnedTree:
    """:func:`learn_mode_tree`, also returning where the leaves sit on the canonical tree.

    Parameters
    ----------
    X, y, arity, dims, shape, method, random_state, n_candidates, theta, batch_size
        As in :func:`learn_mode_tree`.

    Returns
    -------
    LearnedTree
        The mode tree, the feature order of its leaves and whether its nodes are canonical blocks.
    """
    arity = positive_int("arity", arity, 2)
    check_option("method", method, TreeMethod)
    n_candidates = positive_int("n_candidates", n_candidates)
    arr, shape = _check(X, dims, shape)
    if method == "qe" and y is None:
        y_used = None
    else:
        y_used = y
    if y is not None and len(np.asarray(y)) != arr.shape[0]:
        raise ValueError(f"y has {len(np.asarray(y))} labels but X has {arr.shape[0]} samples")
    # the cut weights from X as given (so the first QE candidate is exactly the surrogate's split: the correlations
    # of standardized features differ in the last bits, enough to change the partitioner's answer)
    corr = abs_correlation(arr)
    if method == "qe":  # P5's convention for data QE: standardized features, trig map with small theta
        mu, sd = arr.mean(0), arr.std(0)
        arr = (arr - mu) / np.where(sd > 0, sd, 1.0)
    seed = 0 if random_state is None else int(random_state)
    n = arr.shape[1]
    sp = _Splitter(arr, y_used, corr, method, seed, n_candidates, theta, qe_batch_rows(batch_size, arr.shape[0]),
                   qe_min_size=4)
    order = np.empty(n, dtype=np.int64)

    if shape is None:
        def rec(feats: np.ndarray, positions: np.ndarray) -> ModeTree:
            if len(feats) == 1:
                order[positions[0]] = feats[0]
                return int(feats[0])
            pos_parts = [p for p in np.array_split(positions, min(arity, len(feats))) if len(p)]
            parts = sp.many(feats, [len(p) for p in pos_parts])
            return tuple(rec(f, p) for f, p in zip(parts, pos_parts))

        tree = rec(np.arange(n), np.arange(n))
        return LearnedTree(tree, order, None, arity == 2)

    def rec2(feats: np.ndarray, grid: np.ndarray) -> ModeTree:
        if grid.size == 1:
            order[grid.ravel()[0]] = feats[0]
            return int(feats[0])
        top, bottom = np.array_split(grid, 2, axis=0)
        halves = [h for h in (top, bottom) if h.size]
        fh = sp.many(feats, [h.size for h in halves])
        kids = []
        for half, f in zip(halves, fh):
            quads = [q for q in np.array_split(half, 2, axis=1) if q.size]
            for q, fq in zip(quads, sp.many(f, [q.size for q in quads])):
                kids.append(rec2(fq, q))
        return tuple(kids) if len(kids) > 1 else kids[0]

    tree = rec2(np.arange(n), np.arange(n).reshape(shape))
    return LearnedTree(tree, order, shape, True)


def learn_mode_tree(X, y=None, *, arity: int = 2, dims: int = 1, shape=None, method: TreeMethod = "surrogate",
                    random_state: int | None = None, n_candidates: int = 4, theta: float = 0.085,
                    batch_size: int = 300) -> ModeTree:
    """A mode tree over the features of ``X`` whose nodes cut the data where it is least entangled.

    Recursive balanced splits (see the module docstring): 1-D, ``arity`` near-equal parts per node (the halving
    tree for ``arity=2``); 2-D (``dims=2``), the four quadrant sizes of the quad-tree over ``shape`` — only the
    *sizes* of the grid's blocks are kept, not which pixels are neighbours.

    Parameters
    ----------
    X : array-like (n_samples, n_features) or (n_samples, h, w)
        Training samples only.
    y : array-like (n_samples,), optional
        Labels; used by ``method="qe"`` (the labelled data tensor of P5); ``None``: the unlabelled one.
    arity : int, default 2
        Children per node in 1-D.
    dims : {1, 2}
        2: quad-tree block sizes over ``shape`` (default: a square grid, or ``X``'s own for 3-D input).
    shape : (int, int), optional
    method : {"surrogate", "qe"}
        Score of a split: the ``|Pearson|`` cut (surrogate entanglement) or the QE of its blocks from samples.
    random_state : int or None
        Seed of the partitioner (and of the sample batch for ``"qe"``); the result is a function of it.
    n_candidates : int, default 4
        ``"qe"``: candidate splits scored per node.
    theta : float, default 0.085
        ``"qe"``: trig-map parameter of the QE (on standardized features, P5's choice).
    batch_size : int, default 300
        ``"qe"``: samples in the QE batch.

    Returns
    -------
    ModeTree
        Nested tuples of the original feature indices, valid for ``TTN(tree=...)``.

    References
    ----------
    Alexander, De La Vega, Razin, Cohen. *What Makes Data Suitable for a Locally Connected Neural Network?
    A Necessary and Sufficient Condition Based on Quantum Entanglement.* NeurIPS 2023.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> u = rng.normal(size=(500, 3))
    >>> X = np.concatenate([u, u + 0.1 * rng.normal(size=(500, 3))], axis=1)  # features i and i + 3 pair up
    >>> sorted(sorted(node) for node in learn_mode_tree(X[:, [0, 3, 1, 4, 2, 5]][:, :4], random_state=0))
    [[0, 1], [2, 3]]
    """
    return learn_mode_tree_layout(X, y, arity=arity, dims=dims, shape=shape, method=method,
                                  random_state=random_state, n_candidates=n_candidates, theta=theta,
                                  batch_size=batch_size).tree
