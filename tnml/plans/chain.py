"""Chain routes for an open chain (an MPS): a vector swept through k-site block cores, or per-sample block matrices
swept by a vector or multiplied pairwise.

All three routes view each half of the chain as a product of ``D x d x D`` sites (the end tensors embedded as sites
of their halves) and start from the same step: ``k`` consecutive cores are contracted into one block core
``(D, d^k, D)`` (no batch index). Then

* the **sequential** route (:meth:`ChainRoute.run_sequential`) sweeps a running ``(batch, D)`` row vector per half
  through the block cores, both halves in one batched GEMM ``(batch, D) (D, d^k D)`` per step, and sums out the outer
  product of the block's ``k`` input vectors: ``2 d^k D^2 / k`` FLOPs per site and sample (for ``d = 2, k = 2`` the
  site-by-site count, in half the dependent steps). Rescaled every :data:`SWEEP_RESCALE_SITES` sites, with a retry
  rescaling every block if the result over- or under-flowed;
* the **blocked** route (:meth:`ChainRoute.run_blocked`) absorbs the outer product of each block's ``k`` input
  vectors into a per-sample ``D x D`` matrix (one batched GEMM for the whole chain), rescaled per matrix by a power of
  two (the exponent is carried in float32 at least, so bfloat16 and float16 chains stay finite), and sweeps a row
  vector through each half's block matrices;
* the **log-depth** route (:meth:`ChainRoute.run_stacks`) multiplies adjacent block matrices pairwise, both halves of
  the chain at once, in ``ceil(log2(n / k))`` levels of one batched matmul each (``2 D^3`` per product: ``D`` times
  the vector work, paid back where a kernel launch costs more than that arithmetic, a GPU).

All close the two half vectors with the output core. :func:`choose_route` picks per (length, bond, batch, device)
from :func:`route_times`. The function computed is the same (to round-off). The block matrices
(:mod:`tnml.plans.blocks`), the pairwise levels (:mod:`tnml.plans.pairwise`) and the closing contraction
(:mod:`tnml.plans.close`) are autograd functions with hand-written backward passes: a 784-site log-depth train step
(D = 10, batch 100, fused Adam) runs about 470 aten ops; the sequential route about 4 600 at three sites per step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tnml.plans.base import traced
from tnml.plans.blocks import BlockMatrices, BlockSpec, block_matrices_reference, outer_inputs, site_table
from tnml.plans.close import CloseChain, close_reference
from tnml.plans.pairwise import PairwiseLevels
from tnml.plans.scaling import exponent_dtype
from tnml.storage import stack_layout
from tnml.structure import TNStructure

#: the routes a chain can take (:func:`choose_route`); ``"auto"`` asks the cost model
CHAIN_ROUTES = ("auto", "sequential", "log-depth", "blocked")
#: largest block input dimension ``d^k`` considered when merging sites
_MAX_BLOCK_INPUTS = 256
#: the sequential route rescales its running vectors after about this many sites (as the tree plan's levels)
SWEEP_RESCALE_SITES = 16

#: per-device constants of the route cost model (:func:`route_times`): seconds per aten op (dispatch, or a launch
#: on CUDA); the FLOP rate of the log-depth route's pairwise ``D x D`` products; the rate of the sequential route's
#: ``(batch, D) (D, d^k D)`` products at D = 10 (it grows with D, up to a cap); the rate of a batched GEMM with a
#: batch-sized side (the blocked route's block matrices) and of the batch-free block cores; memory bandwidth; the
#: blocked route's fixed work in op-equivalents (site table, block merge, input outer product: heavier ops than a
#: step); the sequential route's aten ops per step (forward-equivalents: a train step runs 28 per step, the
#: difference of measured op counts at 2 and 3 sites per step on 64 and 784 sites). CPU: fitted to train steps
#: measured in one process, one thread, on the (shared) 2-core development machine: sequential 64 sites D = 10
#: b = 256 at 1 / 2 / 3 sites per step 6.7 / 5.2 / 5.5 ms (fewer steps at equal FLOPs: ~100 us per step; more FLOPs:
#: ~9 GFLOP/s), 784 sites D = 10 b = 100 at 2 / 3 / 4 sites 28.3 / 26.0 / 29.0 ms, 784 sites D = 32 at 1 / 2 / 3
#: sites 68.2 / 61.6 / 74.6 ms (~28 GFLOP/s); blocked 8.1 and 41.0 ms (``blocked_fixed``: the least-squares fit
#: to these two); log-depth 1.5-2x the blocked route at 784 sites. CUDA: a launch is ~5-10 us and an H100 runs
#: small batched GEMMs at >= 1 TFLOP/s; estimates, not measurements.
ROUTE_CONSTANTS = {
    "cpu": {"op_s": 4e-6, "flops_per_s": 4e9, "vecmat_flops_per_s": 8.5e9, "vecmat_max_flops_per_s": 30e9,
            "gemm_flops_per_s": 12e9, "merge_flops_per_s": 40e9, "bytes_per_s": 5e9, "blocked_fixed": 450,
            "seq_step_ops": 28 / 3},
    "cuda": {"op_s": 8e-6, "flops_per_s": 1e12, "vecmat_flops_per_s": 1e12, "vecmat_max_flops_per_s": 1e12,
             "gemm_flops_per_s": 1e12, "merge_flops_per_s": 1e12, "bytes_per_s": 1e12, "blocked_fixed": 100,
             "seq_step_ops": 28 / 3},
}


@dataclass(frozen=True)
class ChainCosts:
    """Cost-model figures of the three routes for one batch size (forward; see :func:`chain_costs`)."""

    block: int  # sites merged per block on the log-depth route
    sequential_flops: float
    log_depth_flops: float
    sequential_ops: int
    log_depth_ops: int
    blocked_block: int = 1  # sites merged per block on the blocked route
    blocked_gemm_flops: float = 0.0  # the block matrices (one batched GEMM)
    blocked_sweep_flops: float = 0.0  # the vector sweep
    blocked_ops: int = 0
    blocked_bytes: float = 0.0  # the block matrices, written and read (forward and backward)
    sequential_block: int = 1  # sites per step on the sequential route
    sequential_merge_flops: float = 0.0  # its batch-free block cores


def _pow2(q: int) -> int:
    return 1 << max(0, q - 1).bit_length()


def _block_size(d: int, bond: int, sites: int = 1) -> int:
    """Sites per block minimizing the per-sample FLOPs of a half of ``sites`` inner sites: ``q = ceil(sites / k)``
    block matrices at ``2 d^k D^2`` each, plus ``2 D^3`` per pairwise product over the ``q`` blocks padded with
    identities to a power of two."""
    best, best_cost = 1, math.inf
    k = 1
    while d**k <= _MAX_BLOCK_INPUTS and k <= max(1, sites):  # no block wider than the half (d = 1: d^k stays 1)
        q = math.ceil(max(1, sites) / k)
        cost = _pow2(q) * (2.0 * d**k * bond**2 + d**k + 2.0 * bond**3)
        if cost < best_cost:
            best, best_cost = k, cost
        k += 1
    return best


def _vecmat_rate(c: dict, bond: int) -> float:
    """FLOP rate of batched vector-matrix products at bond ``bond`` (larger D: closer to a GEMM)."""
    return min(c["vecmat_max_flops_per_s"], c["vecmat_flops_per_s"] * max(1.0, bond / 10))


def _blocked(half: int, d: int, bond: int, batch: int, c: dict) -> tuple[float, int, float, float, int, float]:
    """(modelled seconds, k, GEMM FLOPs, sweep FLOPs, ops, bytes) of the blocked route's best block size."""
    best: tuple = (math.inf, 1, 0.0, 0.0, 0, 0.0)
    k = 1
    while d**k <= _MAX_BLOCK_INPUTS and k <= max(1, half):  # no block wider than the half (d = 1: d^k stays 1)
        q = math.ceil(max(1, half) / k)
        gemm = batch * 2 * q * (2.0 * d**k * bond**2 + d**k)
        sweep = batch * 2 * q * 2.0 * bond**2
        ops = 6 * q + 40
        nbytes = 6 * 2 * q * batch * bond**2 * 4.0  # written once, read by the sweep, rescale and backward
        t = 3 * ((ops + c["blocked_fixed"]) * c["op_s"] + gemm / c["gemm_flops_per_s"]
                 + sweep / _vecmat_rate(c, bond)) + nbytes / c["bytes_per_s"]
        if t < best[0]:
            best = (t, k, gemm, sweep, ops, nbytes)
        k += 1
    return best


