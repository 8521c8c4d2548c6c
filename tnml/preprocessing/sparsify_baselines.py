"""Baselines for edge sparsification with the interface of :func:`tnml.preprocessing.one_wis`: random removal,
effective-resistance (spectral) removal, and a degree heuristic. Each returns the removed edges in order."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from tnml.entanglement.walk_index import IndexedGraph, as_indexed_graph
from tnml.options import SparsifyMethod
from tnml.preprocessing.one_wis import check_n_remove, greedy_by_degrees
from tnml.validation import check_option, positive_int

__all__ = ["degree_sparsification", "effective_resistances", "random_sparsification", "spectral_sparsification"]

#: column ordering of the sparse LU factorization of the grounded Laplacian (``scipy.sparse.linalg.splu``'s
#: ``permc_spec``): minimum degree on the pattern of ``L + Lᵀ``, the natural choice for a symmetric matrix
SPLU_ORDERING = "MMD_AT_PLUS_A"


def random_sparsification(graph, n_remove: int, seed: int | None = 0) -> list[tuple]:
    """Remove ``n_remove`` edges chosen uniformly at random (the order of a seeded random permutation).

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
    n_remove : int
        ``0 <= n_remove <= |E|``.
    seed : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    list of (label, label), in removal order

    Examples
    --------
    >>> len(random_sparsification([(0, 1), (1, 2), (2, 0)], 2, seed=0))
    2
    """
    g = as_indexed_graph(graph)
    n_remove = check_n_remove(n_remove, g.n_edges)
    order = np.random.default_rng(seed).permutation(g.n_edges)[:n_remove]
    return [g.edge_label(*g.edges[i].tolist()) for i in order]


def _grounded_laplacian(g: IndexedGraph) -> tuple[sp.csc_matrix, np.ndarray]:
    """The Laplacian without one vertex per connected component (nonsingular), and the kept vertex indices."""
    n = g.n_vertices
    u, v = g.edges[:, 0], g.edges[:, 1]
    adj = sp.coo_matrix((np.ones(2 * u.size), (np.r_[u, v], np.r_[v, u])), shape=(n, n)).tocsr()
    lap = sp.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj
    _, comp = csgraph.connected_components(adj, directed=False)
    _, first = np.unique(comp, return_index=True)
    keep = np.setdiff1d(np.arange(n), first)
    return lap.tocsr()[keep][:, keep].tocsc(), keep


def effective_resistances(graph, exact_limit: int = 3000, n_projections: int = 200, seed: int | None = 0) -> np.ndarray:
    """Effective resistance ``R_uv = (e_u − e_v)ᵀ L⁺ (e_u − e_v)`` of every edge (unit weights).

    Exact (dense inverse of the Laplacian grounded at one vertex per component) for at most ``exact_limit``
    vertices; beyond, the Spielman–Srivastava sketch ``R_uv ≈ ‖Z (e_u − e_v)‖²`` with ``Z = Q B L_g⁻¹``, ``Q`` a
    random ±1/√k matrix of ``k = n_projections`` rows, ``B`` the incidence matrix and ``L_g⁻¹`` applied by one sparse
    LU factorization (relative error about ``sqrt(2/k)`` per edge, ~10 % for the default).

    Parameters
    ----------
    graph : networkx.Graph, edge list, torch edge_index (2, E), or IndexedGraph
    exact_limit : int
        Largest vertex count computed exactly.
    n_projections : int
        Rows of the sketch (only beyond ``exact_limit``).
    seed : int or None
        Seed of the sketch.

    Returns
    -------
    ndarray of float64, shape (n_edges,)
        In the edge order of :func:`tnml.entanglement.walk_index.as_indexed_graph`.

    Examples
    --------
    >>> effective_resistances([(0, 1), (1, 2), (0, 2), (2, 3)]).round(4).tolist()
    [0.6667, 0.6667, 0.6667, 1.0]
    """
    g = as_indexed_graph(graph)
    if g.n_edges == 0:
        return np.zeros(0)
    u, v = g.edges[:, 0], g.edges[:, 1]
    lap_g, keep = _grounded_laplacian(g)
    pos = np.full(g.n_vertices, -1)
    pos[keep] = np.arange(keep.size)
    if g.n_vertices <= exact_limit:
        inv = np.zeros((keep.size + 1, keep.size + 1))  # last row/column: the grounded vertices (potential 0)
        if keep.size:
            inv[:-1, :-1] = sla.inv(lap_g.toarray(), check_finite=False)
        pu, pv = pos[u], pos[v]
        return inv[pu, pu] + inv[pv, pv] - 2 * inv[pu, pv]
    n_projections = positive_int("n_projections", n_projections)
    rng = np.random.default_rng(seed)
    k = int(n_projections)
    q = rng.choice([-1.0, 1.0], size=(g.n_edges, k)) / math.sqrt(k)
    bt_q = np.zeros((g.n_vertices, k))  # Bᵀ Qᵀ with B[e] = e_u − e_v
    np.add.at(bt_q, u, q)
    np.add.at(bt_q, v, -q)
    z = np.zeros((g.n_vertices, k))
    # minimum-degree ordering on the symmetric pattern (the Laplacian is symmetric): SuperLU's default (COLAMD)
    # filled a 17 716-vertex DBLP-like Laplacian so badly that the factorization ran > 14 min; this one took ~1 min
    z[keep] = spla.splu(lap_g, permc_spec=SPLU_ORDERING).solve(bt_q[keep])
    return np.einsum("ek,ek->e", z[u] - z[v], z[u] - z[v])


def spectral_sparsification(
    graph, n_remove: int, seed: int | None = 0, method: SparsifyMethod = "sample", exact_limit: int = 3000
) -> list[tuple]:
    """Remove edges by effective resistance (Spielman–Srivastava spectral sparsification, as removal).

    Spielman–Srivastava keep edge ``e`` with probability ∝ ``R_e``: edges with low resistance have many parallel
    paths and are the safest to drop; bridges (``R_e = 1``) hold the graph together. Resistances are computed once,
    on the input graph.

    - ``method="sample"`` (default): the removal order is a weighted random order without replacement
      (Efraimidis–Spirakis keys ``E_e / w_e``, ``E_e ~ Exp(1)``) with weights ``w_e = 1 − R_e + 1e−9``, so
      bridges come last.
    - ``method="greedy"``: ascending ``R_e`` (rounded to 1e−10; ties: edge order), deterministic.

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
    n_remove : int
        ``0 <= n_remove <= |E|``.
    seed : int or None
        Seed of the sampling and of the resistance sketch.
    method : {"sample", "greedy"}
    exact_limit : int
        See :func:`effective_resistances`.

    Returns
    -------
    list of (label, label), in removal order

    Examples
    --------
    >>> spectral_sparsification([(0, 1), (1, 2), (0, 2), (2, 3)], 4, method="greedy")
    [(0, 1), (0, 2), (1, 2), (2, 3)]
    """
    check_option("method", method, SparsifyMethod)
    g = as_indexed_graph(graph)
    n_remove = check_n_remove(n_remove, g.n_edges)
    r = effective_resistances(g, exact_limit=exact_limit, seed=seed)
    if method == "greedy":
        order = np.argsort(np.round(r, 10), kind="stable")  # rounding: equal resistances tie exactly
    else:
        w = np.clip(1.0 - r, 0.0, None) + 1e-9
        order = np.argsort(np.random.default_rng(seed).exponential(size=r.size) / w, kind="stable")
    return [g.edge_label(*g.edges[i].tolist()) for i in order[:n_remove]]


def degree_sparsification(graph, n_remove: int) -> list[tuple]:
    """Degree heuristic: repeatedly remove the edge with the largest ``deg u + deg v`` in the current graph.

    Ties: larger ``max(deg u, deg v)``, then edge order (sorted labels). Unlike 1-WIS (which maximizes the smaller
    degree), a hub's edge to a leaf ranks high. Heap with lazy re-evaluation (degrees only decrease), grouped by each
    edge's higher-degree end once hubs make the lazy heap quadratic (``greedy_by_degrees`` in
    :mod:`tnml.preprocessing.one_wis`).

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
    n_remove : int
        ``0 <= n_remove <= |E|``.

    Returns
    -------
    list of (label, label), in removal order

    Examples
    --------
    >>> degree_sparsification([(0, 1), (0, 2), (0, 3), (2, 3)], 1)
    [(0, 2)]
    """
    g = as_indexed_graph(graph)
    n_remove = check_n_remove(n_remove, g.n_edges)
    removed = greedy_by_degrees(g, n_remove, range(g.n_edges), by_sum=True)  # rows are in (u, v) order
    return [g.edge_label(u, v) for u, v in removed]
