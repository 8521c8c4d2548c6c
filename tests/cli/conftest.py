"""Shared setup of the tabular command tests (``tnml suitability``, ``rearrange``, ``design``): a CSV with planted
correlated feature pairs, and the check that a refused command printed one error line and exited with 2."""

from __future__ import annotations

import csv

import numpy as np
import pytest


def write_planted_csv(path, m=120, half=4, seed=0, label_at=2, constant=False, shuffle=False):
    """CSV of ``m`` rows with features ``f0..f{2·half-1}``, ``f_j ≈ f_{j+half}`` (noise 0.1), a 0/1 label column
    ``target`` at position ``label_at`` (1 where ``f0·f1 > 0``), optionally a constant column ``flat`` (after the
    features) and the feature columns in a seeded random order (``shuffle``). Returns ``path``."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(m, half))
    X = np.concatenate([base, base + 0.1 * rng.normal(size=(m, half))], axis=1)
    y = (base[:, 0] * base[:, 1] > 0).astype(int)
    order = rng.permutation(2 * half) if shuffle else range(2 * half)
    cols = [(f"f{j}", [f"{v:.6f}" for v in X[:, j]]) for j in order]
    if constant:
        cols.append(("flat", ["1.5"] * m))
    cols.insert(label_at, ("target", [str(v) for v in y]))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([c for c, _ in cols])
        w.writerows(zip(*[v for _, v in cols]))
    return path


@pytest.fixture
def planted_csv():
    """:func:`write_planted_csv` (defaults: 120 rows, 8 features, the label third)."""
    return write_planted_csv


@pytest.fixture
def one_line_error(capsys):
    """``check(code)``: the command exited with 2 and wrote exactly one line, ``tnml: error: ...``, to stderr;
    returns that line."""

    def check(code: int) -> str:
        err = capsys.readouterr().err
        assert code == 2
        assert err.startswith("tnml: error: ") and err.count("\n") == 1, err
        return err

    return check
