"""Surrogate entanglement (P5): ``SE(K) = Σ_{n∈K, n'∉K} |Pearson(x_n, x_n')|``, a cheap proxy for data QE."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tnml.entanglement.partitions import canonical_partitions, validate_partition
from tnml.validation import check_dense_bytes

__all__ = ["abs_correlation", "surrogate_entanglement"]


def abs_correlation(X) -> np.ndarray:
    """``|Pearson(x_n, x_n')|`` for all feature pairs, with 0 wherever a feature has zero variance.

    A constant feature has no defined correlation; it carries no interaction with any other feature, so its row
    and column are set to 0 (numpy would give NaN). The diagonal is 0 as well (a feature is never on both sides).

    Parameters
    ----------
    X : array-like (n_samples, n_features)

    Returns
    -------
    ndarray (n_features, n_features)

    Examples
    --------
    >>> abs_correlation([[0.0, 1.0, 5.0], [1.0, 0.0, 5.0], [2.0, -1.0, 5.0]])
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 0., 0.]])
    """
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {arr.dtype}; convert non-numeric columns first")
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"X must be (n_samples >= 2, n_features), got shape {arr.shape}")
    m, n = arr.shape
    check_dense_bytes(  # the n x n statistics (product, |.|, clipped copy) and two float64 copies of X
        8 * (3 * n * n + 2 * m * n), f"the {n}x{n} feature correlation matrix of X {arr.shape}",
        "use fewer features (e.g. select or pool them first)",
    )
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError("X holds non-finite values; impute or drop them first")
    z = arr - arr.mean(axis=0)
    norm = np.sqrt((z * z).sum(axis=0))
    scale = np.max(np.abs(arr), axis=0) * np.sqrt(arr.shape[0]) * 1e-12
    const = norm <= scale
    z = z / np.where(const, 1.0, norm)
    c = np.abs(z.T @ z)
    c[const, :] = 0.0
    c[:, const] = 0.0
    np.fill_diagonal(c, 0.0)
    return np.minimum(c, 1.0)


def surrogate_entanglement(X, partitions: Iterable | None = None, *, shape: tuple[int, int] | None = None
                           ) -> np.ndarray:
    """Surrogate entanglement of data across each partition: ``SE(K) = Σ_{n∈K, n'∉K} |Pearson(x_n, x_n')|``.

    Zero-variance (constant) features contribute 0 to every sum (see :func:`abs_correlation`).

    Parameters
    ----------
    X : array-like (n_samples, n_features) or (n_samples, h, w)
    partitions : list of parts, optional
        Default: the canonical partitions (1-D, or 2-D for a 3-D ``X`` or when ``shape`` is given).
    shape : tuple (h, w), optional
        Grid shape for the default 2-D canonical partitions.

    Returns
    -------
    ndarray (n_partitions,)

    References
    ----------
    Alexander et al., *What Makes Data Suitable for a Locally Connected Neural Network?* NeurIPS 2023, Sec. 5.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(2, 500))
    >>> X = np.stack([a, b, a + 0.01 * rng.normal(size=500), b + 0.01 * rng.normal(size=500)], axis=1)
    >>> [round(float(v), 1) for v in surrogate_entanglement(X, [[0, 1], [0, 2]])]
    [2.0, 0.0]
    """
    arr = np.asarray(X)
    if arr.ndim == 3 and shape is None:
        shape = (int(arr.shape[1]), int(arr.shape[2]))
    if shape is not None:
        if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 2:
            raise ValueError(f"shape must be a pair (h, w), got {shape!r}")
        n_feat = int(np.prod(arr.shape[1:])) if arr.ndim >= 2 else 0
        if int(shape[0]) * int(shape[1]) != n_feat:
            raise ValueError(
                f"shape={tuple(shape)} has {int(shape[0]) * int(shape[1])} sites but X has {n_feat} features; give "
                "the grid the features form (h * w = n_features)"
            )
    c = abs_correlation(arr)
    n = c.shape[0]
    if partitions is None:
        partitions = canonical_partitions(shape=(int(shape[0]), int(shape[1]))) if shape is not None \
            else canonical_partitions(n)
    out = []
    for p in partitions:
        mask = np.zeros(n, dtype=bool)
        mask[list(validate_partition(p, n))] = True
        out.append(float(c[mask][:, ~mask].sum()))
    return np.asarray(out)
