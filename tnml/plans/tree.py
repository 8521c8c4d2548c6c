"""Contraction plan for tree-shaped networks (MPS, TTN, any loop-free network with pairwise bonds).

The tree is rooted at the tensor that holds the output (else at its centre). Tensors are processed level by
level from the leaves (level = height above the deepest leaf below); tensors of one level with the same shape
signature are stacked and contracted by one batched kernel, so a TTN level is one op and the two halves of an
MPS advance together. Every message carries a per-sample power-of-two exponent.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import torch

from tnml.plans.absorb import absorb
from tnml.plans.scaling import normalize
from tnml.structure import TNStructure


@dataclass
class _Slot:
    """Where one absorbed leg of a stacked group gets its batched vectors from."""

    kind: str  # "input" or "message"
    index: torch.Tensor | None  # positions into phi (input) or into the concatenated sources (message)
    sources: tuple[int, ...] = ()  # message: ids of the groups whose outputs are concatenated
    direct: bool = False  # message: exactly the output of sources[0], in order


@dataclass
class _Group:
    names: tuple[str, ...]
    perms: tuple[tuple[int, ...], ...]
    slots: list[_Slot]
    parent_dim: int
    squeeze_parent: bool  # the root without an output index gets a dummy parent leg of size 1


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


class TreePlan:
    """Compiled level-by-level contraction of a tree network with batched inputs.

    Parameters
    ----------
    structure : TNStructure
        Must satisfy :func:`is_tree`.
    device : torch.device
        Where the index tensors live.
    """

    kind = "tree"

    def __init__(self, structure: TNStructure, device: torch.device | str = "cpu") -> None:
        if not is_tree(structure):
            raise ValueError("TreePlan needs a loop-free network with pairwise bonds; use GenericPlan")
        self.structure = structure
        tensors = structure.tensors
        n = len(tensors)
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
        # root the tree (iterative DFS: chains of thousands of tensors)
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
        height = {}
        for u in reversed(order):
            height[u] = 1 + max((height[c] for c, _ in children[u]), default=-1)
        site = {ind: s for s, ind in enumerate(structure.input_inds)}

        # per tensor: absorbed legs (largest first; messages before inputs on ties) and the parent leg
        info = {}
        for k, t in enumerate(tensors):
            dims = dict(zip(t.inds, t.shape))
            legs = [(ind, "message", c) for c, ind in children[k]]
            legs += [(ind, "input", site[ind]) for ind in t.inds if ind in site]
            legs.sort(key=lambda leg: (-dims[leg[0]], leg[1] != "message"))
            if parent[k] is not None:
                pind = parent[k][1]
            else:
                pind = structure.output_ind
            axis_inds = [leg[0] for leg in legs] + ([pind] if pind is not None else [])
            perm = tuple(t.inds.index(i) for i in axis_inds)
            shape = tuple(dims[i] for i in axis_inds)
            kinds = tuple(leg[1] for leg in legs)
            info[k] = (legs, perm, shape, kinds, pind is None)

        by_level: dict[tuple, list[int]] = {}
        for k in order[::-1]:
            legs, perm, shape, kinds, noparent = info[k]
            by_level.setdefault((height[k], shape, kinds, noparent), []).append(k)
        keys = sorted(by_level, key=lambda key: key[0])
        group_of: dict[int, tuple[int, int]] = {}
        self.groups: list[_Group] = []
        dev = torch.device(device)
        for gid, key in enumerate(keys):
            members = sorted(by_level[key])
            _, shape, kinds, noparent = key
            slots = []
            for j, kind in enumerate(kinds):
                srcs = [info[k][0][j][2] for k in members]
                if kind == "input":
                    slots.append(_Slot("input", torch.tensor(srcs, dtype=torch.long, device=dev)))
                    continue
                src_groups = []
                for c in srcs:
                    if group_of[c][0] not in src_groups:
                        src_groups.append(group_of[c][0])
                offsets, total = {}, 0
                for sg in src_groups:
                    offsets[sg] = total
                    total += len(self.groups[sg].names)
                idx = [offsets[group_of[c][0]] + group_of[c][1] for c in srcs]
                direct = len(src_groups) == 1 and idx == list(range(total))
                slots.append(
                    _Slot("message", torch.tensor(idx, dtype=torch.long, device=dev), tuple(src_groups), direct)
                )
            for pos, k in enumerate(members):
                group_of[k] = (gid, pos)
            self.groups.append(
                _Group(
                    names=tuple(tensors[k].name for k in members),
                    perms=tuple(info[k][1] for k in members),
                    slots=slots,
                    parent_dim=1 if noparent else shape[-1],
                    squeeze_parent=noparent,
                )
            )
        if len(self.groups[-1].names) != 1 or self.groups[-1].names[0] != tensors[root].name:
            raise AssertionError("tree plan: the root must be the last group")  # internal invariant

    def __call__(self, cores: dict[str, torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract.

        Parameters
        ----------
        cores : dict name -> Tensor
        phi : Tensor, shape (batch, n_sites, d)

        Returns
        -------
        values : Tensor, shape (batch, out_dim) or (batch,)
        exponent : Tensor, shape (batch,)
            The result is ``values * 2**exponent[:, None]``.
        """
        phi_t = phi.transpose(0, 1)  # (n_sites, batch, d)
        batch = phi.shape[0]
        outs: list[torch.Tensor] = []
        exps: list[torch.Tensor | None] = []
        for grp in self.groups:
            g = len(grp.names)
            if g == 1:
                core = cores[grp.names[0]].permute(grp.perms[0]).unsqueeze(0)
            else:
                core = torch.stack([cores[nm].permute(p) for nm, p in zip(grp.names, grp.perms)])
            if grp.squeeze_parent:
                core = core.unsqueeze(-1)
            operands = []
            exp = None
            for slot in grp.slots:
                if slot.kind == "input":
                    operands.append(phi_t.index_select(0, slot.index))
                    continue
                if slot.direct:
                    msg, e = outs[slot.sources[0]], exps[slot.sources[0]]
                else:
                    if len(slot.sources) == 1:
                        msg, e = outs[slot.sources[0]], exps[slot.sources[0]]
                    else:
                        msg = torch.cat([outs[s] for s in slot.sources])
                        e = torch.cat([exps[s] for s in slot.sources])
                    msg, e = msg.index_select(0, slot.index), e.index_select(0, slot.index)
                operands.append(msg)
                exp = e if exp is None else exp + e
            if operands:
                out = absorb(core, operands)
            else:
                out = core.reshape(g, 1, -1).expand(g, batch, -1)
            out, e = normalize(out, 2)
            exp = e if exp is None else exp + e
            outs.append(out)
            exps.append(exp)
        out, exp = outs[-1][0], exps[-1][0]
        if self.groups[-1].squeeze_parent:
            out = out[:, 0]
        return out, exp
