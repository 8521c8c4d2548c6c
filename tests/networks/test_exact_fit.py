"""Exact dense checks of the two-sided theorem (tnml.experiments.exact_fit)."""

import numpy as np
import pytest

from tnml.entanglement import canonical_partitions
from tnml.entanglement.data_entanglement import explicit_data_entanglement
from tnml.experiments.exact_fit import dense_data_tensor, error_lower_bound, exact_fit_rows, exact_qe


def test_dense_data_tensor_matches_the_explicit_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6))
    y = (rng.random(40) > 0.5).astype(int)
    a = dense_data_tensor(x, 2.0 * y - 1.0, theta=0.3)
    parts = canonical_partitions(6)
    ref = explicit_data_entanglement(x, y, parts, theta=0.3)
    assert [exact_qe(a, p.sites)[0] for p in parts] == pytest.approx(list(ref), abs=1e-8)
    # one entry by hand: all features 0 -> phi = e0 -> entry (0,...,0) is the mean sign times prod cos
    e = np.mean((2.0 * y - 1.0) * np.prod(np.cos(np.pi * 0.3 * x), axis=1))
    assert a[(0,) * 6] == pytest.approx(e)


def test_error_lower_bound_and_rows():
    assert error_lower_bound([0.1, 0.2], [4, 4], 4) == 0.0  # within ln 4 everywhere: no lower bound
    lb = error_lower_bound([np.log(4)], [4], 1)  # maximally entangled across one block, width 1
    assert 0.5 < lb <= 1.0
    rng = np.random.default_rng(1)
    x = (rng.random((300, 8)) > 0.5).astype(float)
    x[:, 4] = x[:, 0]  # a long-range copy
    signs = np.where(x[:, 0] == x[:, 1], 1.0, -1.0)
    rows = exact_fit_rows(x, signs, {"original": np.arange(8), "paired": np.array([0, 4, 1, 5, 2, 6, 3, 7])},
                          (1, 2), theta=0.5)
    for r in rows:
        for f in r["fits"].values():
            assert f["lower_bound"] <= f["hsvd_error"] + 1e-9 <= f["sufficient_bound"] + 2e-9
    assert rows[1]["max_qe"] <= rows[0]["max_qe"] + 1e-12  # the copy placed next to its source
