"""Streaming Nyström sketch of the QE of a whole data set (P5's data tensor, all samples, any number of them).

The exact route (:mod:`tnml.entanglement.data_entanglement`) builds ``M x M`` Gram matrices per partition:
``O(M² N + M³)`` time and ``O(M²)`` memory. This route replaces each side's kernel
``G_S[m, m'] = Π_{n∈S} cos(πθ(x_n^m − x_n^{m'}))`` by its Nyström approximation on ``k`` *landmarks* (a seeded
sample of rows ``L``):

    G_S ≈ g_Sᵀ W_S⁺ g_S,    g_S = G_S[L, :]  (k, M),    W_S = G_S[L, L]  (k, k),

i.e. each sample's feature vector ``a_S^m`` is projected onto the span of the landmarks' feature vectors and
expressed in an orthonormal basis of that span, ``z_S^m = W_S^{-1/2} g_S^m`` (``r <= k`` coordinates). The data
tensor's matricization ``[[D]]_K ∝ Σ_m y_m a_K^m (a_{K^c}^m)ᵀ`` becomes the small matrix

    S_K = Σ_m y_m z_K^m (z_{K^c}^m)ᵀ   (r_K, r_{K^c}),

whose singular values give the QE. ``S_K`` is a sum over samples, so it is accumulated over batches of ``B`` rows
(memory independent of ``M``), over the shards of ``torch.distributed`` ranks (one all-reduce per partition), and
per class (one-vs-rest labelings are ``2 T_c − Σ_c T_c`` of the per-class sums ``T_c``).

A side with few features (``2^|K| <= k``) needs no approximation: its explicit product features ``a_K^m`` are
used, and the complement's Nyström residual ``e^m = 1 − |z_{K^c}^m|² >= 0`` (the kernel's diagonal is 1 for the
trig map) is added as a diagonal term, ``ρ_K = S_K S_Kᵀ + Σ_m e^m a_K^m (a_K^m)ᵀ``: this is exact when the
residual kernel is diagonal (nearly orthogonal samples, the regime where P5's batch estimator saturates) and when
it vanishes (kernels of rank ``<= k``). Blocks below such a side are partial traces of its ``ρ_K``, as in the
exact route. Between two large sides nothing is added: the sketch's spectrum has at most ``k`` values, so the QE
is at most ``ln k``; the *residual* (mean ``e^m`` of the side's kernel, 0 = exact) is reported per partition as
the error indicator, and the QE of the plain sketch (no residual terms) is returned beside the corrected one: their
difference is the error estimate of :attr:`~tnml.entanglement.DataEntanglementResult.error_estimate`.

Rows stream grouped by class (a stable sort of each process's rows), so the per-class sums are products of
contiguous slices.

Cost per batch row and large partition: ``~6 k²`` flops (two projections and one rank-``B`` update), so the
whole run is ``O(M · k · N + n_large · (M k² + k³))`` with ``n_large`` the tree blocks with ``2^|K| > k``; the
Gram products along the tree are shared as in the exact route.

References
----------
Williams, Seeger. *Using the Nyström method to speed up kernel machines.* NIPS 2001.
Alexander, De La Vega, Razin, Cohen. *What Makes Data Suitable for a Locally Connected Neural Network?* NeurIPS 2023.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from tnml import settings
from tnml.io import format_bytes
from tnml.spectrum import renyi_entropy

__all__ = ["SketchOutput", "sketch_bytes", "sketch_tree_qe"]

_DTYPE = torch.float64
#: relative eigenvalue cutoff of the landmark Gram matrices' pseudo-inverse square roots
_RTOL = 1e-14


@dataclass
class SketchOutput:
    """Per wanted node: QE per labeling and the Nyström residual (0 for explicit sides)."""

    qe: dict[int, list[float]]
    residual: dict[int, float]
    landmarks: np.ndarray
    batch_size: int
    n_groups: int
    qe_plain: dict[int, list[float]] = field(default_factory=dict)


def _entropy(lam: torch.Tensor) -> float:
    return float(renyi_entropy(lam))


def _inv_sqrt(w: torch.Tensor) -> torch.Tensor:
    """``P`` (k, r) with ``Pᵀ W P = I_r`` on the numerical range of the PSD matrix ``W`` (k, k)."""
    lam, vec = torch.linalg.eigh(0.5 * (w + w.T))
    keep = lam > _RTOL * max(float(lam[-1]), 0.0)
    if not bool(keep.any()):
        return torch.zeros(w.shape[0], 0, dtype=w.dtype, device=w.device)
    return vec[:, keep] / lam[keep].sqrt()


def _khatri_rao(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a[:, None, :] * b[None, :, :]).reshape(-1, a.shape[1])


class _Plan:
    """Which tree nodes are large (Nyström) or small (explicit), and which feed the wanted partitions."""

    def __init__(self, nodes, wanted: set[int], k: int):
        self.nodes = nodes
        n = len(nodes)
        self.small = [node.sites.size <= 62 and 2 ** node.sites.size <= k for node in nodes]
        self.small[0] = False  # the root is no partition: with 2^N <= k its children are the top small blocks
        # top-small: a small node whose parent is large (its descendants are partial traces of its ρ)
        self.top = [self.small[i] and nodes[i].parent is not None and not self.small[nodes[i].parent]
                    for i in range(n)]
        self.needed = [False] * n
        for i in sorted(wanted, reverse=True):
            j = i
            while j is not None and not self.needed[j]:
                self.needed[j] = True
                j = nodes[j].parent
        # the node whose accumulator serves wanted node i: itself if large, its top-small ancestor if small
        self.owner = {}
        for i in wanted:
            j = i
            while self.small[j] and not self.top[j]:
                j = nodes[j].parent
            self.owner[i] = j
        self.accum = sorted(set(self.owner.values()))
        self.large = [i for i in range(1, n) if not self.small[i]]
        self.depth = max((self._depth(i) for i in range(n)), default=0)
        self.n_top = sum(self.top)

    def _depth(self, i: int) -> int:
        d = 0
        while self.nodes[i].parent is not None:
            i, d = self.nodes[i].parent, d + 1
        return d


def _explicit(plan: _Plan, i: int, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Explicit product features (2^|K|, B) of a small node, Khatri–Rao of its children's in order."""
    node = plan.nodes[i]
    if not node.children:
        s = int(node.sites[0])
        return torch.stack((cos[:, s], sin[:, s]))
    out: torch.Tensor | None = None
    for c in node.children:
        f = _explicit(plan, c, cos, sin)
        out = f if out is None else _khatri_rao(out, f)
    assert out is not None  # not a leaf: at least one child
    return out


