"""Root a loop-free network: which tensor is the root, each tensor's parent bond, children and height.

Shared by the tree plan (it contracts level by level, from the leaves) and the stacked parameter storage (it
orders each shape class the way the plan reads it, so that a level's cores are a contiguous run of rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from tnml.structure import TNStructure


def is_tree(structure: TNStructure) -> bool:
    """True if the tensors form a tree joined by single pairwise bonds (no hyper-indices, no loops)."""
    if structure.hyper_inds:
        return False
    g = nx.Graph()
    g.add_nodes_from(range(len(structure.tensors)))
    for ind in structure.bonds:
        u, v = structure.tensors_of(ind)
        if g.has_edge(u, v):
            return False  # parallel bonds
        g.add_edge(u, v)
    return nx.is_tree(g)


@dataclass(frozen=True)
class RootedTree:
    """A tree network rooted at the tensor that holds the output index (else at its centre).

    Attributes
    ----------
    root : int
        Position of the root tensor in ``structure.tensors``.
    parent : dict int -> (int, str) or None
        Each tensor's parent and the bond to it (None for the root).
    children : dict int -> list of (int, str)
        Each tensor's children and the bonds to them.
    height : dict int -> int
        0 for leaves, 1 + the largest child height otherwise.
    order : list of int
        Tensors in depth-first order from the root.
    """

    root: int
    parent: dict
    children: dict
    height: dict
    order: list

    @classmethod
    def of(cls, structure: TNStructure) -> RootedTree:
        """Root ``structure`` (which must satisfy :func:`is_tree`)."""
        n = len(structure.tensors)
        adj: dict[int, list[tuple[int, str]]] = {k: [] for k in range(n)}
        for ind in structure.bonds:
            u, v = structure.tensors_of(ind)
            adj[u].append((v, ind))
            adj[v].append((u, ind))
        if structure.output_ind is not None:
            root = structure.tensors_of(structure.output_ind)[0]
        else:
            g = nx.Graph()
            g.add_nodes_from(range(n))
            g.add_edges_from((u, v) for u in adj for v, _ in adj[u])
            root = min(nx.center(g))
        # iterative DFS: chains of thousands of tensors
        parent: dict[int, tuple[int, str] | None] = {root: None}
        order = [root]
        stack = [root]
        while stack:
            u = stack.pop()
            for v, ind in adj[u]:
                if v not in parent:
                    parent[v] = (u, ind)
                    order.append(v)
                    stack.append(v)
        children: dict[int, list[tuple[int, str]]] = {k: [] for k in range(n)}
        for v, pu in parent.items():
            if pu is not None:
                children[pu[0]].append((v, pu[1]))
        height: dict[int, int] = {}
        for u in reversed(order):
            height[u] = 1 + max((height[c] for c, _ in children[u]), default=-1)
        return cls(root, parent, children, height, order)
