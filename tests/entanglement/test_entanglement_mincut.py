"""Min-cut bounds: exact products, hyper-indices, rank <= bound on random instances, tightness on trees, and the
examples where the bound is not reached (docs/science/departures.md)."""

import dataclasses
import math
import time

import networkx as nx
import numpy as np
import pytest
import quimb.tensor as qtn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tnml.entanglement as ent
import tnml.entanglement.mincut as mincut_mod
from tnml.entanglement._inputs import graph_and_sides
from tnml.entanglement.mincut import _rooted_tree, mincut_bounds, mincut_on_graph, mincut_on_tree
from tnml.networks import CP, MPS, TTN
from tnml.plans.tree import is_tree
from tnml.structure import TNStructure


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
        return TTN(n_sites=n, bond_dim=bond, init="normal", dtype=torch.float64)  # a generic instance
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


# ---------------------------------------------------------------------------------------------- tree dynamic program
def _random_tree_structure(rng, n_tensors, out_dim):
    """A random tree of tensors with random bond dims, 0-2 input legs per tensor (dims 1-5), and an output leg."""
    tensors = [[f"t{k}", [], []] for k in range(n_tensors)]
    for k in range(1, n_tensors):
        p = int(rng.integers(0, k))
        dim = int(rng.integers(1, 7))
        for t in (tensors[k], tensors[p]):
            t[1].append(f"b{k}")
            t[2].append(dim)
    inputs = []
    for t in tensors:
        for _ in range(int(rng.integers(0, 3))):
            ind = f"x{len(inputs)}"
            t[1].append(ind)
            t[2].append(int(rng.integers(1, 6)))
            inputs.append(ind)
    while len(inputs) < 2:
        t = tensors[int(rng.integers(0, n_tensors))]
        ind = f"x{len(inputs)}"
        t[1].append(ind)
        t[2].append(int(rng.integers(2, 6)))
        inputs.append(ind)
    output = None
    if out_dim is not None:
        t = tensors[int(rng.integers(0, n_tensors))]
        t[1].append("y")
        t[2].append(out_dim)
        output = "y"
    order = rng.permutation(n_tensors)  # the tree is rooted at tensor 0: shuffle which one that is
    return TNStructure.from_arrays([tensors[k] for k in order], inputs, output)


def _check_valid_cut(structure, res, side_a, side_b):
    """The cut's dims multiply to rank_bound and removing its edges separates A's legs from B's."""
    assert res.rank_bound == math.prod(c[3] for c in res.cut)
    assert res.log_bound == pytest.approx(math.log(res.rank_bound), abs=1e-12)
    g = structure.graph()
    cut_inds = {c[2] for c in res.cut}
    h = nx.Graph()
    h.add_nodes_from(g.nodes)
    h.add_edges_from((u, v) for u, v, d in g.edges(data=True) if d["ind"] not in cut_inds)
    term = lambda i: f"input:{i}" if i in structure.input_inds else f"output:{i}"  # noqa: E731
    reach = set().union(*(nx.node_connected_component(h, term(i)) for i in side_a))
    assert not reach & {term(i) for i in side_b}
    for u, v, _, _ in res.cut:  # u on side A, v on side B
        assert u in res.side_a and v not in res.side_a
    assert {term(i) for i in side_a} <= res.side_a and not {term(i) for i in side_b} & res.side_a