def _walk(plan: _Plan, cos: torch.Tensor, sin: torch.Tensor, lm_feats: dict[int, torch.Tensor],
          targets: set[int]):
    """Cross-Gram matrices with the landmarks for one batch; yields ``(i, side, rest)`` for each target node.

    ``side``: ``g_K`` (k, B) for a large node, the explicit features (2^|K|, B) for a top-small one; ``rest``:
    ``g_{K^c}`` (k, B) (products of Gram matrices up and down the canonical tree)."""
    nodes = plan.nodes
    feats: dict[int, torch.Tensor] = {}
    grams: dict[int, torch.Tensor] = {}

    def gram(i: int) -> torch.Tensor:
        if i not in grams:  # a top-small node's cross-Gram serves its parent's product and its siblings' rests
            grams[i] = lm_feats[i].T @ feats[i]
        return grams[i]

    for i in range(len(nodes) - 1, 0, -1):  # up pass over large nodes and their small children
        if plan.small[i]:
            if plan.top[i]:  # every top-small node: its Gram matrix enters its parent's and its siblings' products
                feats[i] = _explicit(plan, i, cos, sin)
            continue
        g: torch.Tensor | None = None
        for c in nodes[i].children:
            gc = gram(c)
            g = gc if g is None else g * gc
        assert g is not None  # a large node has children
        grams[i] = g

    def down(i: int, g_out: torch.Tensor | None):
        kids = nodes[i].children
        gk = {c: gram(c) for c in kids}
        for c in kids:
            if not plan.needed[c]:
                continue
            g_rest = g_out
            for s in kids:
                if s != c:
                    g_rest = gk[s] if g_rest is None else g_rest * gk[s]
            if c in targets:
                yield c, (feats[c] if plan.small[c] else gk[c]), g_rest
            if not plan.small[c]:
                yield from down(c, g_rest)

    yield from down(0, None)
    # ``down`` refers to itself, so this frame is part of a reference cycle that only the cyclic garbage collector
    # frees: drop the batch's workspace now, or several batches' would pile up until it runs
    grams.clear()
    feats.clear()


