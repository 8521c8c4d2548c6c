"""Suitability report: QE per canonical partition vs capacity, verdicts, rearrangement gain."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tnml.entanglement import SuitabilityResult, canonical_partitions, mincut_bounds, suitability
from tnml.networks import TTN


def planted(m=200, half=4, seed=0):
    """Features j and j + half nearly equal (long-range pairs in the given order); labels from two pairs."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(m, half))
    X = np.concatenate([base, base + 0.1 * rng.normal(size=(m, half))], axis=1)
    y = (np.sign(base[:, 0]) * np.sign(base[:, 1]) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def report():
    X, y = planted()
    return suitability(X, y, 4, theta=0.3)


def test_rearrangement_lowers_coarse_qe(report):
    assert report.levels[1] > report.levels_rearranged[1] + 0.5
    assert report.levels[2] > report.levels_rearranged[2]
    assert report.gain > 0
    assert report.objective_after < 0.6 * report.objective_before
    # the pairs end up side by side
    perm = report.permutation.tolist()
    assert {frozenset(perm[i:i + 2]) for i in range(0, 8, 2)} == {frozenset((j, j + 4)) for j in range(4)}
    level1 = report.records[0]
    assert level1.level == 1 and level1.qe > level1.qe_rearranged


def test_verdicts_and_records(report):
    assert isinstance(report, SuitabilityResult)
    assert len(report.records) == len(canonical_partitions(8)) == 13
    assert report.verdict == "exceeds capacity at 1 partition" and not report.fits
    assert report.verdict_rearranged == "fits" and report.n_exceeding_rearranged == 0
    bad = [r for r in report.records if not r.fits]
    assert [r.level for r in bad] == [1] and bad[0].qe > np.log(4)
    assert all(r.capacity == pytest.approx(np.log(4)) for r in report.records)


def test_large_width_fits():
    X, y = planted()
    rep = suitability(X, y, 2 ** 4, theta=0.3, gain=None)  # ln 16 >= the largest possible QE (4 ln 2)
    assert rep.verdict == "fits" and rep.fits and rep.n_exceeding == 0
    assert rep.permutation is None and rep.records[0].qe_rearranged is None


def test_width_one_exceeds_everywhere():
    X, y = planted()
    rep = suitability(X, y, 1, theta=0.3, gain=None)
    assert rep.verdict == "exceeds capacity at 13 partitions"


def test_model_capacity_is_mincut():
    X, y = planted()
    model = TTN(n_sites=8, bond_dim=3)
    rep = suitability(X, y, model, theta=0.3, gain=None)
    expect = [b.log_bound for b in mincut_bounds(model, canonical_partitions(8))]
    assert [r.capacity for r in rep.records] == pytest.approx(expect)
    assert rep.capacity_source == "TTN"
    assert suitability(X, y, TTN(n_sites=8, bond_dim=16), theta=0.3, gain=None).verdict == "fits"


def test_surrogate_gain():
    X, y = planted()
    rep = suitability(X, y, 4, theta=0.3, gain="surrogate")
    assert rep.gain_kind == "surrogate" and 0.4 < rep.gain <= 1
    assert rep.levels_rearranged == {} and rep.records[0].qe_rearranged is None
    assert rep.records[0].se > rep.records[0].se_rearranged


def test_two_d():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 4, 4))
    y = (X[:, 0, 0] > 0).astype(int)
    rep = suitability(X, y, 4, dims=2, theta=0.3)
    assert rep.shape == (4, 4) and len(rep.records) == len(canonical_partitions(shape=(4, 4)))
    flat = suitability(X.reshape(120, 16), y, 4, dims=2, shape=(4, 4), theta=0.3)
    assert [r.qe for r in flat.records] == pytest.approx([r.qe for r in rep.records])


def test_outputs(report):
    md = report.to_markdown()
    assert md.startswith("**Verdict: exceeds capacity at 1 partition**")
    assert "| 1 | 0-3 |" in md and md.count("\n|") >= 13 + 3
    dicts = report.to_dicts()
    assert len(dicts) == 13 and dicts[0]["sites"] == [0, 1, 2, 3]
    json.dumps({"summary": report.summary(), "records": dicts})  # JSON-ready


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(model_or_width=0), ValueError, "width R >= 1"),
        (dict(model_or_width="wide"), TypeError, "int width R"),
        (dict(model_or_width=TTN(n_sites=4, bond_dim=2)), ValueError, "4 input sites but X has 8"),
        (dict(model_or_width=4, dims=3), ValueError, "dims must be 1"),
        (dict(model_or_width=4, dims=2), ValueError, "not a square"),
        (dict(model_or_width=4, dims=2, shape=(3, 3)), ValueError, "h \\* w = n_features = 8"),
        (dict(model_or_width=4, shape=(2, 4)), ValueError, "pass dims=2"),
        (dict(model_or_width=4, gain="all"), ValueError, "gain must be"),
    ],
)
def test_errors(kwargs, exc, match):
    X, y = planted(m=20)
    with pytest.raises(exc, match=match):
        suitability(X, y, **kwargs)


def test_non_finite():
    X, y = planted(m=20)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="sample 3, feature 2"):
        suitability(X, y, 4)
