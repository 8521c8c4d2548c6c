"""Adversarial review of the entanglement core against independent references.

Every number the library computes is checked against something computed another way: the dense coefficient tensor
(float64, numpy SVD of the matricization), a brute-force minimum cut (every assignment of tensors to the two sides,
exact integer products), networkx max-flow on a graph built here, a grid tensor evaluated here, quimb's own
contraction. Cases the existing tests do not reach: *every* bipartition of small networks (unbalanced and ternary
trees, trees whose tensors carry several sites, bonds larger than the physical dimension allows, CP, PEPS, rings),
output legs per component and on a fixed side, complex values on every route, exactly rank-deficient networks in
float64 and float32, zero and rank-1 networks, every Renyi order, all the forms a part may take, quimb round trips
and the report's numbers. Demonstrated bugs are ``xfail(strict=True)``.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings

import networkx as nx
import numpy as np
import pytest
import quimb.tensor as qtn
import torch

import tnml.entanglement as ent
from tnml import TNModel
from tnml.entanglement import Partition
from tnml.networks import (
    CP,
    MPS,
    PEPS,
    TTN,
    HierarchicalTensorFactorization,
    PeriodicMPS,
    TensorFactorization,
)
from tnml.spectrum import matricize

# ---------------------------------------------------------------------------------------------------------- helpers


def _randomize(model, seed: int = 0):
    """Every parameter redrawn i.i.d. N(0, 1) (real and imaginary parts for complex ones): a generic instance."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            re = torch.randn(p.shape, generator=g, dtype=torch.float64)
            if p.is_complex():
                p.copy_(torch.complex(re, torch.randn(p.shape, generator=g, dtype=torch.float64)))
            else:
                p.copy_(re.to(p.dtype))
    return model


def _dense(model, output: int | None = None) -> np.ndarray:
    d = model.to_dense().detach()
    d = d.to(torch.complex128 if d.is_complex() else torch.float64).numpy()
    return d if output is None else d[..., output]


def _svd(dense: np.ndarray, part) -> np.ndarray:
    return np.linalg.svd(matricize(dense, list(part)), compute_uv=False)


def _rank(dense: np.ndarray, part) -> int:
    return int(np.linalg.matrix_rank(matricize(dense, list(part))))


def _vn(values: np.ndarray) -> float:
    p = values**2 / (values**2).sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _np(x) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=float)


def _assert_values(got, ref, rel: float = 1e-9) -> None:
    got = _np(got)
    k = max(len(got), len(ref))
    got, ref = np.pad(got, (0, k - len(got))), np.pad(ref, (0, k - len(ref)))
    np.testing.assert_allclose(got, ref, rtol=0, atol=rel * ref[0])


def _bipartitions(n: int) -> list[tuple[int, ...]]:
    """Every split of ``0..n-1`` once (side A holds site 0)."""
    return [p for r in range(1, n) for p in itertools.combinations(range(n), r) if p[0] == 0]


def _brute_mincut(structure, part, output_side=None) -> int:
    """The least product of the dims of the indices that cross, over every assignment of the tensors to sides A/B.

    An index crosses when the tensors holding it (and, for an open leg, its terminal: inputs by ``part``, the
    output by ``output_side``; a free output leg follows its tensor) lie on both sides. A hyper-index thus counts
    once, parallel bonds multiply.
    """
    side_of_input = {ind: k in set(part) for k, ind in enumerate(structure.input_inds)}
    owners = {ind: structure.tensors_of(ind) for ind in structure.size_dict}
    best = None
    n = len(structure.tensors)
    for bits in range(2**n):
        on_a = [bool(bits >> k & 1) for k in range(n)]
        prod = 1
        for ind, dim in structure.size_dict.items():
            sides = {on_a[k] for k in owners[ind]}
            if ind in side_of_input:
                sides.add(side_of_input[ind])
            elif ind == structure.output_ind and output_side is not None:
                sides.add(output_side == "A")
            if len(sides) == 2:
                prod *= dim
        best = prod if best is None else min(best, prod)
    return best


def _nx_log_mincut(structure, part) -> float:
    """Min cut (sum of ln dims) by networkx max-flow on a graph built here (no hyper-indices)."""
    g = nx.Graph()
    site = {ind: k for k, ind in enumerate(structure.input_inds)}
    for ind, dim in structure.size_dict.items():
        owners = structure.tensors_of(ind)
        if len(owners) == 2:
            u, v = (structure.tensors[k].name for k in owners)
        else:
            (k,) = owners
            u, v = structure.tensors[k].name, f"leg {ind}"
            if ind in site:
                g.add_edge("S" if site[ind] in part else "T", v)  # no capacity: infinite
        cap = g[u][v]["capacity"] if g.has_edge(u, v) else 0.0
        g.add_edge(u, v, capacity=cap + math.log(dim))
    return nx.minimum_cut_value(g, "S", "T")


