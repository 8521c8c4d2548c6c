"""Min-cut bounds: exact products, hyper-indices, rank <= bound on random instances, tightness on trees, and the
SPEC §0 example where the bound is not reached."""

import math

import numpy as np
import pytest
import quimb.tensor as qtn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tnml.entanglement as ent
from tnml.networks import CP, MPS, TTN


def test_mps_bounds():
    m = MPS(n_sites=6, phys_dim=2, bond_dim=3)
    r = ent.mincut_bound(m, [0, 1, 2])
    assert r.rank_bound == 3 and r.log_bound == pytest.approx(math.log(3))
    assert [c[2:] for c in r.cut] == [("b2", 3)]
    assert ent.mincut_bound(m, [0]).rank_bound == 2  # the open leg is cheaper than the bond
    assert ent.mincut_bound(m, [0, 2, 4]).rank_bound == 8
    assert ent.mincut_bound(m.structure, [2, 3]).rank_bound == 4  # a TNStructure works too


def test_cp_hyper_index_is_cut_once():
    r = ent.mincut_bound(CP(n_sites=6, phys_dim=4, rank=3, feature_map="identity"), [0, 1, 2])
    assert r.rank_bound == 3 and r.cut == [("hyper:r", "hyper:r", "r", 3)]


def test_output_leg_side():
    m = MPS(n_sites=4, phys_dim=2, bond_dim=8, out_dim=5, output_site=0, feature_map="identity")
    assert ent.mincut_bound(m, [0]).rank_bound == 2
    assert ent.mincut_bound(m, [0], output_side="B").rank_bound == 2
    assert ent.mincut_bound(m, [1, 2, 3], output_side="B").rank_bound == 8  # side B = x0 and y: 2 * 5 > bond 8
    assert ent.mincut_bound(m, [1, 2, 3], output_side="A").rank_bound == 2
    assert ent.mincut_bound(m, [0, 1], output_side="B").rank_bound == 4


def test_parallel_bonds_add():
    a, b = np.ones((2, 3, 3)), np.ones((3, 3, 2))
    tn = qtn.TensorNetwork([qtn.Tensor(a, ("i", "p", "q")), qtn.Tensor(b, ("p", "q", "j"))])
    r = ent.mincut_bound(tn, ["i"])
    assert r.rank_bound == 2
    tn2 = qtn.TensorNetwork(
        [qtn.Tensor(np.ones((20, 3, 3)), ("i", "p", "q")), qtn.Tensor(np.ones((3, 3, 20)), ("p", "q", "j"))]
    )
    r2 = ent.mincut_bound(tn2, ["i"])
    assert r2.rank_bound == 9 and sorted(c[2] for c in r2.cut) == ["p", "q"]


def test_rank_bound_is_exact_product_of_cut():
    m = TTN(n_sites=16, bond_dim=7)
    for p in ent.canonical_partitions(16):
        r = ent.mincut_bound(m, p)
        assert r.rank_bound == math.prod(c[3] for c in r.cut)
        assert r.log_bound == pytest.approx(math.log(r.rank_bound))


def _two_tensor_example():
    rng = np.random.default_rng(0)
    t1 = qtn.Tensor(rng.normal(size=(3, 5, 2)), ("a1", "b1", "bond"))
    t2 = qtn.Tensor(rng.normal(size=(2, 5, 3)), ("bond", "a2", "b2"))
    return qtn.TensorNetwork([t1, t2])


def test_spec_non_tight_example():
    tn = _two_tensor_example()
    r = ent.mincut_bound(tn, ["a1", "a2"])
    assert r.rank_bound == 15
    dense = tn.to_dense(["a1", "a2"], ["b1", "b2"])
    assert np.linalg.matrix_rank(dense) == 14
    assert ent.cut_rank(tn, ["a1", "a2"]) == 14
    assert ent.cut_rank(tn, ["a1", "a2"]) < r.rank_bound


def _random_model(kind, n, bond, seed):
    torch.manual_seed(seed)
    if kind == "mps":
        return MPS(n_sites=n, phys_dim=2, bond_dim=bond, init="normal", dtype=torch.float64)
    if kind == "ttn":
        return TTN(n_sites=n, bond_dim=bond, dtype=torch.float64)
    return CP(n_sites=n, phys_dim=2, rank=bond, dtype=torch.float64)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["mps", "ttn", "cp"]),
    n=st.integers(3, 7),
    bond=st.integers(1, 4),
    seed=st.integers(0, 10**6),
    data=st.data(),
)
def test_rank_never_exceeds_bound(kind, n, bond, seed, data):
    model = _random_model(kind, n, bond, seed)
    part = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1))
    dense = model.to_dense().detach().numpy()
    rank = ent.cut_rank(dense, sorted(part))
    res = ent.mincut_bound(model, part)
    assert rank <= res.rank_bound
    assert ent.entanglement_entropy(dense, sorted(part)) <= res.log_bound + 1e-9
    if kind in ("mps", "ttn"):  # trees with one open leg per leaf and random cores reach the bound
        assert rank == res.rank_bound


@pytest.mark.parametrize("seed", range(3))
def test_tight_on_trees_all_canonical_partitions(seed):
    model = _random_model("ttn", 8, 3, seed)
    for p in ent.canonical_partitions(8) + ent.interleaved_partitions(8):
        assert ent.cut_rank(model, p) == ent.mincut_bound(model, p).rank_bound


def test_errors():
    m = MPS(n_sites=4, phys_dim=2, bond_dim=2)
    with pytest.raises(ValueError, match="output_side='C'"):
        ent.mincut_bound(m, [0], output_side="C")
    with pytest.raises(ValueError, match="part is empty"):
        ent.mincut_bound(m, [])
    with pytest.raises(TypeError, match="obj must be a tnml.TNModel"):
        ent.mincut_bound(np.ones((2, 2)), [0])
