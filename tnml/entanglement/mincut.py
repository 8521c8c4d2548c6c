"""Min-cut upper bound on the separation rank of a tensor network (Cui et al. 2016; Levine et al. 2018).

For a split (A, B) of a network's open legs, ``rank [[T]]_A <= prod_{e in C} dim(e)`` for every set C of edges
whose removal separates A's legs from B's. The best such bound is a minimum cut with capacities ``ln dim(e)``.

Two exact algorithms over the same integer capacities: a two-state dynamic program over the rooted tree when the
tensors form a tree joined by single pairwise bonds (MPS, TTN: ``O(#tensors)`` per partition, the rooted tree
cached per structure), and ``networkx`` max-flow for every other network (loops, parallel bonds, hyper-indices).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
import numpy as np

from tnml.entanglement._inputs import check_output_side, part_sites, terminals
from tnml.network_form import as_network
from tnml.options import OutputSide
from tnml.rooting import RootedTree, is_tree
from tnml.structure import TNStructure

#: naming rule: "mincut" is one word in every public name (mincut_bound, mincut_bounds, mincut_on_graph,
#: mincut_on_tree)
__all__ = ["MinCutResult", "mincut_bound", "mincut_bounds", "mincut_on_graph", "mincut_on_tree"]

#: capacities are ``round(ln(dim) * _SCALE)`` integers so networkx's flow is exact (it warns against floats);
#: two cuts whose products differ by a ratio above ``1 + n_edges / _SCALE`` are ordered correctly.
_SCALE = 2**40
_SOURCE, _SINK = ("__source__",), ("__sink__",)


@dataclass(frozen=True)
class MinCutResult:
    """Result of :func:`mincut_bound`.

    Attributes
    ----------
    rank_bound : int
        Product of the bond dims of :attr:`cut` (exact integer arithmetic).
    log_bound : float
        ``ln(rank_bound)``, the matching bound on the entanglement entropy.
    cut : list of (u, v, ind, dim)
        The cut edges: ``u`` on side A, ``v`` on side B, the index name and its size. A cut hyper-index appears
        once as ``("hyper:<ind>", "hyper:<ind>", ind, dim)``.
    side_a : frozenset
        The graph nodes (tensors, terminals, hyper-index nodes) on side A of the cut.
    """

    rank_bound: int
    log_bound: float
    cut: list
    side_a: frozenset

    def __repr__(self) -> str:
        return f"MinCutResult(rank_bound={self.rank_bound}, log_bound={self.log_bound:.6g}, cut={self.cut})"


def _cap(dim: int) -> int:
    return round(math.log(dim) * _SCALE)


def mincut_on_graph(graph: nx.MultiGraph, terminals_a, terminals_b) -> MinCutResult:
    """Minimum cut of a network graph (the format of :meth:`tnml.TNStructure.graph`) between two terminal sets.

    Parameters
    ----------
    graph : networkx.MultiGraph
        Nodes: tensors, ``"input:<ind>"``/``"output:<ind>"`` terminals and ``"hyper:<ind>"`` nodes (attribute
        ``kind``); edges carry ``ind`` and ``dim``.
    terminals_a, terminals_b : iterables of nodes
        Nodes that must end on side A resp. B (both non-empty, disjoint). Other terminals are unconstrained.

    Returns
    -------
    MinCutResult

    Notes
    -----
    Every edge gets capacity ``ln dim`` in both directions (parallel edges add). A hyper-index node ``h`` is split
    into ``h_in -> h_out`` with capacity ``ln dim`` and infinite-capacity edges ``t -> h_in``, ``h_out -> t`` for
    each tensor ``t`` on it, so cutting a hyper-index costs ``ln dim`` once, however many tensors share it.
    """
    ta, tb = set(terminals_a), set(terminals_b)
    if not ta or not tb or ta & tb:
        raise ValueError(
            f"terminals_a and terminals_b must be non-empty and disjoint; got {len(ta)} and {len(tb)} "
            f"nodes, {len(ta & tb)} shared"
        )
    for name, side in (("terminals_a", ta), ("terminals_b", tb)):
        missing = [n for n in side if n not in graph]
        if missing:
            raise ValueError(
                f"{name} holds nodes that are not in the graph: {missing[:5]}; terminals are node names such as "
                f"{[n for n in list(graph.nodes)[:3]]}"
            )
    hyper = {n for n, d in graph.nodes(data=True) if d.get("kind") == "hyper"}
    d = nx.DiGraph()

    def add(u, v, cap=None):
        if cap is None:
            d.add_edge(u, v)  # no capacity attribute: infinite
        elif d.has_edge(u, v):
            if "capacity" in d[u][v]:
                d[u][v]["capacity"] += cap
        else:
            d.add_edge(u, v, capacity=cap)

    def end(n, role):
        return (n, role) if n in hyper else n

    for h in hyper:
        add((h, "in"), (h, "out"), _cap(graph.nodes[h]["dim"]))
    for u, v, data in graph.edges(data=True):
        if u in hyper or v in hyper:
            h, t = (u, v) if u in hyper else (v, u)
            add(t, (h, "in"))
            add((h, "out"), t)
            continue
        c = _cap(data["dim"])
        add(u, v, c)
        add(v, u, c)
    for n in ta:
        add(_SOURCE, end(n, "in"))
    for n in tb:
        add(end(n, "out"), _SINK)
    _, (reach, _) = nx.minimum_cut(d, _SOURCE, _SINK)

    def on_a(n, role="in"):
        return end(n, role) in reach

    cut = []
    for h in sorted(hyper, key=str):
        if on_a(h, "in") and not on_a(h, "out"):
            dim = graph.nodes[h]["dim"]
            cut.append((h, h, graph.nodes[h].get("ind", h.split(":", 1)[-1]), dim))
    for u, v, data in graph.edges(data=True):
        if u in hyper or v in hyper:
            continue
        if on_a(u) != on_a(v):
            a, b = (u, v) if on_a(u) else (v, u)
            cut.append((a, b, data["ind"], data["dim"]))
    rank = math.prod(c[3] for c in cut)
    nodes_a = frozenset(n for n in graph.nodes if (on_a(n, "in") if n in hyper else on_a(n)))
    return MinCutResult(rank, math.log(rank), cut, nodes_a)


@dataclass(frozen=True)
class _RootedTree:
    """A tree network rooted at tensor 0, flattened for the dynamic program (positions, not names).

    Edges are listed in the order of ``TNStructure.graph()``: per tensor, its indices in order, a bond once (at
    its first owner). ``edge_u``/``edge_v`` are the two node positions of each edge: tensors ``0..n-1``, then the
    open legs' terminals ``n..n+n_legs-1``.
    """

    nodes: np.ndarray  # object: tensor names, then terminal names ("input:<ind>" / "output:<ind>")
    n_tensors: int
    root: int
    post: tuple[int, ...]  # the non-root tensors, every child before its parent
    parent: tuple[int, ...]  # parent position (-1 at the root)
    up_cap: tuple[int, ...]  # integer capacity of the bond to the parent (0 at the root)
    leg_pos: dict  # open index -> its position among the legs
    leg_tensor: np.ndarray  # (n_legs,) tensor of each open leg
    leg_cap: np.ndarray  # (n_legs,) capacity of each open leg
    leg_tensor_list: tuple[int, ...]  # the same as tuples of Python ints (scalar route)
    leg_cap_list: tuple[int, ...]
    edge_u: np.ndarray  # (n_edges,) node positions
    edge_v: np.ndarray
    edge_ind: tuple[str, ...]
    edge_dim: tuple[int, ...]
    dtype: np.dtype  # int64, or object (exact Python ints) if the capacities could overflow int64


@lru_cache(maxsize=64)
def _rooted_tree(structure: TNStructure) -> _RootedTree | None:
    """The rooted form of ``structure`` if its tensors form a tree joined by single pairwise bonds, else None."""
    if not is_tree(structure):
        return None
    names = structure.tensor_names
    n = len(names)
    sd = structure.size_dict
    inputs = set(structure.input_inds)
    legs: list[tuple[str, int]] = []
    edges: list[tuple[int, int | str, str]] = []  # (tensor, other tensor or open index, ind)
    for k, t in enumerate(structure.tensors):
        for ind in t.inds:
            owners = structure.tensors_of(ind)
            if len(owners) == 1:
                legs.append((ind, k))
                edges.append((k, ind, ind))
            else:
                other = owners[1] if owners[0] == k else owners[0]
                if owners[0] == k:
                    edges.append((k, other, ind))
    leg_pos = {ind: j for j, (ind, _) in enumerate(legs)}
    terminals = [f"input:{ind}" if ind in inputs else f"output:{ind}" for ind, _ in legs]
    rooted = RootedTree.of(structure, root=0)  # the DP's sums and side choices do not depend on the DFS order
    parent, up_cap = [-1] * n, [0] * n
    for v, up in rooted.parent.items():
        if up is not None:
            parent[v], up_cap[v] = up[0], _cap(sd[up[1]])
    order = rooted.order
    nodes = np.empty(n + len(legs), dtype=object)
    nodes[:] = list(names) + terminals
    total = sum(_cap(sd[ind]) for _, _, ind in edges)
    return _RootedTree(
        nodes=nodes,
        n_tensors=n,
        root=0,
        post=tuple(reversed(order[1:])),  # reversed DFS preorder: children before parents
        parent=tuple(parent),
        up_cap=tuple(up_cap),
        leg_pos=leg_pos,
        leg_tensor=np.array([k for _, k in legs], dtype=np.intp),
        leg_cap=np.array([_cap(sd[ind]) for ind, _ in legs], dtype=object),
        leg_tensor_list=tuple(k for _, k in legs),
        leg_cap_list=tuple(_cap(sd[ind]) for ind, _ in legs),
        edge_u=np.array([k for k, _, _ in edges], dtype=np.intp),
        edge_v=np.array([o if isinstance(o, int) else n + leg_pos[o] for _, o, _ in edges], dtype=np.intp),
        edge_ind=tuple(ind for _, _, ind in edges),
        edge_dim=tuple(sd[ind] for _, _, ind in edges),
        dtype=np.dtype(np.int64) if 4 * total < 2**63 else np.dtype(object),
    )


def mincut_on_tree(structure: TNStructure, side_a: Iterable[str], side_b: Iterable[str]) -> MinCutResult:
    """Minimum cut of a tree network between two sets of its open indices, by dynamic programming.

    Parameters
    ----------
    structure : TNStructure
        Must satisfy :func:`tnml.plans.tree.is_tree` (tensors joined by single pairwise bonds, no loops, no
        hyper-index).
    side_a, side_b : iterables of str
        Open indices (inputs or the output) fixed on side A resp. B; open indices in neither are unconstrained.

    Returns
    -------
    MinCutResult
        The same minimum (same integer capacities ``round(ln dim * 2**40)``) as :func:`mincut_on_graph` on
        ``structure.graph()`` with terminals ``"input:<ind>"``/``"output:<ind>"``, in the same format; among
        several minimum cuts it may return another one (same ``rank_bound`` up to products that differ by a
        ratio below ``1 + n_edges / 2**40``).

    Notes
    -----
    Each tensor goes to side A or B. Rooting the tree, ``cost_S(v)`` is the least cut inside ``v``'s subtree
    (its open legs fixed on the other side included) with ``v`` on side ``S``:
    ``cost_S(v) = legs_S(v) + sum_children min(cost_S(c), cost_notS(c) + cap(bond))``. One pass from the leaves
    up, the root takes the cheaper side, one pass down reads off each tensor's side: ``O(#tensors + #legs)``.
    Ties keep a tensor on its parent's side (and the root on A).

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> mincut_on_tree(MPS(n_sites=4, bond_dim=3).structure, ["x0", "x1"], ["x2", "x3"]).rank_bound
    3
    """
    tree = _rooted_tree(structure)
    if tree is None:
        raise ValueError(
            "mincut_on_tree needs tensors joined by single pairwise bonds without loops or hyper-indices "
            "(tnml.plans.tree.is_tree); use mincut_on_graph(structure.graph(), ...) for this network"
        )
    sa, sb = set(side_a), set(side_b)
    unknown = sorted((sa | sb) - set(tree.leg_pos))
    if not sa or not sb or sa & sb or unknown:
        raise ValueError(
            f"side_a and side_b must be non-empty, disjoint sets of open indices; got {len(sa)} and {len(sb)} "
            f"indices, {len(sa & sb)} shared, unknown {unknown[:6]}; the open indices are {list(tree.leg_pos)[:8]}"
        )
    fixed = np.full((len(tree.leg_pos), 1), _FREE, dtype=np.int8)
    fixed[[tree.leg_pos[i] for i in sa], 0] = _A
    fixed[[tree.leg_pos[i] for i in sb], 0] = _B
    return _solve_tree(tree, fixed)[0]


_FREE, _A, _B = 0, 1, 2
_CHUNK = 512  # partitions solved together (memory: a few (n_tensors, _CHUNK) integer arrays)
_VECTOR_MIN = 8  # from this many partitions on, vectorize the dynamic program across them


def _solve_tree(tree: _RootedTree, fixed: np.ndarray) -> list[MinCutResult]:
    """Minimum cuts of one tree for many partitions at once.

    ``fixed`` (n_legs, P) holds ``_A``, ``_B`` or ``_FREE`` per open leg and partition. Few partitions: the dynamic
    program in plain Python per partition; many: one walk over the tree, each step a vector operation over the
    partitions. Both in exact integers with the same tie rules.
    """
    n = tree.n_tensors
    n_parts = fixed.shape[1]
    on_a = np.empty((n + len(tree.leg_cap), n_parts), dtype=bool)  # tensors, then terminals
    if n_parts < _VECTOR_MIN:
        for j in range(n_parts):
            on_a[:n, j] = _tensor_sides(tree, fixed[:, j].tolist())
    else:
        on_a[:n] = _tensor_sides_vector(tree, fixed)
    on_a[n:] = (fixed == _A) | ((fixed == _FREE) & on_a[tree.leg_tensor])  # a free leg goes with its tensor
    cross = (on_a[tree.edge_u] != on_a[tree.edge_v]).T  # (P, n_edges)
    on_a_t = on_a.T
    out = []
    for j in range(n_parts):
        side = on_a_t[j]
        cut = []
        for e in np.flatnonzero(cross[j]):
            u, v = int(tree.edge_u[e]), int(tree.edge_v[e])
            if not side[u]:
                u, v = v, u
            cut.append((tree.nodes[u], tree.nodes[v], tree.edge_ind[e], tree.edge_dim[e]))
        rank = math.prod(c[3] for c in cut)
        out.append(MinCutResult(rank, math.log(rank), cut, frozenset(tree.nodes[side].tolist())))
    return out


def _tensor_sides(tree: _RootedTree, fixed: list) -> list[bool]:
    """Side A? per tensor, for one partition (``fixed``: one ``_A``/``_B``/``_FREE`` per open leg)."""
    n = tree.n_tensors
    cost_a, cost_b = [0] * n, [0] * n  # least cut in the subtree with the tensor on side A, resp. B
    for k, c, f in zip(tree.leg_tensor_list, tree.leg_cap_list, fixed):
        if f == _A:  # a tensor on B cuts its A legs
            cost_b[k] += c
        elif f == _B:
            cost_a[k] += c
    parent, up = tree.parent, tree.up_cap
    for v in tree.post:
        a, b, w, p = cost_a[v], cost_b[v], up[v], parent[v]
        cost_a[p] += a if a <= b + w else b + w
        cost_b[p] += b if b <= a + w else a + w
    on_a = [False] * n
    on_a[tree.root] = cost_a[tree.root] <= cost_b[tree.root]  # ties: A at the root, the parent's side below
    for v in reversed(tree.post):
        if on_a[parent[v]]:
            on_a[v] = cost_a[v] <= cost_b[v] + up[v]
        else:
            on_a[v] = cost_a[v] + up[v] < cost_b[v]
    return on_a


def _tensor_sides_vector(tree: _RootedTree, fixed: np.ndarray) -> np.ndarray:
    """:func:`_tensor_sides` for P partitions at once: ``fixed`` (n_legs, P) -> bool (n_tensors, P)."""
    n, dtype = tree.n_tensors, tree.dtype
    cost_a = np.zeros((n, fixed.shape[1]), dtype=dtype)
    cost_b = np.zeros((n, fixed.shape[1]), dtype=dtype)
    caps = tree.leg_cap.astype(dtype)[:, None]
    zero = np.zeros((), dtype=dtype)
    np.add.at(cost_b, tree.leg_tensor, np.where(fixed == _A, caps, zero))
    np.add.at(cost_a, tree.leg_tensor, np.where(fixed == _B, caps, zero))
    parent, up = tree.parent, tree.up_cap
    for v in tree.post:
        a, b, w, p = cost_a[v], cost_b[v], up[v], parent[v]
        cost_a[p] += np.minimum(a, b + w)
        cost_b[p] += np.minimum(b, a + w)
    on_a = np.empty((n, fixed.shape[1]), dtype=bool)
    on_a[tree.root] = cost_a[tree.root] <= cost_b[tree.root]
    for v in reversed(tree.post):
        w = up[v]
        on_a[v] = np.where(on_a[parent[v]], cost_a[v] <= cost_b[v] + w, cost_a[v] + w < cost_b[v])
    return on_a


def mincut_bound(obj, part, *, output_side: OutputSide | None = None) -> MinCutResult:
    """Min-cut bound on the separation rank (matricization rank) across ``part``.

    Parameters
    ----------
    obj : TNModel, TNStructure or quimb.tensor.TensorNetwork
        The network; only its geometry and bond dims matter.
    part : iterable
        Side A: input sites (TNModel/TNStructure) or outer index names (quimb network).
    output_side : {None, "A", "B"}
        Where the model's output leg goes. None (default): unconstrained, i.e. the bound holds for every output
        component's coefficient tensor separately (``cut_rank(model, part, output=k)``).

    Returns
    -------
    MinCutResult
        ``.rank_bound`` (int), ``.log_bound`` (float, bounds the entanglement entropy), ``.cut`` (edges).

    Notes
    -----
    The bound holds for every value of the tensors; if one assignment reaches it, almost all do. It is tight for
    trees with one open leg per tensor but not always: two tensors with open legs (3, 5) and (5, 3) joined by a
    bond of 2 give a bound of 15 while the generic rank is 14, and loops can fall short too.

    References
    ----------
    Cui, Freedman, Sattath, Stong, Minton. *Quantum max-flow/min-cut*. J. Math. Phys. 2016 (arXiv 1508.04644).
    Levine, Yakira, Cohen, Shashua. *Deep learning and quantum entanglement*. ICLR 2018 (arXiv 1704.01552).

    The minimum cut is found by a dynamic program over the tree when the tensors form one (single pairwise bonds,
    no hyper-index: :func:`mincut_on_tree`, ``O(#tensors)``), by ``networkx`` max-flow otherwise
    (:func:`mincut_on_graph`); both use the same exact integer capacities.

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> mincut_bound(MPS(n_sites=6, phys_dim=2, bond_dim=3), [0, 1, 2]).rank_bound
    3
    >>> mincut_bound(MPS(n_sites=6, phys_dim=2, bond_dim=3), [0]).rank_bound
    2
    """
    return mincut_bounds(obj, [part], output_side=output_side)[0]


def mincut_bounds(obj, parts: Iterable, *, output_side: OutputSide | None = None) -> list[MinCutResult]:
    """:func:`mincut_bound` for many parts of one network, sharing the set-up (the rooted tree, the graph).

    Parameters
    ----------
    obj : TNModel, TNStructure or quimb.tensor.TensorNetwork
    parts : iterable of parts
        Each as in :func:`mincut_bound`.
    output_side : {None, "A", "B"}

    Returns
    -------
    list of MinCutResult, one per part.

    Examples
    --------
    >>> from tnml.entanglement import canonical_partitions
    >>> from tnml.networks import TTN
    >>> [r.rank_bound for r in mincut_bounds(TTN(n_sites=4, bond_dim=3), canonical_partitions(4))]
    [3, 2, 2, 2, 2]
    """
    check_output_side(output_side)
    form = as_network(obj, values=False)  # read once: the geometry is all the bound needs
    structure, quimb = form.structure, form.from_quimb
    if output_side is not None and structure.output_ind is None:
        raise ValueError(
            f"output_side={output_side!r} is given but the network has no output leg (every open index is an "
            "input); drop output_side"
        )
    tree = _rooted_tree(structure)
    if tree is None:
        graph = structure.graph()  # once for all parts
        return [
            mincut_on_graph(graph, *terminals(structure, part_sites(structure, part, quimb), output_side))
            for part in parts
        ]
    parts = list(parts)
    out: list[MinCutResult] = []
    for lo in range(0, len(parts), _CHUNK):
        chunk = parts[lo : lo + _CHUNK]
        fixed = np.full((len(tree.leg_pos), len(chunk)), _B, dtype=np.int8)
        for j, part in enumerate(chunk):
            sites = part_sites(structure, part, quimb)
            fixed[[tree.leg_pos[structure.input_inds[s]] for s in sites.tolist()], j] = _A
        if structure.output_ind is not None:
            fixed[tree.leg_pos[structure.output_ind]] = {None: _FREE, "A": _A, "B": _B}[output_side]
        out.extend(_solve_tree(tree, fixed))
    return out