# a generic instance of each geometry; every one small enough for every bipartition and the dense tensor
GEOMETRIES = {
    "mps-bond-above-phys": lambda: MPS(5, 2, 7, dtype=torch.float64),  # bonds 7 > 2^k near the ends
    "ttn-unbalanced-multileg": lambda: TTN(tree=((0, (1, 2)), (3, 4, 5)), bond_dim=[2, 3], dtype=torch.float64),
    "ttn-ternary": lambda: TTN(n_sites=6, arity=3, bond_dim=3, dtype=torch.float64),
    "ttn-caterpillar": lambda: TTN(tree=(0, (1, (2, (3, 4)))), bond_dim=3, dtype=torch.float64),
    "ttn-2d": lambda: TTN(shape=(2, 3), bond_dim=3, dtype=torch.float64),
    "cp": lambda: CP(5, 2, 3, dtype=torch.float64),
    "peps-2x3": lambda: PEPS((2, 3), 2, 2, dtype=torch.float64),
    "ring-5": lambda: PeriodicMPS(5, 2, 2, dtype=torch.float64),
    "htf-hyper-tree": lambda: HierarchicalTensorFactorization((3, 3, 3, 3), ranks=[2, 4], dtype=torch.float64),
    "tf-cp": lambda: TensorFactorization((3, 3, 3, 3), rank=4, dtype=torch.float64),
}
TREES = {"mps-bond-above-phys", "ttn-unbalanced-multileg", "ttn-ternary", "ttn-caterpillar", "ttn-2d"}

WITH_OUTPUT = {
    "mps": lambda: MPS(5, 2, 3, out_dim=3, dtype=torch.float64),
    "ttn-ragged": lambda: TTN(n_sites=5, bond_dim=3, out_dim=4, dtype=torch.float64),
    "peps-2x2": lambda: PEPS((2, 2), 2, 2, out_dim=3, dtype=torch.float64),
    "cp": lambda: CP(4, 2, 3, out_dim=3, dtype=torch.float64),
    "ring-4": lambda: PeriodicMPS(4, 2, 2, out_dim=3, dtype=torch.float64),
}

# -------------------------------------------------------------------------------------- spectra on every split


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_spectra_ranks_entropies_match_dense_on_every_bipartition(name):
    m = _randomize(GEOMETRIES[name]())
    dense = _dense(m)
    parts = _bipartitions(m.n_sites)
    spectra = ent.schmidt_spectra(m, parts)
    entropies = ent.entanglement_entropies(m, parts)
    for part, s, e in zip(parts, spectra, entropies, strict=True):
        ref = _svd(dense, part)
        _assert_values(s, ref)
        assert ent.cut_rank(m, part) == _rank(dense, part), part
        assert float(e.detach()) == pytest.approx(_vn(ref), abs=1e-9), part


def _edge_splits(structure) -> set[frozenset[int]]:
    """The site sets on one side of each edge of a loop-free network graph (bonds and open legs), both sides."""
    g = nx.Graph(structure.graph())
    sites = {f"input:{ind}": k for k, ind in enumerate(structure.input_inds)}
    out = set()
    for u, v in list(g.edges):
        g.remove_edge(u, v)
        side = frozenset(sites[x] for x in nx.node_connected_component(g, u) if x in sites)
        g.add_edge(u, v)
        out |= {side, frozenset(sites.values()) - side}
    return out


@pytest.mark.parametrize("name", sorted(TREES))
def test_tree_route_is_taken_exactly_for_the_splits_one_edge_realizes(name):
    """``method="tree"`` finds the edge of a split from hashes of leg sets; it must accept a split (or its
    complement) iff removing one edge of the graph realizes it, and agree with the dense SVD there."""
    m = _randomize(GEOMETRIES[name]())
    dense, edges = _dense(m), _edge_splits(m.structure)
    accepted = 0
    for part in _bipartitions(m.n_sites):
        comp = tuple(k for k in range(m.n_sites) if k not in part)
        if frozenset(part) in edges:
            _assert_values(ent.schmidt_values(m, part, method="tree"), _svd(dense, part))
            _assert_values(ent.schmidt_values(m, comp, method="tree"), _svd(dense, part))
            accepted += 1
        else:
            with pytest.raises(ValueError, match="not realized by one edge"):
                ent.schmidt_values(m, part, method="tree")
    assert accepted >= m.n_sites - 1


@pytest.mark.parametrize("name", sorted(WITH_OUTPUT))
def test_output_leg_spectra_are_per_component_and_bounds_hold_on_each_side(name):
    """``output=k`` is the component's coefficient tensor; ``mincut_bound`` with the output leg free bounds every
    component, with ``output_side`` fixed it bounds the matricization that puts the output axis on that side."""
    m = _randomize(WITH_OUTPUT[name]())
    dense, n = _dense(m), m.n_sites
    for part in [p for r in range(1, n) for p in itertools.combinations(range(n), r)]:
        free = ent.mincut_bound(m, part)
        assert free.rank_bound == _brute_mincut(m.structure, part)
        for k in range(m.out_dim):
            _assert_values(ent.schmidt_values(m, part, output=k), _svd(dense[..., k], part))
            rank_k = ent.cut_rank(m, part, output=k)
            assert rank_k == _rank(dense[..., k], part) <= free.rank_bound
        for side, rows in (("A", list(part) + [n]), ("B", list(part))):
            bound = ent.mincut_bound(m, part, output_side=side).rank_bound
            assert bound == _brute_mincut(m.structure, part, side)
            assert _rank(dense, rows) <= bound


COMPLEX = {
    "mps": lambda: MPS(5, 2, 3, dtype=torch.complex128),
    "ttn": lambda: TTN(n_sites=6, bond_dim=3, dtype=torch.complex128),
    "cp": lambda: CP(4, 2, 3, dtype=torch.complex128),
    "peps-2x3": lambda: PEPS((2, 3), 2, 2, dtype=torch.complex128),
    "ring-5": lambda: PeriodicMPS(5, 2, 2, dtype=torch.complex128),
}


