"""Fitting a tensor with a network of given ranks: P5's two-sided bounds in terms of the tensor's entanglement (QE).

A locally connected tensor network with inner width ``R`` can only represent tensors whose entanglement across
each canonical partition ``K`` is at most ``ln R`` (more generally, at most the network's min-cut bound across
``K``); P5's theorem says data is fit well iff the QE of its empirical data tensor is low on every canonical
partition. The suitability report (:func:`tnml.workflows.suitability`) applies the two bounds below to the data's
QE (:func:`~tnml.entanglement.data_entanglement`) on every canonical partition.

**The two sides of the theorem, as implemented** (P5's constants are stated up to unspecified factors;
these are the versions proved below, tested as inequalities on exact small cases). Let ``A`` be the data tensor,
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

Verdicts at ``ε`` (``fit_verdict`` of :func:`tnml.workflows.suitability`): *cannot fit* when some block breaks
the necessary bound, *fits* when the sufficient bound is ``<= ε``, else *undetermined*; never "fits" from the
necessary side alone. Both are exact statements about the tensor whose QE is given; the report's QE is an estimate
from sample batches (averaged over batches and, for more than two classes, one-vs-rest labelings), ``r_K`` is
bounded by ``min(2^|K|, 2^|K^c|, batch size)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["necessary_qe_max", "sufficient_error_bound", "truncated_hsvd"]


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
        Blocks of a tree over the axes (e.g. :func:`~tnml.entanglement.canonical_partitions`), nested or disjoint.
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
