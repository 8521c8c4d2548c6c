"""Long spines of a tree contracted in logarithmic depth: per-sample matrices multiplied pairwise.

A **spine** is a maximal path of tree tensors ``s_1, ..., s_m`` (``s_1`` lowest) in which every ``s_i`` has one
*spine child* (``s_{i-1}``; for ``s_1`` the message ``v`` from the subtree below it) and otherwise only inputs or
messages from shorter subtrees, and whose spine legs all have one width ``D``: a caterpillar ("comb") tree, a
learned mode tree that came out unbalanced, an MPS rooted at an end, one deep branch of a tree tensor network.
Level by level such a spine costs one dependent level of a few small kernels per tensor.

Here ``k`` consecutive spine tensors are contracted into a block core, batch-free (``k`` from a FLOP model,
:func:`block_size`: four for a comb over ``d = 2`` inputs at ``D = 10``), each block absorbs the outer product of
its tensors' other operands into a per-sample ``D x D`` matrix (one batched GEMM for the spine), rescaled per matrix
by a power of two, and the spine's message ``v M_1 M_2 ... M_q`` is formed by multiplying adjacent matrices
pairwise in ``ceil(log2(m / k))`` levels of one batched matmul each (:class:`tnml.plans.pairwise.PairwiseLevels`,
rescaled every few levels). ``v`` is folded into the lowest matrix (row 0 of ``[v M_1; 0]``). The pairwise levels
return the first row of one product and the first column of another: the first half of the batch runs the product
itself, the second half the transposed matrices in reverse order (whose first column is the same first row), so no
work is spent on a product that is not needed. The block cores, their transposes and the operands are put into the
levels' storage order before the GEMM (batch-free or small gathers): the matrices are not gathered afterwards.
A spine whose tensors differ in shape or operand kinds takes one matrix per tensor, gathered into that order.

The cost: ``2 a^k D^2 / k + 2 D^3 / k`` FLOPs per spine tensor and sample against ``2 a D^2`` for absorbing its
operands into a running vector (``a`` the product of its other legs), for ``O(log m)`` instead of ``O(m)``
dependent kernels. :func:`spine_times` models both per device with the chain routes' constants
(:data:`tnml.plans.chain.ROUTE_CONSTANTS`); :func:`spine_threshold` is the shortest spine that the model contracts
this way for a batch size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from tnml.plans.absorb import absorb
from tnml.plans.chain import ROUTE_CONSTANTS, power_of_two_scale
from tnml.plans.pairwise import PairwiseLevels
from tnml.plans.scaling import normalize

#: aten ops (views included) per spine tensor of one level-by-level train step (forward, backward, the rescale
#: every few levels), and the fixed ops of one spine on the pairwise route (operand gathers, matrices, the streams,
#: the closing rescale) and its ops per pairwise level: counted with torch.profiler on comb trees of 64 and 256
#: leaves (bond 10, batch 100: 2 020 and 7 828 ops per level-by-level train step, about 30 per tensor)
SEQUENTIAL_OPS_PER_NODE = 30
SPINE_FIXED_OPS = 60
SPINE_OPS_PER_LEVEL = 21
#: FLOP rate of the pairwise ``D x D`` products (forward and backward) per device type; elsewhere the chain
#: routes' ``flops_per_s``. CPU: batched 10 x 10 matmuls ran at about 2 GFLOP/s on one thread of the (loaded)
#: development machine, and the matrices' copies (stream table, rescales) add about a third
PAIRWISE_FLOPS_PER_S = {"cpu": 1.5e9}


@dataclass
class SpineClass:
    """Spine tensors of one stack, axis order and operand kinds: their matrices come from one batched GEMM.

    ``rows`` index the stack; ``perm`` permutes the gathered stack (leading axis kept) into (other legs, spine leg,
    parent leg); ``legs`` per other leg ``("input", sites)`` or ``("message", [(group, position), ...])``;
    ``positions`` the members' places on the spine (1-based: 0 is the message from below).
    """

    stack: int
    rows: torch.Tensor
    perm: tuple[int, ...] | None
    other: tuple[int, ...]
    legs: list
    positions: list[int]


@dataclass
class Spine:
    """One spine of a :class:`tnml.plans.TreePlan` (see the module docstring).

    Attributes
    ----------
    gids : tuple of int
        The plan's groups of the spine tensors, lowest first (each group holds one tensor).
    names : tuple of str
    bottom : (int, int)
        (group, position) of the message from below (the spine child of the lowest tensor).
    bond : int
        ``D``, the width of every spine leg.
    other : tuple of tuple of int
        Per spine tensor, the sizes of its other legs (inputs and messages).
    classes : list of SpineClass
    k : int
        Spine tensors per matrix (``> 1`` only for a spine of one class: ``k`` consecutive cores are contracted
        into a block core first, batch-free, and each block absorbs the outer product of its ``k`` operand
        vectors; the lowest block is padded with identity tensors).
    perm : LongTensor or None
        Spine order of the matrices concatenated class by class (None: already in order).
    order : LongTensor, shape (2 * q,)
        Rows of the stream table (:func:`run_spine`) in the storage order of the pairwise levels.
    q : int
        Positions per stream: the ``ceil(m / k)`` matrices padded to a power of two.
    fold_row : int
        Storage row of stream 1's lowest matrix (stream 0's is row 0).
    """

    gids: tuple[int, ...]
    names: tuple[str, ...]
    bottom: tuple[int, int]
    bond: int
    other: tuple[tuple[int, ...], ...]
    classes: list[SpineClass] = field(default_factory=list)
    k: int = 1
    perm: torch.Tensor | None = None
    order: torch.Tensor | None = None
    q: int = 2
    fold_row: int = 1

    @property
    def length(self) -> int:
        return len(self.gids)

    @property
    def levels(self) -> int:
        return self.q.bit_length() - 1


def find_spines(plan, info: dict, rooted, excluded: set[int], dev: torch.device) -> list[Spine]:
    """The spines of a tree plan's groups (at least two tensors long).

    A tensor is a spine link when it is alone in its group, is neither merged nor absorbed by a merge
    (:mod:`tnml.plans.merge`), has a parent leg, and its tallest child is unique (the spine child) with the same
    width ``D`` as its parent leg; consecutive links with one ``D`` form a spine.

    Parameters
    ----------
    plan : TreePlan
        Its ``groups``, ``where`` and ``structure``.
    info : dict
        :attr:`tnml.rooting.TreeLevels.info`.
    rooted : RootedTree
    excluded : set of int
        Groups that may not be links (merged or absorbed ones).
    dev : torch.device
        Where the index tensors live.
    """
    tensors = plan.structure.tensors
    pos_of = {t.name: k for k, t in enumerate(tensors)}
    group_of: dict[int, tuple[int, int]] = {}
    for gid, grp in enumerate(plan.groups):
        for p, nm in enumerate(grp.names):
            group_of[pos_of[nm]] = (gid, p)
    link: dict[int, tuple[int, int, int]] = {}  # tensor -> (spine child, its leg position, D)
    for gid, grp in enumerate(plan.groups):
        if len(grp.names) != 1 or grp.squeeze_parent or gid in excluded:
            continue
        k = pos_of[grp.names[0]]
        legs = info[k][0]
        msgs = [(j, leg[2]) for j, leg in enumerate(legs) if leg[1] == "message"]
        if not msgs:
            continue
        heights = sorted((rooted.height[c] for _, c in msgs), reverse=True)
        if len(heights) > 1 and heights[0] == heights[1]:
            continue
        j, child = max(msgs, key=lambda jc: rooted.height[jc[1]])
        shape = grp.core_shape
        if shape[j] != shape[-1]:
            continue
        link[k] = (child, j, shape[-1])
    spines = []
    def continues(k: int) -> bool:  # k's parent is a link whose spine child is k, of the same width
        pnt = rooted.parent[k]
        return pnt is not None and pnt[0] in link and link[pnt[0]][0] == k and link[pnt[0]][2] == link[k][2]

    tops = [k for k in link if not continues(k)]
    for top in tops:
        path = [top]
        while link[path[-1]][0] in link and continues(link[path[-1]][0]):
            path.append(link[path[-1]][0])
        path.reverse()
        if len(path) < 2:
            continue
        spines.append(_build_spine(plan, info, path, link, group_of, dev))
    return spines


def _build_spine(plan, info, path: list[int], link: dict, group_of: dict, dev: torch.device) -> Spine:
    tensors = plan.structure.tensors
    D = link[path[0]][2]
    classes: dict[tuple, SpineClass] = {}
    others = []
    for pos, k in enumerate(path, start=1):
        legs, perm, shape, kinds, _ = info[k]
        j = link[k][1]
        rest = [i for i in range(len(legs)) if i != j]
        other = tuple(shape[i] for i in rest)
        others.append(other)
        stack, row = plan.where[tensors[k].name]
        # raw axes -> (other legs, spine leg, parent leg), the stacking axis first
        raw = tuple(perm[i] for i in [*rest, j, len(legs)])
        key = (stack, raw, tuple(kinds[i] for i in rest), other)
        if key not in classes:
            p = (0, *(a + 1 for a in raw))
            classes[key] = SpineClass(stack, torch.empty(0), None if p == tuple(range(len(p))) else p, other,
                                      [[kinds[i], []] for i in rest], [])
        cls = classes[key]
        cls.positions.append(pos)
        cls.rows = torch.cat([cls.rows.long(), torch.tensor([row])])
        for slot, i in zip(cls.legs, rest):
            slot[1].append(legs[i][2] if legs[i][1] == "input" else group_of[legs[i][2]])
    for cls in classes.values():
        cls.rows = cls.rows.to(dev)
        cls.legs = [(kind, torch.tensor(src, dtype=torch.long, device=dev) if kind == "input" else src)
                    for kind, src in cls.legs]
    m = len(path)
    cls_list = list(classes.values())
    k = block_size(m, D, math.prod(cls_list[0].other)) if len(cls_list) == 1 else 1
    nb = -(-m // k)
    q = _pow2(nb)
    spine_order = [pos for cls in cls_list for pos in cls.positions]
    perm = None if spine_order == sorted(spine_order) else torch.tensor(
        sorted(range(m), key=spine_order.__getitem__), dtype=torch.long, device=dev
    )
    # stream table rows: the nb matrices in spine order (the lowest with the message from below folded into its
    # row 0), the same transposed, the identity. Stream 0 reads positions 0..nb-1, stream 1 the transposed ones from
    # nb - 1 down to 0; both are padded with the identity to q positions.
    ident = 2 * nb
    bits = q.bit_length() - 1
    order = []
    fold_row = 1
    for s in range(q):
        at = int(format(s, f"0{bits}b")[::-1], 2) if bits else 0  # bit-reversed: each level multiplies two halves
        order.append(at if at < nb else ident)
        order.append(nb + nb - 1 - at if at < nb else ident)
        if at == nb - 1:
            fold_row = 2 * s + 1
    first = link[path[0]][0]
    return Spine(
        gids=tuple(group_of[k][0] for k in path),
        names=tuple(tensors[k].name for k in path),
        bottom=group_of[first],
        bond=D,
        other=tuple(others),
        classes=cls_list,
        k=k,
        perm=perm,
        order=torch.tensor(order, dtype=torch.long, device=dev),
        q=q,
        fold_row=fold_row,
    )


#: largest operand dimension of a block of spine tensors (the outer product of its operand vectors)
MAX_BLOCK_OPERANDS = 256


def _pow2(q: int) -> int:
    """The smallest power of two >= max(q, 2) (the pairwise levels need at least one level)."""
    return max(2, 1 << max(0, q - 1).bit_length())


def block_size(length: int, bond: int, other: int) -> int:
    """Spine tensors per matrix minimizing the per-sample FLOPs: ``ceil(m / k)`` block matrices at ``2 a^k D^2``
    each plus ``2 D^3`` per pairwise product over them padded to a power of two (``a^k`` at most
    :data:`MAX_BLOCK_OPERANDS`).

    Examples
    --------
    >>> block_size(254, 10, 2), block_size(254, 10, 10), block_size(254, 64, 2)
    (4, 1, 4)
    """
    best, best_cost = 1, math.inf
    k = 1
    while other**k <= MAX_BLOCK_OPERANDS:
        nb = -(-length // k)
        cost = nb * 2.0 * other**k * bond**2 + (_pow2(nb) - 1) * 2.0 * bond**3
        if cost < best_cost:
            best, best_cost = k, cost
        k += 1
        if other == 1:
            break
    return best


def levels_between_rescales(bond: int, dtype: torch.dtype) -> int:
    """The most pairwise levels between rescalings such that a product of ``2**j`` matrices of max-abs <= 1
    (entries <= ``D**(2**j - 1)``) stays below the square root of the dtype's largest number."""
    real = torch.empty(0, dtype=dtype).real.dtype if dtype.is_complex else dtype
    emax = math.log2(torch.finfo(real).max)
    j = 1
    while (2 ** (j + 1) - 1) * math.log2(max(2, bond)) <= emax / 2 and j < 16:
        j += 1
    return j


