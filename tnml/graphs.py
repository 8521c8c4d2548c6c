"""Graphs as the library reads them: a simple undirected graph on vertices ``0 .. n-1`` with the user's labels,
its augmented adjacency ``Â = A + I`` and exact walk propagation ``Â^k x``.

Shared by the models (:mod:`tnml.networks.product_gnn`, :mod:`tnml.networks.gcn`), the analysis
(:mod:`tnml.entanglement.walk_index`) and the preprocessing (:mod:`tnml.preprocessing`), so it lives below all of
them.

Graphs come in as a networkx graph (any hashable labels; isolated vertices kept), an edge list (a sequence of pairs
or an ``(E, 2)`` array; the vertices are the endpoints), or a torch ``edge_index`` of shape ``(2, E)`` (vertices
``0 .. max + 1``, the torch_geometric convention). They are read as *simple undirected* graphs: the direction of an
edge, repeated edges and self-loops are ignored (``Â`` adds every self-loop anyway, so an input self-loop would only
double-count the "stay" step). Vertices are ordered by sorted label (insertion order if labels do not sort); that
order fixes every deterministic tie-break in :mod:`tnml.preprocessing`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp

from tnml import settings
from tnml.settings import MemoryLimitError

__all__ = [
    "IndexedGraph",
    "as_indexed_graph",
    "augmented_adjacency",
    "check_walk_size",
    "propagate",
    "vertex_set",
]

_INT64_SAFE = 2**62


@dataclass(frozen=True)
class IndexedGraph:
    """A simple undirected graph on vertices ``0 .. n-1`` plus the user's labels.

    Attributes
    ----------
    labels : list
        ``labels[i]`` is the user's label of vertex ``i``.
    index : dict
        Label -> vertex index.
    edges : ndarray of int64, shape (n_edges, 2)
        Each undirected edge once, ``edges[:, 0] < edges[:, 1]``, rows sorted lexicographically.
    first_seen : ndarray of int64, shape (n_edges,), optional
        For each row of ``edges``, the position in the input (edge list, ``edge_index`` column, networkx edge
        iteration) where the edge first appears, in either direction; None when the input order is unknown. Used by
        input-order tie-breaks (``tie_break="first"/"last"/"authors"`` in :mod:`tnml.preprocessing`).
    """

    labels: list
    index: dict
    edges: np.ndarray
    first_seen: np.ndarray | None = None

    @property
    def n_vertices(self) -> int:
        return len(self.labels)

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    def adjacency_sets(self) -> list[set[int]]:
        """Neighbour sets (a fresh copy each call), ``out[i]`` = neighbours of vertex ``i``."""
        adj: list[set[int]] = [set() for _ in range(self.n_vertices)]
        for u, v in self.edges.tolist():
            adj[u].add(v)
            adj[v].add(u)
        return adj

    def edge_label(self, u: int, v: int) -> tuple:
        """The user's labels of edge ``(u, v)`` (indices), smaller index first."""
        if u > v:
            u, v = v, u
        return (self.labels[u], self.labels[v])


def _ordered(labels: Iterable[Hashable]) -> list:
    labels = list(dict.fromkeys(labels))
    try:
        return sorted(labels)
    except TypeError:  # labels of mixed / unorderable types: keep first-seen order
        return labels


