"""Walk index of a graph partition (P4): the quantity that bounds how strongly a product-aggregation GNN can model
interactions across a partition of the vertices.

Definitions (P4). ``Â = A + I`` (self-loops always added). For a part ``I`` of the vertices, ``C_I`` holds the
vertices on either side of ``(I, I^c)`` that have an edge crossing it, and

    ρ_k(C, T) = Σ_{c ∈ C, t ∈ T} [Â^k]_{c, t}        (walks of length k from C to T, staying put allowed).

A depth-``L`` GNN has walk index ``ρ_{L-1}(C_I, V)`` for graph prediction and ``ρ_{L-1}(C_I, {t})`` for the
prediction at a target vertex ``t``.

Graphs (a networkx graph, an edge list or a torch ``edge_index``) are read by :mod:`tnml.graphs` as simple
undirected graphs, vertices ordered by sorted label; see there.
"""

from __future__ import annotations

import numpy as np

from tnml.graphs import (
    IndexedGraph,
    as_indexed_graph,
    augmented_adjacency,
)
from tnml.graphs import propagate as _propagate
from tnml.graphs import vertex_set as _vertex_set
from tnml.validation import as_int, positive_int

__all__ = ["IndexedGraph", "as_indexed_graph", "augmented_adjacency", "boundary", "walk_counts", "walk_index"]


def _part(g: IndexedGraph, part) -> np.ndarray:
    idx = _vertex_set(g, part, "part")
    if not idx:
        raise ValueError("part is empty; side I must hold at least one vertex")
    if len(idx) == g.n_vertices:
        raise ValueError(f"part holds all {g.n_vertices} vertices, so I^c is empty; leave at least one out")
    mask = np.zeros(g.n_vertices, dtype=bool)
    mask[idx] = True
    return mask


def _boundary_mask(g: IndexedGraph, mask: np.ndarray) -> np.ndarray:
    out = np.zeros(g.n_vertices, dtype=bool)
    if g.n_edges:
        u, v = g.edges[:, 0], g.edges[:, 1]
        cross = mask[u] != mask[v]
        out[u[cross]] = True
        out[v[cross]] = True
    return out


def boundary(graph, part) -> frozenset:
    """``C_I``: the vertices, on either side of ``(I, I^c)``, that have an edge crossing the partition.

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
    part : iterable of vertex labels
        Side ``I``: a nonempty proper subset of the vertices, each listed once.

    Returns
    -------
    frozenset of vertex labels

    Examples
    --------
    >>> edges = [(1, 2), (1, 3), (2, 4), (3, 5), (3, 6), (4, 6), (5, 7), (6, 7)]   # P4, Fig. 1
    >>> sorted(boundary(edges, {1, 2, 3, 4}))
    [3, 4, 5, 6]
    """
    g = as_indexed_graph(graph)
    m = _boundary_mask(g, _part(g, part))
    return frozenset(g.labels[i] for i in np.flatnonzero(m))


def walk_counts(graph, length: int, sources) -> dict:
    """Walks of ``length`` steps on ``Â = A + I`` from a set of sources to each vertex.

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
    length : int
        ``k >= 0``; ``k = 0`` counts only the sources themselves.
    sources : iterable of vertex labels
        The set ``C`` (each listed once; may be empty).

    Returns
    -------
    dict vertex label -> int
        ``t -> ρ_k(C, {t}) = Σ_{c ∈ C} [Â^k]_{c, t}`` (exact integers).

    Examples
    --------
    >>> walk_counts([(0, 1), (1, 2)], 2, [0])
    {0: 2, 1: 2, 2: 1}
    """
    length = as_int("length", length, 0, fix="the walk length")
    g = as_indexed_graph(graph)
    x = np.zeros(g.n_vertices, dtype=np.int64)
    x[_vertex_set(g, sources, "sources")] = 1
    y = _propagate(augmented_adjacency(g), x, int(length))
    return {lab: int(y[i]) for i, lab in enumerate(g.labels)}


def walk_index(graph, part, depth: int, target=None) -> int:
    """Walk index of the partition ``(I, I^c)`` for a depth-``L`` product-aggregation GNN (P4).

    Graph prediction: ``ρ_{L-1}(C_I, V) = Σ_{c ∈ C_I, t ∈ V} [Â^{L-1}]_{c,t}``; vertex prediction at ``target``:
    ``ρ_{L-1}(C_I, {t})``. ``Â = A + I``. P4 bounds the separation rank of the GNN across ``(I, I^c)`` in terms of it
    (see :func:`tnml.entanglement.separation_rank` to compute the true rank on small cases).

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
    part : iterable of vertex labels
        Side ``I``: a nonempty proper subset of the vertices.
    depth : int
        ``L >= 1``, the number of GNN layers.
    target : vertex label, optional
        The target vertex for vertex prediction; ``None`` for graph prediction.

    Returns
    -------
    int
        The walk index (exact).

    Examples
    --------
    >>> edges = [(1, 2), (1, 3), (2, 4), (3, 5), (3, 6), (4, 6), (5, 7), (6, 7)]   # P4, Fig. 1
    >>> [walk_index(edges, {1, 2, 3, 4}, L) for L in (1, 2, 3, 4)]
    [4, 14, 48, 163]
    >>> walk_index(edges, {1, 2, 3, 4}, 2, target=7)
    2
    """
    depth = positive_int("depth", depth, fix="the number of GNN layers L")
    g = as_indexed_graph(graph)
    c = _boundary_mask(g, _part(g, part)).astype(np.int64)
    if target is not None:
        (t,) = _vertex_set(g, [target], "target")
    y = _propagate(augmented_adjacency(g), c, int(depth) - 1, "depth", depth)  # y[t] = ρ_{L-1}(C_I, {t})
    return int(y[t]) if target is not None else int(sum(int(v) for v in y))