@pytest.mark.parametrize("method", ["auto", "factor", "gram"])
@pytest.mark.parametrize("name", sorted(COMPLEX))
def test_complex_networks_match_dense_on_every_route(name, method):
    m = _randomize(COMPLEX[name]())
    dense = _dense(m)
    assert np.iscomplexobj(dense) and np.abs(dense.imag).max() > 0.1
    for part in ([0], [0, 1], [0, 2], [1, 3]):
        ref = _svd(dense, part)
        s = ent.schmidt_values(m, part, method=method)
        assert not s.is_complex()
        _assert_values(s, ref, rel=1e-8)
        e = float(ent.entanglement_entropy(m, part, method=method).detach())
        assert e == pytest.approx(_vn(ref), abs=1e-8)


# ------------------------------------------------------------------------------------------ min-cut bounds


def _crossing(structure, side_a: frozenset) -> set[str]:
    """The indices that cross when the graph nodes ``side_a`` (tensors, terminals) are side A."""
    out = set()
    for ind in structure.size_dict:
        sides = {structure.tensors[k].name in side_a for k in structure.tensors_of(ind)}
        if ind in structure.input_inds:
            sides.add(f"input:{ind}" in side_a)
        if len(sides) == 2:
            out.add(ind)
    return out


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_mincut_bound_is_the_true_minimum_a_real_cut_and_above_the_rank(name):
    m = _randomize(GEOMETRIES[name]())
    st, dense = m.structure, _dense(m)
    graph = st.graph()
    hyper = any(d.get("kind") == "hyper" for _, d in graph.nodes(data=True))
    parts = _bipartitions(m.n_sites)
    for part, res in zip(parts, ent.mincut_bounds(m, parts), strict=True):
        assert res.rank_bound == _brute_mincut(st, part), part
        assert res.rank_bound == math.prod(c[3] for c in res.cut)
        assert res.log_bound == pytest.approx(math.log(res.rank_bound), abs=1e-12)
        if not hyper:
            assert _nx_log_mincut(st, part) == pytest.approx(res.log_bound, abs=1e-9)
        # the cut separates: its indices are exactly those crossing the side it reports, and removing them
        # disconnects every input of A from every input of B (a cut hyper-index disconnects all its tensors)
        assert {c[2] for c in res.cut} == _crossing(st, res.side_a)
        ta = {f"input:{st.input_inds[k]}" for k in part}
        tb = {f"input:{i}" for i in st.input_inds} - ta
        assert ta <= res.side_a and not tb & res.side_a
        g = nx.Graph(graph)
        for u, v, _ind, _dim in res.cut:
            if u == v:
                g.remove_node(u)
            else:
                g.remove_edge(u, v)
        assert not any(nx.has_path(g, a, b) for a in ta for b in tb), part
        rank = _rank(dense, part)
        assert rank <= res.rank_bound
        if name in TREES:  # generic cores reach the bound on trees, on every split
            assert rank == res.rank_bound, part


