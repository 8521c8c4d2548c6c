"""Log-depth contraction of an open chain (an MPS): per-sample site matrices multiplied pairwise.

The sequential route of :class:`tnml.plans.TreePlan` advances a running ``(batch, D)`` vector one site at a
time: the fewest FLOPs (``2 d D^2`` per site and sample) but ``O(n)`` dependent steps of a few small kernels each
(12 586 aten ops for a 784-site train step). This route instead

1. contracts ``k`` consecutive cores into one block core ``(D, d^k, D)`` (no batch index: the cost of a few
   samples; ``k`` from :func:`chain_costs`, where the FLOP model finds merging pays),
2. absorbs the outer product of each block's ``k`` input vectors into a per-sample ``D x D`` matrix (one batched
   GEMM for the whole chain),
3. multiplies adjacent matrices pairwise, both halves of the chain at once, in ``ceil(log2(n / k))`` levels of
   one batched matmul each, rescaling every level by a per-sample power of two (the exponent is carried in float32
   at least, so bfloat16 and float16 chains stay finite),
4. closes the two half products with the boundary vectors and the output core.

Its cost is ``2 D^3`` per block and sample on top of the site matrices: ``D`` times the vector work of the
sequential route, paid back only where a kernel launch costs more than that arithmetic (a GPU), see
:func:`choose_route`. The function computed is the same (to round-off); gradients come from autograd.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from tnml.plans.scaling import exponent_dtype
from tnml.storage import stack_layout
from tnml.structure import TNStructure

#: the routes a chain can take (:func:`choose_route`); ``"auto"`` asks the cost model
CHAIN_ROUTES = ("auto", "sequential", "log-depth")
#: largest block input dimension ``d^k`` considered when merging sites
_MAX_BLOCK_INPUTS = 256

#: per-device constants of the route cost model: seconds per aten op (dispatch, or launch on CUDA, forward and
#: backward together as a multiple of the forward count) and the FLOP rate of small batched GEMMs. CPU: measured on
#: the 2-core development machine (one thread: 12 586 ops in a 50 ms 784-site step, ~4 us each; batched 10 x 10
#: matmuls ~4 GFLOP/s). CUDA: a launch is ~5-10 us and an H100 runs small batched GEMMs at >= 1 TFLOP/s; these are
#: estimates, not measurements of this project.
ROUTE_CONSTANTS = {
    "cpu": {"op_s": 4e-6, "flops_per_s": 4e9},
    "cuda": {"op_s": 8e-6, "flops_per_s": 1e12},
}


@dataclass(frozen=True)
class ChainCosts:
    """Cost-model figures of the two routes for one batch size (see :func:`chain_costs`)."""

    block: int  # sites merged per block on the log-depth route
    sequential_flops: float
    log_depth_flops: float
    sequential_ops: int
    log_depth_ops: int


def _pow2(q: int) -> int:
    return 1 << max(0, q - 1).bit_length()


def _block_size(d: int, bond: int, sites: int = 1) -> int:
    """Sites per block minimizing the per-sample FLOPs of a half of ``sites`` inner sites: ``q = ceil(sites / k)``
    block matrices at ``2 d^k D^2`` each, plus ``2 D^3`` per pairwise product over the ``q`` blocks padded with
    identities to a power of two."""
    best, best_cost = 1, math.inf
    k = 1
    while d**k <= _MAX_BLOCK_INPUTS:
        q = math.ceil(max(1, sites) / k)
        cost = _pow2(q) * (2.0 * d**k * bond**2 + d**k + 2.0 * bond**3)
        if cost < best_cost:
            best, best_cost = k, cost
        k += 1
    return best


def chain_costs(n_sites: int, d: int, bond: int, batch: int) -> ChainCosts:
    """Forward FLOPs and aten-op counts of the sequential and the log-depth route of an ``n_sites`` chain.

    Sequential: ``2 d D^2 + 2 d D`` per site and sample, about ``n / 2`` steps (both halves advance together) of
    about six ops. Log-depth: ``2 d^k D^2`` per block for the site matrices, ``2 D^3`` per pairwise product (one
    fewer product than blocks), plus the batch-free block merge; about twelve ops per level (matmul, rescaling,
    odd-length padding) and ``log2(n / k)`` levels, plus ~40 fixed.

    Parameters
    ----------
    n_sites, d, bond : int
        Chain length, input dimension, bond dimension.
    batch : int

    Returns
    -------
    ChainCosts
        The block size ``k``, forward FLOPs and aten-op estimates of both routes.

    Examples
    --------
    >>> c = chain_costs(784, 2, 10, 100)
    >>> c.log_depth_ops < c.sequential_ops and c.log_depth_flops > c.sequential_flops
    True
    """
    half = math.ceil(max(1, n_sites - 3) / 2)
    k = _block_size(d, bond, half)
    q = math.ceil(half / k)
    seq = batch * n_sites * (2.0 * d * bond**2 + 2.0 * d * bond)
    merge = 2 * q * sum(2.0 * bond * d**j * bond * d * bond for j in range(1, k))
    q = _pow2(q)
    logd = batch * 2 * (q * (2.0 * d**k * bond**2 + d**k) + (q - 1) * 2.0 * bond**3) + merge
    levels = max(1, math.ceil(math.log2(max(2, q))))
    return ChainCosts(k, seq, logd, 6 * (n_sites // 2) + 20, 12 * levels + 40)


def choose_route(n_sites: int, d: int, bond: int, batch: int, device_type: str) -> str:
    """``"sequential"`` or ``"log-depth"``: the route whose modelled train-step time (ops x seconds per op + FLOPs /
    rate, :data:`ROUTE_CONSTANTS`; backward as 2x forward) is smaller on this device type.

    Parameters
    ----------
    n_sites, d, bond, batch : int
        As :func:`chain_costs`.
    device_type : str
        ``"cpu"``, ``"cuda"`` (unknown types use the CUDA constants).

    Returns
    -------
    str

    Examples
    --------
    >>> choose_route(784, 2, 10, 100, "cpu"), choose_route(784, 2, 10, 100, "cuda")
    ('sequential', 'log-depth')
    """
    c = chain_costs(n_sites, d, bond, batch)
    k = ROUTE_CONSTANTS.get(device_type, ROUTE_CONSTANTS["cuda"])
    t_seq = 3 * (c.sequential_ops * k["op_s"] + c.sequential_flops / k["flops_per_s"])
    t_log = 3 * (c.log_depth_ops * k["op_s"] + c.log_depth_flops / k["flops_per_s"])
    return "log-depth" if t_log < t_seq else "sequential"


def _rescale(t: torch.Tensor, n_lead: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``t`` scaled per leading index by a power of two to max-abs in about (0.5, 1], and the exponents (float32 at
    least).

    The scale is ``2**-e`` with ``e = ceil(log2(max |t|))`` from the detached values (fewer ops than ``frexp``; off
    by one next to a power of two at worst, which only moves the max-abs to the other end of the range). Zero slices
    keep scale 1 and exponent 0 (so the gradient reaching them is not scaled away), subnormal ones are scaled as if
    at the smallest normal number, non-finite ones stay non-finite.
    """
    mag = t.detach().abs()
    if t.dim() > n_lead:
        mag = mag.amax(dim=tuple(range(n_lead, t.dim())))
    e = torch.ceil(torch.log2(mag)).clamp_min(math.frexp(torch.finfo(t.dtype).tiny)[1])
    e = torch.where(mag == 0, 0.0, e).to(exponent_dtype(t.dtype))
    scale = torch.exp2(-e).to(t.dtype)
    return t * scale.view(mag.shape + (1,) * (t.dim() - n_lead)), e


