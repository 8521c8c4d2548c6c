"""Small locally connected convolutional networks (plain torch) for the data-suitability experiments (P5).

Both networks see the features only through small kernels followed by pooling, so what they can learn depends on
the order of the features: correlated features placed far apart must be joined high in the pooling hierarchy. They
are the "locally connected neural networks" whose fit P5 predicts from the data's entanglement.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["CNN1D", "CNN2D"]


def _check_channels(channels) -> tuple[int, ...]:
    ch = tuple(int(c) for c in channels)
    if not ch or any(c < 1 for c in ch):
        raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels!r}")
    return ch


class CNN1D(nn.Module):
    """1-D CNN over a feature sequence: ``[conv(k) → BatchNorm → ReLU → maxpool(2)] × L → global mean → linear``.

    Parameters
    ----------
    n_features : int
        Sequence length N (input ``(batch, N)`` or ``(batch, in_channels, N)``).
    n_classes : int
        Output logits.
    channels : sequence of int
        Channels of each conv block (L = its length); pooling stops once the length is 1.
    kernel_size : int
        Odd kernel width (padding keeps the length).
    in_channels : int
    dropout : float
        Dropout before the linear head.
    """

    def __init__(self, n_features: int, n_classes: int, channels: Sequence[int] = (32, 64, 128), kernel_size: int = 3,
                 in_channels: int = 1, dropout: float = 0.0):
        super().__init__()
        if n_features < 1 or n_classes < 1:
            raise ValueError(f"n_features and n_classes must be >= 1, got {n_features}, {n_classes}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.n_features, self.n_classes, self.in_channels = int(n_features), int(n_classes), int(in_channels)
        layers: list[nn.Module] = []
        length, c_in = self.n_features, self.in_channels
        for c in _check_channels(channels):
            layers += [nn.Conv1d(c_in, c, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(c), nn.ReLU()]
            if length > 1:
                layers.append(nn.MaxPool1d(2, ceil_mode=True))
                length = (length + 1) // 2
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, self.n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = x.unsqueeze(1)
        if x.ndim != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.n_features:
            raise ValueError(f"expected (batch, {self.n_features}) or (batch, {self.in_channels}, {self.n_features}),"
                             f" got {tuple(x.shape)}")
        return self.head(self.features(x).mean(-1))


class CNN2D(nn.Module):
    """2-D CNN over an ``(h, w)`` grid: ``[conv(k×k) → BatchNorm → ReLU → maxpool(2×2)] × L → global mean → linear``.

    Parameters
    ----------
    shape : tuple (h, w)
        Grid shape; input ``(batch, h, w)``, ``(batch, h * w)`` (row-major) or ``(batch, in_channels, h, w)``.
    n_classes : int
    channels : sequence of int
    kernel_size : int
        Odd kernel size.
    in_channels : int
    dropout : float
    """

    def __init__(self, shape: tuple[int, int], n_classes: int, channels: Sequence[int] = (32, 64, 128),
                 kernel_size: int = 3, in_channels: int = 1, dropout: float = 0.0):
        super().__init__()
        h, w = (int(s) for s in shape)
        if h < 1 or w < 1 or n_classes < 1:
            raise ValueError(f"shape and n_classes must be positive, got {shape}, {n_classes}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.shape, self.n_classes, self.in_channels = (h, w), int(n_classes), int(in_channels)
        layers: list[nn.Module] = []
        c_in = self.in_channels
        for c in _check_channels(channels):
            layers += [nn.Conv2d(c_in, c, kernel_size, padding=kernel_size // 2), nn.BatchNorm2d(c), nn.ReLU()]
            if h > 1 or w > 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                h, w = (h + 1) // 2, (w + 1) // 2
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, self.n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.shape
        if x.ndim == 2 and x.shape[1] == h * w:
            x = x.reshape(-1, h, w)
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, h, w):
            raise ValueError(f"expected (batch, {h}, {w}), (batch, {h * w}) or (batch, {self.in_channels}, {h}, {w}),"
                             f" got {tuple(x.shape)}")
        return self.head(self.features(x).mean((-2, -1)))
