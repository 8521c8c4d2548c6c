"""Accurate Schmidt spectra across any cut: each side reduced to an (open x cut) R factor by QR, then one SVD.

Split the tensors along a minimum cut ``C`` between the legs of side A and side B (as the Gram route does,
:func:`tnml.entanglement.spectra_gram.cut_split`). Then ``[[T]]_A = M_A @ M_B^T`` where ``M_S`` is side S's tensors
contracted into (its open legs) x (the cut indices). Instead of the Gram matrix ``M_S^H M_S`` (which squares the
condition number and resolves Schmidt values only down to ``sqrt(eps)`` of the largest), each side is contracted
pairwise and, after every step, its open legs are merged into one leg and *compressed* by a QR decomposition
whenever they are larger than the other legs: ``X = Q R`` over (open) x (rest), and ``Q`` (an isometry on the open
legs, which nothing else touches) is dropped. The Gram matrix over the remaining legs is unchanged, every step is
backward stable, and the side ends as ``R_S`` of shape ``(k, prod dim C)`` with ``k <= prod dim C`` and
``R_S^H R_S = M_S^H M_S``. The Schmidt values are ``svdvals(R_A @ R_B^T)``, accurate to a few ``eps`` times the
largest (canonicalization towards the cut, generalized to cuts of many bonds and to networks with loops).

Order of contraction: a tree side (the network is a tree) is contracted leaves first towards one tensor per
connected piece (each intermediate carries the bond to its parent and the cut bonds below it, so it never exceeds
``(prod dim C * bond)^2`` entries); a side with loops follows a cotengra path. Before any value is touched, the same
schedule is run on shapes only and the route is refused (:class:`tnml.MemoryLimitError`) when one intermediate
would exceed ``tnml.settings.max_dense_bytes``.
"""

from __future__ import annotations

import functools
import math
from collections import Counter

import cotengra as ctg
import torch

from tnml import settings
from tnml.io import format_bytes
from tnml.structure import TNStructure

__all__ = ["factor_spectrum", "side_factor"]

_OPEN = "\u2032open"  # the merged open leg of an intermediate


class _Item:
    """An intermediate: values (or None in a dry run), shape, leg names (open leg first if any), log-scale."""

    __slots__ = ("x", "shape", "legs", "log")

    def __init__(self, x, shape: tuple[int, ...], legs: list[str], log) -> None:
        self.x, self.shape, self.legs, self.log = x, shape, legs, log


def _compress(item: _Item, dry: bool) -> _Item:
    """QR the open leg against the rest when it is the larger; renormalize (log-scale carried)."""
    if item.legs and item.legs[0] == _OPEN:
        rows = item.shape[0]
        cols = math.prod(item.shape[1:])
        if rows > cols:
            shape = (cols,) + item.shape[1:]
            if dry:
                return _Item(None, shape, item.legs, item.log)
            m = item.x.reshape(rows, cols)
            r = torch.linalg.qr(m, mode="reduced" if m.requires_grad else "r")[1]
            item = _Item(r.reshape(shape), shape, item.legs, item.log)
    if dry:
        return item
    nrm = torch.linalg.norm(item.x.detach())
    if nrm > 0:
        item.x = item.x / nrm
        item.log = item.log + math.log(float(nrm))
    return item


def _leaf(x, inds: tuple[str, ...], shape: tuple[int, ...], own_open: set[str], dry: bool) -> _Item:
    """A tensor with its open legs merged into one leading leg (then compressed)."""
    opened = [k for k, i in enumerate(inds) if i in own_open]
    other = [k for k, i in enumerate(inds) if i not in own_open]
    legs = [inds[k] for k in other]
    oshape = tuple(shape[k] for k in other)
    if opened:
        rows = math.prod(shape[k] for k in opened)
        legs = [_OPEN] + legs
        oshape = (rows,) + oshape
        if not dry:
            x = x.permute(opened + other).reshape(oshape)
    return _compress(_Item(x, oshape, legs, 0.0), dry)


