"""1-WIS (P4): walk-index sparsification for depth-2 GNNs, which reduces to a degree rule, run with a heap.

For ``L = 2`` the per-vertex walk index of (L−1)-WIS is ``deg t + 1`` (0 for an isolated vertex), and removing the
edge whose lexicographically sorted vector of those values stays largest is the same as removing the edge that
maximizes ``min(deg u, deg v)``, ties broken by the larger ``max(deg u, deg v)`` (P4).
"""

from __future__ import annotations

import heapq

import numpy as np

from tnml.entanglement.walk_index import IndexedGraph, as_indexed_graph
from tnml.options import TieBreak, choices
from tnml.validation import check_option

__all__ = ["TIE_BREAKS", "check_n_remove", "check_tie_break", "greedy_by_degrees", "one_wis", "tie_rank"]


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


TIE_BREAKS = choices(TieBreak)


def check_tie_break(tie_break, g: IndexedGraph) -> TieBreak:
    """Validate ``tie_break``; input-order rules need the input order (:attr:`IndexedGraph.first_seen`)."""
    check_option("tie_break", tie_break, TieBreak)
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
    first = g.first_seen
    if first is None:  # check_tie_break refuses input-order rules on such graphs; here for direct callers
        raise ValueError(
            f"tie_break={tie_break!r} needs the input order of the edges, which this graph does not carry; use "
            "tie_break='vertex'"
        )
    return first if rule == "first" else -first


def one_wis(graph, n_remove: int, *, tie_break: TieBreak = "vertex") -> list[tuple]:
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
    return greedy_by_degrees(g, n_remove, tie_rank(g, tie_break, "first").tolist())


def _one_wis_key(lo: int, hi: int) -> tuple[int, int]:
    return (-lo, -hi)


def _sum_key(lo: int, hi: int) -> tuple[int, int]:
    return (-(lo + hi), -hi)


def greedy_by_degrees(g: IndexedGraph, n_remove: int, rank, by_sum: bool = False) -> list[tuple[int, int]]:
    """Remove ``n_remove`` edges one at a time, each time the edge with the smallest ``(key, rank)``, where ``lo <=
    hi`` are its endpoints' current degrees and ``key`` is ``(-lo, -hi)`` (1-WIS) or, with ``by_sum``,
    ``(-(lo + hi), -hi)`` (the degree heuristic); for a fixed ``hi`` both decrease strictly in ``lo``.

    Without hub trouble: every edge in one heap, stale entries re-pushed lazily (degrees only decrease). A hub
    makes that quadratic: each removal at the hub leaves all its edges stale (a 20 000-edge star: 10⁸ re-pushes).
    Once the re-pushes exceed the edges handled, the rest runs grouped: every edge belongs to its endpoint of
    larger ``(degree, index)`` (its *high* end), whose group orders its edges by the low end's degree, then rank
    (within a group ``hi`` is shared, so that order is the key's); one heap holds each group's best. A removal then
    touches only the edges whose *low* end lost a degree (at most ``min(d, 2|E|/d) <= sqrt(2|E|)`` of them) and the
    few edges that change ends, not every edge of a hub. Both phases pick the same edges.

    Parameters
    ----------
    g : IndexedGraph
    n_remove : int
    rank : sequence of int, one per row of ``g.edges``
        Tie-break (smaller first); distinct per edge.
    by_sum : bool
        The degree heuristic's key instead of 1-WIS's.

    Returns
    -------
    list of (int, int)
        Vertex indices of the removed edges, in order, each as the row of ``g.edges``.
    """
    deg = np.bincount(g.edges.ravel(), minlength=g.n_vertices).tolist()
    key = _sum_key if by_sum else _one_wis_key
    heap = []
    for (u, v), r in zip(g.edges.tolist(), rank):
        du, dv = deg[u], deg[v]
        lo, hi = (du, dv) if du < dv else (dv, du)
        heap.append((-(lo + hi) if by_sum else -lo, -hi, r, u, v))
    heapq.heapify(heap)
    out: list[tuple[int, int]] = []
    pop, push = heapq.heappop, heapq.heappush
    repushes, budget = 0, 4 * len(heap) + 64  # a Barabási–Albert graph (m = 5) re-pushes ~3.5 |E| in all
    while len(out) < n_remove:
        k0, k1, r, u, v = pop(heap)
        du, dv = deg[u], deg[v]
        if du < dv:
            lo, hi = du, dv
        else:
            lo, hi = dv, du
        if by_sum:
            lo += hi  # the primary key is the sum
        if lo != -k0 or hi != -k1:
            push(heap, (-lo, -hi, r, u, v))
            repushes += 1
            if repushes > budget + 8 * len(out):  # hub trouble: continue grouped from this state
                left = [(u2, v2, r2) for _, _, r2, u2, v2 in heap]
                return out + _grouped(deg, left, n_remove - len(out), key)
            continue
        deg[u] = du - 1
        deg[v] = dv - 1
        out.append((u, v))
    return out