def _sequential(half: int, d: int, bond: int, batch: int, c: dict) -> tuple[int, float, int, float]:
    """(k, FLOPs, ops, batch-free block-core FLOPs) of the sequential route's best sites per step:
    ``ceil(half / k)`` steps of a ``(batch, D) (D, d^k D)`` GEMM and a multiply-and-sum over ``d^k`` per half, plus
    the batch-free block cores."""
    best: tuple = (math.inf, 1, 0.0, 0, 0.0)
    k = 1
    while d**k <= _MAX_BLOCK_INPUTS and k <= max(1, half):  # no block wider than the half (d = 1: d^k stays 1)
        q = math.ceil(max(1, half) / k)
        flops = batch * 2 * q * (2.0 * d**k * bond**2 + d**k * bond)
        merge = 2 * q * sum(2.0 * bond * d**j * bond * d * bond for j in range(1, k))
        ops = round(c["seq_step_ops"] * q)
        t = ops * c["op_s"] + flops / _vecmat_rate(c, bond) + merge / c["merge_flops_per_s"]
        if t < best[0]:
            best = (t, k, flops, ops, merge)
        k += 1
    return best[1], best[2], best[3], best[4]


def chain_costs(n_sites: int, d: int, bond: int, batch: int, device_type: str = "cpu") -> ChainCosts:
    """Forward FLOPs and aten-op counts of the three routes of an ``n_sites`` chain.

    Sequential: ``2 d D^2 + 2 d D`` per site and sample, about ``n / 2`` steps (both halves advance together) of
    about six ops. Log-depth: ``2 d^k D^2`` per block for the site matrices, ``2 D^3`` per pairwise product (one
    fewer product than blocks), plus the batch-free block merge; about twelve ops per level and ``log2(n / k)``
    levels, plus ~40 fixed. Blocked: the same block matrices (``k`` chosen for the device, :func:`route_times`),
    then ``2 D^2`` per block and sample for the vector sweep, about six ops per block.

    Parameters
    ----------
    n_sites, d, bond : int
        Chain length, input dimension, bond dimension.
    batch : int
    device_type : str
        Whose constants pick the blocked route's block size (:data:`ROUTE_CONSTANTS`).

    Returns
    -------
    ChainCosts

    Examples
    --------
    >>> c = chain_costs(784, 2, 10, 100)
    >>> c.log_depth_ops < c.blocked_ops < c.sequential_ops and c.log_depth_flops > c.sequential_flops
    True
    """
    half = math.ceil(max(1, n_sites - 3) / 2)
    k = _block_size(d, bond, half)
    q = math.ceil(half / k)
    merge = 2 * q * sum(2.0 * bond * d**j * bond * d * bond for j in range(1, k))
    q = _pow2(q)
    logd = batch * 2 * (q * (2.0 * d**k * bond**2 + d**k) + (q - 1) * 2.0 * bond**3) + merge
    levels = max(1, math.ceil(math.log2(max(2, q))))
    const = ROUTE_CONSTANTS.get(device_type, ROUTE_CONSTANTS["cuda"])
    _, kb, gemm, sweep, ops, nbytes = _blocked(half, d, bond, batch, const)
    ks, seq, seq_ops, seq_merge = _sequential(half, d, bond, batch, const)
    return ChainCosts(k, seq, logd, seq_ops, 6 * levels, kb, gemm, sweep, ops, nbytes, ks, seq_merge)


