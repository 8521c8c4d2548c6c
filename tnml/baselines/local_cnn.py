"""Small locally connected convolutional networks (plain torch) for the data-suitability experiments (P5).

Both networks see the features only through small kernels followed by pooling, so what they can learn depends on
the order of the features: correlated features placed far apart must be joined high in the pooling hierarchy. They
are the "locally connected neural networks" whose fit P5 predicts from the data's entanglement.

By default they pool down a tree to **a single position** (one ``conv → pool(2)`` block per halving, the depth set
by the input size), as P5's networks do: the head then sees one feature vector that was built by joining
neighbours, neighbours of neighbours, and so on. A network given fewer blocks ends in a global mean over the
positions left (``shallow``): it throws away *where* a pattern was, and on Statlog DNA it scored 78.2 % instead of
94.7 % in the original order and lost 42 points (not 8) to a feature permutation (P5's dna row: 82.55 % permuted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tnml.validation import positive_int

__all__ = ["CNN1D", "CNN2D", "pooling_depth", "tree_channels"]


def pooling_depth(size: int) -> int:
    """Number of ``pool(2)`` (ceil mode) blocks that bring a length ``size`` down to 1: ``ceil(log2 size)``.

    >>> pooling_depth(180), pooling_depth(64), pooling_depth(8), pooling_depth(1)
    (8, 6, 3, 0)
    """
    if isinstance(size, bool) or int(size) != size or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    return max(0, math.ceil(math.log2(int(size))))


def tree_channels(size: int, width: int = 32, max_width: int = 128) -> tuple[int, ...]:
    """Default channels of a CNN that pools ``size`` positions down to one: ``pooling_depth(size)`` blocks (at least
    one), ``width`` channels doubling every second block, capped at ``max_width``.

    >>> tree_channels(180)
    (32, 32, 64, 64, 128, 128, 128, 128)
    >>> tree_channels(8, width=16)
    (16, 16, 32)
    """
    if width < 1 or max_width < width:
        raise ValueError(f"need 1 <= width <= max_width, got width={width}, max_width={max_width}")
    return tuple(min(width * 2 ** (i // 2), max_width) for i in range(max(1, pooling_depth(size))))


def _check_channels(channels, size: int, width: int, max_width: int) -> tuple[int, ...]:
    if channels is None:
        return tree_channels(size, width, max_width)
    ch = tuple(int(c) for c in channels)
    if not ch or any(c < 1 for c in ch):
        raise ValueError(f"channels must be None (pool down to one position) or a non-empty sequence of positive "
                         f"ints, got {channels!r}")
    return ch


class CNN1D(nn.Module):
    """1-D CNN over a feature sequence: ``[conv(k) → BatchNorm → ReLU → maxpool(2)] × L → mean → linear``.

    Parameters
    ----------
    n_features : int
        Sequence length N (input ``(batch, N)`` or ``(batch, in_channels, N)``).
    n_classes : int
        Output logits.
    channels : sequence of int, optional
        Channels of each conv block (L = its length). Default :func:`tree_channels`\\ ``(N, width, max_width)``:
        ``ceil(log2 N)`` blocks, enough to pool down to a single position, so the final mean is over one
        position. Fewer blocks give a *shallow* network whose mean runs over the positions left; blocks beyond
        length 1 do not pool.
    kernel_size : int
        Odd kernel width (padding keeps the length).
    in_channels : int
    dropout : float
        Dropout before the linear head.
    width, max_width : int
        First and largest channel count of the default schedule (ignored when ``channels`` is given).

    Attributes
    ----------
    channels : tuple of int
    final_length : int
        Positions left before the mean (1: the network pools down to one position).
    """

    def __init__(self, n_features: int, n_classes: int, channels: Sequence[int] | None = None, kernel_size: int = 3,
                 in_channels: int = 1, dropout: float = 0.0, *, width: int = 32, max_width: int = 128):
        super().__init__()
        n_features, n_classes = positive_int("n_features", n_features), positive_int("n_classes", n_classes)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.n_features, self.n_classes, self.in_channels = int(n_features), int(n_classes), int(in_channels)
        self.channels = _check_channels(channels, self.n_features, width, max_width)
        self.kernel_size = int(kernel_size)
        layers: list[nn.Module] = []
        length, c_in = self.n_features, self.in_channels
        for c in self.channels:
            layers += [nn.Conv1d(c_in, c, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(c), nn.ReLU()]
            if length > 1:
                layers.append(nn.MaxPool1d(2, ceil_mode=True))
                length = (length + 1) // 2
            c_in = c
        self.final_length = length
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, self.n_classes))

    @property
    def pools_to_one(self) -> bool:
        """True when the blocks pool the sequence down to a single position (no global mean over positions)."""
        return self.final_length == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = x.unsqueeze(1)
        if x.ndim != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.n_features:
            raise ValueError(f"expected (batch, {self.n_features}) or (batch, {self.in_channels}, {self.n_features}),"
                             f" got {tuple(x.shape)}")
        return self.head(self.features(x).mean(-1))

    def extra_repr(self) -> str:
        return (f"n_features={self.n_features}, n_classes={self.n_classes}, channels={self.channels}, "
                f"final_length={self.final_length}")


class CNN2D(nn.Module):
    """2-D CNN over an ``(h, w)`` grid: ``[conv(k×k) → BatchNorm → ReLU → maxpool(2×2)] × L → mean → linear``.

    Parameters
    ----------
    shape : tuple (h, w)
        Grid shape; input ``(batch, h, w)``, ``(batch, h * w)`` (row-major) or ``(batch, in_channels, h, w)``.
    n_classes : int
    channels : sequence of int, optional
        Default :func:`tree_channels`\\ ``(max(h, w), width, max_width)``: pools down to a single position.
    kernel_size : int
        Odd kernel size.
    in_channels : int
    dropout : float
    width, max_width : int
        As in :class:`CNN1D`.

    Attributes
    ----------
    channels : tuple of int
    final_shape : tuple (h, w)
        Grid left before the mean (``(1, 1)``: pooled down to one position).
    """

    def __init__(self, shape: tuple[int, int], n_classes: int, channels: Sequence[int] | None = None,
                 kernel_size: int = 3, in_channels: int = 1, dropout: float = 0.0, *, width: int = 32,
                 max_width: int = 128):
        super().__init__()
        h, w = (int(s) for s in shape)
        if h < 1 or w < 1 or n_classes < 1:
            raise ValueError(f"shape and n_classes must be positive, got {shape}, {n_classes}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.shape, self.n_classes, self.in_channels = (h, w), int(n_classes), int(in_channels)
        self.channels = _check_channels(channels, max(h, w), width, max_width)
        self.kernel_size = int(kernel_size)
        layers: list[nn.Module] = []
        c_in = self.in_channels
        for c in self.channels:
            layers += [nn.Conv2d(c_in, c, kernel_size, padding=kernel_size // 2), nn.BatchNorm2d(c), nn.ReLU()]
            if h > 1 or w > 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                h, w = (h + 1) // 2, (w + 1) // 2
            c_in = c
        self.final_shape = (h, w)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, self.n_classes))

    @property
    def pools_to_one(self) -> bool:
        """True when the blocks pool the grid down to a single position."""
        return self.final_shape == (1, 1)

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

    def extra_repr(self) -> str:
        return (f"shape={self.shape}, n_classes={self.n_classes}, channels={self.channels}, "
                f"final_shape={self.final_shape}")
