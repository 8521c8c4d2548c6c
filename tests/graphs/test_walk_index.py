"""Walk index and boundary (P4): the P4 Fig. 1 example and brute-force walk enumeration."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tnml.entanglement as ent
from tnml.entanglement.walk_index import as_indexed_graph, augmented_adjacency, boundary, walk_counts, walk_index

FIG1 = [(1, 2), (1, 3), (2, 4), (3, 5), (3, 6), (4, 6), (5, 7), (6, 7)]


def brute_walks(edges, n, sources, targets, k):
    """Count walks of k steps (each step: stay, or move along an edge) from sources to targets by enumeration."""
    nbrs = {v: {v} for v in range(n)}
    for u, v in edges:
        nbrs[u].add(v)
        nbrs[v].add(u)
    total = 0
    for c in sources:
        walks = [[c]]
        for _ in range(k):
            walks = [w + [x] for w in walks for x in sorted(nbrs[w[-1]])]
        total += sum(w[-1] in targets for w in walks)
    return total


def test_fig1_boundary_and_walk_index():
    assert boundary(FIG1, {1, 2, 3, 4}) == {3, 4, 5, 6}
    assert [walk_index(FIG1, {1, 2, 3, 4}, L) for L in (1, 2, 3, 4)] == [4, 14, 48, 163]
    assert ent.walk_index(FIG1, [5, 6, 7], 3) == 48  # the same cut seen from the other side


def test_input_forms_agree():
    g = nx.Graph(FIG1)
    ei = torch.tensor(FIG1).T - 1  # 0-based edge_index, one direction only
    assert walk_index(g, {1, 2, 3, 4}, 3) == 48
    assert walk_index(ei, {0, 1, 2, 3}, 3) == 48
    assert walk_index(np.array(FIG1), {1, 2, 3, 4}, 3) == 48
    assert walk_index(FIG1 + [(3, 3), (2, 1)], {1, 2, 3, 4}, 3) == 48  # self-loops and repeats are ignored


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(3, 7),
    p=st.floats(0.2, 0.8),
    seed=st.integers(0, 10_000),
    depth=st.integers(1, 4),
    data=st.data(),
)
def test_walk_index_equals_enumeration(n, p, seed, depth, data):
    g = nx.gnp_random_graph(n, p, seed=seed)
    edges = list(g.edges())
    size = data.draw(st.integers(1, n - 1))
    part = set(data.draw(st.permutations(range(n)))[:size])
    c = {x for u, v in edges if (u in part) != (v in part) for x in (u, v)}
    assert boundary(g, part) == c
    assert walk_index(g, part, depth) == brute_walks(edges, n, c, set(range(n)), depth - 1)
    t = data.draw(st.integers(0, n - 1))
    assert walk_index(g, part, depth, target=t) == brute_walks(edges, n, c, {t}, depth - 1)


def test_walk_counts_and_adjacency():
    a = augmented_adjacency(FIG1).toarray()
    assert (a == a.T).all() and (np.diag(a) == 1).all() and a.sum() == 7 + 2 * 8
    counts = walk_counts(FIG1, 3, [3, 4, 5, 6])
    assert sum(counts.values()) == 163
    assert walk_counts(FIG1, 0, []) == dict.fromkeys(range(1, 8), 0)


def test_exact_beyond_int64():
    g = nx.complete_graph(30)  # 30^40 overflows int64: the exact fallback takes over
    got = walk_index(g, range(15), 41)
    assert got == 30 * 30**40  # every vertex is on the boundary; Â = all-ones, so Â^k = 30^(k-1) · J
    assert isinstance(got, int)


def test_isolated_vertices_are_kept():
    g = nx.Graph([(0, 1)])
    g.add_node(2)
    assert as_indexed_graph(g).labels == [0, 1, 2]
    assert walk_index(g, {0, 2}, 2) == 4  # C = {0, 1}; Â 1 summed over C: 2 + 2


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: walk_index(FIG1, set(), 2), ValueError, "part is empty"),
        (lambda: walk_index(FIG1, range(1, 8), 2), ValueError, "I\\^c is empty"),
        (lambda: walk_index(FIG1, {1, 99}, 2), ValueError, "not vertices of the graph"),
        (lambda: walk_index(FIG1, [1, 1], 2), ValueError, "repeats vertices"),
        (lambda: walk_index(FIG1, {1}, 0), ValueError, "depth must be an integer >= 1"),
        (lambda: walk_index(FIG1, {1}, 2, target=42), ValueError, "target holds"),
        (lambda: walk_index(nx.DiGraph(FIG1), {1}, 2), TypeError, "to_undirected"),
        (lambda: walk_index(torch.zeros(3, 4, dtype=torch.long), {0}, 2), ValueError, "shape \\(2, E\\)"),
        (lambda: walk_index(torch.zeros(2, 4), {0}, 2), TypeError, "must hold integers"),
        (lambda: walk_index(torch.tensor([[0, -1], [1, 2]]), {0}, 2), ValueError, "negative vertex"),
        (lambda: walk_index([(1, 2, 3)], {1}, 2), ValueError, "must be a pair"),
        (lambda: walk_index([], {1}, 2), ValueError, "has no vertices"),
        (lambda: walk_index("1 2", {1}, 2), TypeError, "networkx graph, an edge list"),
        (lambda: walk_counts(FIG1, -1, [1]), ValueError, "length must be an integer >= 0"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_walk_index_grows_with_depth():
    g = nx.path_graph(8)
    values = [walk_index(g, range(4), L) for L in range(1, 6)]
    assert all(a < b for a, b in itertools.pairwise(values))