def _letters(names) -> dict[str, str]:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if len(names) > len(alphabet):
        raise ValueError(f"a contraction step of the factor route has {len(names)} distinct legs (at most 52)")
    return {n: alphabet[k] for k, n in enumerate(names)}


def _merge(a: _Item, b: _Item, keep: set[str], dry: bool) -> _Item:
    """Contract two intermediates; both open legs become one; bonds not in ``keep`` are summed."""
    b_legs = ["\u2032open2" if leg == _OPEN else leg for leg in b.legs]
    dims = dict(zip(a.legs, a.shape)) | dict(zip(b_legs, b.shape))
    opens = [leg for leg in (_OPEN, "\u2032open2") if leg in dims]
    rest = [leg for leg in dict.fromkeys(a.legs + b_legs) if leg not in opens and leg in keep]
    out_legs = opens + rest
    shape = tuple(dims[leg] for leg in out_legs)
    log = a.log + b.log
    x = None
    if not dry:
        let = _letters(list(dict.fromkeys(a.legs + b_legs)))
        expr = (
            "".join(let[leg] for leg in a.legs) + "," + "".join(let[leg] for leg in b_legs) + "->"
            + "".join(let[leg] for leg in out_legs)
        )
        x = torch.einsum(expr, a.x, b.x)
    if len(opens) == 2:
        shape = (shape[0] * shape[1],) + shape[2:]
        if x is not None:
            x = x.reshape(shape)
    if opens:
        out_legs = [_OPEN] + rest
    return _compress(_Item(x, shape, out_legs, log), dry)


def _tree_path(inds: list[tuple[str, ...]]) -> list[tuple[int, int]]:
    """SSA path contracting a forest leaves-first (each tensor into its parent), then the pieces together."""
    n = len(inds)
    owners: dict[str, list[int]] = {}
    for k, ii in enumerate(inds):
        for i in ii:
            owners.setdefault(i, []).append(k)
    adj: list[list[int]] = [[] for _ in range(n)]
    for ks in owners.values():
        if len(ks) == 2 and ks[0] != ks[1]:
            adj[ks[0]].append(ks[1])
            adj[ks[1]].append(ks[0])
    parent = [-2] * n
    roots, order = [], []
    for r in range(n):
        if parent[r] != -2:
            continue
        parent[r] = -1
        roots.append(r)
        queue = [r]
        while queue:
            u = queue.pop()
            order.append(u)
            for v in adj[u]:
                if parent[v] == -2:
                    parent[v] = u
                    queue.append(v)
    cur = list(range(n))
    path, nxt = [], n
    for u in reversed(order):  # every descendant of u is merged into u before u merges into its parent
        p = parent[u]
        if p >= 0:
            path.append((cur[p], cur[u]))
            cur[p] = nxt
            nxt += 1
    acc = cur[roots[0]]
    for r in roots[1:]:
        path.append((acc, cur[r]))
        acc = nxt
        nxt += 1
    return path


#: sides with at most this many tensors get cotengra's "auto" order search; larger ones its greedy order
AUTO_PATH_MAX_INPUTS = 32


def _cotengra_path(items: list[_Item], cut: list[str]) -> list[tuple[int, int]]:
    """cotengra's SSA path for a side with loops (cached: the dry run and the real one ask for the same path)."""
    key = tuple((tuple(it.legs), tuple(it.shape)) for it in items)
    return list(_cotengra_path_cached(key, tuple(cut)))


