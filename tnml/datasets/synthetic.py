"""Synthetic data sets with a planted structure, drawn from a seed (no files)."""

from __future__ import annotations

import numpy as np

from tnml.validation import check_dense_bytes, positive_int

__all__ = ["planted_pairs"]


def planted_pairs(
    n_samples: int = 3000, n_features: int = 32, rho: float = 0.8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 1-D data with planted long-range pairs: features ``i`` and ``i + N/2`` are strongly correlated and
    the label depends only on products within the pairs.

    With ``h = N / 2`` pairs and i.i.d. standard normals ``u_i, e_i`` (per sample):

    * ``x_i = u_i`` and ``x_{i+h} = ρ u_i + sqrt(1 - ρ²) e_i`` — each pair has Pearson correlation ``ρ``, features
      of different pairs are independent;
    * ``f_i = x_i x_{i+h} - ρ/(1 + ρ²) (x_i² + x_{i+h}²) - c`` with ``c = ρ(ρ² - 1)/(1 + ρ²)`` (so ``E f_i = 0``):
      the product of the pair minus its best prediction from the squares. ``E[f_i | x_i]`` and ``E[f_i | x_{i+h}]``
      are both constant, so no sum of single-feature functions predicts ``f_i`` (its L2 projection onto
      ``g(x_i) + g'(x_{i+h})`` is 0);
    * label ``y = 1[Σ_i f_i > 0]`` (about balanced).

    In the original order every pair straddles the root cut (distance ``N/2``): a locally connected model must join
    the two halves high in its hierarchy, and the label needs all ``h`` products across that one cut. Rearranging by
    ``|Pearson|`` should put each pair in one small block, where a local window or a low tree node sees both.

    Parameters
    ----------
    n_samples : int
    n_features : int
        Even, ``N >= 2``.
    rho : float
        Pair correlation, ``0 < rho < 1``.
    seed : int
        Seed of the draw.

    Returns
    -------
    X : ndarray (n_samples, n_features) float64
    y : ndarray (n_samples,) int64 in {0, 1}

    Examples
    --------
    >>> X, y = planted_pairs(2000, 8, rho=0.8, seed=0)
    >>> round(float(np.corrcoef(X[:, 1], X[:, 5])[0, 1]), 1), round(float(np.corrcoef(X[:, 1], X[:, 2])[0, 1]), 1)
    (0.8, 0.0)
    """
    if (
        isinstance(n_features, bool)
        or not isinstance(n_features, (int, np.integer))
        or n_features < 2
        or n_features % 2
    ):
        raise ValueError(f"n_features must be an even integer >= 2 (pairs i, i + N/2), got {n_features!r}")
    n_samples = positive_int("n_samples", n_samples, 2)
    check_dense_bytes(
        5 * 8 * n_samples * int(n_features),  # u, v, f and the concatenated X, float64
        f"planted_pairs with {n_samples} samples of {n_features} features",
        "use fewer samples or features",
    )
    if not 0.0 < float(rho) < 1.0:
        raise ValueError(f"rho must be in (0, 1) (pair correlation), got {rho!r}")
    h = n_features // 2
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_samples, h))
    v = rho * u + np.sqrt(1.0 - rho**2) * rng.normal(size=(n_samples, h))
    a = rho / (1.0 + rho**2)
    f = u * v - a * (u**2 + v**2) - rho * (rho**2 - 1.0) / (1.0 + rho**2)
    y = (f.sum(1) > 0).astype(np.int64)
    return np.concatenate([u, v], axis=1), y