def _level_scale(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return power_of_two_scale(t, 1)


def run_spine(
    spine: Spine,
    stacks: Sequence[torch.Tensor],
    phi_t: torch.Tensor,
    outs: list,
    exps: list,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spine's message and exponent, shaped as a one-tensor group's: ``(1, batch, D)`` and ``(1, batch)``.

    Parameters
    ----------
    spine : Spine
    stacks : list of Tensor
        The plan's stacked cores.
    phi_t : Tensor, shape (n_sites, batch, d)
        The embedded inputs, site-major.
    outs, exps : list
        The messages ``(members, batch, width)`` and exponents ``(members, batch)`` (or None) of the groups
        contracted so far.
    """
    b, D = phi_t.shape[1], spine.bond
    bh = (b + 1) // 2  # stream 0: samples [0, bh), stream 1: samples [b - bh, b) (one shared if b is odd)
    src, p = spine.bottom
    v = outs[src][p]  # (b, D)
    exp_terms = [] if exps[src] is None else [exps[src][p]]
    mats = []
    for cls in spine.classes:
        core = stacks[cls.stack].index_select(0, cls.rows)
        if cls.perm is not None:
            core = core.permute(cls.perm)
        g = core.shape[0]
        if not cls.legs:  # no other operands: the same matrix for every sample
            mats.append(core.reshape(g, 1, D, D).expand(g, b, D, D))
            continue
        operands = []
        for kind, srcs in cls.legs:
            if kind == "input":
                operands.append(phi_t.index_select(0, srcs))
                continue
            operands.append(torch.stack([outs[s][i] for s, i in srcs]))
            exp_terms += [exps[s][i] for s, i in srcs if exps[s] is not None]
        if len(spine.classes) == 1:  # one class: the matrices are formed in the storage order directly
            storage, e_streams = _storage_matrices(spine, core.reshape(g, -1, D, D), operands, v)
            exp_terms.append(torch.cat([e_streams[0], e_streams[1, 2 * bh - b:]]))
            break
        mats.append(absorb(core.reshape(g, *cls.other, D * D), operands).view(g, b, D, D))
    else:
        storage, e = _table_storage(spine, mats, v)
        exp_terms.append(e)
    every = levels_between_rescales(D, storage.dtype)
    left, right, e2, *_ = PairwiseLevels.apply(storage, bh, spine.levels, every, _level_scale)
    skip = 2 * bh - b
    out = torch.cat([left, right[skip:]]) if skip else torch.cat([left, right])
    exp_terms.append(torch.cat([e2[0], e2[1, skip:]]))
    out, e = normalize(out, 1)
    exp_terms.append(e)
    exp = exp_terms[0]
    for t in exp_terms[1:]:
        exp = exp + t
    return out.unsqueeze(0), exp.unsqueeze(0)


def _table_storage(spine: Spine, mats: list[torch.Tensor], v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spines of several classes: the matrices ``(m, batch, D, D)`` of every class, put in spine order, rescaled,
    the message ``v`` folded into the lowest, gathered into the storage order of the pairwise levels; and the
    rescaling exponents ``(batch,)``."""
    b, D = v.shape[0], spine.bond
    bh = (b + 1) // 2
    mat = torch.cat(mats)
    if spine.perm is not None:
        mat = mat.index_select(0, spine.perm)
    mat, e = normalize(mat, 2)
    # the message from below folded into the lowest matrix: row 0 of [v M_1; 0]
    low = torch.cat([torch.bmm(v.unsqueeze(1), mat[0]), v.new_zeros(b, D - 1, D)], 1).unsqueeze(0)
    eye = torch.eye(D, dtype=v.dtype, device=v.device).expand(1, bh, D, D)
    parts = [low[:, :bh], mat[1:, :bh], low[:, b - bh:].mT, mat[1:, b - bh:].mT, eye]
    table = torch.cat([p for p in parts if p.shape[0]])
    return table.index_select(0, spine.order).reshape(-1, D, D), e.sum(0)  # type: ignore[arg-type]


def _storage_matrices(
    spine: Spine, core: torch.Tensor, operands: list[torch.Tensor], v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A spine of one class: its (block) matrices formed directly in the storage order of the pairwise levels.

    The block cores (:func:`_blocks`), their transposes and an identity core are gathered batch-free into storage
    order, so is each storage row's operand (its stream's half of the batch), and one batched GEMM gives the
    matrices; they are rescaled, and the message ``v`` is folded into the lowest block of both streams (row 0 of
    ``[v M_1; 0]`` in stream 0, column 0 of its transpose in stream 1).

    Returns
    -------
    storage : Tensor, shape (2 q bh, D, D)
    exponent : Tensor, shape (2, bh)
        The rescaling exponents per stream and sample.
    """
    b, D, q = v.shape[0], spine.bond, spine.q
    bh = (b + 1) // 2
    block, z = _blocks(core, operands, spine.k)  # (nb, A, D, D), (nb, b, A)
    A = block.shape[1]
    ident = block.new_zeros(1, A, D, D)
    ident[0, 0] = torch.eye(D, dtype=block.dtype, device=block.device)
    cores = torch.cat([block, block.mT, ident]).index_select(0, spine.order)  # type: ignore[arg-type]
    ops = torch.cat([z[:, :bh], z[:, b - bh:], z.new_ones(1, bh, A)]).index_select(0, spine.order)  # type: ignore[arg-type]
    mats = torch.bmm(ops, cores.reshape(2 * q, A, D * D)).view(2 * q, bh, D, D)
    mats, e = normalize(mats, 2)
    r = spine.fold_row
    low_a = torch.cat([torch.bmm(v[:bh].unsqueeze(1), mats[0]), v.new_zeros(bh, D - 1, D)], 1)
    low_b = torch.cat([torch.bmm(mats[r], v[b - bh:].unsqueeze(2)), v.new_zeros(bh, D, D - 1)], 2)
    storage = torch.cat([low_a.unsqueeze(0), mats[1:r], low_b.unsqueeze(0), mats[r + 1:]])
    return storage.reshape(-1, D, D), e.view(q, 2, bh).sum(0)


def _blocks(core: torch.Tensor, operands: list[torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block cores ``(nb, a^k, D, D)`` of ``k`` consecutive spine tensors and the blocks' operand vectors
    ``(nb, batch, a^k)``, ``nb = ceil(m / k)``.

    ``core`` ``(m, a, D, D)`` (the other legs flattened), ``operands`` per other leg ``(m, batch, a_l)``. The
    lowest block is padded with identity tensors (core ``delta_io`` at operand index 0, operand all ones). Each
    block's cores are contracted batch-free; its operand vector is the outer product of its ``k`` tensors'.
    """
    m, a, D = core.shape[0], core.shape[1], core.shape[2]
    b = operands[0].shape[1]
    z = operands[0]
    for op in operands[1:]:  # each tensor's operand vector: the outer product over its legs
        z = (z.unsqueeze(-1) * op.unsqueeze(-2)).reshape(m, b, -1)
    nb = -(-m // k)
    pad = nb * k - m
    if pad:
        ident = core.new_zeros(pad, a, D, D)
        ident[:, 0] = torch.eye(D, dtype=core.dtype, device=core.device)
        core = torch.cat([ident, core])
        z = torch.cat([z.new_ones(pad, b, a), z])
    if k == 1:
        return core, z
    cv = core.view(nb, k, a, D, D)
    zv = z.view(nb, k, b, a)
    block, zb = cv[:, 0], zv[:, 0]
    for j in range(1, k):
        rows = block.shape[1]
        nxt = cv[:, j].permute(0, 2, 1, 3).reshape(nb, D, a * D)  # (l, (a_j, o))
        block = torch.bmm(block.reshape(nb, rows * D, D), nxt).view(nb, rows, D, a, D)
        block = block.permute(0, 1, 3, 2, 4).reshape(nb, rows * a, D, D)
        zb = (zb.unsqueeze(-1) * zv[:, j].unsqueeze(-2)).reshape(nb, b, -1)
    return block, zb


def spine_times(
    length: int, bond: int, other: int, batch: int, device_type: str, k: int | None = None
) -> dict[str, float]:
    """Modelled seconds of one train step (forward + backward as 3x forward) of a spine, per route.

    Parameters
    ----------
    length : int
        Spine tensors ``m``.
    bond : int
        ``D``.
    other : int
        Product of a spine tensor's other leg sizes ``a`` (2 for a comb over ``d = 2`` inputs).
    batch : int
    device_type : str
        ``"cpu"``, ``"cuda"`` (unknown types use the CUDA constants).
    k : int, optional
        Spine tensors per matrix; default :func:`block_size`.

    Returns
    -------
    dict
        ``{"sequential": s, "log-depth": s}``: level by level, ``m`` levels of about
        :data:`SEQUENTIAL_OPS_PER_NODE` ops at ``2 a D^2 + 2 a D`` FLOPs per tensor and sample (vector-matrix
        rate); pairwise, :data:`SPINE_FIXED_OPS` plus :data:`SPINE_OPS_PER_LEVEL` per level, ``ceil(m / k)`` block
        matrices at ``2 a^k D^2`` (GEMM rate) and ``q - 1`` products of ``2 D^3`` per sample (``q``: the
        matrices padded to a power of two) at :data:`PAIRWISE_FLOPS_PER_S`.

    Examples
    --------
    >>> t = spine_times(254, 10, 2, 1000, "cpu")  # the spine of a 256-leaf comb, batch 1000
    >>> g = spine_times(254, 10, 2, 1000, "cuda")
    >>> t["sequential"] < t["log-depth"], g["log-depth"] < g["sequential"]
    (True, True)
    """
    c = ROUTE_CONSTANTS.get(device_type, ROUTE_CONSTANTS["cuda"])
    vecmat = min(c["gemm_flops_per_s"], c["flops_per_s"] * max(1.0, bond / 10))
    k = block_size(length, bond, other) if k is None else k
    nb = -(-length // k)
    q = _pow2(nb)
    levels = q.bit_length() - 1
    rate = PAIRWISE_FLOPS_PER_S.get(device_type, c["flops_per_s"])
    seq = length * SEQUENTIAL_OPS_PER_NODE * c["op_s"] + 3 * batch * length * (2.0 * other * bond**2
                                                                               + 2.0 * other * bond) / vecmat
    pair = ((SPINE_FIXED_OPS + SPINE_OPS_PER_LEVEL * levels) * c["op_s"]
            + 3 * batch * (nb * 2.0 * other**k * bond**2 / c["gemm_flops_per_s"]
                           + (q - 1) * 2.0 * bond**3 / rate))
    return {"sequential": seq, "log-depth": pair}


def spine_threshold(bond: int, other: int, batch: int, device_type: str, longest: int = 1 << 16) -> int | None:
    """The shortest spine (at least 2 tensors) that :func:`spine_times` contracts pairwise for this batch and
    device, or None if none up to ``longest`` is.

    Examples
    --------
    >>> spine_threshold(10, 2, 1, "cuda"), spine_threshold(10, 2, 100, "cpu"), spine_threshold(10, 2, 8, "cpu")
    (3, 6, 3)
    """
    m = 2
    while m <= longest:
        t = spine_times(m, bond, other, batch, device_type)
        if t["log-depth"] < t["sequential"]:
            return m
        m = m + 1 if m < 64 else m * 2
    return None