def as_indexed_graph(graph, name: str = "graph") -> IndexedGraph:
    """Read a networkx graph, an edge list or a torch ``edge_index`` as an :class:`IndexedGraph`.

    Parameters
    ----------
    graph : networkx.Graph, sequence of pairs, ndarray (E, 2), or torch.Tensor (2, E)
        See the module docstring for how each is read. Directed networkx graphs are refused (use
        ``graph.to_undirected()``); torch tensors must be integer ``(2, E)`` with nonnegative entries.
    name : str
        The parameter name used in error messages.

    Returns
    -------
    IndexedGraph

    Examples
    --------
    >>> g = as_indexed_graph([(2, 1), (1, 2), (2, 3), (3, 3)])
    >>> g.labels, g.edges.tolist()
    ([1, 2, 3], [[0, 1], [1, 2]])
    """
    if isinstance(graph, IndexedGraph):
        return graph
    pairs: list
    if isinstance(graph, nx.Graph):
        if graph.is_directed():
            raise TypeError(f"{name} is a directed networkx graph; pass {name}.to_undirected() (walks are undirected)")
        labels = _ordered(graph.nodes)
        pairs = list(graph.edges())
    else:
        import torch

        if isinstance(graph, torch.Tensor):
            if graph.dim() != 2 or graph.shape[0] != 2:
                raise ValueError(
                    f"{name} as a torch tensor must be an edge_index of shape (2, E), got {tuple(graph.shape)}"
                )
            if graph.dtype.is_floating_point or graph.dtype.is_complex or graph.dtype == torch.bool:
                raise TypeError(f"{name} edge_index must hold integers, got dtype {graph.dtype}; use .long()")
            ei = graph.detach().cpu().numpy().astype(np.int64)
            if ei.size and ei.min() < 0:
                raise ValueError(f"{name} edge_index has negative vertex index {int(ei.min())}; indices must be >= 0")
            n = int(ei.max()) + 1 if ei.size else 0
            if n > max(64 * ei.shape[1], 2**20):  # labels range(n): refuse before a list of n ints
                raise MemoryLimitError(
                    f"{name} edge_index names vertex {n - 1}, so the graph would have {n} vertices (0..max) for "
                    f"{ei.shape[1]} edge entries; relabel the vertices to 0..n-1 first, e.g. "
                    "torch.unique(edge_index, return_inverse=True)[1]"
                )
            labels = list(range(n))
            pairs = list(zip(ei[0].tolist(), ei[1].tolist()))
        else:
            if isinstance(graph, (str, bytes)) or not isinstance(graph, Iterable):
                raise TypeError(
                    f"{name} must be a networkx graph, an edge list of pairs, or a torch edge_index (2, E); "
                    f"got {type(graph).__name__}"
                )
            pairs = []
            for k, e in enumerate(graph.tolist() if isinstance(graph, np.ndarray) else graph):
                try:
                    u, v = e
                except (TypeError, ValueError):
                    raise ValueError(f"{name} edge {k} is {e!r}; every edge must be a pair (u, v)") from None
                pairs.append((u, v))
            labels = _ordered(x for e in pairs for x in e)
    if not labels:
        raise ValueError(f"{name} has no vertices; give at least one edge or a networkx graph with nodes")
    index = {lab: i for i, lab in enumerate(labels)}
    es: dict[tuple[int, int], int] = {}
    for k, (u, v) in enumerate(pairs):
        i, j = index[u], index[v]
        if i != j:
            es.setdefault((i, j) if i < j else (j, i), k)
    keys = sorted(es)
    edges = np.array(keys, dtype=np.int64).reshape(-1, 2)
    first = np.fromiter((es[e] for e in keys), dtype=np.int64, count=len(keys))
    return IndexedGraph(labels=labels, index=index, edges=edges, first_seen=first)


def augmented_adjacency(graph) -> sp.csr_matrix:
    """``Â = A + I`` as a sparse int64 matrix of shape ``(n_vertices, n_vertices)`` (vertex order of
    :func:`as_indexed_graph`).

    Examples
    --------
    >>> augmented_adjacency([(0, 1)]).toarray().tolist()
    [[1, 1], [1, 1]]
    """
    g = as_indexed_graph(graph)
    n = g.n_vertices
    u, v = g.edges[:, 0], g.edges[:, 1]
    d = np.arange(n)
    rows = np.concatenate([u, v, d])
    cols = np.concatenate([v, u, d])
    return sp.csr_matrix((np.ones(rows.size, dtype=np.int64), (rows, cols)), shape=(n, n))


