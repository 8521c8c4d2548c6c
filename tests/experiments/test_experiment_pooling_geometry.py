"""The ``pooling-geometry`` experiment: its quick version runs and shows the Cohen–Shashua inductive bias."""

from __future__ import annotations

import math

import pytest
import torch

import tnml.entanglement as ent
from tnml.experiments import EXPERIMENTS, run_experiments
from tnml.experiments.pooling_geometry import SETTINGS, named_partitions
from tnml.mode_trees import interleaved_window_tree
from tnml.networks import TTN


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    res = run_experiments(["pooling-geometry"], out, quick=True)["pooling-geometry"]
    return out, res


def _bound(records, model, partition):
    (rec,) = [r for r in records if r["model"] == model and r["partition"] == partition and r["named"]]
    return rec["bound_log"]


def test_registered():
    assert "pooling-geometry" in EXPERIMENTS


def test_interleaved_tree_blocks():
    tree = interleaved_window_tree(8)
    level1 = [p for p in ent.tree_partitions(tree) if p.level == 1]
    cosets = {tuple(r * 8 + c for r in range(a, 8, 2) for c in range(b, 8, 2)) for a in (0, 1) for b in (0, 1)}
    assert {tuple(sorted(p.sites)) for p in level1} <= cosets and len(level1) >= 3
    with pytest.raises(ValueError, match="power of 2"):
        interleaved_window_tree(6)


def test_geometry_is_reversed_between_poolings():
    named = {n: p for n, _, p in named_partitions(8)}
    cont = TTN(shape=(8, 8), bond_dim=4)
    intl = TTN(tree=interleaved_window_tree(8), bond_dim=4)
    assert ent.mincut_bound(cont, named["quadrant"]).rank_bound == 4
    assert ent.mincut_bound(cont, named["checkerboard"]).rank_bound == 2**32
    assert ent.mincut_bound(intl, named["checkerboard"]).rank_bound == 16
    assert ent.mincut_bound(intl, named["quadrant"]).rank_bound == 2**16


CONT, INTL, CP = "ConvAC contiguous", "ConvAC interleaved", "ConvAC shallow (CP)"


def test_claim_pooling_geometry_contiguous_favours_coarse_interleaved_favours_fine(quick_run):
    """Cohen-Shashua: the pooling geometry decides which partitions get high separation rank."""
    _, res = quick_run
    m = res.metrics
    records = m["records"]
    cont, intl, cp = CONT, INTL, CP
    # contiguous pooling: low across a coarse split, high across an interleaved one; interleaved pooling: reverse
    assert _bound(records, cont, "quadrant") < _bound(records, cont, "checkerboard")
    assert _bound(records, intl, "checkerboard") < _bound(records, intl, "quadrant")
    s = m["family_summary"]
    assert s[cont]["coarse"]["mean_log_bound"] < s[cont]["fine"]["mean_log_bound"]
    assert s[intl]["fine"]["mean_log_bound"] < s[intl]["coarse"]["mean_log_bound"]
    # the shallow ConvAC is bounded by ln R on every split with >= 2 sites per side
    R = SETTINGS[True]["convac_channels"]
    n = m["n_sites"]
    for r in records:
        if r["model"] == cp and 2 <= r["size"] <= n - 2:
            assert r["bound_log"] == pytest.approx(math.log(R))


def test_mutation_pooling_geometry_geometry_switched_fails_the_claim(quick_run):
    """The contiguous claim's statistic, with contiguous pooling replaced by the interleaved one (the run's own
    records of that model), must not hold: the geometry, not the tree's size, decides."""
    _, res = quick_run
    records, s = res.metrics["records"], res.metrics["family_summary"]
    assert not _bound(records, INTL, "quadrant") < _bound(records, INTL, "checkerboard")
    assert not s[INTL]["coarse"]["mean_log_bound"] < s[INTL]["fine"]["mean_log_bound"]


def test_claim_pooling_geometry_mincut_bound_reached_on_trees(quick_run):
    """Every measured instance respects its min-cut bound and the tree/chain networks reach it (random cores)."""
    _, res = quick_run
    m = res.metrics
    records = m["records"]
    cont, intl, cp = CONT, INTL, CP
    measured = [r for r in records if r["status"] == "measured"]
    assert measured
    for r in measured:
        assert r["rank"] <= r["bound_rank"]
        assert r["entropy"] <= r["bound_log"] + 1e-9
        if r["model"] in (cont, intl, cp, "MPS"):
            assert r["reached"], r
    assert {r["model"] for r in measured if r["reached"]} >= {cont, intl}  # both trees measured, not skipped
    # infeasible cases are reported, not crashed on
    assert any(r["status"].startswith("too large") for r in records)
    # separation-rank cross-check on 4x4: grid rank == network cut rank
    assert m["cross_check_4x4"] and all(r["agree"] for r in m["cross_check_4x4"])


def test_mutation_pooling_geometry_degenerate_cores_do_not_reach_the_bound():
    """The "trees reach their min-cut bound" statistic needs generic cores: the same TTN with every core made
    rank one along its last axis (the mechanism — random cores — switched off) reaches no bound."""
    torch.manual_seed(0)
    model = TTN(n_sites=16, bond_dim=3, init="normal")
    parts = list(ent.canonical_partitions(16))[:6]
    assert all(r.reached and r.rank == 3 for r in ent.entanglement_report(model, parts))  # generic: reached
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(p[..., :1].expand_as(p).clone())
    rows = ent.entanglement_report(model, parts)
    assert not any(r.reached for r in rows) and all(r.rank == 1 for r in rows)