def _random_quimb_network(seed: int) -> qtn.TensorNetwork:
    """2-5 tensors joined by random bonds (dims 1-3, parallel bonds and disconnected pieces allowed), 0-2 open
    legs per tensor (dims 1-3; at least two in all), i.i.d. normal values; tensors without any index allowed."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    inds: list[list[str]] = [[] for _ in range(n)]
    dims: dict[str, int] = {}
    for e in range(int(rng.integers(n - 1, n + 3))):
        u, v = rng.choice(n, 2, replace=False)
        dims[f"b{e}"] = int(rng.integers(1, 4))
        inds[u].append(f"b{e}")
        inds[v].append(f"b{e}")
    legs = 0
    for t in range(n):
        for _ in range(int(rng.integers(0, 3))):
            dims[f"k{legs}"] = int(rng.integers(1, 4))
            inds[t].append(f"k{legs}")
            legs += 1
    while legs < 2:
        dims[f"k{legs}"] = int(rng.integers(2, 4))
        inds[int(rng.integers(n))].append(f"k{legs}")
        legs += 1
    return qtn.TensorNetwork([qtn.Tensor(rng.standard_normal([dims[i] for i in ii]), inds=ii) for ii in inds])


@pytest.mark.parametrize("seed", range(0, 30, 3))
def test_random_quimb_networks_bound_and_spectra_on_every_split(seed):
    """Random geometries (loops, parallel bonds, tensors holding legs of both sides, dims of 1, disconnected
    pieces): the bound is the brute-force minimum and at least the dense rank on every split; the spectrum of
    every route equals the dense SVD."""
    from tnml.network_form import as_network

    tests = 0
    for s in range(seed, seed + 3):
        tn = _random_quimb_network(s)
        outs = list(tn.outer_inds())
        st = as_network(tn, values=False).structure
        dense = np.asarray(tn.contract(output_inds=outs).data)
        parts = [p for r in range(1, len(outs)) for p in itertools.combinations(outs, r) if p[0] == outs[0]]
        for j, part in enumerate(parts):
            rows = [outs.index(i) for i in part]
            res = ent.mincut_bound(tn, part)
            assert res.rank_bound == _brute_mincut(st, [st.input_inds.index(i) for i in part]), (s, part)
            assert _rank(dense, rows) <= res.rank_bound
            ref = _svd(dense, rows)
            for method in ("auto", "factor", "gram") if j == len(parts) // 2 else ("auto",):
                got = ent.schmidt_values(tn, part, method=method)
                assert isinstance(got, np.ndarray)
                _assert_values(got, ref)
            assert ent.cut_rank(tn, part) == _rank(dense, rows)
            tests += 1
    assert tests >= 3


@pytest.mark.parametrize("method", ["auto", "factor", "gram"])
@pytest.mark.parametrize(
    "make, part",
    [
        (lambda: PEPS((2, 3), 2, 2, dtype=torch.float64), [0, 1]),
        (lambda: TTN(n_sites=6, bond_dim=3, out_dim=2, dtype=torch.float64), [0, 2]),
        (lambda: CP(4, 2, 3, dtype=torch.float64), [0, 1]),
    ],
    ids=["peps", "ttn-out", "cp"],
)
def test_entropy_gradients_of_every_route_equal_the_dense_gradient(make, part, method):
    m = _randomize(make())
    out = 1 if m.out_dim is not None else None
    params = list(m.parameters())
    dense = m.to_dense()
    ref = ent.entanglement_entropy(dense[..., out] if out is not None else dense, part, alpha=2)
    got = ent.entanglement_entropy(m, part, alpha=2, output=out, method=method)
    assert float(got.detach()) == pytest.approx(float(ref.detach()), abs=1e-12)
    for a, b in zip(torch.autograd.grad(got, params), torch.autograd.grad(ref, params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: PEPS((2, 3), 2, 2, dtype=torch.float64),
        lambda: TTN(n_sites=6, bond_dim=3, dtype=torch.float64),
        lambda: CP(5, 2, 3, dtype=torch.float64),
        lambda: MPS(6, 2, 4, dtype=torch.float64),
    ],
    ids=["peps", "ttn", "cp", "mps"],
)
def test_float32_networks_give_float32_values_and_the_float64_ranks(make):
    m64 = _randomize(make())
    dense = _dense(m64)
    m32 = m64.to(torch.float32)
    for part in ([0], [0, 1], [0, 2], [1, 3, 4]):
        ref = _svd(dense, part)
        for method in ("auto", "factor", "gram"):
            s = ent.schmidt_values(m32, part, method=method, normalize=True)
            assert s.dtype == torch.float32
            _assert_values(s, ref / np.linalg.norm(ref), rel=2e-5)
            if method != "gram":
                assert ent.cut_rank(m32, part, method=method) == _rank(dense, part)


@pytest.mark.parametrize("output_side", [None, "A"])
def test_batched_tree_bounds_over_a_chunk_boundary_equal_networkx(output_side):
    """All 1023 splits of an 11-site TTN (three bond sizes, an output leg) in one call: the vectorized tree
    program runs in chunks of 512 partitions; every result must equal networkx max-flow on the graph."""
    m = TTN(n_sites=11, bond_dim=[2, 3, 5], out_dim=3)
    st, graph = m.structure, m.structure.graph()
    parts = _bipartitions(11)
    assert len(parts) > 512
    for part, res in zip(parts, ent.mincut_bounds(m, parts, output_side=output_side), strict=True):
        ta = {f"input:{st.input_inds[k]}" for k in part}
        tb = {f"input:{i}" for i in st.input_inds} - ta
        if output_side == "A":
            ta.add(f"output:{st.output_ind}")
        assert res.rank_bound == ent.mincut_on_graph(graph, ta, tb).rank_bound, part
        assert res.rank_bound == math.prod(c[3] for c in res.cut)


# ----------------------------------------------------------------------------------- tolerances and degenerate


@pytest.mark.parametrize("method, part", [("auto", range(150)), ("factor", [0, 150]), ("gram", [0, 1])])
def test_long_float32_chain_spectra_are_scale_invariant_and_finite(method, part):
    """300 float32 cores scaled by 3 multiply the tensor by 3^300 (far beyond float32): the normalized values and
    the entropies must not change (log-scales carried), the raw values overflow as documented."""
    m = _randomize(MPS(300, 2, 4, dtype=torch.float32), seed=1)
    big = _randomize(MPS(300, 2, 4, dtype=torch.float32), seed=1)
    with torch.no_grad():
        for p in big.parameters():
            p.mul_(3.0)
    if method == "gram":  # the Gram route squares the norm: a long chain leaves float range, and it says so
        with pytest.raises(FloatingPointError, match="method='factor'"):
            ent.schmidt_values(big, part, method=method)
        return
    a = ent.schmidt_values(m, part, method=method, normalize=True).detach()
    b = ent.schmidt_values(big, part, method=method, normalize=True).detach()
    assert bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())
    torch.testing.assert_close(a, b, rtol=0, atol=2e-6)
    ea, eb = (float(ent.entanglement_entropy(x, part, method=method).detach()) for x in (m, big))
    assert math.isfinite(ea) and ea > 0.01 and eb == pytest.approx(ea, abs=2e-5)


def _deficient_mps(dtype):
    """A generic 6-site MPS (d = 2, bond 3) whose third core is rank 1 between its left bond and the rest: the
    ranks of the splits {0,1} | rest and {0,1,2} | rest drop to 1 and 2, below their min-cut bound of 3."""
    m = _randomize(MPS(6, 2, 3, dtype=torch.float64), seed=1)
    spec = m.structure.tensors[2]
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        core = m.core_dict()[spec.name]
        ax = spec.inds.index("b1")
        a = torch.randn(core.shape[ax], generator=g, dtype=torch.float64)
        rest = torch.randn(torch.movedim(core, ax, 0).shape[1:], generator=g, dtype=torch.float64)
        core.copy_(torch.movedim(torch.einsum("i,...->i...", a, rest), 0, ax))
    return m.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cut_rank_is_exact_on_rank_deficient_networks(dtype):
    reference = _deficient_mps(torch.float64)
    dense = _dense(reference)
    m = _deficient_mps(dtype)
    assert m.core_dict()["site0"].dtype == dtype
    for part, expect in (((0, 1), 1), ((0, 1, 2), 2), ((2, 3), 3), ((0, 2), 4), ((1, 2, 4), 8)):
        assert _rank(dense, part) == expect
        assert ent.mincut_bound(m, part).rank_bound >= expect
        for method in ("auto", "factor"):
            assert ent.cut_rank(m, part, method=method) == expect, (part, method)
            assert ent.cut_rank_bounds(m, part, method=method) == (expect, expect)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ent.RankUncertaintyWarning)
            lo, hi = ent.cut_rank_bounds(m, part, method="gram")
        assert lo <= expect <= hi
        # an explicit tolerance is relative to the largest value and counts strictly greater values
        s = _np(ent.schmidt_values(m, part))
        assert ent.cut_rank(m, part, tol=0.5) == int((s > 0.5 * s[0]).sum())
        assert ent.cut_rank(m, part, tol=1.0) == 0
    assert ent.mincut_bound(m, (0, 1)).rank_bound == 3  # the bound stays a property of the geometry


def test_rank_one_network_every_split():
    m = _randomize(MPS(5, 3, 1, feature_map="polynomial", dtype=torch.float64))
    for part in _bipartitions(5):
        assert ent.cut_rank(m, part) == 1
        assert ent.mincut_bound(m, part).rank_bound == 1
        s = _np(ent.schmidt_values(m, part))
        assert s[0] == pytest.approx(np.linalg.norm(_dense(m)), rel=1e-12)
        for alpha in (0, 0.5, 1, 2, math.inf):
            assert abs(float(ent.entanglement_entropy(m, part, alpha).detach())) < 1e-12


ZERO = {
    "mps": lambda: MPS(5, 2, 3, dtype=torch.float64),
    "peps": lambda: PEPS((2, 2), 2, 2, dtype=torch.float64),
    "cp": lambda: CP(4, 2, 3, dtype=torch.float64),
}


def _zeroed(make):
    m = make()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    return m


@pytest.mark.parametrize("method", ["auto", "factor"])
@pytest.mark.parametrize("name", sorted(ZERO))
def test_zero_network_has_zero_values_rank_and_entropy(name, method):
    m = _zeroed(ZERO[name])
    s = ent.schmidt_values(m, [0, 1], method=method)
    assert s.numel() >= 1 and float(s.detach().abs().max()) == 0.0
    assert ent.cut_rank(m, [0, 1], method=method) == 0
    assert ent.cut_rank_bounds(m, [0, 1], method=method) == (0, 0)
    for alpha in (0.5, 1, 2, math.inf):
        assert float(ent.entanglement_entropy(m, [0, 1], alpha, method=method).detach()) == 0.0
    assert ent.entanglement_entropy(np.zeros((2, 3, 2)), [0], alpha=2) == 0.0


@pytest.mark.parametrize("obj", ["dense", "mps"])
def test_zero_spectrum_renyi_0_is_zero(obj):
    x = np.zeros((2, 3, 2)) if obj == "dense" else _zeroed(ZERO["mps"])
    assert float(ent.entanglement_entropy(x, [0], alpha=0)) == 0.0  # tnml.spectrum: an all-zero spectrum has 0


@pytest.mark.parametrize("zero_all", [True, False])
def test_gram_route_on_a_network_with_a_zero_tensor(zero_all):
    m = _zeroed(ZERO["peps"]) if zero_all else _randomize(ZERO["peps"]())
    if not zero_all:
        with torch.no_grad():
            next(iter(m.parameters())).zero_()
    s = ent.schmidt_values(m, [0, 1], method="gram")
    assert float(s.detach().abs().max()) == 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_dense_input_with_non_finite_entries_is_refused_clearly(bad):
    x = np.ones((2, 2, 2))
    x[0, 1, 0] = bad
    for call in (ent.schmidt_values, ent.cut_rank, ent.entanglement_entropy):
        with pytest.raises(ValueError, match=r"obj .*(NaN|inf)"):  # as for a network: names obj and the problem
            call(x, [0])


@pytest.mark.parametrize("kind", ["dense-f16", "dense-bf16", "model-bf16"])
def test_half_precision_inputs_are_computed_or_refused_clearly(kind):
    x64 = np.random.default_rng(0).standard_normal((2, 3, 2))
    if kind == "model-bf16":
        model = _randomize(MPS(4, 2, 2, dtype=torch.float64))
        obj, ref = model.to(torch.bfloat16), _svd(_dense(model), [0, 1])
    else:
        obj = torch.tensor(x64, dtype=torch.float16 if kind == "dense-f16" else torch.bfloat16)
        ref = _svd(obj.double().numpy(), [0, 1])
    try:
        s = ent.schmidt_values(obj, [0, 1], normalize=True)
    except ValueError as err:  # a refusal is fine if it says what to do
        assert "dtype" in str(err)
        return
    _assert_values(s.float(), ref / np.linalg.norm(ref), rel=2e-2)


# ------------------------------------------------------------------------------------------------ Renyi orders


def _renyi(values: np.ndarray, alpha: float) -> float:
    p = values**2 / (values**2).sum()
    p = p[p > 0]
    if alpha == 1:
        return float(-(p * np.log(p)).sum())
    if math.isinf(alpha):
        return float(-np.log(p.max()))
    return float(np.log((p**alpha).sum()) / (1 - alpha))


ALPHAS = [0.25, 0.5, 1, 1.5, 2, 3, 10, math.inf]


@pytest.mark.parametrize("obj", ["dense", "ttn", "peps"])
def test_renyi_entropies_of_every_order_match_the_formula(obj):
    if obj == "dense":
        x = np.random.default_rng(0).standard_normal((3, 2, 4, 2))
        ref_of = lambda part: _svd(x, part)  # noqa: E731
    else:
        x = _randomize(TTN(n_sites=6, bond_dim=3, dtype=torch.float64) if obj == "ttn" else GEOMETRIES["peps-2x3"]())
        ref_of = lambda part: _svd(_dense(x), part)  # noqa: E731
    for part in ([0], [0, 2], [1, 2]):
        ref = ref_of(part)
        got = [float(_np(e)) for e in ent.entanglement_entropies(x, [part], alpha=0)]
        assert got[0] == pytest.approx(math.log(ent.cut_rank(x, part)), abs=1e-12)
        values = [float(_np(ent.entanglement_entropy(x, part, alpha=a))) for a in ALPHAS]
        for a, v in zip(ALPHAS, values, strict=True):
            assert v == pytest.approx(_renyi(ref, a), abs=1e-9), (part, a)
        assert all(b <= a + 1e-12 for a, b in itertools.pairwise([got[0], *values]))  # non-increasing in alpha
        vn = values[ALPHAS.index(1)]
        for a in (1 - 1e-6, 1 + 1e-6):  # the limit alpha -> 1 is von Neumann
            assert float(_np(ent.entanglement_entropy(x, part, alpha=a))) == pytest.approx(vn, abs=1e-5)
        if obj != "dense":
            assert values[ALPHAS.index(1)] <= ent.mincut_bound(x, part).log_bound + 1e-12


def test_renyi_near_one_is_continuous():
    y = np.random.default_rng(3).standard_normal((4, 4))
    vn = ent.entanglement_entropy(y, [0])
    for a in (1 - 1e-14, 1 + 1e-14):
        assert ent.entanglement_entropy(y, [0], alpha=a) == pytest.approx(vn, abs=1e-6)


def test_small_order_renyi_of_a_rank_one_tensor_is_zero():
    """A product tensor has one Schmidt value; its round-off partners (~1e-16) enter ``p**alpha`` with weight
    ``~1e-32**alpha``, which is 0.48 at alpha = 0.01: H_0.01 = 0.89 instead of ln cut_rank = 0."""
    rng = np.random.default_rng(1)
    x = np.einsum("i,j->ij", rng.standard_normal(4), rng.standard_normal(6)).reshape(2, 2, 6)
    assert ent.cut_rank(x, [0, 1]) == 1
    assert ent.entanglement_entropy(x, [0, 1], alpha=0) == 0.0
    for a in (0.1, 0.01, 0.001):
        assert ent.entanglement_entropy(x, [0, 1], alpha=a) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("alpha", [np.int64(2), np.float32(2.0), torch.tensor(2.0)], ids=["int64", "f32", "tensor"])
def test_alpha_accepts_numpy_scalars(alpha):
    x = np.random.default_rng(0).standard_normal((3, 3, 2))
    assert ent.entanglement_entropy(x, [0], alpha=alpha) == pytest.approx(ent.entanglement_entropy(x, [0], alpha=2))


# ---------------------------------------------------------------------------------------------------- parts


def _forms(part: tuple[int, ...]):
    return [
        list(part),
        tuple(reversed(part)),
        set(part),
        frozenset(part),
        Partition(part),
        np.array(part),
        np.array(part, dtype=np.uint8),
        torch.tensor(part),
        iter(list(part)),
    ]


@pytest.mark.parametrize("kind", ["dense", "ttn", "peps"])
def test_every_form_of_a_part_and_its_complement_give_one_spectrum(kind):
    if kind == "dense":
        x = np.random.default_rng(0).standard_normal((2, 3, 2, 2, 3))
    else:
        x = _randomize(
            TTN(n_sites=5, bond_dim=3, dtype=torch.float64)
            if kind == "ttn"
            else PEPS((1, 5), 2, 3, dtype=torch.float64)
        )
    part = (1, 3)
    ref = _np(ent.schmidt_values(x, list(part)))
    for form in _forms(part):
        np.testing.assert_allclose(_np(ent.schmidt_values(x, form)), ref, rtol=0, atol=1e-12)
    comp = Partition(part).complement(5)
    assert comp == (0, 2, 4)
    _assert_values(ent.schmidt_values(x, comp), ref, rel=1e-10)
    assert ent.cut_rank(x, comp) == ent.cut_rank(x, part)
    if kind != "dense":
        for form in _forms(part):
            assert ent.mincut_bound(x, form).rank_bound == ent.mincut_bound(x, comp).rank_bound


BAD_PARTS = [
    ([], ValueError, "empty"),
    ([0, 1, 2, 3, 4], ValueError, "all 5 sites"),
    ([1, 1], ValueError, "repeats sites"),
    ([5], ValueError, r"outside 0\.\.4"),
    ([-1], ValueError, r"outside 0\.\.4"),
    ([0.0], TypeError, "integer site ids"),
    ([True], TypeError, "integer site ids"),
    ("01", TypeError, "string"),
    (3, TypeError, "iterable"),
]


@pytest.mark.parametrize("part, exc, match", BAD_PARTS, ids=[repr(b[0]) for b in BAD_PARTS])
def test_bad_parts_are_refused_by_every_entry_point(part, exc, match):
    m = MPS(5, 2, 3)
    calls = [
        lambda: ent.schmidt_values(m, part),
        lambda: ent.cut_rank(m, part),
        lambda: ent.entanglement_entropy(m, part),
        lambda: ent.mincut_bound(m, part),
        lambda: ent.mincut_bound(m.structure, part),
        lambda: ent.entanglement_report(m, [part]),
        lambda: ent.separation_rank(m, part),
        lambda: ent.schmidt_values(np.zeros((2,) * 5), part),
    ]
    for call in calls:
        with pytest.raises(exc, match=match):
            call()


def test_quimb_parts_by_name_refuse_sites_duplicates_unknown_and_everything():
    tn = qtn.MPS_rand_state(4, 3, seed=0)
    names = list(tn.outer_inds())
    for part, match in (
        ([0], "outer index names"),
        ([names[0]] * 2, "repeats"),
        (["zz"], "not outer indices"),
        (names, "side B is empty"),
        ([], "empty"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            ent.schmidt_values(tn, part)
        with pytest.raises((ValueError, TypeError), match=match):
            ent.mincut_bound(tn, part)


# ------------------------------------------------------------------------------------------------ quimb


def test_quimb_round_trip_preserves_spectra_per_output():
    m = _randomize(TTN(n_sites=5, bond_dim=3, out_dim=3, dtype=torch.float64))
    back = TNModel.from_quimb(m.to_quimb(), list(m.structure.input_inds), m.structure.output_ind, feature_map="trig")
    for part in ([0], [0, 1], [1, 3], [0, 2, 4]):
        for k in range(3):
            np.testing.assert_allclose(
                _np(ent.schmidt_values(back, part, output=k)), _np(ent.schmidt_values(m, part, output=k)), atol=1e-13
            )
        assert ent.mincut_bound(back, part).rank_bound == ent.mincut_bound(m, part).rank_bound


def test_quimb_network_with_renamed_shuffled_indices_matches_its_own_contraction():
    """Parts name outer indices, whatever their order in ``outer_inds()``; the reference is quimb's contraction."""
    m = _randomize(PEPS((2, 2), 2, 2, dtype=torch.float64))
    tn = m.to_quimb().reindex({"x0": "k3", "x1": "k0", "x2": "k2", "x3": "k1"})
    order = ["k0", "k1", "k2", "k3"]
    dense = tn.contract(output_inds=order).data
    for part in (["k0"], ["k3", "k0"], ["k1", "k2"], {"k2"}):
        rows = sorted(order.index(i) for i in part)
        ref = _svd(np.asarray(dense), rows)
        s = ent.schmidt_values(tn, part)
        assert isinstance(s, np.ndarray)
        _assert_values(s, ref)
        assert ent.cut_rank(tn, part) == _rank(np.asarray(dense), rows)
        assert ent.mincut_bound(tn, part).rank_bound >= ent.cut_rank(tn, part)


