"""(L−1)-WIS and 1-WIS: small facts of P4's algorithm, a dense naive reference, and the baselines' interface."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from tnml.entanglement.walk_index import as_indexed_graph
from tnml.preprocessing import (
    degree_sparsification,
    one_wis,
    random_sparsification,
    spectral_sparsification,
    walk_index_sparsification,
)
from tnml.preprocessing.sparsify_baselines import effective_resistances
from tnml.preprocessing.wis import _wis_indices

P4_EDGES = [(0, 1), (0, 3), (1, 2), (1, 3), (1, 4), (2, 3), (2, 5), (3, 4), (3, 5)]


def naive_wis(edges, n_remove: int, depth: int) -> list[tuple]:
    """P4's (L−1)-WIS verbatim: for every candidate edge, recompute s^(e) with dense matrix powers on G ∖ e."""
    g = as_indexed_graph(edges)
    n = g.n_vertices
    a = np.zeros((n, n), dtype=np.int64)
    for u, v in g.edges.tolist():
        a[u, v] = a[v, u] = 1
    removed = []
    for _ in range(n_remove):
        best, best_e = None, None
        for u, v in zip(*np.nonzero(np.triu(a))):
            b = a.copy()
            b[u, v] = b[v, u] = 0
            deg = b.sum(1)
            pk = np.linalg.matrix_power(b + np.eye(n, dtype=np.int64), depth - 1)
            s = [sum(pk[x, t] for x in np.flatnonzero(b[t])) + pk[t, t] * (deg[t] > 0) for t in range(n)]
            vec = tuple(sorted(int(x) for x in s))
            if best is None or vec > best:  # strict: ties keep the first edge in (u, v) order
                best, best_e = vec, (int(u), int(v))
        a[best_e[0], best_e[1]] = a[best_e[1], best_e[0]] = 0
        removed.append(g.edge_label(*best_e))
    return removed


def random_graph(seed: int, n: int = 9, p: float = 0.4) -> list[tuple[int, int]]:
    g = nx.gnp_random_graph(n, p, seed=seed)
    return sorted(g.edges()) or [(0, 1)]


# ------------------------------------------------------------------------------------------- small facts
def test_path_first_removal():
    path = [(0, 1), (1, 2), (2, 3)]
    assert one_wis(path, 1) == [(1, 2)]
    assert walk_index_sparsification(path, 1, depth=2) == [(1, 2)]
    assert naive_wis(path, 1, 2) == [(1, 2)]


def test_spec_graph_first_removals():
    assert one_wis(P4_EDGES, 1) == [(1, 3)]
    assert walk_index_sparsification(P4_EDGES, 1, depth=2) == [(1, 3)]
    assert walk_index_sparsification(P4_EDGES, 1, depth=3) == [(1, 2)]
    assert naive_wis(P4_EDGES, 1, 3) == [(1, 2)]


# ------------------------------------------------------------------------------------------ against the reference
@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("seed", range(6))
def test_efficient_equals_naive(seed, depth):
    edges = random_graph(seed, n=8 + seed % 3, p=0.35 + 0.05 * (seed % 3))
    k = len(edges) * 2 // 3
    assert walk_index_sparsification(edges, k, depth) == naive_wis(edges, k, depth)


@pytest.mark.parametrize("seed", range(4))
def test_ties_with_symmetric_graphs(seed):
    """Highly symmetric graphs: every step is a tie, resolved by the documented edge order."""
    g = [nx.cycle_graph(7), nx.complete_graph(5), nx.grid_2d_graph(3, 3), nx.star_graph(5)][seed]
    edges = sorted(tuple(sorted(e)) for e in g.edges())
    k = len(edges) - 1
    for depth in (2, 3):
        assert walk_index_sparsification(g, k, depth) == naive_wis(edges, k, depth)


@pytest.mark.parametrize("seed", range(5))
def test_depth2_equals_one_wis(seed):
    g = nx.barabasi_albert_graph(60, 3, seed=seed)
    k = g.number_of_edges()
    assert walk_index_sparsification(g, k, 2) == one_wis(g, k)


@pytest.mark.parametrize("depth", [2, 3])
def test_general_update_equals_closed_form(depth):
    g = as_indexed_graph(nx.barabasi_albert_graph(40, 3, seed=1))
    k = g.n_edges - 3
    assert _wis_indices(g, k, depth, general=True) == _wis_indices(g, k, depth)


def test_input_forms_agree():
    edges = random_graph(3, n=10)
    ref = walk_index_sparsification(edges, 5, 3)
    ei = torch.tensor(edges + [(v, u) for u, v in edges]).T  # both directions, as torch_geometric stores them
    assert walk_index_sparsification(ei, 5, 3) == ref
    assert walk_index_sparsification(nx.Graph(edges + [(2, 2)]), 5, 3) == ref  # self-loops are ignored


