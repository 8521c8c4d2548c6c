"""WIS / 1-WIS tie-breaks against naive references, and the batched Δ route for depth >= 4."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

import tnml.preprocessing.wis as wis_mod
from tnml.entanglement.walk_index import as_indexed_graph
from tnml.preprocessing import one_wis, walk_index_sparsification
from tnml.preprocessing.wis import _wis_indices


def _vector(a: np.ndarray, depth: int) -> np.ndarray:
    """P4's walk-index vector: s_t = Σ_{u∈N(t)} [Â^{L−1}]_{u,t} + [Â^{L−1}]_{t,t}·1[deg t > 0], dense int64."""
    n = a.shape[0]
    pk = np.linalg.matrix_power(a + np.eye(n, dtype=np.int64), depth - 1)
    deg = a.sum(1)
    return (pk * a).sum(0) + np.diag(pk) * (deg > 0)


def _adjacency(n, edges):
    a = np.zeros((n, n), dtype=np.int64)
    for u, v in edges:
        a[u, v] = a[v, u] = 1
    return a


def naive_wis_ordered(edge_index: np.ndarray, n: int, k: int, depth: int, rule: str) -> list[tuple]:
    """Every candidate rescored from scratch; candidates in input order (first appearance, either direction);
    ties: the first (``rule="first"``) or the last (``"last"``) candidate in that order."""
    cands = []
    for u, v in edge_index.T.tolist():
        if u != v and (u, v) not in cands and (v, u) not in cands:
            cands.append((u, v))
    a = _adjacency(n, cands)
    out = []
    for _ in range(k):
        best, best_e = None, None
        for u, v in cands:
            b = a.copy()
            b[u, v] = b[v, u] = 0
            vec = tuple(sorted(_vector(b, depth).tolist()))
            if best is None or vec > best or (rule == "last" and vec == best):
                best, best_e = vec, (u, v)
        cands.remove(best_e)
        a[best_e[0], best_e[1]] = a[best_e[1], best_e[0]] = 0
        out.append(tuple(sorted(best_e)))
    return out


def authors_wis_reference(edge_index: np.ndarray, n: int, k: int, depth: int) -> list[tuple]:
    """The procedure of P4's released WIS (one removal per round), re-implemented from its description: one
    candidate per undirected edge (the first direction met in the remaining ``edge_index``), each candidate's
    vector sorted descending, a stable ``np.lexsort`` whose primary key is the smallest value, then reversed; the
    first after reversing goes. Both directions are then dropped from ``edge_index``."""
    remaining = edge_index.copy()
    out = []
    for _ in range(k):
        cands, seen = [], set()
        a = _adjacency(n, [tuple(c) for c in remaining.T.tolist() if c[0] != c[1]])
        vecs = []
        for u, v in remaining.T.tolist():
            if u == v or (v, u) in seen:
                continue
            seen.add((u, v))
            b = a.copy()
            b[u, v] = b[v, u] = 0
            vecs.append(np.sort(_vector(b, depth))[::-1])
            cands.append((u, v))
        order = np.lexsort(np.array(vecs).T)[::-1]
        u, v = cands[order[0]]
        keep = ~(((remaining[0] == u) & (remaining[1] == v)) | ((remaining[0] == v) & (remaining[1] == u)))
        remaining = remaining[:, keep]
        out.append(tuple(sorted((u, v))))
    return out


def authors_one_wis_reference(edge_index: np.ndarray, n: int, k: int) -> list[tuple]:
    """P4's released efficient 1-WIS, re-implemented: degrees from the columns' targets; among the columns with the
    largest min-degree, the first with the largest max-degree goes (both directions dropped)."""
    remaining = edge_index[:, edge_index[0] != edge_index[1]].copy()
    deg = np.bincount(remaining[1], minlength=n)
    out = []
    for _ in range(k):
        d = deg[remaining]
        lo, hi = d.min(0), d.max(0)
        cand = np.flatnonzero(lo == lo.max())
        i = cand[int(np.argmax(hi[cand]))]
        u, v = int(remaining[0, i]), int(remaining[1, i])
        deg[u] -= 1
        deg[v] -= 1
        keep = ~(((remaining[0] == u) & (remaining[1] == v)) | ((remaining[0] == v) & (remaining[1] == u)))
        remaining = remaining[:, keep]
        out.append(tuple(sorted((u, v))))
    return out


def _graph(seed: int):
    """Graphs with many ties: symmetric ones and small random ones, relabelled 0..n-1."""
    gs = [
        nx.cycle_graph(8),
        nx.grid_2d_graph(3, 3),
        nx.complete_graph(5),
        nx.star_graph(6),
        nx.circular_ladder_graph(4),
        nx.gnp_random_graph(9, 0.4, seed=seed),
        nx.gnm_random_graph(10, 16, seed=seed),
    ]
    return nx.convert_node_labels_to_integers(gs[seed % len(gs)])


def _edge_index(g, how: str, seed: int) -> np.ndarray:
    both = [e for u, v in g.edges for e in ((u, v), (v, u))]
    if how == "sorted":  # torch_geometric's coalesced layout: sorted by (source, target)
        both.sort()
    else:
        rng = np.random.default_rng(seed)
        both = [both[i] for i in rng.permutation(len(both))]
    return np.array(both, dtype=np.int64).T


def _sorted_pairs(removed):
    return [tuple(sorted(e)) for e in removed]


