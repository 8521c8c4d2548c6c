"""entanglement_report: one row per partition, bound >= rank on every row, trees with random cores reach the bound,
markdown/dicts/plot views."""

from __future__ import annotations

import json

import pytest
import torch

import tnml.entanglement as ent
from tnml.networks import MPS, PEPS, TTN, PeriodicMPS


def _rows(md: str) -> list[str]:
    return [line for line in md.strip().splitlines()[2:]]


@pytest.mark.parametrize(
    "make, n_parts",
    [
        (lambda: MPS(8, 2, 3, init="normal", init_std=1.0, dtype=torch.float64), 13),
        (lambda: TTN(n_sites=8, bond_dim=3, out_dim=2, dtype=torch.float64), 13),
        (lambda: TTN(n_sites=6, bond_dim=2, dtype=torch.float64), 9),
    ],
)
def test_trees_reach_the_bound_on_canonical_partitions(make, n_parts):
    torch.manual_seed(0)
    rep = ent.entanglement_report(make())
    assert len(rep) == n_parts
    assert all(r.rank == r.bound_rank and r.reached for r in rep)
    assert all(r.entropy <= r.bound_log + 1e-9 for r in rep)
    md = rep.to_markdown()
    assert len(_rows(md)) == n_parts
    assert md.splitlines()[0].startswith("| partition | level |")


def test_ranks_and_entropies_match_dense():
    torch.manual_seed(1)
    m = PeriodicMPS(6, 2, 2, out_dim=3, dtype=torch.float64)
    rep = ent.entanglement_report(m, "contiguous", output=2)
    dense = m.to_dense().detach().numpy()[..., 2]
    assert rep.output == 2 and len(rep) == 5
    for r in rep:
        assert r.rank == ent.cut_rank(dense, r.sites)
        assert r.entropy == pytest.approx(ent.entanglement_entropy(dense, r.sites), rel=1e-8, abs=1e-10)
        assert r.bound_rank >= r.rank


def test_peps_report_2d_and_strict_rows(tmp_path):
    torch.manual_seed(0)
    m = PEPS((4, 4), 2, 2, dtype=torch.float64)
    rep = ent.entanglement_report(m)  # shape inferred from the PEPS: quad-tree partitions
    assert rep.shape == (4, 4) and len(rep) == 20
    assert {r.level for r in rep} == {1, 2}
    assert all(r.bound_rank >= r.rank for r in rep)
    quad = next(r for r in rep if r.sites == (0, 1, 4, 5))
    assert quad.bound_rank == 16 and quad.rank == 16 and quad.reached  # 2x2 corner block: 4 bonds of 2 cut
    fig = rep.plot(tmp_path / "peps.png")
    assert (tmp_path / "peps.png").stat().st_size > 0
    assert len(fig.axes) >= 2  # one heat map per level (+ colorbar)
    ring = PeriodicMPS(4, 3, 2, feature_map="identity", dtype=torch.float64)
    strict = ent.entanglement_report(ring, [[0, 2], [0, 1]])
    assert [(r.rank, r.bound_rank, r.reached) for r in strict] == [(8, 9, False), (4, 4, True)]
    assert "| 0,2 | - | 2 | 9 | 2.197 | 8 |" in strict.to_markdown()


def test_views_and_plot_1d(tmp_path):
    m = TTN(n_sites=8, bond_dim=2, dtype=torch.float64)
    rep = ent.entanglement_report(m, "tree")
    d = rep.to_dicts()
    assert len(d) == len(rep) and set(d[0]) >= {"sites", "level", "bound_rank", "rank", "entropy", "reached", "size"}
    json.dumps(d)
    fig = rep.plot(tmp_path / "sub" / "ttn.svg", title="ttn")
    assert (tmp_path / "sub" / "ttn.svg").read_text().lstrip().startswith("<?xml")
    assert fig.axes[0].get_title() == "ttn"
    assert rep.plot() is not None  # no path: nothing written
    grid = ent.entanglement_report(TTN(shape=(4, 4), bond_dim=2), shape=(4, 4))
    assert grid.shape == (4, 4) and len(grid) == 20


def test_errors():
    m = MPS(4, 2, 2)
    with pytest.raises(TypeError, match="tnml.TNModel"):
        ent.entanglement_report(m.to_quimb())
    with pytest.raises(ValueError, match="unknown"):
        ent.entanglement_report(m, "diagonal")
    with pytest.raises(ValueError, match="mode tree"):
        ent.entanglement_report(m, "tree")
    with pytest.raises(ValueError, match="h \\* w = n_sites"):
        ent.entanglement_report(m, shape=(3, 3))
    with pytest.raises(ValueError, match="part is empty"):
        ent.entanglement_report(m, [[]])
    with pytest.raises(ValueError, match="partitions is empty"):
        ent.entanglement_report(m, [])


def test_partitions_given_as_a_numpy_array_are_read_as_site_lists():
    """An array of parts is a list of site lists, not a name: it is not compared element-wise with a string."""
    import numpy as np

    torch.manual_seed(2)
    m = MPS(6, 2, 2, dtype=torch.float64)
    parts = np.array([[0, 1, 2], [1, 2, 3], [3, 4, 5]])
    rep = ent.entanglement_report(m, parts)
    ref = ent.entanglement_report(m, [[0, 1, 2], [1, 2, 3], [3, 4, 5]])
    assert [r.sites for r in rep] == [(0, 1, 2), (1, 2, 3), (3, 4, 5)]
    assert [(r.rank, r.bound_rank) for r in rep] == [(r.rank, r.bound_rank) for r in ref]
    assert [r.entropy for r in rep] == pytest.approx([r.entropy for r in ref], abs=1e-12)
    assert len(ent.entanglement_report(m, np.array([[2, 3]]))) == 1
