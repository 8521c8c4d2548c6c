"""Feature rearrangement (P5 Algorithm 1), IGTD and random baselines."""

from __future__ import annotations

import numpy as np
import pytest

from tnml.entanglement.surrogate import abs_correlation
from tnml.preprocessing.igtd import IGTDRearrangement, _rank_matrix
from tnml.preprocessing.rearrangement import (
    FeatureRearrangement,
    RandomRearrangement,
    bisect,
    rearrangement_objective,
)


def planted_pairs(n, m=3000, noise=0.2, seed=0):
    """Features in a random order where pairs (p, p + n/2) before shuffling are strongly correlated."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(m, n // 2))
    X = np.concatenate([base, base + noise * rng.normal(size=base.shape)], axis=1)
    order = rng.permutation(n)
    pair_of = np.arange(n) % (n // 2)
    return X[:, order], pair_of[order]


@pytest.mark.parametrize("backend", ["auto", "kl"])
@pytest.mark.parametrize("n,dims", [(16, 1), (64, 1), (64, 2)])
def test_planted_pairs_recovered(n, dims, backend):
    X, pair = planted_pairs(n)
    fr = FeatureRearrangement(dims=dims, random_state=0, backend=backend).fit(X)
    assert sorted(fr.permutation_.tolist()) == list(range(n))
    assert fr.objective_after_ < 0.75 * fr.objective_before_
    if dims == 1:  # every planted pair ends up in one level-(L-1) block of two positions
        p = pair[fr.permutation_]
        assert (p[0::2] == p[1::2]).all()
    rnd = RandomRearrangement(dims=dims, random_state=0).fit(X)
    assert fr.objective_after_ < rnd.objective_after_


def test_objective_matches_definition():
    X, _ = planted_pairs(8, m=200)
    c = abs_correlation(X)
    perm = np.random.default_rng(1).permutation(8)
    from tnml.entanglement import canonical_partitions
    ref = sum(c[perm[i], perm[j]] for p in canonical_partitions(8) for i in p for j in range(8) if j not in p)
    assert rearrangement_objective(c, perm) == pytest.approx(ref)


@pytest.mark.parametrize("cls", [FeatureRearrangement, IGTDRearrangement, RandomRearrangement])
@pytest.mark.parametrize("dims", [1, 2])
def test_inverse_transform_round_trip(cls, dims):
    X, _ = planted_pairs(16, m=100)
    est = cls(dims=dims).fit(X)
    np.testing.assert_array_equal(est.inverse_transform(est.transform(X)), X)
    np.testing.assert_array_equal(est.transform(X), X[:, est.permutation_])
    X3 = X.reshape(100, 4, 4)
    out = cls(dims=2).fit(X3).transform(X3)
    assert out.shape == (100, 4, 4)


def test_bisect_exact_sizes_and_small_optimal():
    rng = np.random.default_rng(0)
    for k, a in [(9, 4), (10, 5), (30, 15), (31, 16), (40, 10)]:
        w = np.abs(rng.normal(size=(k, k)))
        w = w + w.T
        np.fill_diagonal(w, 0)
        for backend in ("auto", "kl"):
            assert bisect(w, a, backend).sum() == a


def test_igtd_lowers_rank_error_and_tracks_it():
    X, _ = planted_pairs(12, m=1000)
    ig = IGTDRearrangement(max_step=200).fit(X)
    assert ig.errors_[-1] < ig.errors_[0]
    z = (X - X.mean(0)) / X.std(0)
    R = _rank_matrix(1 - (z.T @ z) / len(X))
    Q = _rank_matrix(np.abs(np.arange(12)[:, None] - np.arange(12)[None, :]).astype(float))
    p = ig.permutation_
    err = np.abs(R[np.ix_(p, p)] - Q)[np.triu_indices(12, 1)].sum()
    assert err == pytest.approx(ig.errors_[-1])
    assert ig.objective_after_ < ig.objective_before_


def test_errors():
    X, _ = planted_pairs(12, m=50)
    with pytest.raises(ValueError, match=r"dims=3 is unknown; choose one of \[1, 2\]"):
        FeatureRearrangement(dims=3).fit(X)
    with pytest.raises(ValueError, match="method='greedy' is unknown"):
        FeatureRearrangement(method="greedy").fit(X)
    with pytest.raises(ValueError, match="backend='fm' is unknown; choose one of \\['auto', 'metis', 'kl'\\]"):
        FeatureRearrangement(backend="fm").fit(X)
    with pytest.raises(ValueError, match="shape"):
        FeatureRearrangement(dims=2).fit(X)  # 12 features are not a square
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureRearrangement().transform(X)
    fr = FeatureRearrangement(dims=2, shape=(3, 4)).fit(X)
    with pytest.raises(ValueError, match="fitted on 12"):
        fr.transform(X[:, :6])
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        FeatureRearrangement().fit(X)


def test_constant_feature_is_placed():
    X, _ = planted_pairs(10, m=200)
    X[:, 3] = 1.0
    fr = FeatureRearrangement(random_state=0).fit(X)
    assert sorted(fr.permutation_.tolist()) == list(range(10)) and np.isfinite(fr.objective_after_)


@pytest.mark.parametrize("dims", [1, 2])
def test_metis_backend_with_constant_features(dims):
    """Regression: features with no correlated neighbour (constant pixels of digits) made the METIS adjacency
    float64 and pymetis refused it."""
    pytest.importorskip("pymetis")
    from sklearn.datasets import load_digits

    X = load_digits().data  # several pixels are constant zero
    f = FeatureRearrangement(dims=dims, backend="metis", random_state=0).fit(X)
    assert sorted(f.permutation_.tolist()) == list(range(64))
    assert f.objective_after_ < f.objective_before_
