"""Exact Schmidt spectra of tree networks across one edge, by QR "messages" (canonicalization towards the cut).

For a directed edge ``t -> e`` (tensor ``t``, one of its indices ``e``) the *message* ``F[t, e]`` is a small
matrix ``(k, dim e)`` with ``k <= dim e`` such that the contraction of everything on ``t``'s side of ``e``,
matricized as (open legs of that side) x ``e``, equals ``Q @ F`` with ``Q`` an isometry. It is the R factor of
the QR decomposition of ``t`` with the messages of its other neighbours absorbed, so ``F^H F`` is that side's
Gram matrix without ever squaring the condition number. Across an edge ``e`` between ``u`` and ``v`` the Schmidt
values are ``svdvals(F[u, e] @ F[v, e]^T)``; across an open leg the leg's own side is the identity.

Cost: one QR per directed edge towards the cut, ``O(N D^3 d)`` for an MPS; messages are cached per network, so
all cuts of one network share them. Each message is normalized and its log-scale carried separately, so chains
of thousands of tensors neither overflow nor underflow.
"""

from __future__ import annotations

import math
import random

import torch

from tnml.plans.tree import is_tree
from tnml.structure import TNStructure

__all__ = ["TreeSpectra", "is_tree"]


class TreeSpectra:
    """Cached QR messages of one tree network with values.

    Parameters
    ----------
    structure : TNStructure
        Must satisfy :func:`tnml.plans.tree.is_tree` and have no output index.
    cores : dict name -> Tensor
        Values, axes in the order of each TensorSpec's ``inds``.
    """

    def __init__(self, structure: TNStructure, cores: dict[str, torch.Tensor]) -> None:
        if not is_tree(structure):
            raise ValueError("TreeSpectra needs a loop-free network with pairwise bonds (tnml.plans.tree.is_tree)")
        self.structure = structure
        self.cores = cores
        self.names = structure.tensor_names
        # neighbour across each bond: (tensor pos, ind) -> tensor pos
        self.across: dict[tuple[int, str], int] = {}
        for ind in structure.bonds:
            u, v = structure.tensors_of(ind)
            self.across[(u, ind)] = v
            self.across[(v, ind)] = u
        self.open_inds = set(structure.input_inds) | ({structure.output_ind} - {None})
        self._msg: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._hash: dict[tuple[int, str], int] | None = None
        self._by_hash: dict[int, tuple[int, str]] | None = None
        self._ind_hash: dict[str, int] = {}

    # ------------------------------------------------------------------ which edge realizes a split
    def _open_hash(self, ind: str) -> int:
        h = self._ind_hash.get(ind)
        if h is None:
            h = self._ind_hash[ind] = random.Random(ind).getrandbits(128)
        return h

    def _subtree_hashes(self) -> dict[tuple[int, str], int]:
        """For every directed edge (t, e): sum mod 2^128 of random 128-bit keys of the open legs on t's side of e
        (two sides with different leg sets collide with probability ~2^-128)."""
        if self._hash is not None:
            return self._hash
        tensors = self.structure.tensors
        total = sum(self._open_hash(i) for i in self.open_inds) % 2**128
        own = [sum(self._open_hash(i) for i in t.inds if i in self.open_inds) % 2**128 for t in tensors]
        # root at 0; iterative DFS
        parent: dict[int, tuple[int, str] | None] = {0: None}
        order, stack = [0], [0]
        while stack:
            u = stack.pop()
            for ind in tensors[u].inds:
                v = self.across.get((u, ind))
                if v is not None and v not in parent:
                    parent[v] = (u, ind)
                    order.append(v)
                    stack.append(v)
        below = list(own)
        for u in reversed(order):
            if parent[u] is not None:
                p = parent[u][0]
                below[p] = (below[p] + below[u]) % 2**128
        hashes: dict[tuple[int, str], int] = {}
        for u in order:
            if parent[u] is not None:
                p, ind = parent[u]
                hashes[(u, ind)] = below[u]
                hashes[(p, ind)] = (total - below[u]) % 2**128
        for k, t in enumerate(tensors):
            for ind in t.inds:
                if ind in self.open_inds:
                    hashes[(k, ind)] = (total - self._open_hash(ind)) % 2**128
        self._hash = hashes
        return hashes

    def find_edge(self, side_a) -> tuple[int, str] | None:
        """A directed edge ``(t, e)`` one of whose sides holds exactly the open legs ``side_a`` (None if the
        split needs more than one edge)."""
        target = sum(self._open_hash(i) for i in side_a) % 2**128
        if self._by_hash is None:
            self._by_hash = {}
            for key, h in self._subtree_hashes().items():
                self._by_hash.setdefault(h, key)
        total = sum(self._open_hash(i) for i in self.open_inds) % 2**128
        # either side of the edge may be A (the spectrum is symmetric); an open leg's own side is never a key
        return self._by_hash.get(target, self._by_hash.get((total - target) % 2**128))

    # ------------------------------------------------------------------ messages
    def message(self, t: int, e: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F, log_scale)``: F of shape (k, dim e), unit Frobenius norm; the true factor is ``F * exp(log_scale)``."""
        self._fill(t, e)
        return self._msg[(t, e)]

    def _fill(self, t: int, e: str) -> None:
        todo = [(t, e)]
        while todo:
            key = todo[-1]
            if key in self._msg:
                todo.pop()
                continue
            u, ind = key
            missing = [
                (self.across[(u, j)], j)
                for j in self.structure.tensors[u].inds
                if j != ind and (u, j) in self.across and (self.across[(u, j)], j) not in self._msg
            ]
            if missing:
                todo.extend(missing)
                continue
            self._msg[key] = self._compute(u, ind)
            todo.pop()

    def _compute(self, u: int, e: str) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.structure.tensors[u]
        x = self.cores[spec.name]
        log_scale = torch.zeros((), dtype=torch.float64)
        inds = list(spec.inds)
        for j in spec.inds:
            if j == e or (u, j) not in self.across:
                continue
            f, ls = self._msg[(self.across[(u, j)], j)]
            ax = inds.index(j)
            x = torch.movedim(torch.tensordot(x, f, dims=([ax], [1])), -1, ax)
            log_scale = log_scale + ls
        ax = inds.index(e)
        m = torch.movedim(x, ax, -1).reshape(-1, x.shape[ax])
        if m.shape[0] > m.shape[1]:
            m = torch.linalg.qr(m, mode="reduced")[1]
        nrm = torch.linalg.norm(m)
        if nrm > 0:
            m = m / nrm
            log_scale = log_scale + torch.log(nrm).to(torch.float64)
        return m, log_scale

    def spectrum(self, t: int, e: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Schmidt values across edge ``e`` (unit 2-norm, descending), their log 2-norm, and the size of the matrix
        that was decomposed (for tolerances)."""
        fa, la = self.message(t, e)
        if (t, e) in self.across:
            fb, lb = self.message(self.across[(t, e)], e)
        else:  # open leg: its own side is the identity
            fb = torch.eye(fa.shape[1], dtype=fa.dtype, device=fa.device)
            lb = torch.zeros((), dtype=torch.float64)
        s = torch.linalg.svdvals(fa @ fb.transpose(0, 1))
        nrm = torch.linalg.norm(s)
        log_norm = la + lb
        if nrm > 0:
            s = s / nrm
            log_norm = log_norm + torch.log(nrm).to(log_norm.dtype)
        else:
            log_norm = torch.full((), -math.inf, dtype=torch.float64)
        return s, log_norm, max(fa.shape[0], fb.shape[0], fa.shape[1])
