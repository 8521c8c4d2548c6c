"""A small CNN whose last unit sees the whole input: a non-separable baseline for pairs of images.

``stages`` blocks of 3×3 convolution, ReLU and 2×2 max-pooling (ceil mode) pool a canvas of up to
``2**stages`` columns down to one unit, so no unit is restricted to a local patch (the opposite of the
locally connected networks of :mod:`tnml.networks`).
"""

from __future__ import annotations

from torch import nn

__all__ = ["global_cnn", "receptive_field"]


def global_cnn(width: int = 8, stages: int = 6) -> nn.Module:
    """``stages`` blocks of 3×3 conv (padding 1), ReLU and 2×2 max-pool (ceil mode), then a linear head with one logit.

    Widths ``width`` for the first two blocks and ``2 · width`` after. A canvas of up to ``2**stages`` columns (and
    rows) pools down to a single 1×1 unit, so the last conv layer's one unit sees the whole canvas (receptive field
    :func:`receptive_field` columns) and the model is not separable across the two digits by construction.

    Parameters
    ----------
    width : int
        Channels of the first two blocks (``2 · width`` after).
    stages : int
        Number of conv + pool blocks.

    Returns
    -------
    nn.Sequential
        Maps images ``(batch, 1, height, width)`` with ``height, width <= 2**stages`` to logits ``(batch, 1)``.

    Examples
    --------
    >>> import torch
    >>> global_cnn(width=4, stages=5)(torch.rand(3, 1, 8, 24)).shape
    torch.Size([3, 1])
    """
    if stages < 1 or width < 1:
        raise ValueError(f"stages={stages} and width={width} must be positive integers")
    layers: list[nn.Module] = []
    c_in = 1
    for s in range(stages):
        c_out = width if s < 2 else 2 * width
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
        c_in = c_out
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in, 1))


def receptive_field(stages: int = 6) -> int:
    """Receptive field (columns) of one unit after ``stages`` (3×3 conv, 2×2 pool) blocks, layer by layer: a conv
    adds ``2 · jump``, a pool adds ``jump`` and doubles the jump (``3 · 2**stages − 2``: 190 for 6 stages).

    Parameters
    ----------
    stages : int
        Number of (3×3 conv, 2×2 pool) blocks.

    Returns
    -------
    int
        Columns (and rows) of the input one unit after the last block depends on.

    Examples
    --------
    >>> receptive_field(6)
    190
    """
    r, jump = 1, 1
    for _ in range(stages):
        r += 2 * jump
        r += jump
        jump *= 2
    return r
