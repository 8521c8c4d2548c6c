"""(L−1)-WIS (P4): walk-index sparsification, with incremental updates instead of a recomputation per candidate.

Definition (P4; docs/science/definitions). Until ``k`` edges are removed: for every edge ``e`` compute
``s^(e) = (WI_{L−1,t}({t}))_{t ∈ V}`` on ``G ∖ e``, where
``WI_{L−1,t}({t}) = Σ_{u ∈ N(t)} [Â^{L−1}]_{u,t} + [Â^{L−1}]_{t,t}·1[deg t > 0]``; remove the edge whose
ascending-sorted ``s^(e)`` is lexicographically largest.

How it is computed here:

1. ``Σ_{u ∈ N(t) ∪ {t}} [Â^{L−1}]_{u,t} = [Â^L]_{t,t}``, so ``s_t`` is the number of closed walks of length ``L`` at
   ``t`` on ``Â = A + I`` (set to 0 when ``t`` is isolated). For ``L = 2``: ``s_t = deg t + 1``; for ``L = 3``:
   ``s_t = 3 deg t + 2 tri(t) + 1`` (``tri`` = triangles through ``t``).
2. Removing ``e = (u, v)`` lowers ``s_t`` by ``Δ_t(e)``, the number of those closed walks that use ``e``; it is
   nonzero only near ``e``. ``L = 2``: ``Δ_u = Δ_v = 1``. ``L = 3``: ``Δ_u = Δ_v = 3 + 2|N(u) ∩ N(v)|`` and
   ``Δ_w = 2`` for each common neighbour ``w``. General ``L``, splitting a walk at its first use of ``e``:
   ``Δ_t = Σ_{a=0}^{L−1} Σ_{(x,y) ∈ {(u,v),(v,u)}} [Â_{G∖e}^a]_{t,x} [Â_G^{L−1−a}]_{y,t}``, computed by sparse
   propagation from ``u`` and ``v`` only.
3. Two sorted vectors that differ from the same base multiset compare by their *net changes*: if
   ``d_e(x) = #{t: new s_t = x} − #{t: old s_t = x}`` (over the vertices ``e`` changes), then ``s^(e)`` is
   lexicographically larger than ``s^(f)`` iff at the smallest ``x`` with ``d_e(x) ≠ d_f(x)``, ``d_e(x) < d_f(x)``.
   That comparison is encoded as a tuple key, so each candidate needs only its local change.
4. After a removal only the candidates whose key reads a changed ``s_t`` are re-keyed (an index from each vertex to
   the candidates whose ``Δ`` touches it): a walk through both the candidate and the removed edge changes some
   ``s_t`` with ``t`` in that candidate's support, so this is exact. A heap with versioned entries picks the best.

5. For ``L >= 4`` the changes ``Δ`` of all candidates to re-key are computed together: the walks from each
   candidate's endpoints are columns of one ``(|V|, batch)`` array, propagated by sparse products with ``Â`` (the
   removed edge subtracted per column), in float64 where every count is below ``2^53`` (exact) and int64 otherwise.
   On small graphs (``|V|·|E| <= 2^21``), where a removal makes nearly every candidate stale anyway, all
   candidates are rescored at each removal and the best found by one ``np.lexsort`` of the sorted vectors.

Ties (identical sorted vectors), ``tie_break=``:

* ``"vertex"`` (default): the edge ``(i, j)``, ``i < j``, first in vertex order (sorted labels), as in
  :func:`tnml.preprocessing.one_wis`, to which ``depth=2`` is identical;
* ``"first"`` / ``"last"``: the tied edge that appears first / last in the input (edge list order, ``edge_index``
  columns, networkx edge order; an edge's position is that of its first appearance in either direction);
* ``"authors"``: the order of P4's released code, which sorts the candidates (one per undirected edge, in
  ``edge_index`` order) with a stable ascending sort and takes the last: ``"last"``.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter

import numpy as np
import scipy.sparse as sp

from tnml import settings
from tnml.entanglement.walk_index import IndexedGraph, as_indexed_graph, augmented_adjacency
from tnml.options import TieBreak
from tnml.preprocessing.one_wis import check_n_remove, check_tie_break, tie_rank
from tnml.validation import check_dense_bytes, positive_int

__all__ = ["walk_index_sparsification"]


def walk_index_sparsification(graph, n_remove: int, depth: int, *, tie_break: TieBreak = "vertex") -> list[tuple]:
    """(L−1)-WIS: remove ``n_remove`` edges, each time the one that keeps the sorted per-vertex walk indices
    ``(WI_{L−1,t}({t}))_t`` lexicographically largest (P4).

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
        Read as a simple undirected graph (self-loops and repeats ignored).
    n_remove : int
        Number of edges to remove, ``0 <= n_remove <= |E|``.
    depth : int
        ``L >= 2``, the depth of the GNN the graph is sparsified for (``L = 2`` is 1-WIS, ``L = 3`` is 2-WIS).
    tie_break : {"vertex", "first", "last", "authors"}
        Which of several edges with identical sorted vectors goes first (module docstring): ``"vertex"``
        (default) the first in vertex order; ``"first"``/``"last"`` the first/last in the input;
        ``"authors"`` reproduces P4's released code (``"last"``; its candidates are the input's edges in order).

    Returns
    -------
    list of (label, label)
        The removed edges in removal order, each as ``(u, v)`` with ``u`` before ``v`` in vertex order.

    Notes
    -----
    Exact (integer arithmetic); see the module docstring for the update rules and the tie-break. ``L = 2, 3`` use
    closed-form local changes; larger ``L`` propagate walks from the candidate's endpoints (fine on graphs without
    large hubs; the cost per candidate grows with the size of its ``L−1``-hop neighbourhood).

    Examples
    --------
    >>> edges = [(0, 1), (0, 3), (1, 2), (1, 3), (1, 4), (2, 3), (2, 5), (3, 4), (3, 5)]
    >>> walk_index_sparsification(edges, 1, depth=3)
    [(1, 2)]
    >>> walk_index_sparsification(edges, 1, depth=2)
    [(1, 3)]
    """
    depth = positive_int("depth", depth, 2, fix="L = 2 is 1-WIS, L = 3 is 2-WIS")
    g = as_indexed_graph(graph)
    n_remove = check_n_remove(n_remove, g.n_edges)
    tie_break = check_tie_break(tie_break, g)
    degs = np.bincount(g.edges.ravel()) if g.n_edges else np.zeros(1, np.int64)
    max_deg = int(degs.max())
    if depth * math.log2(max_deg + 1) >= 62:  # checked in logs, before any work: (deg + 1)**depth overflows floats
        raise ValueError(
            f"depth={depth} overflows int64 walk counts on this graph (max degree {max_deg}); use a smaller depth"
        )
    if depth >= 3:
        check_wis_work(g.n_edges, n_remove, degs, depth)
    return [g.edge_label(u, v) for u, v in _wis_indices(g, n_remove, int(depth), tie_break=tie_break)]


def wis_work(n_edges: int, n_remove: int, degs: np.ndarray) -> int:
    """Estimated candidate re-evaluations of (L−1)-WIS, ``L >= 3``: one per edge to start, then per removal the
    edges at its endpoints (a removal re-keys the candidates that share a vertex with its walks), averaged over
    the edges: ``|E| + n_remove · Σ_t deg(t)² / |E|`` (a star with ``|E|`` leaves: ``|E| + n_remove · (|E| + 1)``)."""
    if n_edges == 0:
        return 0
    d = degs.astype(np.float64)
    return int(n_edges + n_remove * float((d * d).sum()) / n_edges)


def check_wis_work(n_edges: int, n_remove: int, degs: np.ndarray, depth: int) -> None:
    """Refuse, before any work, a run whose :func:`wis_work` exceeds ``tnml.settings.max_wis_work``.

    Raises
    ------
    tnml.MemoryLimitError
        Naming the graph's size, the estimate, the setting and the fixes (also a ``ValueError``).
    """
    work = wis_work(n_edges, n_remove, degs)
    if work > settings.max_wis_work:
        raise settings.MemoryLimitError(
            f"{depth - 1}-WIS removing {n_remove} of {n_edges} edges (max degree {int(degs.max())}) needs about "
            f"{work:.3g} candidate updates, more than tnml.settings.max_wis_work = {settings.max_wis_work:.3g} "
            "(minutes of work); remove fewer edges, use 1-WIS (depth 2: a degree rule, fast on any graph), or raise "
            "tnml.settings.max_wis_work"
        )


def closed_walks(g: IndexedGraph, depth: int) -> list[int]:
    """``s_t = [Â^L]_{t,t}`` for every vertex, 0 for isolated vertices (exact Python integers).

    ``L = 2``: ``deg t + 1``; ``L = 3``: ``3 deg t + 2 tri(t) + 1`` from the triangles through ``t`` (set
    intersections along the edges: no matrix product, so a hub costs nothing extra). ``L >= 4``: the diagonal of
    ``Â^h · Â^(L−h)`` from sparse products, refused up front when ``Â^2`` alone (at least ``Σ_t (deg t + 1)^2``
    entries) would exceed ``tnml.settings.max_dense_bytes``.
    """
    a = augmented_adjacency(g)
    max_row = int(np.diff(a.indptr).max())
    if depth * math.log2(max(max_row, 1)) >= 62:  # logs: max_row**depth itself overflows a float for large depth
        raise ValueError(
            f"depth={depth} overflows int64 walk counts on this graph (max degree {max_row - 1}); use a smaller depth"
        )
    deg = np.bincount(g.edges.ravel(), minlength=g.n_vertices).astype(np.int64)
    if depth <= 3:
        s = deg + 1
        if depth == 3:
            adj = g.adjacency_sets()
            tri2 = np.zeros(g.n_vertices, dtype=np.int64)  # 2 tri(t): each triangle at t is seen from its 2 edges
            for u, v in g.edges.tolist():
                c = len(adj[u] & adj[v]) if len(adj[u]) <= len(adj[v]) else len(adj[v] & adj[u])
                tri2[u] += c
                tri2[v] += c
            s = 3 * deg + tri2 + 1
        s[deg == 0] = 0
        return s.tolist()
    paths2 = int(((deg + 1) ** 2).sum())
    check_dense_bytes(
        12 * min(paths2, g.n_vertices**2),
        f"the walk counts of depth {depth} on a graph with max degree {int(deg.max())} (sparse powers of A + I)",
        "use depth 2 or 3 (closed forms without matrix products) or a graph without large hubs",
    )
    h = depth // 2
    left = sp.identity(g.n_vertices, dtype=np.int64, format="csr")
    for _ in range(h):
        left = left @ a
    right = left if depth - h == h else left @ a
    s = np.asarray(left.multiply(right).sum(axis=1)).ravel().astype(np.int64)
    deg = np.bincount(g.edges.ravel(), minlength=g.n_vertices)
    s[deg == 0] = 0
    return s.tolist()


def _delta_closed(adj: list[set[int]], u: int, v: int, depth: int) -> dict[int, int]:
    if depth == 2:
        return {u: 1, v: 1}
    common = adj[u] & adj[v]
    d = {w: 2 for w in common}
    d[u] = d[v] = 3 + 2 * len(common)
    return d


def _propagate(adj: list[set[int]], x: dict[int, int], skip: tuple[int, int] | None) -> dict[int, int]:
    out: dict[int, int] = {}
    for j, val in x.items():
        out[j] = out.get(j, 0) + val
        for nb in adj[j]:
            if skip is not None and (j, nb) in (skip, skip[::-1]):
                continue
            out[nb] = out.get(nb, 0) + val
    return out


def _delta_general(adj: list[set[int]], u: int, v: int, depth: int) -> dict[int, int]:
    """Δ_t = Σ_a Σ_{(x,y)} [Â'^a]_{t,x} [Â^{L−1−a}]_{y,t} (first use of the edge after ``a`` steps)."""
    steps = depth - 1
    p = {x: [{x: 1}] for x in (u, v)}  # walks in G ∖ e
    q = {x: [{x: 1}] for x in (u, v)}  # walks in G
    for _ in range(steps):
        for x in (u, v):
            p[x].append(_propagate(adj, p[x][-1], (u, v)))
            q[x].append(_propagate(adj, q[x][-1], None))
    d: dict[int, int] = {}
    for x, y in ((u, v), (v, u)):
        for a in range(depth):
            pa, qb = p[x][a], q[y][steps - a]
            small, big = (pa, qb) if len(pa) <= len(qb) else (qb, pa)
            for t, val in small.items():
                other = big.get(t)
                if other:
                    d[t] = d.get(t, 0) + val * other
    return d


def _key(delta: dict[int, int], s: list[int], deg: list[int], u: int, v: int) -> tuple:
    """Sort key of candidate ``(u, v)``: smaller key = lexicographically larger sorted vector after removal."""
    net: Counter = Counter()
    for t, dt in delta.items():
        old = s[t]
        new = 0 if (deg[t] == 1 and (t == u or t == v)) else old - dt
        if new != old:
            net[new] += 1
            net[old] -= 1
    key: list[tuple[int, ...]] = []
    for x in sorted(net):
        c = net[x]
        if c < 0:
            key.append((-1, x, c))
        elif c > 0:
            key.append((1, -x, c))
    key.append((0,))
    return tuple(key)


def _delta_batch(a: sp.csr_matrix, us: np.ndarray, vs: np.ndarray, depth: int, dtype) -> np.ndarray:
    """Δ of every candidate ``(us[c], vs[c])`` at once, shape ``(|V|, len(us))`` (see :func:`_delta_general`).

    Columns ``c`` of ``X`` hold walks from one endpoint in ``G ∖ e_c`` (``Â X`` less the removed edge's two
    entries), of ``Q`` walks from the other endpoint in ``G``; ``Δ = Σ_a X^a ∘ Q^{L−1−a}`` over both endpoints.
    """
    steps = depth - 1
    n, c = a.shape[0], len(us)
    cols = np.arange(c)

    def onehot(idx: np.ndarray) -> np.ndarray:
        m = np.zeros((n, c), dtype=dtype)
        m[idx, cols] = 1
        return m

    q = {0: [onehot(us)], 1: [onehot(vs)]}
    for side in (0, 1):
        for _ in range(steps):
            q[side].append(a @ q[side][-1])
    d = np.zeros((n, c), dtype=dtype)
    for x_idx, other in ((us, 1), (vs, 0)):
        x = onehot(x_idx)
        for k in range(depth):
            d += x * q[other][steps - k]
            if k < steps:
                nxt = a @ x
                nxt[us, cols] -= x[vs, cols]
                nxt[vs, cols] -= x[us, cols]
                x = nxt
    return d


def _key_arrays(idx: np.ndarray, dt: np.ndarray, s: np.ndarray, deg: list[int], u: int, v: int) -> tuple:
    """:func:`_key` from the support ``idx`` and changes ``dt`` of one candidate (numpy, for batches)."""
    old = s[idx]
    new = old - dt
    for t in (u, v):
        if deg[t] == 1:
            new[idx == t] = 0
    ch = new != old
    if not ch.any():
        return ((0,),)
    xs = np.concatenate((new[ch], old[ch]))
    w = np.concatenate((np.ones(int(ch.sum()), np.int64), -np.ones(int(ch.sum()), np.int64)))
    ux, inv = np.unique(xs, return_inverse=True)
    net = np.zeros(ux.shape[0], np.int64)
    np.add.at(net, inv, w)
    key: list[tuple[int, ...]] = [(-1, x, k) if k < 0 else (1, -x, k) for x, k in zip(ux.tolist(), net.tolist()) if k]
    key.append((0,))
    return tuple(key)


def _batch_dtype(g: IndexedGraph, depth: int):
    deg = np.bincount(g.edges.ravel(), minlength=g.n_vertices) if g.n_edges else np.zeros(1, np.int64)
    top = float(int(deg.max()) + 1) ** depth
    return np.float64 if 4 * top < 2.0**53 else np.int64


#: graphs with at most this many (vertex, edge) pairs are rescored in full at every removal for depth >= 4
DENSE_RESCORE_MAX = 2**21


def _wis_rescore(g: IndexedGraph, n_remove: int, depth: int, rank: np.ndarray) -> list[tuple[int, int]]:
    """Small graphs, depth >= 4: at every removal all candidates' ``s − Δ`` at once (:func:`_delta_batch`), each
    column sorted, and the lexicographically largest taken by one ``np.lexsort`` (ties: smallest ``rank``)."""
    dtype = _batch_dtype(g, depth)
    a = augmented_adjacency(g).astype(dtype)
    s = np.asarray(closed_walks(g, depth), dtype=np.int64)
    edges = g.edges.copy()
    rank = rank.copy()
    deg = np.bincount(edges.ravel(), minlength=g.n_vertices)
    chunk = max(1, int(2**22 // ((2 * depth + 4) * max(g.n_vertices, 1))))
    out: list[tuple[int, int]] = []
    while len(out) < n_remove:
        us, vs = edges[:, 0], edges[:, 1]
        new = np.empty((g.n_vertices, len(edges)), dtype=np.int64)
        for start in range(0, len(edges), chunk):
            sl = slice(start, start + chunk)
            new[:, sl] = s[:, None] - _delta_batch(a, us[sl], vs[sl], depth, dtype).astype(np.int64)
        cols = np.arange(len(edges))
        new[us, cols] = np.where(deg[us] == 1, 0, new[us, cols])
        new[vs, cols] = np.where(deg[vs] == 1, 0, new[vs, cols])
        new.sort(axis=0)
        # ascending lexsort, primary key the smallest value: the last column is the largest sorted vector and,
        # among equal ones, the one with the smallest rank
        best = int(np.lexsort((-rank,) + tuple(new[::-1]))[-1])
        u, v = int(us[best]), int(vs[best])
        col = _delta_batch(a, us[best:best + 1], vs[best:best + 1], depth, dtype)[:, 0].astype(np.int64)
        s -= col
        deg[u] -= 1
        deg[v] -= 1
        s[[t for t in (u, v) if deg[t] == 0]] = 0
        a[u, v] = 0
        a[v, u] = 0
        edges = np.delete(edges, best, axis=0)
        rank = np.delete(rank, best)
        out.append((u, v))
    return out


def _wis_indices(g: IndexedGraph, n_remove: int, depth: int, general: bool = False,
                 tie_break: str = "vertex", rescore: bool | None = None) -> list[tuple[int, int]]:
    """Removal order as vertex indices. ``general``: per-candidate propagation (reference for the closed forms);
    ``rescore``: full rescoring per removal (default: depth >= 4 on graphs with ``|V|·|E| <= DENSE_RESCORE_MAX``)."""
    if rescore is None:
        rescore = depth > 3 and not general and g.n_vertices * g.n_edges <= DENSE_RESCORE_MAX
    if rescore:
        return _wis_rescore(g, n_remove, depth, tie_rank(g, tie_break, "last"))
    adj = g.adjacency_sets()
    deg = [len(a) for a in adj]
    s = closed_walks(g, depth)
    batch = depth > 3 and not general
    delta_fn = _delta_general if (general or depth > 3) else _delta_closed
    rank = dict(zip(map(tuple, g.edges.tolist()), tie_rank(g, tie_break, "last").tolist()))
    version: dict[tuple[int, int], int] = {}
    support: dict[tuple[int, int], tuple[int, ...]] = {}
    dependents: list[set[tuple[int, int]]] = [set() for _ in range(g.n_vertices)]
    heap: list[tuple] = []  # (key, tie rank, u, v, version)
    if batch:
        dtype = _batch_dtype(g, depth)
        a = augmented_adjacency(g).astype(dtype)
        s_arr = np.asarray(s, dtype=np.int64)
        chunk = max(1, int(2**22 // ((2 * depth + 4) * max(g.n_vertices, 1))))

    def enter(e: tuple[int, int], key: tuple, sup) -> None:
        for t in support.get(e, ()):
            dependents[t].discard(e)
        support[e] = tuple(sup)
        for t in support[e]:
            dependents[t].add(e)
        version[e] = version.get(e, -1) + 1
        heapq.heappush(heap, (key, rank[e], e[0], e[1], version[e]))

    def rekey(edges: list[tuple[int, int]]) -> None:
        if not batch:
            for e in edges:
                d = delta_fn(adj, e[0], e[1], depth)
                enter(e, _key(d, s, deg, e[0], e[1]), d)
            return
        for start in range(0, len(edges), chunk):
            part = edges[start:start + chunk]
            us = np.fromiter((e[0] for e in part), np.int64, len(part))
            vs = np.fromiter((e[1] for e in part), np.int64, len(part))
            deltas = _delta_batch(a, us, vs, depth, dtype)
            for j, e in enumerate(part):
                col = deltas[:, j]
                idx = np.flatnonzero(col)
                enter(e, _key_arrays(idx, col[idx].astype(np.int64), s_arr, deg, e[0], e[1]), idx.tolist())

    rekey(list(map(tuple, g.edges.tolist())))
    out: list[tuple[int, int]] = []
    while len(out) < n_remove:
        _, _, u, v, ver = heapq.heappop(heap)
        e = (u, v)
        if version.get(e) != ver:
            continue
        if batch:
            col = _delta_batch(a, np.array([u]), np.array([v]), depth, dtype)[:, 0]
            d = {int(t): int(col[t]) for t in np.flatnonzero(col)}
        else:
            d = delta_fn(adj, u, v, depth)
        for t, dt in d.items():
            s[t] -= dt
        adj[u].discard(v)
        adj[v].discard(u)
        deg[u] -= 1
        deg[v] -= 1
        for t in (u, v):
            if deg[t] == 0:
                s[t] = 0
        if batch:
            a[u, v] = 0
            a[v, u] = 0
            for t in list(d) + [u, v]:
                s_arr[t] = s[t]
        del version[e]
        for t in support.pop(e):
            dependents[t].discard(e)
        out.append(e)
        stale = set()
        for t in d:
            stale |= dependents[t]
        rekey(sorted(stale))
    return out
