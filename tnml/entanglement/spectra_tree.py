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

import numpy as np
import torch

from tnml.rooting import RootedTree, is_tree
from tnml.structure import TNStructure

__all__ = ["TreeSpectra", "is_tree"]


_MASK = 2**64 - 1
_Key = tuple[int, int]


def _add(a: _Key, b: _Key) -> _Key:
    return (a[0] + b[0]) & _MASK, (a[1] + b[1]) & _MASK


def _sub(a: _Key, b: _Key) -> _Key:
    return (a[0] - b[0]) & _MASK, (a[1] - b[1]) & _MASK


def _log64(x: torch.Tensor) -> torch.Tensor:
    """``ln x`` as float64 (log-scales are accumulated in double precision)."""
    y = torch.log(x)
    return y if y.dtype == torch.float64 else y.to(torch.float64)


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
        self.open_inds = set(structure.input_inds) | (
            {structure.output_ind} if structure.output_ind is not None else set()
        )
        self._msg: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor | float]] = {}
        # open legs in a fixed order (inputs in site order, then the output): leg position of site s is s
        self._legs = tuple(structure.input_inds) + ((structure.output_ind,) if structure.output_ind is not None else ())
        self._hash: dict[tuple[int, str], _Key] | None = None
        self._by_hash: dict[_Key, tuple[int, str]] | None = None
        self._leg_pos: dict[str, int] = {}
        self._key_lo = self._key_hi = np.zeros(0, dtype=np.uint64)  # per leg position, filled on first use
        self._total: _Key = (0, 0)

    # ------------------------------------------------------------------ which edge realizes a split
    def _set_key(self, positions: np.ndarray) -> _Key:
        """Key of the set of open legs at ``positions``: the sums mod 2^64 of the legs' two random 64-bit halves
        (numpy wraps unsigned sums), so one vectorized pass per split."""
        return int(self._key_lo[positions].sum()), int(self._key_hi[positions].sum())

    def _subtree_hashes(self) -> dict[tuple[int, str], _Key]:
        """For every directed edge (t, e): the key of the open legs on t's side of e (a pair of sums mod 2^64 of
        random keys; two sides with different leg sets collide with probability ~2^-128)."""
        if self._hash is not None:
            return self._hash
        keys = [random.Random(ind).getrandbits(128) for ind in self._legs]
        self._key_lo = np.array([k & _MASK for k in keys], dtype=np.uint64)
        self._key_hi = np.array([k >> 64 for k in keys], dtype=np.uint64)
        self._leg_pos = {ind: k for k, ind in enumerate(self._legs)}
        self._total = total = self._set_key(np.arange(len(self._legs)))
        tensors = self.structure.tensors
        own = [
            self._set_key(np.array([self._leg_pos[i] for i in t.inds if i in self._leg_pos], dtype=np.intp))
            for t in tensors
        ]
        rooted = RootedTree.of(self.structure, root=0)
        below = list(own)
        for u in reversed(rooted.order):
            if rooted.parent[u] is not None:
                p = rooted.parent[u][0]
                below[p] = _add(below[p], below[u])
        hashes: dict[tuple[int, str], _Key] = {}
        for u in rooted.order:
            if rooted.parent[u] is not None:
                p, ind = rooted.parent[u]
                hashes[(u, ind)] = below[u]
                hashes[(p, ind)] = _sub(total, below[u])
        for k, t in enumerate(tensors):
            for ind in t.inds:
                if ind in self._leg_pos:
                    hashes[(k, ind)] = _sub(total, self._set_key(np.array([self._leg_pos[ind]])))
        self._hash = hashes
        by_hash: dict[_Key, tuple[int, str]] = {}
        for key, h in hashes.items():
            by_hash.setdefault(h, key)
        self._by_hash = by_hash
        return hashes

    def _edge_of_key(self, target: _Key) -> tuple[int, str] | None:
        # either side of the edge may be A (the spectrum is symmetric); an open leg's own side is never a key
        by_hash = self._by_hash
        assert by_hash is not None, "filled by _subtree_hashes, which the callers run first"
        return by_hash.get(target, by_hash.get(_sub(self._total, target)))

    def find_edge(self, side_a, side_b=None) -> tuple[int, str] | None:
        """A directed edge ``(t, e)`` one of whose sides holds exactly the open legs ``side_a`` (None if the
        split needs more than one edge).

        ``side_b``, the other open legs, is optional; given, the key of the split is summed over the smaller side
        (``O(min(|A|, |B|))`` dictionary look-ups and one vectorized sum).
        """
        self._subtree_hashes()
        small, flip = side_a, False
        if side_b is not None and len(side_b) < len(side_a):
            small, flip = side_b, True
        pos = np.fromiter(map(self._leg_pos.__getitem__, small), dtype=np.intp, count=len(small))
        target = self._set_key(pos)
        return self._edge_of_key(_sub(self._total, target) if flip else target)

    def find_edge_sites(self, sites: np.ndarray) -> tuple[int, str] | None:
        """:meth:`find_edge` for side A given as input sites (an integer array, e.g. from
        :func:`tnml.entanglement.partitions.validated_sites`): one vectorized sum, no per-site Python work."""
        self._subtree_hashes()
        return self._edge_of_key(self._set_key(sites))

    # ------------------------------------------------------------------ messages
    def message(self, t: int, e: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F, log_scale)``: F of shape (k, dim e), unit Frobenius norm; the true factor is ``F * exp(log_scale)``."""
        f, log_scale = self._msg_of(t, e)
        if not isinstance(log_scale, torch.Tensor):
            log_scale = torch.tensor(log_scale, dtype=torch.float64, device=f.device)
        return f, log_scale

    def _msg_of(self, t: int, e: str) -> tuple[torch.Tensor, torch.Tensor | float]:
        """:meth:`message`, its log-scale a Python float where no gradient flows through it (fewer tensor ops)."""
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

    def _compute(self, u: int, e: str) -> tuple[torch.Tensor, torch.Tensor | float]:
        spec = self.structure.tensors[u]
        x = self.cores[spec.name]
        log_scale = None
        inds = list(spec.inds)
        for j in spec.inds:
            if j == e or (u, j) not in self.across:
                continue
            f, ls = self._msg[(self.across[(u, j)], j)]
            # absorb F (k, dim j) into axis j with one matmul; the new axis (size k) goes first, in j's place
            ax = inds.index(j)
            rest = x.shape[:ax] + x.shape[ax + 1 :]
            x = (f @ torch.movedim(x, ax, 0).reshape(x.shape[ax], -1)).reshape(f.shape[0], *rest)
            inds.insert(0, inds.pop(ax))
            log_scale = ls if log_scale is None else log_scale + ls
        ax = inds.index(e)
        m = torch.movedim(x, ax, -1).reshape(-1, x.shape[ax])
        if m.shape[0] > m.shape[1]:
            # mode="r" gives the same R without forming Q, but autograd needs Q
            m = torch.linalg.qr(m, mode="reduced" if m.requires_grad else "r")[1]
        nrm = torch.linalg.norm(m)
        nrm_f = float(nrm.detach())
        step: torch.Tensor | float = 0.0
        if nrm_f > 0:
            m = m / nrm
            step = _log64(nrm) if nrm.requires_grad else math.log(nrm_f)
        return m, (step if log_scale is None else log_scale + step)

    def spectrum(self, t: int, e: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Schmidt values across edge ``e`` (unit 2-norm, descending), their log 2-norm, and the size of the matrix
        that was decomposed (for tolerances)."""
        fa, la = self._msg_of(t, e)
        if (t, e) in self.across:
            fb, lb = self._msg_of(self.across[(t, e)], e)
            s = torch.linalg.svdvals(fa @ fb.transpose(0, 1))
            rows_b = fb.shape[0]
        else:  # open leg: its own side is the identity (no (d, d) eye: d may be huge)
            lb = 0.0
            s = torch.linalg.svdvals(fa)
            rows_b = fa.shape[1]
        nrm = torch.linalg.norm(s)
        nrm_f = float(nrm.detach())
        log_norm = la + lb
        if nrm_f > 0:
            s = s / nrm
            log_norm = log_norm + (_log64(nrm) if nrm.requires_grad else math.log(nrm_f))
        else:
            log_norm = -math.inf
        if not isinstance(log_norm, torch.Tensor):
            log_norm = torch.tensor(log_norm, dtype=torch.float64, device=s.device)
        return s, log_norm, max(fa.shape[0], rows_b, fa.shape[1])
