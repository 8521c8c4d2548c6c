"""PEPS (2-D grid) and periodic MPS (ring): geometry, init, errors, and where the min-cut bound is tight (most
cases) or strict (a loop with open dim 3 and bonds 2). Forward vs dense einsum, gradients, quimb round trip,
dtypes and seeding run over the registry's PEPS and ring cases (tags ``loop``) in test_models.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import tnml.entanglement as ent
from tnml.networks import PEPS, PeriodicMPS


def test_peps_geometry():
    m = PEPS((3, 4), 2, 3, out_dim=2, output_site=5)
    g = m.graph()
    tensors = [n for n, d in g.nodes(data=True) if d["kind"] == "tensor"]
    assert len(tensors) == 12
    assert len(m.structure.bonds) == 3 * 3 + 2 * 4  # horizontal + vertical
    assert m.structure.tensor("site5").inds == ("x5", "v0_1", "h1_0", "h1_1", "v1_1", "y")
    assert PEPS((3, 3), out_dim=2).output_site == 4
    ring = PeriodicMPS(4, 2, 3)
    assert sorted(ring.structure.bonds) == ["b0", "b1", "b2", "b3"]
    assert ring.structure.tensor("site0").inds == ("b3", "x0", "b0")


def test_init_keeps_outputs_order_one():
    """Default init is norm-neutral: over random draws, E ln |f(x)| ≈ 0 (trig map) at an input that is not one of
    the calibration inputs; per-draw values stay within a few nats."""
    for make in (lambda: PEPS((3, 3), 2, 3, dtype=torch.float64), lambda: PeriodicMPS(12, 2, 4, dtype=torch.float64)):
        x = torch.rand(1, 9 if isinstance(make(), PEPS) else 12, dtype=torch.float64)
        logs = []
        for seed in range(60):
            torch.manual_seed(seed)
            with torch.no_grad():
                logs.append(float(make().log_forward(x)[0].squeeze()))
        # E ln|z| = -0.64 for a Gaussian factor: the mean log of one scalar entry sits a little below 0
        assert -2.0 < np.mean(logs) < 1.0
        assert max(abs(v) for v in logs) < 8.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: PEPS((3,)), "shape must be a pair"),
        (lambda: PEPS((1, 1)), "single site"),
        (lambda: PEPS((2, 2), bond_dim=0), "bond_dim must be an integer >= 1"),
        (lambda: PEPS((2, 2), out_dim=2, output_site=4), "output_site must be an integer in"),
        (lambda: PEPS((2, 2), out_dim=2, output_site=(2, 0)), "outside the grid"),
        (lambda: PEPS((2, 2), init_std=-1.0), "init_std"),
        (lambda: PeriodicMPS(1), "n_sites must be an integer >= 2"),
        (lambda: PeriodicMPS(4, output_site=4), "output_site must be an integer in"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ min-cut bound: tight and strict cases
def _splits(n):
    """Every split once (side A holds site 0 when the sides have equal size)."""
    for k in range(1, n // 2 + 1):
        for a in itertools.combinations(range(n), k):
            if 2 * k < n or 0 in a:
                yield a


def _rank_and_bound(m, part):
    return ent.cut_rank(m.to_dense().detach().numpy(), part), ent.mincut_bound(m, part).rank_bound


TIGHT = {
    "ring-3-d2-D2": lambda: PeriodicMPS(3, 2, 2, feature_map="identity", dtype=torch.float64),
    "ring-4-d2-D2": lambda: PeriodicMPS(4, 2, 2, feature_map="identity", dtype=torch.float64),
    "ring-4-d4-D2": lambda: PeriodicMPS(4, 4, 2, feature_map="identity", dtype=torch.float64),
    "ring-5-d2-D3": lambda: PeriodicMPS(5, 2, 3, feature_map="identity", dtype=torch.float64),
    "peps-2x3-d2-D2": lambda: PEPS((2, 3), 2, 2, feature_map="identity", dtype=torch.float64),
    "peps-2x3-d2-D3": lambda: PEPS((2, 3), 2, 3, feature_map="identity", dtype=torch.float64),
    "peps-3x3-d2-D2": lambda: PEPS((3, 3), 2, 2, feature_map="identity", dtype=torch.float64),
}


@pytest.mark.parametrize("case", sorted(TIGHT))
def test_bound_reached_by_random_cores(case):
    """rank <= bound always, and with random cores rank == bound on every split of these loops."""
    torch.manual_seed(1)
    m = TIGHT[case]()
    for part in _splits(m.n_sites):
        rank, bound = _rank_and_bound(m, part)
        assert rank == bound, (part, rank, bound)


@pytest.mark.parametrize("seed", range(3))
def test_rank_below_bound_on_random_outputs(seed):
    """With an output leg (bound unconstrained on it) rank <= bound for every output component and split."""
    torch.manual_seed(seed)
    m = PEPS((2, 3), 2, 2, out_dim=3, output_site=seed, dtype=torch.float64)
    dense = m.to_dense().detach().numpy()
    for part in _splits(6):
        bound = ent.mincut_bound(m, part).rank_bound
        for k in range(3):
            assert ent.cut_rank(dense[..., k], part) <= bound


@pytest.mark.parametrize("seed", range(3))
def test_bound_strict_on_a_4_loop_with_open_dim_3(seed):
    """4-ring, open legs 3, bonds 2, A = {0, 2} (opposite corners): the best cut is the two open legs of A
    (3 * 3 = 9; all four bonds would cost 16), but the generic rank is 8 — on the ring and on the 2x2 PEPS (the
    same loop, diagonal sites 0 and 3). The network (Gram) route agrees with the dense SVD."""
    torch.manual_seed(seed)
    ring = PeriodicMPS(4, 3, 2, feature_map="identity", dtype=torch.float64)
    assert _rank_and_bound(ring, (0, 2)) == (8, 9)
    assert ent.cut_rank(ring, (0, 2)) == 8
    assert _rank_and_bound(ring, (0, 1)) == (4, 4)  # contiguous halves are tight
    peps = PEPS((2, 2), 3, 2, feature_map="identity", dtype=torch.float64)
    assert _rank_and_bound(peps, (0, 3)) == (8, 9)
    assert ent.cut_rank(peps.to_quimb(), ["x0", "x3"]) == 8


def test_three_ring_all_dims_two_is_tight():
    """A 3-ring with all dimensions 2 and one open leg per tensor (PeriodicMPS(3, 2, 2)): every split has bound 2
    and generic rank 2, dense, via the network route and via quimb: tight."""
    torch.manual_seed(0)
    m = PeriodicMPS(3, 2, 2, feature_map="identity", dtype=torch.float64)
    tn = m.to_quimb()
    dense = tn.to_dense(["x0"], ["x1", "x2"])
    for part in ([0], [1], [2]):
        assert ent.mincut_bound(m, part).rank_bound == 2
        assert ent.cut_rank(m, part) == 2
        assert ent.cut_rank(tn, [f"x{part[0]}"]) == 2
    assert np.linalg.matrix_rank(dense) == 2
