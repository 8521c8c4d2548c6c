"""Rank measures of matrices and tensors: effective rank, matricization ranks, hierarchical tensor rank."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from tnml.mode_trees import tree_leaves, tree_nodes, validate_tree
from tnml.spectrum import default_rtol, matricize, numerical_rank, renyi_entropy
from tnml.validation import as_float

__all__ = ["effective_rank", "hierarchical_rank", "matricization", "matricization_rank", "singular_values"]


def _as_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.dtype in (torch.bfloat16, torch.float16):
            a = a.float()
        return a.numpy()
    return np.asarray(a)


def singular_values(matrix) -> np.ndarray:
    """Singular values of a 2-D real or complex array or tensor, descending, as a float64 numpy array.

    Parameters
    ----------
    matrix : array_like or torch.Tensor, shape (m, n)
        Real or complex entries, all finite.

    Returns
    -------
    numpy.ndarray, shape (min(m, n),)
        The singular values, descending.

    Raises
    ------
    ValueError
        Not 2-D, or NaN / infinite entries (whose singular values are meaningless).
    TypeError
        Not numeric.
    """
    m = _as_numpy(matrix)
    if m.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {m.shape}; matricize a tensor first (matricization)")
    if m.dtype == np.bool_ or not (np.issubdtype(m.dtype, np.number)):
        raise TypeError(f"matrix must hold real or complex numbers, got dtype {m.dtype}")
    work = m.astype(np.complex128 if np.iscomplexobj(m) else np.float64, copy=False)
    if not np.isfinite(work).all():
        bad = int((~np.isfinite(work)).sum())
        raise ValueError(
            f"matrix has {bad} NaN or infinite entr{'y' if bad == 1 else 'ies'}; its singular values (and ranks) "
            "are undefined; check the values (e.g. a diverged training run)"
        )
    return np.linalg.svd(work, compute_uv=False).real.astype(np.float64, copy=False)


def effective_rank(matrix, tol: float | None = None) -> float:
    r"""Effective rank (Roy & Vetterli 2007): :math:`\exp(-\sum_i q_i \ln q_i)`, :math:`q = \sigma / \sum \sigma`
    over the nonzero singular values.

    Parameters
    ----------
    matrix : array or Tensor, shape (m, n)
    tol : float, optional
        Singular values at or below ``tol`` count as zero (default ``max(m, n) * eps * σ_max``).

    Returns
    -------
    float in ``[1, min(m, n)]`` (0.0 for the zero matrix).

    References
    ----------
    O. Roy and M. Vetterli, The effective rank: a measure of effective dimensionality, EUSIPCO 2007.

    Examples
    --------
    >>> effective_rank(np.eye(2))
    2.0
    >>> round(effective_rank(np.diag([3.0, 1.0])), 5)
    1.75477
    >>> round(effective_rank([[10.0, 1.0], [1.0, 0.0]]), 4)
    1.0562
    """
    s = singular_values(matrix)
    if tol is not None:
        tol = as_float("tol", tol, minimum=0.0, fix="or None (default: max(m, n) * eps * σ_max)")
    if s.size == 0 or s[0] == 0:
        return 0.0
    if tol is None:
        tol = default_rtol(max(np.shape(_as_numpy(matrix))), np.float64) * s[0]
    kept = s[s > tol]
    if kept.size == 0:  # tol removes every value: the zero matrix's effective rank
        return 0.0
    return float(np.exp(renyi_entropy(kept)))  # Shannon entropy of q = σ / Σσ


def matricization(tensor, rows: Iterable[int]) -> np.ndarray:
    """``[[W]]_I``: the modes in ``rows`` (in the given order) index rows, the others (ascending) columns.

    Parameters
    ----------
    tensor : array or Tensor of order N
    rows : iterable of int
        Modes ``I ⊂ {0..N-1}``.

    Returns
    -------
    ndarray, shape (prod of dims in I, prod of the other dims)
    """
    return matricize(_as_numpy(tensor), rows)


def matricization_rank(tensor, rows: Iterable[int], tol: float | None = None, *, rtol: float | None = None) -> int:
    """Rank of ``[[W]]_I`` (``numpy.linalg.matrix_rank``; ``tol`` as there, default relative to σ_max).

    Parameters
    ----------
    tensor : array_like or torch.Tensor, shape (d_0, ..., d_{N-1})
        The tensor ``W``.
    rows : iterable of int
        The axes ``I`` that index the rows of the matricization.
    tol : float, optional
        Singular values above ``tol`` count; default ``σ_max · max(m, n) · eps`` as in ``numpy.linalg.matrix_rank``
        (the ``"svd"`` policy of :mod:`tnml.spectrum`).
    rtol : float, optional
        A threshold relative to ``σ_max`` instead of ``tol`` (give at most one of the two).

    Returns
    -------
    int
        The number of singular values of ``[[W]]_I`` above ``tol``.

    Examples
    --------
    >>> ghz = np.zeros((2, 2, 2)); ghz[0, 0, 0] = ghz[1, 1, 1] = 1
    >>> matricization_rank(ghz, [0]), matricization_rank(ghz, [0, 2])
    (2, 2)
    """
    m = matricization(tensor, rows)
    s = singular_values(m)  # complex tensors stay complex; NaN / inf refused
    if tol is not None and rtol is not None:
        raise ValueError(f"give at most one of tol (absolute) and rtol (relative), got tol={tol!r}, rtol={rtol!r}")
    if rtol is not None:
        return numerical_rank(s, as_float("rtol", rtol, minimum=0.0, fix="a threshold relative to σ_max"))
    if tol is None:
        return numerical_rank(s, default_rtol(max(m.shape), np.float64))
    return numerical_rank(s, atol=as_float("tol", tol, minimum=0.0, fix="or None (default relative to σ_max)"))


def hierarchical_rank(
    tensor, tree=None, tol: float | None = None, *, rtol: float | None = None
) -> dict[tuple[int, ...], int]:
    """Hierarchical tensor rank: ``rank [[W]]_ν`` for every node ``ν`` of a mode tree except the root.

    Parameters
    ----------
    tensor : array or Tensor of order N
    tree : nested sequences of mode ids, optional
        Default: the contiguous binary tree (:func:`tnml.networks.contiguous_tree`).
    tol, rtol : float, optional
        Passed to :func:`matricization_rank` (absolute or relative threshold; at most one).

    Returns
    -------
    dict
        ``{node's modes (tuple): rank}``, nodes in post-order (leaves included).

    Examples
    --------
    >>> w = np.einsum("i,j,k,l->ijkl", *np.ones((4, 2)))
    >>> set(hierarchical_rank(w).values())
    {1}
    """
    from tnml.mode_trees import contiguous_tree

    n = _as_numpy(tensor).ndim
    tree = contiguous_tree(n, 2) if tree is None else validate_tree(tree, n)
    root = tuple(tree_leaves(tree))
    return {b: matricization_rank(tensor, b, tol, rtol=rtol) for b in tree_nodes(tree) if b != root}