def _canonical(t, left: str | None, phys: str, right: str | None, out: str | None) -> tuple[int, ...]:
    """Axis permutation of tensor ``t`` into (left bond, input, right bond, output), absent legs skipped."""
    return tuple(t.inds.index(i) for i in (left, phys, right, out) if i is not None)


class ChainRoute:
    """The log-depth route for a chain structure (see the module docstring); built by :meth:`of`, which returns
    None for structures it does not cover (then only the sequential route exists).

    Covered: an open chain of ``n >= 4`` tensors, each with exactly one input index, equal bonds ``D`` and an
    output index (if any) on a tensor that is not an end; inner tensors of one shape and axis order.

    Parameters
    ----------
    structure : TNStructure
    order : list of int
        Tensor positions along the chain, from the end holding the first input.
    perms : list of tuple
        Per chain position, the axis permutation into (left bond, input, right bond[, output]).
    out_pos : int
        Chain position of the output tensor (of the middle one without an output index).
    device : torch.device
        Where the index tensors live.

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> ChainRoute.of(MPS(20, 2, 4, out_dim=3).structure).describe().split(",")[0]
    'log-depth chain: 20 sites'
    """

    def __init__(self, structure: TNStructure, order, perms, out_pos: int, device: torch.device) -> None:
        self.structure = structure
        tensors = structure.tensors
        self.n = len(order)
        t0 = tensors[order[0]]
        self.d = structure.phys_dims[0]
        self.bond = next(s for i, s in zip(t0.inds, t0.shape) if i not in structure.input_inds)
        self.out_pos = out_pos
        self.has_out = structure.output_ind is not None
        self.k = _block_size(self.d, self.bond, max(out_pos - 1, self.n - 2 - out_pos))
        layout = stack_layout(structure)
        where = {nm: (s, r) for s, (_, names) in enumerate(layout) for r, nm in enumerate(names)}
        names = [tensors[i].name for i in order]
        site_of_input = {ind: p for p, ind in enumerate(structure.input_inds)}
        phys = [site_of_input[next(i for i in tensors[j].inds if i in site_of_input)] for j in order]
        left_inner = list(range(1, out_pos))
        right_inner = list(range(out_pos + 1, self.n - 1))
        m = self.k * math.ceil(max(len(left_inner), len(right_inner), 1) / self.k)
        self.m = m  # sites per half after padding
        inner = left_inner + right_inner
        # the inner cores may sit in several stacks (a short chain's levels): join those, then pick chain order
        self.inner_stacks = sorted({where[names[p]][0] for p in inner})
        offset, total = {}, 0
        for st in self.inner_stacks:
            offset[st] = total
            total += len(layout[st][1])
        self.n_inner_left, self.n_inner_right = len(left_inner), len(right_inner)
        rows = [offset[where[names[p]][0]] + where[names[p]][1] for p in inner]
        self.inner_rows = torch.tensor(rows, dtype=torch.long, device=device)
        inner_perm: tuple[int, ...] | None = (0, *(a + 1 for a in perms[inner[0]]))
        self.inner_perm = None if inner_perm == tuple(range(4)) else inner_perm
        # where the padded halves take their inputs: real sites, or column n of phi (the constant e_0)
        q = m // self.k
        self.q_pad = _pow2(q)
        m = self.m = self.q_pad * self.k  # sites per half, padded with identity sites to a power of two of blocks
        const = self.structure.n_sites
        pad_l, pad_r = [const] * (m - len(left_inner)), [const] * (m - len(right_inner))
        self.phi_index = torch.tensor(
            [phys[p] for p in left_inner] + pad_l + [phys[p] for p in right_inner] + pad_r, dtype=torch.long,
            device=device,
        )
        self.ends = [(where[names[p]], perms[p], phys[p]) for p in (0, self.n - 1)]
        self.out = (where[names[out_pos]], perms[out_pos], phys[out_pos])
        self.layout = layout
        self._constants: dict = {}
        # blocks are stored in bit-reversed order of their position, so that at every level the pairs to multiply
        # are the first and the second half of the storage (contiguous views; storage s and s + h hold positions
        # 2 j and 2 j + 1 of the level)
        bits = self.q_pad.bit_length() - 1
        rev = [int(format(s, f"0{bits}b")[::-1], 2) if bits else 0 for s in range(self.q_pad)]
        self.bitrev = torch.tensor(rev, dtype=torch.long, device=device)

    @classmethod
    def of(cls, structure: TNStructure, device: torch.device | str = "cpu") -> ChainRoute | None:
        """The route for ``structure``, or None if it is not a covered chain."""
        tensors = structure.tensors
        n = len(tensors)
        if n < 4 or structure.n_sites != n or len(set(structure.phys_dims)) != 1:
            return None
        inputs = set(structure.input_inds)
        owners: dict[str, list[int]] = {}
        for k, t in enumerate(tensors):
            if sum(i in inputs for i in t.inds) != 1:
                return None
            for i in t.inds:
                owners.setdefault(i, []).append(k)
        out_ind = structure.output_ind
        bonds = {i: o for i, o in owners.items() if i not in inputs and i != out_ind}
        if any(len(o) != 2 for o in bonds.values()) or len(bonds) != n - 1:
            return None
        sizes = {s for t in tensors for i, s in zip(t.inds, t.shape) if i in bonds}
        if len(sizes) != 1:
            return None
        nbrs: dict[int, list[tuple[int, str]]] = {k: [] for k in range(n)}
        for i, (a, b) in bonds.items():
            nbrs[a].append((b, i))
            nbrs[b].append((a, i))
        if any(len(v) > 2 for v in nbrs.values()):
            return None
        ends = [k for k, v in nbrs.items() if len(v) == 1]
        if len(ends) != 2:
            return None
        first_input = {k: structure.input_inds.index(next(i for i in t.inds if i in inputs)) for k, t in
                       enumerate(tensors)}
        start = min(ends, key=lambda k: first_input[k])
        order: list = [start]
        bond_left: list[str | None] = [None]
        prev = None
        while len(order) < n:
            cur = order[-1]
            nxt = [(b, i) for b, i in nbrs[cur] if b != prev]
            if not nxt:
                return None
            prev = cur
            order.append(nxt[0][0])
            bond_left.append(nxt[0][1])
        bond_right: list[str | None] = [*bond_left[1:], None]
        perms = []
        for p, k in enumerate(order):
            t = tensors[k]
            phys = next(i for i in t.inds if i in inputs)
            out = out_ind if out_ind in t.inds else None
            perms.append(_canonical(t, bond_left[p], phys, bond_right[p], out))
        if out_ind is not None:
            out_pos = next(p for p, k in enumerate(order) if out_ind in tensors[k].inds)
            if out_pos in (0, n - 1):
                return None
        else:
            out_pos = n // 2
        inner_pos = [p for p in range(1, n - 1) if p != out_pos]
        if len({perms[p] for p in inner_pos}) != 1 or len({tensors[order[p]].shape for p in inner_pos}) != 1:
            return None
        return cls(structure, order, perms, out_pos, torch.device(device))

    # ------------------------------------------------------------------ run
    def __call__(self, cores: Mapping[str, torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract per-tensor cores ``{name: tensor}`` with ``phi`` ``(batch, n_sites, d)``."""
        stacks = [torch.stack([cores[nm] for nm in names]) for _, names in self.layout]
        return self.run_stacks(stacks, phi)

    def _padding(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The padding input ``e_0`` (d,) and identity site ``A[l, s, r] = delta_lr delta_s0`` (1, D, d, D), built once
        per dtype and device."""
        key = (dtype, device)
        if key not in self._constants:
            d, D = self.d, self.bond
            pad = torch.zeros(d, dtype=dtype, device=device)
            pad[0] = 1
            eye = torch.eye(D, dtype=dtype, device=device)
            self._constants[key] = (pad, (eye.unsqueeze(1) * pad.view(1, d, 1)).unsqueeze(0))
        return self._constants[key]

    @staticmethod
    def _fetch(stacks: Sequence[torch.Tensor], spec) -> torch.Tensor:
        (s, r), perm, _ = spec
        st = stacks[s]
        # a one-row stack (an MPS's end and output cores): a view, whose backward allocates nothing
        t = st.view(st.shape[1:]) if st.shape[0] == 1 else st[r]
        return t.permute(perm) if perm != tuple(range(len(perm))) else t

    def run_stacks(self, stacks: Sequence[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract the stacked cores with ``phi`` ``(batch, n_sites, d)``; returns ``(values, exponent)`` as
        :meth:`tnml.plans.base.Plan.run_stacks` (the exponent in float32 for half-precision cores)."""
        b, d, D, k, m = phi.shape[0], self.d, self.bond, self.k, self.m
        q = m // k  # blocks per half
        joined = [stacks[st] for st in self.inner_stacks]
        inner = (joined[0] if len(joined) == 1 else torch.cat(joined)).index_select(0, self.inner_rows)
        if self.inner_perm is not None:
            inner = inner.permute(self.inner_perm)
        pad, ident = self._padding(inner.dtype, inner.device)
        nl, nr = self.n_inner_left, self.n_inner_right
        parts = [inner[:nl], ident.expand(m - nl, D, d, D), inner[nl:], ident.expand(m - nr, D, d, D)]
        sites = torch.cat(parts)  # (2 m, D, d, D)
        # block cores: k consecutive sites contracted (batch-free), legs (l, s_1 .. s_k, r)
        per_site = sites.view(2 * q, k, D, d * D).unbind(1)
        block = per_site[0].reshape(2 * q, D * d, D)
        for j in range(1, k):
            block = torch.bmm(block, per_site[j]).view(2 * q, -1, D)
        dk = d**k
        block = block.view(2 * q, D, dk, D).transpose(1, 2).reshape(2 * q, dk, D * D)
        # per-sample block inputs: outer product of the k input vectors
        ph = torch.cat([phi, pad.view(1, 1, d).expand(b, 1, d)], 1).index_select(1, self.phi_index)
        ph_sites = ph.view(b, 2 * q, k, d).permute(2, 1, 0, 3).unbind(0)  # k x (2q, b, d)
        z = ph_sites[0]
        for j in range(1, k):
            z = (z.unsqueeze(-1) * ph_sites[j].unsqueeze(-2)).reshape(2 * q, b, -1)
        mats = torch.bmm(z, block).view(2, q, b, D, D)
        mats = mats.transpose(0, 1).index_select(0, self.bitrev)  # (q, 2, b, D, D), bit-reversed block order
        mats, exp = _rescale(mats, 3)  # exponents (q, 2, b)
        # products of <= 8 rescaled D x D matrices stay within D^7 (float32 / bfloat16 / float64); float16 every level
        every = 1 if mats.dtype == torch.float16 else 3
        level = 0
        while q > 1:
            q //= 2
            level += 1
            left, right = mats.view(2, q * 2 * b, D, D).unbind(0)
            mats = torch.bmm(left, right).view(q, 2, b, D, D)
            exp = exp.view(2, q, 2, b).sum(0)
            if level % every == 0 or q == 1:
                mats, e = _rescale(mats, 3)
                exp = exp + e
        il, ir = self.ends[0][2], self.ends[1][2]
        first = self._fetch(stacks, self.ends[0])  # (d, D)
        last = self._fetch(stacks, self.ends[1])  # (D, d)
        v0 = torch.mm(phi[:, il], first)  # (b, D)
        vn = torch.mm(phi[:, ir], last.t())  # (b, D)
        pl, pr = mats.view(2, b, D, D).unbind(0)
        vl = torch.bmm(v0.unsqueeze(1), pl).squeeze(1)
        vr = torch.bmm(pr, vn.unsqueeze(-1)).squeeze(-1)
        core = self._fetch(stacks, self.out)  # (D, d, D[, out])
        y = core.shape[3] if core.dim() == 4 else 1
        t = torch.mm(vl, core.reshape(D, -1)).view(b, d, D * y)
        t = (t * phi[:, self.out[2]].unsqueeze(-1)).sum(1).view(b, D, y)
        out = (t * vr.unsqueeze(-1)).sum(1)  # (b, y)
        out, e = _rescale(out, 1)
        exp = exp.view(2, b).sum(0) + e
        return (out if self.has_out else out[:, 0]), exp

    def describe(self) -> str:
        """One line: the blocking and the number of levels."""
        q = math.ceil(max(self.n_inner_left, self.n_inner_right, 1) / self.k)
        return (
            f"log-depth chain: {self.n} sites, output at site {self.out_pos}, blocks of {self.k} sites "
            f"(D={self.bond}, d^k={self.d**self.k}), {q} blocks per half padded to {self.q_pad}, "
            f"{self.q_pad.bit_length() - 1} pairwise levels"
        )