@settings(max_examples=60, deadline=None)
@given(
    n_tensors=st.integers(1, 12),
    out_dim=st.sampled_from([None, 1, 3, 7]),
    output_side=st.sampled_from([None, "A", "B"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_tree_dp_matches_networkx(n_tensors, out_dim, output_side, seed):
    rng = np.random.default_rng(seed)
    structure = _random_tree_structure(rng, n_tensors, out_dim)
    assert is_tree(structure)
    n = structure.n_sites
    k = int(rng.integers(1, n))
    part = sorted(int(s) for s in rng.choice(n, size=k, replace=False))
    if out_dim is None and output_side is not None:  # no output leg: a side for it is refused
        with pytest.raises(ValueError, match="no output leg"):
            ent.mincut_bound(structure, part, output_side=output_side)
        output_side = None
    res = ent.mincut_bound(structure, part, output_side=output_side)
    graph, a, b = graph_and_sides(structure, part, output_side)
    ref = mincut_on_graph(graph, a, b)
    assert res.rank_bound == ref.rank_bound
    assert res.log_bound == ref.log_bound
    side_a = [structure.input_inds[s] for s in part]
    side_b = [i for i in structure.input_inds if i not in side_a]
    if output_side is not None and out_dim is not None:
        (side_a if output_side == "A" else side_b).append("y")
    _check_valid_cut(structure, res, side_a, side_b)
    direct = mincut_on_tree(structure, side_a, side_b)
    assert direct.rank_bound == ref.rank_bound and direct.cut == res.cut
    # many partitions at once: the dynamic program vectorized across them gives the same cuts
    parts = [sorted(int(s) for s in rng.choice(n, size=int(rng.integers(1, n)), replace=False)) for _ in range(9)]
    batch = mincut_bounds(structure, parts + [part], output_side=output_side)
    assert batch[-1] == res
    for p, r in zip(parts, batch):
        assert r == ent.mincut_bound(structure, p, output_side=output_side)
        assert r.rank_bound == mincut_on_graph(*graph_and_sides(structure, p, output_side)).rank_bound


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["mps", "ttn", "ttn3"])
def test_tree_dp_matches_networkx_on_models(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "mps":
        d, bond = int(rng.integers(2, 5)), int(rng.integers(1, 9))
        model = MPS(n_sites=9, phys_dim=d, bond_dim=bond, out_dim=4, feature_map="identity")
    elif kind == "ttn":
        bonds = [int(b) for b in rng.integers(1, 12, size=3)]
        model = TTN(n_sites=16, phys_dim=3, bond_dim=bonds, out_dim=5, feature_map="identity")
    else:
        model = TTN(n_sites=9, arity=3, phys_dim=2, bond_dim=int(rng.integers(2, 6)))
    n = model.n_sites
    parts = [sorted(int(s) for s in rng.choice(n, size=int(rng.integers(1, n)), replace=False)) for _ in range(6)]
    parts += list(ent.canonical_partitions(n))
    for side in (None, "A", "B") if model.out_dim is not None else (None,):
        fast = mincut_bounds(model, parts, output_side=side)
        for p, r in zip(parts, fast):
            ref = mincut_on_graph(*graph_and_sides(model, p, side))
            assert (r.rank_bound, r.log_bound) == (ref.rank_bound, ref.log_bound)
            assert r.rank_bound == math.prod(c[3] for c in r.cut)


def test_tree_dp_exact_python_ints(monkeypatch):
    """Capacities that could overflow int64 switch the vectorized program to Python ints: same results."""
    model = TTN(n_sites=8, phys_dim=3, bond_dim=[2, 5], out_dim=4, feature_map="identity")
    parts = list(ent.canonical_partitions(8)) + list(ent.interleaved_partitions(8))
    fast = mincut_bounds(model, parts)
    tree = _rooted_tree(model.structure)
    assert tree.dtype == np.dtype(np.int64)
    monkeypatch.setattr(mincut_mod, "_rooted_tree", lambda s: dataclasses.replace(tree, dtype=np.dtype(object)))
    assert mincut_bounds(model, parts) == fast


def test_tree_dp_on_quimb_tree_and_fallbacks():
    rng = np.random.default_rng(1)
    tn = qtn.TensorNetwork(
        [
            qtn.Tensor(rng.normal(size=(2, 4)), ("i", "p"), tags="A"),
            qtn.Tensor(rng.normal(size=(4, 3, 5)), ("p", "j", "q"), tags="B"),
            qtn.Tensor(rng.normal(size=(5, 6)), ("q", "k"), tags="C"),
        ]
    )
    for part in (["i"], ["j"], ["k"], ["i", "k"], ["i", "j"]):
        ref = mincut_on_graph(*graph_and_sides(tn, part))
        assert ent.mincut_bound(tn, part).rank_bound == ref.rank_bound
    assert ent.mincut_bound(tn, ["i", "k"]).rank_bound == 3  # cheaper to cut j than p and q
    with pytest.raises(ValueError, match="is_tree"):
        mincut_on_tree(CP(n_sites=3, rank=2).structure, ["x0"], ["x1"])
    with pytest.raises(ValueError, match="unknown"):
        mincut_on_tree(MPS(n_sites=3, bond_dim=2).structure, ["x0"], ["z"])


def test_tree_dp_is_fast_on_large_trees():
    model = TTN(n_sites=256, bond_dim=8)
    parts = ent.canonical_partitions(256)
    t0 = time.perf_counter()
    res = mincut_bounds(model, parts)
    assert time.perf_counter() - t0 < 5.0  # networkx max-flow: ~25 s
    assert [r.rank_bound for r in res] == [min(2 ** len(p), 8) for p in parts]

