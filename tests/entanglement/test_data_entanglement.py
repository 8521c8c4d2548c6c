"""Data entanglement (QE from samples via Gram matrices) and surrogate entanglement against direct references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnml.entanglement.data_entanglement import (
    data_entanglement,
    explicit_data_entanglement,
    labels_to_signs,
    side_gram,
)
from tnml.entanglement.partitions import canonical_partitions
from tnml.entanglement.surrogate import abs_correlation, surrogate_entanglement


def _data(m, n, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n)), rng.integers(0, n_classes, size=m)


@pytest.mark.parametrize("explicit_max_rank", [None, 1, 4])
@pytest.mark.parametrize("m,n,n_classes", [(12, 6, 2), (10, 7, 3), (60, 5, 2), (9, 8, 2)])
def test_gram_qe_equals_explicit(m, n, n_classes, explicit_max_rank):
    X, y = _data(m, n, n_classes, seed=m + n)
    parts = canonical_partitions(n)
    res = data_entanglement(X, y, parts, theta=0.7, batch_size=m, n_batches=1,
                            explicit_max_rank=explicit_max_rank)
    ref = explicit_data_entanglement(X, y, parts, theta=0.7)
    np.testing.assert_allclose(res.qe, ref, atol=1e-8, rtol=0)


@pytest.mark.parametrize("explicit_max_rank", [None, 1])
def test_gram_qe_equals_explicit_2d(explicit_max_rank):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(20, 3, 4)), rng.integers(0, 2, size=20)
    res = data_entanglement(X, y, theta=0.6, batch_size=20, explicit_max_rank=explicit_max_rank)
    ref = explicit_data_entanglement(X.reshape(20, -1), y, canonical_partitions(shape=(3, 4)), theta=0.6)
    assert [p.sites for p in res.partitions] == [p.sites for p in canonical_partitions(shape=(3, 4))]
    np.testing.assert_allclose(res.qe, ref, atol=1e-8, rtol=0)


def test_non_tree_partitions_and_feature_batches():
    X, y = _data(14, 7, seed=1)
    parts = [[0, 3], [1, 2, 5], [6], [0, 2, 4, 6]]
    ref = explicit_data_entanglement(X, y, parts, theta=0.8)
    for fb in (None, 1, 2, 3):
        res = data_entanglement(X, y, parts, theta=0.8, batch_size=14, feature_batch=fb, explicit_max_rank=1)
        np.testing.assert_allclose(res.qe, ref, atol=1e-8, rtol=0)


@pytest.mark.parametrize("fb", [1, 2, 3, 5, 7])
def test_side_gram_feature_batches_use_cumulative_offsets(fb):
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(9, 12)))
    sites = [0, 2, 3, 5, 6, 8, 9, 11]  # larger than the feature batch: the released code's offsets would skip some
    a = np.pi * 0.3 * x.numpy()
    ref = np.prod([np.cos(a[:, s, None] - a[None, :, s]) for s in sites], axis=0)
    np.testing.assert_allclose(side_gram(x, sites, 0.3, fb).numpy(), ref, atol=1e-13)


def test_sample_batches_average_unbatched_runs():
    X, y = _data(50, 8, n_classes=3, seed=2)
    parts = canonical_partitions(8)
    res = data_entanglement(X, y, parts, theta=0.5, batch_size=20, n_batches=None, seed=7)
    assert res.batch_sizes == [17, 17, 16]
    order = np.random.default_rng(7).permutation(50)
    chunks = np.array_split(order, 3)
    per = [data_entanglement(X[c], y[c], parts, theta=0.5, batch_size=len(c), seed=None).qe for c in chunks]
    np.testing.assert_allclose(res.qe, np.mean(per, axis=0), atol=1e-12)
    two = data_entanglement(X, y, parts, theta=0.5, batch_size=20, n_batches=2, seed=7)
    np.testing.assert_allclose(two.qe, np.mean(per[:2], axis=0), atol=1e-12)


def test_levels_filter_and_means():
    X, y = _data(30, 16, seed=4)
    full = data_entanglement(X, y, theta=0.4, batch_size=30)
    some = data_entanglement(X, y, theta=0.4, batch_size=30, levels=[1, 2])
    assert sorted(some.levels) == [1, 2] and {p.level for p in some.partitions} == {1, 2}
    for lv in (1, 2):
        assert some.levels[lv] == pytest.approx(full.levels[lv], abs=1e-12)
        assert full.levels[lv] == pytest.approx(np.mean([q for p, q in zip(full.partitions, full.qe) if p.level == lv]))


def test_labels_any_two_values_and_one_vs_rest():
    s, classes = labels_to_signs(np.array(["no", "yes", "no"]), 3)
    assert s.tolist() == [[-1.0, 1.0, -1.0]] and classes.tolist() == ["no", "yes"]
    s3, _ = labels_to_signs([0, 2, 1, 2], 4)
    assert s3.shape == (3, 4)
    X, y = _data(20, 6, seed=5)
    a = data_entanglement(X, y, theta=0.5, batch_size=20).qe
    b = data_entanglement(X, np.where(y == 1, "cat", "dog"), theta=0.5, batch_size=20).qe
    np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    (dict(theta=0.0), "theta"),
    (dict(batch_size=1), "batch_size"),
    (dict(n_batches=0), "n_batches"),
    (dict(levels=[9]), "levels"),
    (dict(partitions=[[0, 0]]), "repeats"),
])
def test_errors(kwargs, match):
    X, y = _data(10, 4)
    with pytest.raises(ValueError, match=match):
        data_entanglement(X, y, **kwargs)


def test_input_errors():
    X, y = _data(10, 4)
    with pytest.raises(ValueError, match="single value"):
        data_entanglement(X, np.zeros(10))
    with pytest.raises(ValueError, match="one per sample"):
        data_entanglement(X, y[:5])
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="sample 2, feature 1"):
        data_entanglement(X, y)


# ---------------------------------------------------------------------------------------------- surrogate
def test_surrogate_matches_numpy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8))
    parts = canonical_partitions(8)
    c = np.abs(np.corrcoef(X, rowvar=False))
    ref = [sum(c[i, j] for i in p for j in range(8) if j not in p) for p in parts]
    np.testing.assert_allclose(surrogate_entanglement(X, parts), ref, atol=1e-12)
    np.testing.assert_allclose(surrogate_entanglement(X), ref, atol=1e-12)


def test_surrogate_zero_variance_features_contribute_zero():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 5))
    X[:, 2] = 3.0
    c = abs_correlation(X)
    assert np.isfinite(c).all() and not c[2].any() and not c[:, 2].any()
    keep = [0, 1, 3, 4]
    ref = surrogate_entanglement(X[:, keep], [[0, 1]])
    assert surrogate_entanglement(X, [[0, 1, 2]])[0] == pytest.approx(ref[0])


def test_surrogate_spec_example():
    """Two near-duplicate pairs, x2 ≈ x0 and x3 ≈ x1 -> level-1 SE 2.05 for the order [0,1,2,3], 0.10 for [0,2,1,3]."""
    rng = np.random.default_rng(0)
    m = 20000
    a, b0 = rng.normal(size=(2, m))
    b = b0 + 0.025 * a
    X = np.stack([a, b, a + 0.02 * rng.normal(size=m), b + 0.02 * rng.normal(size=m)], axis=1)
    level1 = [p for p in canonical_partitions(4) if p.level == 1]
    assert surrogate_entanglement(X, level1)[0] == pytest.approx(2.05, abs=0.03)
    assert surrogate_entanglement(X[:, [0, 2, 1, 3]], level1)[0] == pytest.approx(0.10, abs=0.03)


# ---------------------------------------------------------------------------------------------- unlabeled data
def _unlabeled_tensor_qe(X, parts, theta):
    """QE of D = mean_m ⊗_n φ(x_n^m), formed explicitly with numpy (independent of labels_to_signs)."""
    m, n = X.shape
    a = np.pi * theta * X
    phi = np.stack((np.cos(a), np.sin(a)), axis=-1)
    d = np.zeros((2,) * n)
    for k in range(m):
        t = np.ones(())
        for j in range(n):
            t = np.multiply.outer(t, phi[k, j])
        d += t / m
    out = []
    for p in parts:
        sites = list(p)
        rest = [s for s in range(n) if s not in sites]
        sv = np.linalg.svd(np.transpose(d, sites + rest).reshape(2 ** len(sites), -1), compute_uv=False)
        q = sv**2 / (sv**2).sum()
        q = q[q > 0]
        out.append(float(-(q * np.log(q)).sum()))
    return np.asarray(out)


@pytest.mark.parametrize("explicit_max_rank", [None, 1])
@pytest.mark.parametrize("m,n", [(12, 6), (40, 5), (9, 8)])
def test_unlabeled_qe_equals_explicit_tensor(m, n, explicit_max_rank):
    rng = np.random.default_rng(m * n)
    X = rng.normal(size=(m, n))
    parts = [p.sites for p in canonical_partitions(n)] + [[0, n - 1]]
    ref = _unlabeled_tensor_qe(X, parts, 0.6)
    res = data_entanglement(X, None, parts, theta=0.6, batch_size=m, n_batches=1,
                            explicit_max_rank=explicit_max_rank)
    np.testing.assert_allclose(res.qe, ref, atol=1e-9)
    assert res.classes.size == 0 and res.qe_per_batch.shape == (1, 1, len(parts))
    np.testing.assert_allclose(data_entanglement(X, partitions=parts, theta=0.6, batch_size=m).qe, ref, atol=1e-9)
    np.testing.assert_allclose(explicit_data_entanglement(X, None, parts, theta=0.6), ref, atol=1e-12)


def test_unlabeled_differs_from_labeled():
    """Labels change the tensor: the unlabeled QE is not the labeled one (so y=None is not silently ignored)."""
    X, y = _data(30, 6, seed=3)
    a = data_entanglement(X, None, theta=0.8, batch_size=30).qe
    b = data_entanglement(X, y, theta=0.8, batch_size=30).qe
    assert np.abs(a - b).max() > 1e-3