def _grouped(deg: list[int], edges: list[tuple[int, int, int]], n_remove: int, key) -> list[tuple[int, int]]:
    """The grouped phase of :func:`greedy_by_degrees` over the remaining ``edges`` ``(u, v, rank)``."""
    pop, push = heapq.heappop, heapq.heappush
    erank: dict[tuple[int, int], int] = {}
    row: dict[tuple[int, int], tuple[int, int]] = {}  # unordered pair -> (u, v) as in g.edges
    low_of: dict[int, set[int]] = {}  # x -> the high ends h of the edges where x is low
    by_deg: dict[int, dict[int, set[int]]] = {}  # h -> {degree of low end: low ends}
    group: dict[int, list] = {}  # h -> heap of (-deg x, rank, x), lazy
    version: dict[int, int] = {}
    top: list = []  # (key, rank, h, version)

    def high(a: int, b: int) -> bool:
        return (deg[a], a) > (deg[b], b)

    def place(x: int, h: int) -> None:
        low_of.setdefault(x, set()).add(h)
        by_deg.setdefault(h, {}).setdefault(deg[x], set()).add(x)
        push(group.setdefault(h, []), (-deg[x], erank[(x, h) if x < h else (h, x)], x))

    def unplace(x: int, h: int) -> None:
        low_of[x].discard(h)
        by_deg[h][deg[x]].discard(x)

    def refresh(h: int) -> None:
        gh = group.get(h)
        while gh:
            nd, r, x = gh[0]
            if h in low_of.get(x, ()) and -nd == deg[x]:
                break
            pop(gh)
        version[h] = version.get(h, 0) + 1
        if gh:
            nd, r, x = gh[0]
            push(top, (key(-nd, deg[h]), r, h, version[h]))

    for u, v, r in edges:
        pair = (u, v) if u < v else (v, u)
        erank[pair], row[pair] = r, (u, v)
        if high(u, v):
            place(v, u)
        else:
            place(u, v)
    for h in list(group):
        refresh(h)
    out: list[tuple[int, int]] = []
    while len(out) < n_remove:
        _, _, h, ver = pop(top)
        if version.get(h) != ver:
            continue
        _, _, x = pop(group[h])
        unplace(x, h)
        pair = (x, h) if x < h else (h, x)
        out.append(row.pop(pair))
        dirty = {h}
        for w in (x, h):
            old = deg[w]
            for h2 in low_of.get(w, ()):  # w stays the low end of these edges: re-file under its new degree
                by_deg[h2][old].discard(w)
            deg[w] = old - 1
            for h2 in low_of.get(w, ()):
                by_deg[h2].setdefault(old - 1, set()).add(w)
                p2 = (w, h2) if w < h2 else (h2, w)
                push(group[h2], (-(old - 1), erank[p2], w))
                dirty.add(h2)
            flips = [x2 for d in (old, old - 1) for x2 in by_deg.get(w, {}).get(d, ()) if high(x2, w)]
            for x2 in flips:  # w is now the low end of these
                unplace(x2, w)
                place(w, x2)
                dirty.add(x2)
            dirty.add(w)
        for d in dirty:
            refresh(d)
    return out