def vertex_set(g: IndexedGraph, part, name: str) -> list[int]:
    """Indices of the vertices ``part`` names (labels, each once; a single label is a one-vertex part).

    Parameters
    ----------
    g : IndexedGraph
    part : label or iterable of labels
    name : str
        The parameter name used in error messages.

    Returns
    -------
    list of int

    Raises
    ------
    ValueError
        A label is not a vertex, or is listed twice.
    """
    if hasattr(part, "tolist") and not isinstance(part, (str, bytes)):  # numpy / torch: labels, not 0-d arrays
        part = part.tolist()
    if isinstance(part, (str, bytes)) or not isinstance(part, Iterable):
        part = [part]
    items = list(part)
    unhashable = [p for p in items if not isinstance(p, Hashable)]
    if unhashable:
        raise ValueError(f"{name} holds {unhashable[:3]!r}, which cannot be a vertex label (unhashable); give "
                         "vertex labels")
    unknown = [p for p in items if p not in g.index]
    if unknown:
        raise ValueError(
            f"{name} holds {unknown[:6]}, which are not vertices of the graph; its vertices are {g.labels[:8]}"
        )
    dup = sorted({repr(p) for p in items if items.count(p) > 1})
    if dup:
        raise ValueError(f"{name} repeats vertices {dup[:6]}; list each once")
    return [g.index[p] for p in items]


def check_walk_size(start: int, max_row: int, k: int, name: str = "depth", value=None) -> None:
    """Refuse, in O(1), walks of length ``k`` whose counts may exceed ``tnml.settings.max_walk_bits`` bits
    (``start`` walks of length 0, at most ``max_row`` continuations per step)."""
    bits = math.log2(max(start, 1)) + k * math.log2(max_row)
    if bits > settings.max_walk_bits:
        shown = value if value is not None else k
        raise MemoryLimitError(
            f"{name}={shown} gives walk counts of up to 2^{bits:.3g} on this graph (max degree {max_row - 1}), more "
            f"than tnml.settings.max_walk_bits = {settings.max_walk_bits} bits, and exact counting would not finish; "
            f"use a smaller {name}, or raise tnml.settings.max_walk_bits"
        )


def propagate(a_hat: sp.csr_matrix, x: np.ndarray, k: int, name: str = "length", value=None) -> np.ndarray:
    """``Â^k x`` exactly: int64 sparse products while no overflow is possible, Python integers beyond.

    Parameters
    ----------
    a_hat : scipy.sparse.csr_matrix, shape (n, n)
        :func:`augmented_adjacency` (any nonnegative integer matrix).
    x : ndarray of int, shape (n,) or (n, m)
    k : int
        Number of steps, ``k >= 0``.
    name, value
        How the caller's parameter is named in the error raised when the counts would exceed
        ``tnml.settings.max_walk_bits``.

    Returns
    -------
    ndarray
        int64 when no count can overflow it, else of Python integers (dtype object).

    Examples
    --------
    >>> propagate(augmented_adjacency([(0, 1), (1, 2)]), np.array([1, 0, 0]), 2).tolist()
    [2, 2, 1]
    """
    n = a_hat.shape[0]
    max_row = int(np.diff(a_hat.indptr).max()) if n else 1
    if k == 0 or max_row <= 1 or not np.any(x):  # Â = I (no edges) or nothing to propagate
        return x.astype(np.int64) if x.dtype != object else x
    check_walk_size(int(np.abs(x).sum()), max_row, k, name, value)
    bound = int(np.abs(x).sum()) * max_row**k
    if bound < _INT64_SAFE:
        y = x.astype(np.int64)
        for _ in range(k):
            y = a_hat @ y
        return y
    big = [int(v) for v in x]
    indptr, indices = a_hat.indptr, a_hat.indices
    for _ in range(k):
        big = [sum(big[j] for j in indices[indptr[i] : indptr[i + 1]]) for i in range(n)]
    return np.array(big, dtype=object)