def route_times(n_sites: int, d: int, bond: int, batch: int, device_type: str) -> dict[str, float]:
    """Modelled seconds of one train step (forward + backward as 3x forward, plus the blocked route's memory
    traffic) per route, from :func:`chain_costs` and :data:`ROUTE_CONSTANTS` of ``device_type``.

    Parameters
    ----------
    n_sites, d, bond, batch : int
        As :func:`chain_costs`.
    device_type : str
        ``"cpu"``, ``"cuda"`` (unknown types use the CUDA constants).

    Returns
    -------
    dict
        ``{"sequential": s, "log-depth": s, "blocked": s}``.
    """
    c = chain_costs(n_sites, d, bond, batch, device_type)
    k = ROUTE_CONSTANTS.get(device_type, ROUTE_CONSTANTS["cuda"])
    return {
        "sequential": 3 * (c.sequential_ops * k["op_s"] + c.sequential_flops / _vecmat_rate(k, bond)
                           + c.sequential_merge_flops / k["merge_flops_per_s"]),
        "log-depth": 3 * (c.log_depth_ops * k["op_s"] + c.log_depth_flops / k["flops_per_s"]),
        "blocked": 3 * ((c.blocked_ops + k["blocked_fixed"]) * k["op_s"] + c.blocked_gemm_flops / k["gemm_flops_per_s"]
                        + c.blocked_sweep_flops / _vecmat_rate(k, bond)) + c.blocked_bytes / k["bytes_per_s"],
    }


def choose_route(n_sites: int, d: int, bond: int, batch: int, device_type: str) -> str:
    """The route with the smallest modelled train-step time on this device type (:func:`route_times`).

    Parameters
    ----------
    n_sites, d, bond, batch : int
        As :func:`chain_costs`.
    device_type : str
        ``"cpu"``, ``"cuda"`` (unknown types use the CUDA constants).

    Returns
    -------
    str
        ``"sequential"``, ``"log-depth"`` or ``"blocked"``.

    Examples
    --------
    >>> choose_route(784, 2, 10, 100, "cpu"), choose_route(64, 2, 10, 256, "cpu")
    ('sequential', 'sequential')
    >>> choose_route(784, 2, 32, 100, "cpu"), choose_route(784, 2, 10, 100, "cuda")
    ('sequential', 'log-depth')
    """
    t = route_times(n_sites, d, bond, batch, device_type)
    return min(t, key=t.__getitem__)


