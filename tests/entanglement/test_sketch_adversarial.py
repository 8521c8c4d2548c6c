"""Adversarial checks of the whole-data QE routes (``method="sketch"``, ``"auto"``, the distributed sketch and the
``tnml suitability`` options) against references: the exact route, the explicitly formed data tensor, and a dense
float64 rebuild of the sketch's own model (Nyström features ``z = W^{-1/2} g`` of the landmarks)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tnml.entanglement.data_entanglement import data_entanglement, explicit_data_entanglement

de = importlib.import_module("tnml.entanglement.data_entanglement")  # the package re-exports the function's name

TOL = 1e-8


def _gauss(m, n, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n)), (None if n_classes is None else rng.integers(0, n_classes, size=m))


def _case(name):
    """Adversarial inputs ``(X, y, kwargs)``; every one has ``2^N > M`` or small ``N`` with ``M < 2^N``."""
    rng = np.random.default_rng(len(name))
    if name == "odd_n":
        X, y = _gauss(33, 13, 2, seed=1)
        return X, y, {}
    if name == "2d_non_square":
        X = rng.normal(size=(26, 3, 5))
        return X, rng.integers(0, 2, size=26), {}
    if name == "2d_flat_with_shape":
        return rng.normal(size=(21, 16)), rng.integers(0, 3, size=21), dict(shape=(4, 4))
    if name == "unlabeled":
        X, _ = _gauss(29, 10, None, seed=2)
        return X, None, {}
    if name == "five_classes_uneven":  # one class with a single sample, one with 20
        X, _ = _gauss(31, 9, None, seed=3)
        y = np.array([0] * 20 + [1] * 5 + [2] * 3 + [3] * 2 + [4])
        return X, rng.permutation(y), {}
    if name == "duplicate_rows":  # the landmark Gram matrix is singular
        X, y = _gauss(12, 11, 2, seed=4)
        X = np.concatenate([X, X[:8], X[:4]])
        return X, np.concatenate([y, y[:8], 1 - y[:4]]), {}
    if name == "constant_features":
        X, y = _gauss(25, 12, 2, seed=5)
        X[:, [0, 5, 6, 11]] = 1.7
        return X, y, {}
    if name == "binary_orthogonal":  # theta = 0.5: phi(0) = (1, 0), phi(1) = (0, 1) -- an orthonormal basis
        X = rng.integers(0, 2, size=(30, 10)).astype(float)
        return X, rng.integers(0, 2, size=30), dict(theta=0.5)
    if name == "n3":
        X, y = _gauss(7, 3, 2, seed=6)
        return X, y, {}
    if name == "n2":
        X, y = _gauss(3, 2, 2, seed=7)
        return X, y, {}
    if name == "m2":
        X, _ = _gauss(2, 9, None, seed=8)
        return X, np.array([3, 1]), {}
    raise KeyError(name)


CASES = ["odd_n", "2d_non_square", "2d_flat_with_shape", "unlabeled", "five_classes_uneven", "duplicate_rows",
         "constant_features", "binary_orthogonal", "n3", "n2", "m2"]


@pytest.mark.parametrize("name", CASES)
def test_all_rows_as_landmarks_equal_the_exact_route(name):
    X, y, kw = _case(name)
    kw = dict(dict(theta=0.4), **kw)
    m = X.shape[0]
    exact = data_entanglement(X, y, method="exact", **kw)
    got = data_entanglement(X, y, method="sketch", sketch_size=m, batch_size=5, **kw)
    np.testing.assert_allclose(got.qe, exact.qe, atol=TOL, rtol=0)
    assert got.residual.max() < TOL and got.error_estimate.max() < TOL
    assert got.levels.keys() == exact.levels.keys()
    if X.ndim == 2 and X.shape[1] <= 13 and "shape" not in kw:  # the explicitly formed tensor, a second reference
        ref = explicit_data_entanglement(X, y, got.partitions, theta=kw["theta"])
        np.testing.assert_allclose(got.qe, ref, atol=TOL, rtol=0)


# ------------------------------------------------------------------------------ few features: 2^N <= k
_ROOT_SMALL = "with 2^N <= sketch_size the root block is 'small' and _Plan.__init__ walks owner up past the root " \
              "(nodes[None]): TypeError"


@pytest.mark.xfail(strict=True, raises=TypeError, reason=_ROOT_SMALL)
@pytest.mark.parametrize("m,n,k", [(10, 2, 4), (20, 3, 8), (30, 4, None), (40, 5, 40)])
def test_sketch_with_fewer_features_than_log2_k_equals_the_exact_route(m, n, k):
    X, y = _gauss(m, n, 3, seed=m)
    exact = data_entanglement(X, y, theta=0.4, method="exact")
    got = data_entanglement(X, y, theta=0.4, method="sketch", sketch_size=k)
    np.testing.assert_allclose(got.qe, exact.qe, atol=TOL, rtol=0)


@pytest.mark.xfail(strict=True, raises=TypeError, reason=_ROOT_SMALL)
def test_auto_past_the_threshold_with_eight_features(monkeypatch):
    # P5-style tabular data with few features and more than AUTO_EXACT_MAX_SAMPLES rows takes the sketch with the
    # default 512 landmarks >= 2^8
    monkeypatch.setattr(de, "AUTO_EXACT_MAX_SAMPLES", 280)
    X, y = _gauss(300, 8, 2, seed=9)  # k = min(512, 300) >= 2^8
    got = data_entanglement(X, y, theta=0.4, method="auto")
    assert got.method == "sketch"
    np.testing.assert_allclose(got.qe, data_entanglement(X, y, theta=0.4, method="exact").qe, atol=TOL, rtol=0)