def test_network_forms_read_once_give_the_same_results():
    from tnml.network_form import as_network

    m = _randomize(MPS(4, 2, 3, dtype=torch.float64))
    tn = qtn.MPS_rand_state(4, 3, seed=0)
    form, qform = as_network(m), as_network(tn)
    np.testing.assert_array_equal(_np(ent.schmidt_values(form, [0, 2])), _np(ent.schmidt_values(m, [0, 2])))
    np.testing.assert_array_equal(ent.schmidt_values(qform, ["k1"]), ent.schmidt_values(tn, ["k1"]))
    assert ent.mincut_bound(as_network(m, values=False), [0, 2]).rank_bound == 4
    with pytest.raises(TypeError, match="TNStructure"):  # a structure has no values to decompose
        ent.schmidt_values(m.structure, [0])
    with pytest.raises(TypeError, match="obj must be .* got int"):
        as_network(3)


@pytest.mark.parametrize("rank", [1, 3, 6])
def test_gram_factor_of_complex_low_rank_gram_matrices(rank):
    from tnml.spectrum import gram_factor

    rng = np.random.default_rng(rank)
    a = torch.tensor(rng.standard_normal((rank, 6)) + 1j * rng.standard_normal((rank, 6)))
    g = a.conj().T @ a  # 6 x 6, Hermitian PSD of rank `rank`
    for drop in (False, True):
        f = gram_factor(g, drop_null=drop)
        assert f.shape == ((rank, 6) if drop else (6, 6))
        torch.testing.assert_close(f.conj().T @ f, g.conj(), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------ separation rank


def test_separation_rank_is_the_rank_of_the_grid_tensor_built_here():
    """f(x) = <W, phi(x_0) x ... x phi(x_3)> with phi(x) = (1, x, x^2) and W a low-rank MPS tensor; the grid
    tensor V = W x_n Phi is evaluated here with einsum, site 0 most significant."""
    w = _dense(_randomize(MPS(4, 3, 2, feature_map="polynomial", dtype=torch.float64), seed=3))
    wt = torch.from_numpy(w)

    def f(x):  # (batch, 4)
        phi = torch.stack([torch.ones_like(x), x, x * x], dim=-1)
        return torch.einsum("abcd,na,nb,nc,nd->n", wt, phi[:, 0], phi[:, 1], phi[:, 2], phi[:, 3])

    t = np.array([0.1, 0.5, 0.9, 1.3])
    phi = np.stack([np.ones_like(t), t, t * t], axis=1)
    grid = np.einsum("abcd,ia,jb,kc,ld->ijkl", w, phi, phi, phi, phi)
    for part in ([0], [0, 1], [2, 0], {1, 3}, (3,)):
        res = ent.separation_rank(f, part, n_sites=4, templates=t)
        rows = sorted(part)
        np.testing.assert_allclose(res.singular_values, _svd(grid, rows), rtol=1e-10, atol=1e-12)
        assert res.rank == _rank(grid, rows) == _rank(w, rows)  # Phi has full column rank: the rank of W
        assert res.part == tuple(rows) and res.matrix_shape == (4 ** len(rows), 4 ** (4 - len(rows)))
    # two templates do not span phi's 3-dim space: a lower bound only
    assert ent.separation_rank(f, [0, 1], n_sites=4, templates=t[:2]).rank <= _rank(w, [0, 1])


def test_separation_rank_of_a_one_hot_model_is_the_svd_of_its_coefficients():
    """One-hot templates 0..d-1 make the grid tensor the coefficient tensor itself: equal singular values."""
    m = _randomize(CP(4, 3, 5, feature_map="onehot", dtype=torch.float64))
    dense = _dense(m)
    for part in ([0], [0, 1], [1, 3], [2, 0, 3]):
        res = ent.separation_rank(m, part)
        np.testing.assert_array_equal(res.templates, [0.0, 1.0, 2.0])
        np.testing.assert_allclose(res.singular_values, _svd(dense, sorted(part)), rtol=1e-12, atol=1e-12)
        assert res.rank == ent.cut_rank(m, part)


def test_separation_rank_of_a_model_with_outputs_is_per_component():
    m = _randomize(MPS(4, 2, 3, out_dim=2, dtype=torch.float64))
    with pytest.raises(ValueError, match="output=k"):
        ent.separation_rank(m, [0, 1])
    for k in range(2):
        for part in ([0], [0, 1], [1, 3]):
            assert ent.separation_rank(m, part, output=k).rank == ent.cut_rank(m, part, output=k)


# ---------------------------------------------------------------------------------------------------- report


@pytest.mark.parametrize(
    "make, partitions, output",
    [
        (lambda: MPS(6, 2, 3, out_dim=3, dtype=torch.float64), None, None),
        (lambda: MPS(6, 2, 3, out_dim=3, dtype=torch.float64), [{0, 2}, Partition((1, 2, 3), level=7)], 2),
        (lambda: TTN(tree=((0, (1, 2)), (3, 4, 5)), bond_dim=[2, 3], dtype=torch.float64), "tree", None),
        (lambda: TTN(n_sites=6, bond_dim=3, out_dim=2, dtype=torch.float64), "interleaved", 1),
        (lambda: PEPS((2, 2), 2, 2, dtype=torch.float64), None, None),
    ],
    ids=["mps-canonical", "mps-given", "ttn-tree", "ttn-interleaved", "peps"],
)
def test_report_numbers_are_the_functions_own(make, partitions, output):
    m = _randomize(make())
    rep = ent.entanglement_report(m, partitions, output=output)
    k = output if output is not None else (0 if m.out_dim is not None else None)
    assert rep.output == k and len(rep) > 0
    for r in rep:
        bound = ent.mincut_bound(m, r.sites)
        assert r.bound_rank == bound.rank_bound and r.bound_log == bound.log_bound
        assert r.cut == tuple(c[2] for c in bound.cut)
        assert r.rank == ent.cut_rank(m, r.sites, output=k)
        assert r.entropy == pytest.approx(float(ent.entanglement_entropy(m, r.sites, output=k).detach()), abs=1e-12)
        assert r.rank == _rank(_dense(m, k), r.sites) and r.reached == (r.rank == r.bound_rank)
    if partitions is not None and not isinstance(partitions, str):
        assert [r.sites for r in rep] == [(0, 2), (1, 2, 3)] and [r.level for r in rep] == [None, 7]
    rows = json.loads(json.dumps(rep.to_dicts()))
    assert [d["sites"] for d in rows] == [list(r.sites) for r in rep]
    assert set(rows[0]) == {"sites", "level", "bound_rank", "bound_log", "cut", "rank", "entropy", "reached", "size"}
    lines = rep.to_markdown().strip().splitlines()
    assert len(lines) == 2 + len(rep)
    for line, r in zip(lines[2:], rep, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == Partition(r.sites).compact()
        assert (int(cells[2]), int(cells[3]), int(cells[5])) == (len(r.sites), r.bound_rank, r.rank)
        assert float(cells[4]) == pytest.approx(r.bound_log, abs=5e-4)
        assert float(cells[6]) == pytest.approx(r.entropy, abs=5e-4)
