"""Embedded data sets (no download): scikit-learn's bundled digits, with seeded splits."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tnml.validation import check_dense_bytes, positive_int


def digits(test_size: float = 0.2, seed: int = 0, dtype=torch.float32):
    """scikit-learn's 8×8 digits (1 797 images), pixels scaled to [0, 1], stratified seeded split.

    Returns
    -------
    x_train, x_test : Tensor, shape (n, 64) row-major 8×8 pixels
    y_train, y_test : Tensor of int64 labels in 0..9
    """
    _float_dtype(dtype)
    d = load_digits()
    x = (d.data / 16.0).astype(np.float64)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=test_size, random_state=seed, stratify=d.target)
    t = lambda a, dt: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return t(xtr, dtype), t(xte, dtype), t(ytr, torch.long), t(yte, torch.long)


def digits_upsampled(size: int = 28, test_size: float = 0.2, seed: int = 0, dtype=torch.float32):
    """scikit-learn's 8×8 digits upsampled to ``size × size`` by bilinear interpolation: an MNIST-shaped stand-in
    (784 pixels for ``size=28``) that ships with scikit-learn. Same split as :func:`digits`.

    Pixels stay in [0, 1] (``torch.nn.functional.interpolate``, ``align_corners=False``, clamped); like MNIST, many
    pixels are 0 or near it (30 % exactly 0, 39 % below 0.05 at ``size=28``).

    Parameters
    ----------
    size : int
        Side of the upsampled image (>= 8).
    test_size : float
        Fraction of the 1 797 images held out (stratified).
    seed : int
        Seed of the split.
    dtype : torch.dtype
        Of the returned pixels.

    Returns
    -------
    x_train, x_test : Tensor, shape (n, size * size) row-major pixels
    y_train, y_test : Tensor of int64 labels in 0..9

    Examples
    --------
    >>> xtr, xte, ytr, yte = digits_upsampled()
    >>> tuple(xtr.shape), tuple(xte.shape)
    ((1437, 784), (360, 784))
    """
    size = positive_int("size", size, 8, fix="the source images are 8x8")
    _float_dtype(dtype)
    check_dense_bytes(1797 * size * size * 8 * 2, f"1797 digits upsampled to {size}x{size}", "use a smaller size")
    xtr, xte, ytr, yte = digits(test_size=test_size, seed=seed, dtype=torch.float64)

    def up(x: torch.Tensor) -> torch.Tensor:
        img = torch.nn.functional.interpolate(x.view(-1, 1, 8, 8), size=(size, size), mode="bilinear")
        return img.clamp(0.0, 1.0).reshape(len(x), size * size).to(dtype)

    return up(xtr), up(xte), ytr, yte


def _float_dtype(dtype) -> None:
    """Pixels lie in [0, 1]: an integer dtype would truncate them to {0, 1}."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a floating torch dtype (pixels lie in [0, 1]; an integer dtype truncates them), got "
            f"{dtype!r}; use torch.float32 or torch.float64"
        )
