"""Reading a CSV data set for the tabular commands (``suitability``, ``design``): the features, labels and feature
names, and the grid the ``--dims``/``--shape`` options give for them, or a one-line problem for :func:`fail`."""

from __future__ import annotations

import argparse

import numpy as np

from tnml.commands.suitability_cmd import check_shape


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
        From :func:`~tnml.commands.suitability_cmd.resolve_dims`.
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
    grid = check_shape(dims, shape, X.shape[1], args.data, needs=needs)
    return grid if isinstance(grid, str) else (X, y, names, grid)
