"""Reading a CSV data set for the tabular commands (``suitability``, ``design``, ``rearrange``): the features,
labels and feature names, and the grid the ``--dims``/``--shape`` options give for them, or a one-line problem for
:func:`fail`."""

from __future__ import annotations

import argparse
import math

import numpy as np


def load_table(
    args: argparse.Namespace, dims: int, shape: tuple[int, int] | None, needs: str
) -> tuple[np.ndarray, np.ndarray, list[str], tuple[int, int] | None] | str:
    """``(X, y, names, shape)`` of ``args.data`` read with label column ``args.label`` (constant features dropped
    with ``args.drop_constant``, refused otherwise), or the one-line problem.

    Parameters
    ----------
    args : argparse.Namespace
        The command's options: ``data``, ``label``, ``drop_constant``.
    dims, shape
        From :func:`resolve_dims`.
    needs : str
        What the command builds, for the message when fewer than 2 features remain (``"a partition needs"``).

    Returns
    -------
    tuple or str
        ``X`` (n_samples, n_features), ``y`` (n_samples,), the feature names, and the grid ``(H, W)`` for
        ``dims=2`` (``None`` for 1); or the problem as one line.
    """
    from tnml.datasets.tabular_io import load_csv

    try:
        X, y, names = load_csv(args.data, label=args.label, constant="drop" if args.drop_constant else "error")
    except ValueError as e:
        return str(e)
    assert y is not None  # a label column was named
    grid = check_shape(dims, shape, X.shape[1], args.data, needs=needs)
    return grid if isinstance(grid, str) else (X, y, names, grid)


def resolve_dims(dims: int | None, shape) -> tuple[int, tuple[int, int] | None] | str:
    """(dims, shape) from the options, or a one-line problem."""
    if dims is not None and dims not in (1, 2):
        return f"--dims must be 1 (sequence) or 2 (grid), got {dims}"
    if shape is not None:
        h, w = shape
        if h < 1 or w < 1:
            return f"--shape must be two positive integers H W, got {h} {w}"
        if dims == 1:
            return "--shape H W describes a grid; drop it or pass --dims 2"
        return 2, (h, w)
    return (dims or 1), None


def check_shape(dims: int, shape, n_features: int, what: str, needs: str | None = None) -> tuple[int, int] | None | str:
    """The grid for ``n_features`` features, or a one-line problem; with ``needs`` (e.g. ``"a partition needs"``),
    fewer than 2 features is a problem too."""
    grid = _grid(dims, shape, n_features, what)
    if needs is not None and not isinstance(grid, str) and n_features < 2:
        return f"{what}: {n_features} feature column(s); {needs} at least 2"
    return grid


def _grid(dims: int, shape, n_features: int, what: str) -> tuple[int, int] | None | str:
    if dims == 1:
        return None
    if shape is None:
        r = math.isqrt(n_features)
        if r * r != n_features:
            return (f"--dims 2 needs --shape H W: {what} has {n_features} feature columns, which is not a square "
                    "number")
        return r, r
    if shape[0] * shape[1] != n_features:
        return f"--shape {shape[0]} {shape[1]} holds {shape[0] * shape[1]} features but {what} has {n_features}"
    return tuple(shape)