def sketch_bytes(plan_nodes, wanted: set[int], k: int, batch: int, n_classes: int) -> tuple[int, int]:
    """(per-batch workspace bytes, accumulator bytes of all wanted partitions) for :func:`sketch_tree_qe`."""
    plan = _Plan(plan_nodes, wanted, k)
    per_row = (len(plan.large) + 3 * plan.n_top + 4 * (plan.depth + 1) + 8) * k
    per_row += sum(2 ** plan.nodes[i].sites.size for i in range(len(plan.nodes)) if plan.top[i])
    work = per_row * batch * 8 + 2 * k * len(plan_nodes[0].sites) * 8
    acc = sum(_accum_bytes(plan, i, k, n_classes) for i in plan.accum)
    return work, acc


def _accum_bytes(plan: _Plan, i: int, k: int, n_classes: int) -> int:
    d = 2 ** plan.nodes[i].sites.size if plan.small[i] else k
    return (n_classes * d * k + d * d + (0 if plan.small[i] else k * k) + 2 * k * k) * 8


def sketch_tree_qe(
    x: torch.Tensor,
    cls: torch.Tensor,
    n_classes: int,
    labelings: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    theta: float,
    nodes,
    wanted: set[int],
    k: int,
    batch_size: int | None,
    seed: int | None,
    rows: tuple[int, int] | None = None,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> SketchOutput:
    """QE of every wanted canonical-tree node from the streaming Nyström sketch.

    Parameters
    ----------
    x : Tensor (M, N)
        All samples (float64); landmarks are drawn from all ``M`` rows, so every rank passes the whole ``x``.
    cls : Tensor (M,) int64
        Class index of each sample in ``0..n_classes-1`` (all 0 for unlabeled data).
    n_classes : int
    labelings : callable
        Maps the per-class sums ``[T_0, …]`` to the per-labeling sums ``[S_0, …]``.
    theta : float
    nodes : list
        The canonical tree (from ``_build_tree``).
    wanted : set of int
        Node ids whose QE is wanted (root excluded).
    k : int
        Number of landmarks (``<= M``).
    batch_size : int or None
        Rows per streamed batch; None: as many as fit half of ``tnml.settings.max_dense_bytes``.
    seed : int or None
        Seed of the landmark sample (the same on every rank); None: the first ``k`` rows.
    rows : (start, stop), optional
        This process's shard of the rows to stream (default: all).
    reduce : callable, optional
        In-place sum of a tensor over processes (``torch.distributed.all_reduce``), called once per partition.

    Returns
    -------
    SketchOutput
    """
    m, n = x.shape
    plan = _Plan(nodes, wanted, k)
    budget = settings.max_dense_bytes
    fixed, _ = sketch_bytes(nodes, wanted, k, 0, n_classes)
    work_row = sketch_bytes(nodes, wanted, k, 1, n_classes)[0] - fixed
    acc_each = {i: _accum_bytes(plan, i, k, n_classes) for i in plan.accum}
    if batch_size is None:  # half the budget, and never so many rows that the largest accumulator no longer fits
        room = min(budget // 2 - fixed, budget - fixed - max(acc_each.values()))
        batch_size = max(1, min(m, room // max(work_row, 1)))
    work = fixed + work_row * batch_size
    if work + max(acc_each.values()) > budget:
        raise settings.MemoryLimitError(
            f"the sketch needs about {format_bytes(work + max(acc_each.values()))} (batches of {batch_size} rows x "
            f"{k} landmarks over {len(plan.large)} large tree blocks) but tnml.settings.max_dense_bytes is "
            f"{format_bytes(budget)}; lower sketch_size (memory grows as its square) or batch_size, or raise "
            "tnml.settings.max_dense_bytes"
        )
    # partitions in groups whose accumulators fit beside one batch's workspace (each group streams the data once)
    groups: list[list[int]] = [[]]
    used = 0
    for i in plan.accum:
        if groups[-1] and used + acc_each[i] + work > budget:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += acc_each[i]

    landmarks = (np.arange(k) if seed is None else np.sort(np.random.default_rng(seed).choice(m, k, replace=False)))
    a_l = math.pi * theta * x[torch.as_tensor(landmarks)]
    cos_l, sin_l = torch.cos(a_l), torch.sin(a_l)
    lm_feats = {i: _explicit(plan, i, cos_l, sin_l) for i in range(len(nodes)) if plan.top[i]}
    start, stop = (0, m) if rows is None else rows
    # this process's rows ordered by class (stable): per-class sums over slices instead of gathers
    cls_sorted, by_class = torch.sort(cls[start:stop], stable=True)
    by_class = by_class + start
    qe: dict[int, list[float]] = {}
    plain: dict[int, list[float]] = {}  # plain Nyström (no residual terms), for the error estimate
    residual: dict[int, float] = {}
    for group in groups:
        targets = set(group)
        proj: dict[int, tuple[torch.Tensor | None, torch.Tensor]] = {}
        for i, side, rest in _walk(plan, cos_l, sin_l, lm_feats, targets):  # landmarks vs landmarks: W_K, W_Kc
            proj[i] = (None if plan.small[i] else _inv_sqrt(side), _inv_sqrt(rest))
        acc = {}
        for i in group:
            p_side, p_rest = proj[i]
            d = 2 ** nodes[i].sites.size if p_side is None else p_side.shape[1]
            r_c = p_rest.shape[1]
            acc[i] = dict(t=torch.zeros(n_classes, d, r_c, dtype=_DTYPE), r1=torch.zeros(d, d, dtype=_DTYPE),
                          r2=torch.zeros(0 if p_side is None else r_c, 0 if p_side is None else r_c,
                                         dtype=_DTYPE),
                          e=torch.zeros(4, dtype=_DTYPE))
        for b0 in range(0, stop - start, batch_size):
            rows_b = by_class[b0:b0 + batch_size]  # sorted by class: each class is one slice of the batch
            ends = torch.searchsorted(cls_sorted[b0:b0 + batch_size], torch.arange(n_classes + 1)).tolist()
            members = [slice(ends[c], ends[c + 1]) for c in range(n_classes)]
            a_b = math.pi * theta * x[rows_b]  # features per batch: no (M, N) temporaries
            for i, side, rest in _walk(plan, torch.cos(a_b), torch.sin(a_b), lm_feats, targets):
                p_side, p_rest = proj[i]
                zr = p_rest.T @ rest
                er = (1.0 - (zr * zr).sum(0)).clamp_min(0.0)
                zs = side if p_side is None else p_side.T @ side
                slot = acc[i]
                for c, idx in enumerate(members):
                    if idx.stop > idx.start:
                        slot["t"][c].addmm_(zs[:, idx], zr[:, idx].T)
                slot["r1"].addmm_(zs * er, zs.T)
                slot["e"][1] += er.sum()
                if p_side is not None:
                    es = (1.0 - (zs * zs).sum(0)).clamp_min(0.0)
                    slot["r2"].addmm_(zr * es, zr.T)
                    bulk = es * er
                    slot["e"][0] += es.sum()
                    slot["e"][2] += bulk.sum()
                    slot["e"][3] += torch.special.xlogy(bulk, bulk).sum()
        for i in group:
            slot = acc[i]
            flat = torch.cat([slot[key].reshape(-1) for key in ("t", "r1", "r2", "e")])
            if reduce is not None:
                flat = reduce(flat)
            parts, pos = {}, 0
            for key in ("t", "r1", "r2", "e"):
                parts[key] = flat[pos:pos + slot[key].numel()].reshape(slot[key].shape)
                pos += slot[key].numel()
            e = parts["e"]
            residual[i] = float(e[:2].max()) / m
            s_lab = labelings(list(parts["t"]))
            n_lab = len(s_lab)
            if proj[i][0] is None:  # with and without the residual term, in one pass down the small blocks
                both: dict[int, list[float]] = {}
                _descend(plan, i, [s @ s.T + parts["r1"] for s in s_lab] + [s @ s.T for s in s_lab], wanted, both)
                for j, v in both.items():
                    qe[j], plain[j] = v[:n_lab], v[n_lab:]
            else:
                f1, f2 = _psd_factor(parts["r1"]), _psd_factor(parts["r2"]).T  # label-independent
                qe[i] = [_bordered_entropy(s, f1, f2, float(e[2]), float(e[3])) for s in s_lab]
                plain[i] = [_entropy(torch.linalg.eigvalsh(s @ s.T)) for s in s_lab]
        del acc, proj
    out_res = {}
    for i in wanted:
        out_res[i] = residual[plan.owner[i]]
    return SketchOutput(qe={i: qe[i] for i in wanted}, residual=out_res, landmarks=landmarks,
                        batch_size=int(batch_size), n_groups=len(groups), qe_plain={i: plain[i] for i in wanted})


def _psd_factor(g: torch.Tensor) -> torch.Tensor:
    """``F`` with ``F Fᵀ = g`` for a PSD matrix ``g`` (negative round-off eigenvalues dropped)."""
    lam, vec = torch.linalg.eigh(0.5 * (g + g.T))
    return vec * lam.clamp_min(0.0).sqrt()


def _bordered_entropy(s: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, bulk: float, bulk_xlogx: float) -> float:
    """QE of the sketched matricization with both sides' Nyström residuals as private directions.

    In the basis (landmark span ⊕ one private direction per sample) of each side the matricization is
    ``[[S, B1], [B2, Δ]]`` with ``B1 B1ᵀ = r1 = Σ e_{K^c}^m z_K^m z_K^mᵀ``, ``B2ᵀ B2 = r2 = Σ e_K^m z_{K^c}^m
    z_{K^c}^mᵀ`` and ``Δ`` diagonal with squares ``e_K^m e_{K^c}^m``. The spectrum is taken as that of the
    bordered part ``[[S, R1], [R2, 0]]`` (``(r + r_c)``-dimensional) together with the diagonal's squares, whose
    sum ``bulk`` and ``Σ d ln d`` (``bulk_xlogx``) were accumulated; the coupling between the two is left out
    (exact when either vanishes). ``f1`` (r, r) and ``f2`` (r_c, r_c) are factors with ``B1 = f1 U1ᵀ`` and
    ``B2 = U2 f2`` (``f1 f1ᵀ = r1``, ``f2ᵀ f2 = r2``)."""
    top = torch.cat([s @ s.T + f1 @ f1.T, s @ f2.T], 1)
    bot = torch.cat([f2 @ s.T, f2 @ f2.T], 1)
    lam = torch.linalg.eigvalsh(torch.cat([top, bot], 0)).clamp_min(0.0)
    total = float(lam.sum()) + bulk
    if total <= 0.0:
        return 0.0
    return math.log(total) - (float(torch.special.xlogy(lam, lam).sum()) + bulk_xlogx) / total


def _descend(plan: _Plan, i: int, rho: list[torch.Tensor], wanted: set[int], out: dict[int, list[float]]) -> None:
    """QE of a small node from its reduced density matrices, then its wanted descendants by partial traces."""
    if i in wanted:
        stack = torch.stack(rho)
        out[i] = [_entropy(lam) for lam in torch.linalg.eigvalsh(0.5 * (stack + stack.mT))]  # one batched call
    kids = plan.nodes[i].children
    if not any(plan.needed[c] for c in kids):
        return
    dims = [2 ** plan.nodes[c].sites.size for c in kids]
    letters = "abcdefgh"
    for j, c in enumerate(kids):
        if not plan.needed[c]:
            continue
        row = [letters[t] if t != j else "x" for t in range(len(kids))]
        col = [letters[t] if t != j else "y" for t in range(len(kids))]
        expr = "".join(row) + "".join(col) + "->xy"
        _descend(plan, c, [torch.einsum(expr, r.reshape(dims + dims)) for r in rho], wanted, out)
