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
from collections.abc import Sequence
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


def power_of_two_scale(t: torch.Tensor, n_lead: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per leading index of ``t``, the scale ``2**-e`` (shape ``t.shape[:n_lead]``, real dtype of ``t``) with
    ``e = ceil(log2(max |t|))``, and ``e`` (float32 at least), computed without gradient.

    About ten kernels and no host read; off by one next to a power of two at worst (which only moves the max-abs
    of ``t * scale`` to the other end of about (0.5, 1]). Zero slices get scale 1 and exponent 0 (so the gradient
    reaching them is not scaled away), subnormal ones are scaled as if at the smallest normal number, non-finite
    ones get scale 1 and stay non-finite.
    """
    with torch.no_grad():
        dims = tuple(range(n_lead, t.dim()))
        mag = torch.linalg.vector_norm(t, math.inf, dim=dims) if dims else t.abs()
        emin = float(math.frexp(torch.finfo(mag.dtype).tiny)[1])
        # log2(0) = -inf and log2(inf or nan): exponent 0; below the smallest normal number: its exponent
        e = torch.log2(mag).ceil_().nan_to_num_(0.0, 0.0, 0.0).clamp_min_(emin)
        scale = torch.exp2(e.neg())
    return scale, e.to(exponent_dtype(e.dtype))


def _rescale(t: torch.Tensor, n_lead: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``t`` scaled per leading index by a power of two to max-abs in about (0.5, 1], and the exponents (float32 at
    least; :func:`power_of_two_scale`)."""
    scale, e = power_of_two_scale(t, n_lead)
    return t * scale.view(scale.shape + (1,) * (t.dim() - n_lead)), e


def _levels_between_rescales(bond: int, dtype: torch.dtype) -> int:
    """The most pairwise levels ``j`` between rescalings such that a product of ``2**j`` rescaled ``D x D``
    matrices (max-abs <= 1: entries <= ``D**(2**j - 1)``) stays below the square root of the dtype's largest
    number: 4 for D = 10 in float32 / bfloat16, 3 for D = 32, 1 in float16, 7 or more in float64."""
    emax = math.log2(torch.finfo(dtype).max)
    j = 1
    while (2 ** (j + 1) - 1) * math.log2(max(2, bond)) <= emax / 2 and j < 16:
        j += 1
    return j


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
        # each half holds its end tensor (embedded as a D x d x D site) and its inner sites
        self.k = _block_size(self.d, self.bond, max(out_pos, self.n - 1 - out_pos))
        layout = stack_layout(structure)
        where = {nm: (s, r) for s, (_, names) in enumerate(layout) for r, nm in enumerate(names)}
        names = [tensors[i].name for i in order]
        site_of_input = {ind: p for p, ind in enumerate(structure.input_inds)}
        phys = [site_of_input[next(i for i in tensors[j].inds if i in site_of_input)] for j in order]
        left_inner = list(range(1, out_pos))
        right_inner = list(range(out_pos + 1, self.n - 1))
        inner = left_inner + right_inner
        # the inner cores may sit in several stacks (a short chain's levels): those are joined
        self.inner_stacks = sorted({where[names[p]][0] for p in inner})
        offset, total = {}, 0
        for st in self.inner_stacks:
            offset[st] = total
            total += len(layout[st][1])
        row = {p: offset[where[names[p]][0]] + where[names[p]][1] for p in inner}
        inner_perm: tuple[int, ...] | None = (0, *(a + 1 for a in perms[inner[0]]))
        self.inner_perm = None if inner_perm == tuple(range(4)) else inner_perm
        self.n_inner_left, self.n_inner_right = len(left_inner), len(right_inner)
        # rows of the site table: the joined inner stacks, then the two embedded ends, then the identity site
        first_row, last_row, ident_row = total, total + 1, total + 2
        halves = [[first_row] + [row[p] for p in left_inner], [row[p] for p in right_inner] + [last_row]]
        inputs = [[phys[0]] + [phys[p] for p in left_inner], [phys[p] for p in right_inner] + [phys[self.n - 1]]]
        q = math.ceil(max(len(halves[0]), len(halves[1])) / self.k)
        self.q_pad = _pow2(q)
        m = self.m = self.q_pad * self.k  # sites per half, padded with identity sites to a power of two of blocks
        const = structure.n_sites  # the input of a padding site: phi's padded column, all ones
        for h in (0, 1):
            inputs[h] += [const] * (m - len(halves[h]))
            halves[h] += [ident_row] * (m - len(halves[h]))
        # blocks are stored in bit-reversed order of their position, the two halves interleaved (storage 2 s + h
        # holds block rev(s) of half h), so that at every level the pairs to multiply are the first and the second
        # half of the storage (contiguous views: storage s and s + q/2 hold positions 2 j and 2 j + 1 of the level)
        bits = self.q_pad.bit_length() - 1
        rev = [int(format(s, f"0{bits}b")[::-1], 2) if bits else 0 for s in range(self.q_pad)]
        k = self.k
        site_rows = [r for s in rev for h in (0, 1) for r in halves[h][s * k:(s + 1) * k]]
        phi_cols = [c for s in rev for h in (0, 1) for c in inputs[h][s * k:(s + 1) * k]]
        self.site_rows = torch.tensor(site_rows, dtype=torch.long, device=device)
        self.phi_index = torch.tensor(phi_cols, dtype=torch.long, device=device)
        self.ends = [(where[names[p]], perms[p], phys[p]) for p in (0, self.n - 1)]
        self.out = (where[names[out_pos]], perms[out_pos], phys[out_pos])
        self.layout = layout
        self._constants: dict = {}

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
    def _constants_for(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Built once per dtype and device: the padding site ``A[l, s, r] = delta_lr delta_s0`` (1, D, d, D) (its
        input is all ones, so it contributes the identity matrix), the zeros that embed the first tensor as row 0
        (D - 1, d, D) and the last as column 0 (D, d, D - 1) of a site, and the padding input (1, 1, d) of ones."""
        key = (dtype, device)
        if key not in self._constants:
            d, D = self.d, self.bond
            e0 = torch.zeros(d, dtype=dtype, device=device)
            e0[0] = 1
            eye = torch.eye(D, dtype=dtype, device=device)
            self._constants[key] = (
                (eye.unsqueeze(1) * e0.view(1, d, 1)).unsqueeze(0),
                torch.zeros(D - 1, d, D, dtype=dtype, device=device),
                torch.zeros(D, d, D - 1, dtype=dtype, device=device),
                torch.ones(1, 1, d, dtype=dtype, device=device),
            )
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
        b, d, D, k = phi.shape[0], self.d, self.bond, self.k
        q = 2 * self.q_pad  # blocks, both halves
        joined = [stacks[st] for st in self.inner_stacks]
        inner = joined[0] if len(joined) == 1 else torch.cat(joined)
        if self.inner_perm is not None:
            inner = inner.permute(self.inner_perm)
        # the ends as D x d x D sites: the first is row 0 of a zero matrix, the last column 0
        ident, zl, zr, ones = self._constants_for(inner.dtype, inner.device)
        first = torch.cat([self._fetch(stacks, self.ends[0]).unsqueeze(0), zl])  # (D, d, D)
        last = torch.cat([self._fetch(stacks, self.ends[1]).unsqueeze(-1), zr], -1)  # (D, d, D)
        table = torch.cat([inner, first.unsqueeze(0), last.unsqueeze(0), ident])
        sites = table.index_select(0, self.site_rows)  # (q k, D, d, D): blocks in storage order
        # block cores: k consecutive sites contracted (batch-free), legs (l, s_1 .. s_k, r)
        per_site = sites.view(q, k, D, d * D).unbind(1)
        block = per_site[0].reshape(q, D * d, D)
        for j in range(1, k):
            block = torch.bmm(block, per_site[j]).view(q, -1, D)
        dk = d**k
        block = block.view(q, D, dk, D).transpose(1, 2).reshape(q, dk, D * D)
        # per-sample block inputs: outer product of the k input vectors (padding sites read a column of ones)
        ph = torch.cat([phi.transpose(0, 1), ones.expand(1, b, d)]).index_select(0, self.phi_index)
        cols = ph.view(q, k, b, d).unbind(1)  # k x (q, b, d)
        z = cols[0]
        for j in range(1, k):
            z = (z.unsqueeze(-1) * cols[j].unsqueeze(-2)).view(q, b, -1)
        mats, e = _rescale(torch.bmm(z, block).view(q * b, D, D), 1)
        exp = e.view(q // 2, 2, b).sum(0)  # (2, b): a product's exponent is the sum of its factors'
        every = _levels_between_rescales(D, mats.dtype)
        level = 0
        while q > 2:
            q //= 2
            level += 1
            mats = torch.bmm(*mats.view(2, -1, D, D).unbind(0))
            if level % every == 0 and q > 2:  # the last product is rescaled with the output
                mats, e = _rescale(mats, 1)
                exp = exp + e.view(q // 2, 2, b).sum(0)
        pl, pr = mats.view(2, b, D, D).unbind(0)
        vl, vr = pl[:, 0], pr[:, :, 0]  # (b, D): first row of the left product, last column of the right
        core = self._fetch(stacks, self.out)  # (D, d, D[, out])
        y = core.shape[3] if core.dim() == 4 else 1
        w = (vl.unsqueeze(-1) * phi[:, self.out[2]].unsqueeze(1)).view(b, D * d)
        t = torch.mm(w, core.reshape(D * d, D * y)).view(b, D, y)
        out = torch.bmm(vr.unsqueeze(1), t).view(b, y)
        out, e = _rescale(out, 1)
        exp = exp.sum(0) + e
        return (out if self.has_out else out[:, 0]), exp

    def describe(self) -> str:
        """One line: the blocking and the number of levels."""
        q = math.ceil((max(self.n_inner_left, self.n_inner_right) + 1) / self.k)
        return (
            f"log-depth chain: {self.n} sites, output at site {self.out_pos}, blocks of {self.k} sites "
            f"(D={self.bond}, d^k={self.d**self.k}), {q} blocks per half padded to {self.q_pad}, "
            f"{self.q_pad.bit_length() - 1} pairwise levels"
        )
