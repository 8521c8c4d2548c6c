"""1-WIS (P4): walk-index sparsification for depth-2 GNNs, which reduces to a degree rule, run with a heap.

For ``L = 2`` the per-vertex walk index of (L−1)-WIS is ``deg t + 1`` (0 for an isolated vertex), and removing the
edge whose lexicographically sorted vector of those values stays largest is the same as removing the edge that
maximizes ``min(deg u, deg v)``, ties broken by the larger ``max(deg u, deg v)`` (SPEC §4).
"""

from __future__ import annotations

import heapq

import numpy as np

from tnml.entanglement.walk_index import IndexedGraph, as_indexed_graph

__all__ = ["TIE_BREAKS", "check_n_remove", "check_tie_break", "one_wis", "tie_rank"]


def check_n_remove(n_remove, n_edges: int) -> int:
    """Validate the number of edges to remove: an integer in ``[0, n_edges]``."""
    if isinstance(n_remove, bool) or not isinstance(n_remove, (int, np.integer)):
        raise TypeError(f"n_remove must be an integer number of edges, got {n_remove!r}")
    if not 0 <= n_remove <= n_edges:
        raise ValueError(
            f"n_remove must be between 0 and the number of edges ({n_edges}, self-loops and repeats not counted), "
            f"got {n_remove}"
        )
    return int(n_remove)


TIE_BREAKS = ("vertex", "first", "last", "authors")


def check_tie_break(tie_break, g: IndexedGraph) -> str:
    """Validate ``tie_break``; input-order rules need the input order (:attr:`IndexedGraph.first_seen`)."""
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break={tie_break!r} is unknown; choose one of {TIE_BREAKS}")
    if tie_break != "vertex" and g.first_seen is None:
        raise ValueError(
            f"tie_break={tie_break!r} needs the input order of the edges, which this graph does not carry; pass the "
            "edge list, edge_index or networkx graph itself, or use tie_break='vertex'"
        )
    return tie_break


def tie_rank(g: IndexedGraph, tie_break: str, authors: str) -> np.ndarray:
    """Per edge row, the secondary heap key (smaller first) of a tie-break; ``authors`` is what ``"authors"``
    means for the caller (``"first"`` or ``"last"``)."""
    rule = authors if tie_break == "authors" else tie_break
    if rule == "vertex":  # the rows of g.edges are in (u, v) order
        return np.arange(g.n_edges, dtype=np.int64)
    return g.first_seen if rule == "first" else -g.first_seen


def one_wis(graph, n_remove: int, *, tie_break: str = "vertex") -> list[tuple]:
    """1-WIS: remove ``n_remove`` edges one at a time, each time the edge that maximizes ``min(deg u, deg v)``.

    Degrees are those of the current (already sparsified) graph. Ties: larger ``max(deg u, deg v)`` first; then, by
    ``tie_break``: ``"vertex"`` (default) the edge ``(i, j)``, ``i < j``, that comes first in the vertex order of
    :func:`tnml.entanglement.walk_index.as_indexed_graph` (sorted labels), compared as a pair — the order of
    :func:`tnml.preprocessing.walk_index_sparsification` with ``depth=2``; ``"first"`` / ``"last"`` the edge that
    appears first / last in the input (its first appearance, either direction); ``"authors"`` the order of P4's
    released efficient 1-WIS (the first tied ``edge_index`` column: ``"first"``; it counts degrees from the
    columns' targets, so give both directions of every edge, as torch_geometric stores them).

    A max-heap keyed by ``(min deg, max deg)`` with lazy re-evaluation: degrees only decrease, so an entry popped
    with a stale key is pushed back with its current key, and an entry whose key is current is the maximum.
    Cost ``O((|E| + k + r) log |E|)`` for ``k`` removals and ``r`` re-pushes of stale entries.

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
        Read as a simple undirected graph (self-loops and repeats ignored).
    n_remove : int
        Number of edges to remove, ``0 <= n_remove <= |E|``.
    tie_break : {"vertex", "first", "last", "authors"}
        See above.

    Returns
    -------
    list of (label, label)
        The removed edges in removal order, each as ``(u, v)`` with ``u`` before ``v`` in vertex order.

    Examples
    --------
    >>> one_wis([(0, 1), (1, 2), (2, 3)], 1)
    [(1, 2)]
    >>> one_wis([(0, 1), (0, 3), (1, 2), (1, 3), (1, 4), (2, 3), (2, 5), (3, 4), (3, 5)], 2)
    [(1, 3), (2, 3)]
    """
    g = as_indexed_graph(graph)
    n_remove = check_n_remove(n_remove, g.n_edges)
    tie_break = check_tie_break(tie_break, g)
    return [g.edge_label(u, v) for u, v in _one_wis_indices(g, n_remove, tie_break)]


def _one_wis_indices(g: IndexedGraph, n_remove: int, tie_break: str = "vertex") -> list[tuple[int, int]]:
    deg = np.bincount(g.edges.ravel(), minlength=g.n_vertices).tolist()
    rank = tie_rank(g, tie_break, "first").tolist()
    heap = []
    for (u, v), r in zip(g.edges.tolist(), rank):
        du, dv = deg[u], deg[v]
        heap.append((-min(du, dv), -max(du, dv), r, u, v))
    heapq.heapify(heap)
    out = []
    pop, push = heapq.heappop, heapq.heappush
    while len(out) < n_remove:
        nlo, nhi, r, u, v = pop(heap)
        du, dv = deg[u], deg[v]
        lo, hi = (du, dv) if du < dv else (dv, du)
        if lo != -nlo or hi != -nhi:
            push(heap, (-lo, -hi, r, u, v))
            continue
        deg[u] = du - 1
        deg[v] = dv - 1
        out.append((u, v))
    return out