@pytest.mark.parametrize("how", ["sorted", "shuffled"])
@pytest.mark.parametrize("depth", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", range(7))
def test_wis_authors_tie_break_reproduces_their_order(seed, depth, how):
    g = _graph(seed)
    ei = _edge_index(g, how, seed)
    k = min(8, g.number_of_edges() - 1)
    ref = authors_wis_reference(ei, g.number_of_nodes(), k, depth)
    got = walk_index_sparsification(torch.as_tensor(ei), k, depth, tie_break="authors")
    assert _sorted_pairs(got) == ref


def test_wis_authors_order_differs_from_vertex_order_on_ties():
    """On a sorted edge_index the default (vertex-order) tie-break differs from theirs."""
    g = nx.cycle_graph(8)
    ei = _edge_index(g, "sorted", 0)
    ref = authors_wis_reference(ei, 8, 4, 3)
    assert _sorted_pairs(walk_index_sparsification(torch.as_tensor(ei), 4, 3)) != ref
    assert _sorted_pairs(walk_index_sparsification(torch.as_tensor(ei), 4, 3, tie_break="authors")) == ref


@pytest.mark.parametrize("rule", ["first", "last"])
@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("seed", range(7))
def test_wis_input_order_tie_breaks_equal_naive(seed, depth, rule):
    g = _graph(seed)
    ei = _edge_index(g, "shuffled", seed + 100)
    k = min(8, g.number_of_edges() - 1)
    ref = naive_wis_ordered(ei, g.number_of_nodes(), k, depth, rule)
    pairs = [tuple(c) for c in ei.T.tolist()]  # an edge list in the same order
    assert _sorted_pairs(walk_index_sparsification(pairs, k, depth, tie_break=rule)) == ref


@pytest.mark.parametrize("how", ["sorted", "shuffled"])
@pytest.mark.parametrize("seed", range(7))
def test_one_wis_authors_tie_break_reproduces_their_order(seed, how):
    g = _graph(seed)
    ei = _edge_index(g, how, seed)
    k = g.number_of_edges() - 1
    ref = authors_one_wis_reference(ei, g.number_of_nodes(), k)
    assert _sorted_pairs(one_wis(torch.as_tensor(ei), k, tie_break="authors")) == ref


@pytest.mark.parametrize("rule", ["first", "last", "vertex"])
@pytest.mark.parametrize("seed", range(7))
def test_one_wis_tie_breaks_equal_wis_depth2(seed, rule):
    """1-WIS and (L−1)-WIS at L = 2 pick the same edge under each input-order rule (both vs the naive order)."""
    g = _graph(seed)
    pairs = [tuple(c) for c in _edge_index(g, "shuffled", seed).T.tolist()]
    k = g.number_of_edges() - 1
    ref = naive_wis_ordered(np.array(pairs).T, g.number_of_nodes(), k, 2, "first" if rule == "vertex" else rule)
    got = _sorted_pairs(one_wis(pairs, k, tie_break=rule))
    assert got == _sorted_pairs(walk_index_sparsification(pairs, k, 2, tie_break=rule))
    if rule != "vertex":
        assert got == ref


def test_tie_break_errors():
    with pytest.raises(ValueError, match="tie_break='lowest' is unknown"):
        walk_index_sparsification([(0, 1)], 1, 3, tie_break="lowest")
    with pytest.raises(ValueError, match="tie_break"):
        one_wis([(0, 1)], 1, tie_break="random")
    g = as_indexed_graph([(0, 1), (1, 2)])
    bare = type(g)(labels=g.labels, index=g.index, edges=g.edges)
    with pytest.raises(ValueError, match="input order"):
        walk_index_sparsification(bare, 1, 3, tie_break="first")


# ---------------------------------------------------------------------------------------------- batched Δ
@pytest.mark.parametrize("depth", [4, 5, 6])
def test_batched_delta_equals_per_candidate_propagation(depth):
    g = as_indexed_graph(nx.barabasi_albert_graph(40, 3, seed=depth))
    k = g.n_edges - 5
    assert _wis_indices(g, k, depth) == _wis_indices(g, k, depth, general=True)


def test_batched_delta_int64_path(monkeypatch):
    g = as_indexed_graph(nx.gnm_random_graph(30, 70, seed=2))
    ref = _wis_indices(g, 20, 5, general=True)
    monkeypatch.setattr(wis_mod, "_batch_dtype", lambda g, depth: np.int64)
    assert _wis_indices(g, 20, 5) == ref


@pytest.mark.parametrize("depth", [4, 6])
def test_batched_delta_equals_dense_reference_directly(depth):
    g = nx.gnm_random_graph(12, 25, seed=depth)
    ig = as_indexed_graph(g)
    a = wis_mod.augmented_adjacency(ig).astype(np.float64)
    us, vs = ig.edges[:, 0], ig.edges[:, 1]
    d = wis_mod._delta_batch(a, us, vs, depth, np.float64)
    base = _adjacency(ig.n_vertices, ig.edges.tolist())
    full = np.diag(np.linalg.matrix_power(base + np.eye(ig.n_vertices, dtype=np.int64), depth))
    for j, (u, v) in enumerate(ig.edges.tolist()):
        b = base.copy()
        b[u, v] = b[v, u] = 0
        cut = np.diag(np.linalg.matrix_power(b + np.eye(ig.n_vertices, dtype=np.int64), depth))
        np.testing.assert_array_equal(d[:, j], full - cut)


@pytest.mark.parametrize("rule", ["vertex", "first", "last"])
@pytest.mark.parametrize("depth", [4, 5])
def test_full_rescoring_equals_heap_route(depth, rule):
    g = nx.gnm_random_graph(25, 60, seed=depth)
    pairs = [tuple(e) for e in np.random.default_rng(depth).permutation(np.array(list(g.edges))).tolist()]
    ig = as_indexed_graph(pairs)
    k = ig.n_edges - 4
    assert _wis_indices(ig, k, depth, tie_break=rule, rescore=True) == _wis_indices(
        ig, k, depth, tie_break=rule, rescore=False
    )
