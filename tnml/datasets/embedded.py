"""Embedded data sets (no download): scikit-learn's bundled digits, with seeded splits."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def digits(test_size: float = 0.2, seed: int = 0, dtype=torch.float32):
    """scikit-learn's 8×8 digits (1 797 images), pixels scaled to [0, 1], stratified seeded split.

    Returns
    -------
    x_train, x_test : Tensor, shape (n, 64) row-major 8×8 pixels
    y_train, y_test : Tensor of int64 labels in 0..9
    """
    d = load_digits()
    x = (d.data / 16.0).astype(np.float64)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=test_size, random_state=seed, stratify=d.target)
    t = lambda a, dt: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return t(xtr, dtype), t(xte, dtype), t(ytr, torch.long), t(yte, torch.long)