def power_of_two_scale(t: torch.Tensor, n_lead: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per leading index of ``t``, the scale ``2**-e`` (shape ``t.shape[:n_lead]``, real dtype of ``t``) with
    ``e = ceil(log2(max |t|))``, and ``e`` (float32 at least), computed without gradient.

    About ten kernels and no host read; off by one next to a power of two at worst (which only moves the max-abs
    of ``t * scale`` to the other end of about (0.5, 1]). Zero slices get scale 1 and exponent 0 (so the gradient
    reaching them is not scaled away), subnormal ones are scaled as if at the smallest normal number, non-finite
    ones get scale 1 and stay non-finite.
    """
    with torch.no_grad():
        dims = tuple(range(n_lead, t.dim()))  # reduced in place of flattening (a view fewer, the same kernel)
        if dims and t.numel() >= _LARGE and not t.is_complex():
            # a large real tensor: max and min, no |t| temporary (a fresh multi-MiB buffer per call); two reductions,
            # not one aminmax: torch's CPU aminmax over a trailing dim ran 5-10x slower than amax + amin here
            mag = torch.maximum(t.amax(dims), t.amin(dims).neg_())
        else:  # abs + amax: two cheap kernels (vector_norm(ord=inf) over trailing dims ran ~10x slower on CPU)
            mag = t.abs().amax(dims) if dims else t.abs()
        emin = float(math.frexp(torch.finfo(mag.dtype).tiny)[1])
        # log2(0) = -inf and log2(inf or nan): exponent 0; below the smallest normal number: its exponent
        e = torch.log2(mag).ceil_().nan_to_num_(0.0, 0.0, 0.0).clamp_min_(emin)
        scale = torch.exp2(e.neg())
    carried = exponent_dtype(e.dtype)
    return scale, (e if e.dtype == carried else e.to(carried))


def _block_scale(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-matrix scales and exponents of the block matrices (:class:`tnml.plans.blocks.BlockMatrices`)."""
    return power_of_two_scale(t, 1)


def _plain_autograd(cores: torch.Tensor, phi: torch.Tensor) -> bool:
    """Whether the chain routes' block matrices and closing contraction run through plain autograd instead of their
    hand-written backward passes: while ``torch.compile`` or a ``torch.func`` transform traces, inside an autocast
    region (mixed dtypes, cast per op) and for complex values (whose gradients conjugate)."""
    return traced(phi) or torch.is_autocast_enabled(phi.device.type) or cores.is_complex() or phi.is_complex()


def _out_scale(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample scales and exponents of the chain's output ``(batch, y)`` (:class:`tnml.plans.close.CloseChain`)."""
    return power_of_two_scale(t, 1)


def _level_scale(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-matrix scales and exponents of a stack of matrices (:class:`tnml.plans.pairwise.PairwiseLevels`)."""
    return power_of_two_scale(t, 1)


def _rescale(t: torch.Tensor, n_lead: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``t`` scaled per leading index by a power of two to max-abs in about (0.5, 1], and the exponents (float32 at
    least; :func:`power_of_two_scale`)."""
    scale, e = power_of_two_scale(t, n_lead)
    return t * scale.view(scale.shape + (1,) * (t.dim() - n_lead)), e


@functools.cache
def _digits_floor(dtype: torch.dtype) -> int:
    """The smallest power-of-two exponent a running vector's max-abs may reach between two rescales before its
    entries within the dtype's precision of the max-abs become subnormal (float32 -101, float64 -968, bfloat16
    -117, float16 -2)."""
    info = torch.finfo(dtype.to_real() if dtype.is_complex else dtype)
    return math.frexp(info.tiny)[1] - math.frexp(info.eps)[1] + 2


def _levels_between_rescales(bond: int, dtype: torch.dtype) -> int:
    """The most pairwise levels ``j`` between rescalings such that a product of ``2**j`` rescaled ``D x D``
    matrices (max-abs <= 1: entries <= ``D**(2**j - 1)``) stays below the square root of the dtype's largest
    number: 4 for D = 10 in float32 / bfloat16, 3 for D = 32, 1 in float16, 7 or more in float64."""
    emax = math.log2(torch.finfo(dtype).max)
    j = 1
    while (2 ** (j + 1) - 1) * math.log2(max(2, bond)) <= emax / 2 and j < 16:
        j += 1
    return j


#: tensors of at least this many entries get their max-abs from amax and amin (see :func:`power_of_two_scale`)
_LARGE = 1 << 16


def _steps_between_rescales(bond: int, dtype: torch.dtype) -> int:
    """The most vector-matrix steps between rescalings on the blocked route such that a row vector of max-abs <= 1
    times ``j`` rescaled ``D x D`` matrices (entries <= ``D**j``) stays below the square root of the dtype's
    largest number (at most 8, as the sequential route)."""
    emax = math.log2(torch.finfo(dtype).max)
    return max(1, min(8, int(emax / 2 / math.log2(max(2, bond)))))


def _canonical(t, left: str | None, phys: str, right: str | None, out: str | None) -> tuple[int, ...]:
    """Axis permutation of tensor ``t`` into (left bond, input, right bond, output), absent legs skipped."""
    return tuple(t.inds.index(i) for i in (left, phys, right, out) if i is not None)


class ChainRoute:
    """The log-depth and the blocked route for a chain structure (see the module docstring); built by :meth:`of`,
    which returns None for structures it does not cover (then only the sequential route exists).

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
        first_row, last_row = total, total + 1
        halves = [[first_row] + [row[p] for p in left_inner], [row[p] for p in right_inner] + [last_row]]
        inputs = [[phys[0]] + [phys[p] for p in left_inner], [phys[p] for p in right_inner] + [phys[self.n - 1]]]
        self._halves, self._inputs, self._table_rows = halves, inputs, total + 3
        self._device = device
        # log-depth: blocks padded to a power of two per half (identity sites read phi's padded column of ones),
        # stored in bit-reversed order of their position with the two halves interleaved (storage 2 s + h holds
        # block rev(s) of half h), so that at every level the pairs to multiply are the first and the second half
        # of the storage (contiguous views: storage s and s + q/2 hold positions 2 j and 2 j + 1 of the level)
        q = math.ceil(max(len(halves[0]), len(halves[1])) / self.k)
        self.q_pad = _pow2(q)
        bits = self.q_pad.bit_length() - 1
        rev = [int(format(s, f"0{bits}b")[::-1], 2) if bits else 0 for s in range(self.q_pad)]
        self.site_rows, self.phi_index = self._block_layout(self.k, rev, transpose_right=False)
        self._blocked: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}
        self.ends = [(where[names[p]], perms[p], phys[p]) for p in (0, self.n - 1)]
        self.out = (where[names[out_pos]], perms[out_pos], phys[out_pos])
        self.layout = layout
        self._constants: dict = {}
        # the inner stack holds both halves' inner sites interleaved in sweep order (the sequential route reads it
        # without a gather, :meth:`_paired_sites`)
        swept = [[row[p] for p in left_inner], [row[p] for p in reversed(right_inner)]]
        self._paired = (
            len(self.inner_stacks) == 1 and self.inner_perm is None and abs(len(left_inner) - len(right_inner)) <= 1
            and sorted(swept[0] + swept[1]) == list(range(total))
            and all(r == 2 * i + h for h in (0, 1) for i, r in enumerate(swept[h]))
        )

    def _block_layout(
        self, k: int, order: list[int], transpose_right: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per position ``j`` in a block, the rows of the site table and the columns of the padded inputs of the
        ``j``-th site of every block (``(k, q)`` each), block ``order[s]`` of both halves at storage ``2 s`` and
        ``2 s + 1``; padded with identity sites to ``len(order)`` blocks per
        half. ``transpose_right``: the right half runs from the chain's end, its sites read from the transposed
        copy of the table (rows offset by the table's length), so that its product is the transpose of the
        right half's and both halves are swept as row vectors."""
        m = k * len(order)
        ident = self._table_rows - 1
        halves, inputs = [list(h) for h in self._halves], [list(c) for c in self._inputs]
        if transpose_right:
            halves[1] = [r + self._table_rows for r in reversed(halves[1])]
            inputs[1] = inputs[1][::-1]
        const = self.structure.n_sites  # the input of a padding site: phi's padded column, all ones
        for h in (0, 1):
            inputs[h] += [const] * (m - len(halves[h]))
            halves[h] += [ident] * (m - len(halves[h]))
        rows = [[halves[h][s * k + j] for s in order for h in (0, 1)] for j in range(k)]
        cols = [[inputs[h][s * k + j] for s in order for h in (0, 1)] for j in range(k)]
        dev = self._device
        with torch.inference_mode(False):  # cached across calls: never an inference tensor (see compile_plan)
            return torch.tensor(rows, dtype=torch.long, device=dev), torch.tensor(cols, dtype=torch.long, device=dev)

    def blocked_layout(self, k: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The blocked route's site rows, input columns and blocks per half for blocks of ``k`` sites (cached)."""
        if k not in self._blocked:
            q = math.ceil(max(len(self._halves[0]), len(self._halves[1])) / k)
            self._blocked[k] = (*self._block_layout(k, list(range(q)), transpose_right=True), q)
        return self._blocked[k]

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
        (1, D - 1, d, D) and the last as column 0 (1, D, d, D - 1) of a site, and the padding input (1, 1, d)."""
        key = (dtype, device)
        if key not in self._constants:
            with torch.inference_mode(False):  # cached across calls: never an inference tensor (see compile_plan)
                self._constants[key] = self._build_constants(dtype, device)
        return self._constants[key]

    def _build_constants(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The tensors :meth:`_constants_for` caches."""
        d, D = self.d, self.bond
        e0 = torch.zeros(d, dtype=dtype, device=device)
        e0[0] = 1
        eye = torch.eye(D, dtype=dtype, device=device)
        return (
            (eye.unsqueeze(1) * e0.view(1, d, 1)).unsqueeze(0),
            torch.zeros(1, D - 1, d, D, dtype=dtype, device=device),
            torch.zeros(1, D, d, D - 1, dtype=dtype, device=device),
            torch.ones(1, 1, d, dtype=dtype, device=device),
        )

    @staticmethod
    def _fetch(stacks: Sequence[torch.Tensor], spec) -> torch.Tensor:
        (s, r), perm, _ = spec
        st = stacks[s]
        # a one-row stack (an MPS's end and output cores): a view, whose backward allocates nothing
        t = st.view(st.shape[1:]) if st.shape[0] == 1 else st[r]
        return t.permute(perm) if perm != tuple(range(len(perm))) else t

    def _block_inputs(self, stacks: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The inner cores ``(n_inner, D, d, D)`` and the two end tensors ``(d, D)``, ``(D, d)``, read from the
        stacks (views where the layout allows)."""
        joined = [stacks[st] for st in self.inner_stacks]
        inner = joined[0] if len(joined) == 1 else torch.cat(joined)
        if self.inner_perm is not None:
            inner = inner.permute(self.inner_perm)
        return inner, self._fetch(stacks, self.ends[0]), self._fetch(stacks, self.ends[1])

    def _block_matrices(
        self, stacks: Sequence[torch.Tensor], phi: torch.Tensor, rows, cols, k: int, transposed: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample block matrices ``(q * batch, D, D)`` (storage-major) rescaled per matrix, and their
        exponents ``(q * batch,)``: the ``k`` sites of each block contracted batch-free into a block core
        ``(d^k, D, D)``, then one batched GEMM with the outer product of the block's ``k`` input vectors
        (:class:`tnml.plans.blocks.BlockMatrices`, a hand-written backward; plain autograd where
        :func:`_plain_autograd` says)."""
        inner, first, last = self._block_inputs(stacks)
        consts = self._constants_for(inner.dtype, inner.device)
        spec = BlockSpec(self.d, self.bond, k, rows, cols, transposed, _block_scale)
        if _plain_autograd(inner, phi):
            return block_matrices_reference(site_table(inner, first, last, consts, transposed), phi, consts[3], spec)
        return BlockMatrices.apply(inner, first, last, phi, consts, spec)

    def _close(
        self, stacks: Sequence[torch.Tensor], phi: torch.Tensor, vl: torch.Tensor, vr: torch.Tensor, exp: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract the two half vectors ``(batch, D)`` with the output core and its input; rescale
        (:class:`tnml.plans.close.CloseChain`, a hand-written backward; plain autograd where
        :func:`_plain_autograd` says)."""
        core = self._fetch(stacks, self.out)  # (D, d, D[, out])
        phi_out = phi[:, self.out[2]]
        if _plain_autograd(core, phi):
            out, e = close_reference(vl, vr, core, phi_out, _out_scale)
        else:
            out, e = CloseChain.apply(vl, vr, core, phi_out, _out_scale)
        exp = exp.sum(0) + e
        return (out if self.has_out else out[:, 0]), exp

    def run_stacks(self, stacks: Sequence[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The log-depth route: contract the stacked cores with ``phi`` ``(batch, n_sites, d)``; returns
        ``(values, exponent)`` as :meth:`tnml.plans.base.Plan.run_stacks` (the exponent in float32 for
        half-precision cores)."""
        b, D = phi.shape[0], self.bond
        q = 2 * self.q_pad  # blocks, both halves
        mats, e = self._block_matrices(stacks, phi, self.site_rows, self.phi_index, self.k, False)
        exp = e.view(q // 2, 2, b).sum(0)  # (2, b): a product's exponent is the sum of its factors'
        every = _levels_between_rescales(D, mats.dtype)
        levels = self.q_pad.bit_length() - 1
        if levels:
            # the first row of the left product, the first column of the right one
            vl, vr, e, *_ = PairwiseLevels.apply(mats, b, levels, every, _level_scale)
            return self._close(stacks, phi, vl, vr, exp + e)
        pl, pr = mats.view(2, b, D, D).unbind(0)
        return self._close(stacks, phi, pl[:, 0], pr[:, :, 0], exp)

    def run_blocked(
        self, stacks: Sequence[torch.Tensor], phi: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The blocked route: per-sample block matrices of ``k`` sites as on the log-depth route (one batched GEMM
        for the whole chain), then a row vector swept through each half's blocks, both halves in one batched
        vector-matrix product per block (the right half from the chain's end, through transposed blocks).
        ``ceil(n / (2 k))`` dependent steps of a few kernels, at ``D`` times less arithmetic per block than a
        pairwise product."""
        b, D = phi.shape[0], self.bond
        rows, cols, q = self.blocked_layout(k)
        mats, e = self._block_matrices(stacks, phi, rows, cols, k, True)
        exp = e.view(q, 2, b).sum(0)
        every = _steps_between_rescales(D, mats.dtype)
        blocks = mats.view(q, 2 * b, D, D).unbind(0)
        v = blocks[0][:, 0]  # (2 b, D): row 0 of the first block (the embedded end tensor)
        for j in range(1, q):
            # a broadcast multiply and a sum: batched (1 x D)(D x D) products run per matrix in bmm on CPU
            v = (v.unsqueeze(-1) * blocks[j]).sum(1)
            if j % every == 0 and j < q - 1:  # the last is rescaled with the output
                v, e = _rescale(v, 1)
                exp = exp + e.view(2, b)
        vl, vr = v.view(2, b, D).unbind(0)
        return self._close(stacks, phi, vl, vr, exp)

    def sweep_cores(self, stacks: Sequence[torch.Tensor], k: int) -> tuple[torch.Tensor, int]:
        """The block cores of the sequential route: ``k`` consecutive sites contracted batch-free into
        ``(2 q, D, d^k D)`` (block ``s`` of half ``h`` at ``2 s + h``; the right half from the chain's end through
        transposed sites, so both halves are swept as row vectors), and ``q``, the blocks per half. Plain
        autograd: ``k - 1`` batched matmuls independent of the batch."""
        rows, _, q = self.blocked_layout(k)
        inner, first, last = self._block_inputs(stacks)
        consts = self._constants_for(inner.dtype, inner.device)
        D, d = self.bond, self.d
        if self._paired:
            sites = self._paired_sites(inner, first, last, consts, k, q)
        else:
            table = site_table(inner, first, last, consts, True)
            sites = table.view(table.shape[0], D, d * D)[rows].unbind(0)  # k x (2 q, D, d D)
        p = sites[0]
        for j in range(1, k):
            p = torch.bmm(p.reshape(2 * q, -1, D), sites[j])  # (2 q, D d^j, d D): (l, a_0 .. a_j, r)
        return p.reshape(2 * q, D, -1), q

    def _paired_sites(self, inner, first, last, consts, k: int, q: int) -> tuple[torch.Tensor, ...]:
        """The sites of the sequential route's blocks, ``k x (2 q, D, d D)``, where the inner stack holds the two
        halves' sites interleaved in sweep order (rows ``2 i`` and ``2 i + 1``: the ``i``-th inner site from the
        output of each half, as :class:`tnml.networks.MPS` stacks them): unbind and stack, whose backward passes
        are a stack and an unbind (no gather, no zero-filled gradient of the table and no scatter into it)."""
        D, d = self.bond, self.d
        ident, zl, zr = consts[0], consts[1], consts[2]
        nl, nr = self.n_inner_left, self.n_inner_right
        pairs = min(nl, nr)
        body, extra = (inner, None) if nl == nr else inner.split([2 * pairs, 1])
        left, right = body.view(pairs, 2, D, d, D).unbind(1)
        # the right half's sites with left and right bonds swapped: it is swept from the chain's end as a row vector
        steps = [torch.stack([left, right.transpose(1, 3)], 1)]  # (pairs, 2, D, d, D)
        head_l = torch.cat([first.reshape(1, 1, d, D), zl], 1)  # the first tensor as row 0 of a site
        head_r = torch.cat([last.reshape(1, D, d, 1), zr], 3).transpose(1, 3)
        m = k * q  # sites per half, padded with identity sites
        tail = []
        if extra is not None:
            tail.append(torch.stack([extra, ident] if nl > nr else [ident, extra.transpose(1, 3)], 1))
        pad = m - 1 - max(nl, nr)
        if pad:
            tail.append(ident.unsqueeze(1).expand(pad, 2, D, d, D))
        sites = torch.cat([torch.stack([head_l, head_r], 1), *steps, *tail])  # (m, 2, D, d, D)
        return tuple(t.reshape(2 * q, D, d * D) for t in sites.view(q, k, 2, D, d * D).unbind(1))


    def _sweep(
        self, stacks: Sequence[torch.Tensor], phi: torch.Tensor, k: int, every: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One pass of the sequential route, rescaling the running vectors after every ``every`` blocks and after
        the last: ``(values, exponent, smallest rescale exponent)`` (None without a rescale). Power-of-two scaling is
        exact, so where to rescale changes no value unless a vector left the dtype's normal range in between."""
        b, D, dk = phi.shape[0], self.bond, self.d**k
        cores, q = self.sweep_cores(stacks, k)
        _, cols, _ = self.blocked_layout(k)
        z = outer_inputs(phi, self._constants_for(cores.dtype, cores.device)[3], cols)  # (2 q, b, d^k)
        blocks = cores.view(q, 2, D, dk * D).unbind(0)
        inputs = z.view(q, 2, b, dk, 1).unbind(0)
        # the first block's row 0 (its first site is the embedded end tensor): (2, b, d^k) (2, d^k, D)
        v = torch.bmm(inputs[0].view(2, b, dk), blocks[0][:, 0].view(2, dk, D))
        exps = []
        for j in range(1, q):
            # (2, b, D) (2, D, d^k D), then the block's inputs summed out: one GEMM and a multiply-and-sum
            v = (torch.bmm(v, blocks[j]).view(2, b, dk, D) * inputs[j]).sum(2)
            if j % every == 0 or j == q - 1:  # the last too: its exponent tells whether digits were lost before it
                v, e = _rescale(v, 2)
                exps.append(e)
        if not exps:
            exp = torch.zeros(2, b, dtype=exponent_dtype(v.dtype), device=v.device)
            vl, vr = v.unbind(0)
            return (*self._close(stacks, phi, vl, vr, exp), None)
        e_all = torch.stack(exps)
        vl, vr = v.unbind(0)
        return (*self._close(stacks, phi, vl, vr, e_all.sum(0)), e_all.amin())

    def run_sequential(
        self, stacks: Sequence[torch.Tensor], phi: torch.Tensor, k: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The sequential route: both halves' running row vectors ``(batch, D)`` swept through ``k``-site block
        cores (:meth:`sweep_cores`), one batched GEMM and a multiply-and-sum per block. For ``d = 2`` and ``k = 2``
        the FLOPs equal a site-by-site sweep's (``2 d^k D^2 / k`` per site) in half the dependent steps. The
        vectors are rescaled every :data:`SWEEP_RESCALE_SITES` sites; if a sample's result still over- or
        under-flowed, the sweep runs again rescaling after every block (under ``torch.compile`` / ``torch.func``,
        which cannot read the result on the host, always)."""
        floor = _digits_floor(phi.dtype)
        every = max(1, SWEEP_RESCALE_SITES // k) if floor < -16 else 1  # float16's range allows no interval
        if traced(phi):
            return self._sweep(stacks, phi, k, 1)[:2]
        out, exp, e_min = self._sweep(stacks, phi, k, every)
        if every == 1:
            return out, exp
        # on the happy path each sample's max-abs is in about (0.5, 1]: hi / lo is not finite exactly when a sample's
        # result is zero, infinite or NaN; a rescale exponent below the floor means a vector went so small between
        # two rescales that its entries lost digits. One host read for both.
        lo, hi = torch.aminmax(out.detach().abs().reshape(out.shape[0], -1).amax(-1))
        flag = hi / lo if e_min is None else torch.where(e_min < floor, torch.inf, hi / lo)
        if not math.isfinite(float(flag)):
            out, exp, _ = self._sweep(stacks, phi, k, 1)
        return out, exp

    def describe(self) -> str:
        """One line: the blocking and the number of levels."""
        q = math.ceil((max(self.n_inner_left, self.n_inner_right) + 1) / self.k)
        return (
            f"log-depth chain: {self.n} sites, output at site {self.out_pos}, blocks of {self.k} sites "
            f"(D={self.bond}, d^k={self.d**self.k}), {q} blocks per half padded to {self.q_pad}, "
            f"{self.q_pad.bit_length() - 1} pairwise levels"
        )