@functools.lru_cache(maxsize=64)
def _cotengra_path_cached(key, cut: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    inputs: list = []
    sizes: dict[str, int] = {}
    for k, (legs, shape) in enumerate(key):
        legs = [f"{_OPEN}{k}" if leg == _OPEN else leg for leg in legs]
        inputs.append(tuple(legs))
        sizes.update(zip(legs, shape))
    output = tuple(leg for ii in inputs for leg in ii if leg.startswith(_OPEN)) + cut
    if len(key) == 1:
        return ()
    # cotengra's "auto" beyond ~30 inputs is a parallel hyper-search (23 s for one side of an 8x8 PEPS on a loaded
    # 2-core machine, before any size check): greedy there, milliseconds
    optimize = "auto" if len(key) <= AUTO_PATH_MAX_INPUTS else "greedy"
    tree = ctg.array_contract_tree(inputs, output, sizes, optimize=optimize)
    return tuple(tuple(p) for p in tree.get_ssa_path())


def _run(items: list[_Item], path, cut: list[str], dry: bool) -> tuple[_Item, int]:
    """Replay an SSA path with compression: the last intermediate (legs: the open leg and ``cut``) and the peak
    number of entries alive at one step."""
    pool = dict(enumerate(items))
    count = Counter(leg for it in items for leg in it.legs)
    keep_always = set(cut)
    nxt = len(items)
    peak = max((math.prod(it.shape) for it in items), default=0)
    for i, j in path:
        a, b = pool.pop(i), pool.pop(j)
        count.subtract(a.legs)
        count.subtract(b.legs)
        keep = keep_always | {leg for leg in set(a.legs) | set(b.legs) if count[leg] > 0}
        c = _merge(a, b, keep, dry)
        count.update(c.legs)
        pool[nxt] = c
        nxt += 1
        peak = max(peak, _merge_bytes(a, b, c))
    while len(pool) > 1:  # pieces not joined by the path (outer products)
        keys = sorted(pool)
        a, b = pool.pop(keys[0]), pool.pop(keys[1])
        c = _merge(a, b, keep_always | set(a.legs) | set(b.legs), dry)
        pool[nxt] = c
        nxt += 1
        peak = max(peak, _merge_bytes(a, b, c))
    (root,) = pool.values()
    return root, peak


def _merge_bytes(a: _Item, b: _Item, c: _Item) -> int:
    """Entries alive while contracting: both operands and the uncompressed product (upper estimate)."""
    dims = dict(zip(a.legs, a.shape)) | dict(zip(["\u2032open2" if x == _OPEN else x for x in b.legs], b.shape))
    full = math.prod(dims.get(leg, 1) for leg in dims if leg in c.legs or leg.startswith("\u2032open"))
    return math.prod(a.shape) + math.prod(b.shape) + 2 * full


def _side_items(structure: TNStructure, cores, members: list[int], own_open: set[str], cut: list[str], scale,
                dry: bool) -> list[_Item]:
    sd = structure.size_dict
    items = []
    carried: set[str] = set()
    for k in members:
        spec = structure.tensors[k]
        x = None if dry else cores[spec.name] / scale[k]
        items.append(_leaf(x, tuple(spec.inds), tuple(sd[i] for i in spec.inds), own_open, dry))
        carried.update(spec.inds)
    ref = next(iter(cores.values()))
    for c in cut:  # an open leg of this side held by a tensor of the other side: the identity over it
        if c not in carried:
            eye = None if dry else torch.eye(sd[c], dtype=ref.dtype, device=ref.device)
            items.append(_leaf(eye, (c + "\u2032self", c), (sd[c], sd[c]), {c + "\u2032self"}, dry))
    return items


def side_factor(structure: TNStructure, cores: dict[str, torch.Tensor], members: list[int], own_open: set[str],
                cut: list[str], scale, *, tree: bool, dry: bool = False):
    """``R`` (k, prod dim cut) with ``R^H R = M^H M``, ``M`` = the side's tensors as (open legs) x (cut).

    Parameters
    ----------
    structure, cores
        The network (no output index).
    members : list of int
        Positions of the side's tensors in ``structure.tensors``.
    own_open : set of str
        The side's open indices.
    cut : list of str
        Cut indices, in the column order of ``R``.
    scale : list of Tensor
        Per-tensor divisors (norms) applied before contracting (their logs are the caller's).
    tree : bool
        The side is a forest (leaves-first order) rather than a general network (cotengra order).
    dry : bool
        Run the schedule on shapes only; return the peak number of entries alive.

    Returns
    -------
    (Tensor (k, prod dim cut), float log-scale) or, with ``dry``, int (peak entries).
    """
    items = _side_items(structure, cores, members, own_open, cut, scale, dry)
    path = _tree_path([tuple(it.legs) for it in items]) if tree else _cotengra_path(items, cut)
    root, peak = _run(items, path, cut, dry)
    if dry:
        return peak
    legs = root.legs
    order = ([legs.index(_OPEN)] if _OPEN in legs else []) + [legs.index(c) for c in cut]
    chi = math.prod(structure.size_dict[c] for c in cut)
    x = root.x.permute(order).reshape(-1, chi)
    if x.shape[0] > chi:
        x = torch.linalg.qr(x, mode="reduced" if x.requires_grad else "r")[1]
    return x, root.log


def factor_bytes(structure: TNStructure, mem_a, mem_b, side_a, side_b, cut, *, tree: bool, item: int) -> int:
    """Peak bytes of :func:`factor_spectrum` (shapes only; no values touched)."""
    peaks = [
        side_factor(structure, {"": torch.empty(0)}, mem, set(own), cut, None, tree=tree, dry=True)
        for mem, own in ((mem_a, side_a), (mem_b, side_b))
    ]
    chi = math.prod(structure.size_dict[c] for c in cut)
    return max(max(peaks), 3 * chi * chi) * item


def factor_spectrum(structure: TNStructure, cores: dict[str, torch.Tensor], mem_a, mem_b, side_a, side_b, cut, *,
                    tree: bool):
    """Schmidt values across a split already cut into tensor sets (:func:`~tnml.entanglement.spectra_gram.cut_split`).

    Returns
    -------
    values : Tensor (k,)
        Unit 2-norm, descending.
    log_norm : Tensor, scalar float64
        ``ln`` of the 2-norm of the true Schmidt values.
    size : int
        The larger dimension of the matrix decomposed last (for rank tolerances ``size * eps``).

    Raises
    ------
    tnml.MemoryLimitError
        An intermediate would exceed ``tnml.settings.max_dense_bytes`` (checked on shapes first).
    """
    ref = next(iter(cores.values()))
    need = factor_bytes(structure, mem_a, mem_b, side_a, side_b, cut, tree=tree, item=ref.element_size())
    if need > settings.max_dense_bytes:
        raise settings.MemoryLimitError(
            f"the factor route (QR of each side over the cut indices {cut[:6]}, rank bound "
            f"{math.prod(structure.size_dict[c] for c in cut)}) needs an intermediate of about {format_bytes(need)}, "
            f"over tnml.settings.max_dense_bytes = {format_bytes(settings.max_dense_bytes)}; raise "
            "tnml.settings.max_dense_bytes, or use method='gram' (less memory on some networks, resolves only "
            "Schmidt values above ~1e-7 of the largest)"
        )
    names = structure.tensor_names
    scale = [torch.linalg.norm(cores[n].detach()) for n in names]
    scale = [s if s > 0 else torch.ones_like(s) for s in scale]
    log_scale = sum(math.log(float(s)) for s in scale)
    fa, la = side_factor(structure, cores, mem_a, set(side_a), cut, scale, tree=tree)
    fb, lb = side_factor(structure, cores, mem_b, set(side_b), cut, scale, tree=tree)
    s = torch.linalg.svdvals(fa @ fb.transpose(0, 1))
    nrm = torch.linalg.norm(s)
    log_norm = torch.tensor(log_scale + la + lb, dtype=torch.float64, device=s.device)
    if nrm > 0:
        s = s / nrm
        log_norm = log_norm + torch.log(nrm).to(torch.float64)
    else:
        log_norm = torch.full((), -math.inf, dtype=torch.float64, device=s.device)
    return s, log_norm, max(fa.shape[0], fb.shape[0], fa.shape[1])