def test_removes_everything():
    g = nx.petersen_graph()
    out = walk_index_sparsification(g, g.number_of_edges(), 3)
    assert sorted(out) == sorted(tuple(sorted(e)) for e in g.edges())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_remove": 99, "depth": 3}, ValueError, "n_remove must be between 0 and"),
        ({"n_remove": -1, "depth": 3}, ValueError, "n_remove must be between 0 and"),
        ({"n_remove": 1.5, "depth": 3}, TypeError, "n_remove must be an integer"),
        ({"n_remove": 1, "depth": 1}, ValueError, "depth must be an integer >= 2"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        walk_index_sparsification(P4_EDGES, **kwargs)


# ------------------------------------------------------------------------------------------ baselines
BASELINES = {
    "random": lambda g, k: random_sparsification(g, k, seed=0),
    "spectral": lambda g, k: spectral_sparsification(g, k, seed=0),
    "spectral-greedy": lambda g, k: spectral_sparsification(g, k, seed=0, method="greedy"),
    "degree": degree_sparsification,
    "one_wis": one_wis,
}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_interface(name):
    g = nx.karate_club_graph()
    edges = {tuple(sorted(e)) for e in g.edges()}
    out = BASELINES[name](g, 30)
    assert len(out) == 30 and len(set(out)) == 30 and set(out) <= edges
    assert BASELINES[name](g, 30) == out  # deterministic for a fixed seed
    assert BASELINES[name](g, 0) == []


def test_random_depends_on_seed():
    g = nx.karate_club_graph()
    assert random_sparsification(g, 20, seed=0) != random_sparsification(g, 20, seed=1)


def test_effective_resistance_exact_and_sketch():
    g = nx.barabasi_albert_graph(80, 2, seed=0)
    ig = as_indexed_graph(g)
    exact = effective_resistances(ig)
    lap = nx.laplacian_matrix(g, nodelist=ig.labels).toarray().astype(float)
    pinv = np.linalg.pinv(lap)
    u, v = ig.edges[:, 0], ig.edges[:, 1]
    ref = pinv[u, u] + pinv[v, v] - 2 * pinv[u, v]
    np.testing.assert_allclose(exact, ref, rtol=1e-8, atol=1e-10)
    assert abs(exact.sum() - (ig.n_vertices - 1)) < 1e-8  # Foster's theorem
    approx = effective_resistances(ig, exact_limit=10, n_projections=400, seed=0)
    assert np.median(np.abs(approx / ref - 1)) < 0.1


def test_effective_resistance_sketch_ordering_changes_nothing(monkeypatch):
    """The sketch's sparse LU uses a minimum-degree ordering (SPLU_ORDERING); SuperLU's default ordering must give
    the same resistances to rounding, on a graph with several components (one grounded vertex each)."""
    import scipy.sparse.linalg as spla

    import tnml.preprocessing.sparsify_baselines as sb

    g = nx.disjoint_union(nx.barabasi_albert_graph(150, 3, seed=1), nx.cycle_graph(7))
    g.add_edge(200, 201)  # a third component
    splu, seen = spla.splu, []
    monkeypatch.setattr(sb.spla, "splu", lambda a, **kw: seen.append(kw) or splu(a, **kw))
    ours = sb.effective_resistances(g, exact_limit=10, n_projections=50, seed=3)
    assert seen == [{"permc_spec": "MMD_AT_PLUS_A"}]
    monkeypatch.setattr(sb.spla, "splu", lambda a, **kw: splu(a))  # SuperLU's default ordering (COLAMD)
    default = sb.effective_resistances(g, exact_limit=10, n_projections=50, seed=3)
    np.testing.assert_allclose(ours, default, rtol=1e-10, atol=1e-12)
    exact = sb.effective_resistances(g)
    assert np.median(np.abs(ours / exact - 1)) < 0.35  # 50 projections: relative error ~ sqrt(2/50) = 0.2


def test_spectral_greedy_removes_low_resistance_first():
    # a triangle (resistance 2/3 per edge) with a pendant bridge (resistance 1): the bridge goes last
    edges = [(0, 1), (1, 2), (0, 2), (2, 3)]
    assert spectral_sparsification(edges, 4, method="greedy")[-1] == (2, 3)
    assert (2, 3) not in spectral_sparsification(edges, 3, seed=5)  # sampled: bridges only when forced


def test_degree_heuristic_takes_hub_edges_first():
    g = nx.star_graph(4)
    g.add_edge(1, 2)
    assert degree_sparsification(g, 1) in ([(0, 1)], [(0, 2)])
    assert degree_sparsification(g, 1) == [(0, 1)]
