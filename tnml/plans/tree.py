"""Contraction plan for tree-shaped networks (MPS, TTN, any loop-free network with pairwise bonds).

The tree is rooted at the tensor that holds the output (else at its centre). Tensors are processed level by
level from the leaves (level = height above the deepest leaf below); tensors of one level with the same shape
signature are stacked and contracted by one batched kernel, so a TTN level is one op and the two halves of an
MPS advance together. Every message carries a per-sample power-of-two exponent.
A level whose children absorb only narrow inputs has them contracted into its cores before the data
(:mod:`tnml.plans.merge`). Long spines (paths of tensors with one tallest child each) are contracted in
logarithmic depth where a cost model says that pays (:mod:`tnml.plans.spine`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tnml.plans.absorb import absorb
from tnml.plans.base import Plan, traced
from tnml.plans.chain import CHAIN_ROUTES, ChainRoute, chain_costs, choose_route
from tnml.plans.merge import MergeCandidate, merge_children, merge_costs
from tnml.plans.scaling import normalize
from tnml.plans.spine import Spine, find_spines, run_spine, spine_threshold, spine_times
from tnml.rooting import is_tree, tree_levels
from tnml.structure import TNStructure
from tnml.validation import check_option

#: a message is rescaled once it holds this many node factors (see TreePlan._build_rescaling); 8 instead of 4
#: made the 784-site MPS train step 10 % faster (36.6 -> 33.0 ms, same process), 16 gained nothing more
RESCALE_EVERY = 8


@dataclass
class _Slot:
    """Where one absorbed leg of a stacked group gets its batched vectors from."""

    kind: str  # "input" or "message"
    index: torch.Tensor | None  # positions into phi (input) or into the concatenated sources (message)
    sources: tuple[int, ...] = ()  # message: ids of the groups whose outputs are concatenated
    direct: bool = False  # message: exactly the output of sources[0], in order
    view: slice | None = None  # message: the index is an arithmetic progression (a strided view, no copy)
    part: int | None = None  # message of a blocked group (see _Group.blocks): which unbound block


@dataclass(frozen=True)
class _WholeStacks:
    """A core batch whose groups are each one whole stack with unpermuted axes (a TTN level): ``stacks[k]`` is
    group ``gids[k]``'s cores as they are."""

    gids: tuple[int, ...]
    stacks: tuple[int, ...]


@dataclass(frozen=True)
class _GatheredStacks:
    """A core batch joined from runs of stack rows: per part, ``(runs, perm)`` with ``runs`` a list of
    ``(stack, rows)`` (``rows`` None for the whole stack, else an index), permuted by ``perm`` (None: as is);
    the parts are concatenated, reordered by ``index`` (None: in order) and split into the groups by ``sizes``."""

    gids: tuple[int, ...]
    parts: list
    index: torch.Tensor | None
    sizes: list[int]


@dataclass(frozen=True)
class _Schedule:
    """What one forward reads for a set of spines contracted pairwise (:mod:`tnml.plans.spine`): the groups it
    skips (the spines' tensors), the spine whose message each top group holds, and the core and input gathers of
    the other groups."""

    skip: frozenset[int]
    tops: dict[int, int]
    stack_batches: list
    input_index: torch.Tensor | None
    input_sizes: list[int]


#: the spine options of :class:`TreePlan`
SPINE_MODES = ("auto", "always", "never")


@dataclass
class _Group:
    names: tuple[str, ...]
    perms: tuple[tuple[int, ...], ...]
    slots: list[_Slot]
    parent_dim: int
    squeeze_parent: bool  # the root without an output index gets a dummy parent leg of size 1
    core_shape: tuple[int, ...]  # shape of each member after permutation (without the stacking axis)
    #: (source group, k) when the k message slots read the k consecutive blocks of one source group that has
    #: exactly k times as many members (a level of a k-ary tree): one view + unbind gives all k operands as
    #: contiguous tensors, and one unbind/stack pair replaces k slices and their zero-filled backward
    blocks: tuple[int, int] | None = None


def _progression(idx: list[int]) -> slice | None:
    """``slice(start, stop, step)`` selecting exactly ``idx`` if it is increasing with a constant step, else None."""
    if len(idx) < 2:
        return slice(idx[0], idx[0] + 1) if idx else None
    step = idx[1] - idx[0]
    if step < 1 or any(b - a != step for a, b in zip(idx, idx[1:])):
        return None
    return slice(idx[0], idx[-1] + 1, step)


def _blocks(slots: list[_Slot], n_members: int, group_sizes: list[int]) -> tuple[int, int] | None:
    """``(source, k)`` if the k message slots read the k consecutive blocks of ``n_members`` rows of one source
    group (a level of a k-ary tree in slot-major order, :func:`tnml.rooting.tree_levels`), marking each slot's
    block; else None."""
    msgs = [slot for slot in slots if slot.kind == "message"]
    k = len(msgs)
    if k < 2 or any(len(m.sources) != 1 or m.sources[0] != msgs[0].sources[0] for m in msgs):
        return None
    src = msgs[0].sources[0]
    if group_sizes[src] != k * n_members:
        return None
    for j, m in enumerate(msgs):
        if m.index.tolist() != list(range(j * n_members, (j + 1) * n_members)):  # type: ignore[union-attr]
            return None
    for j, m in enumerate(msgs):
        m.part = j
    return src, k


class TreePlan(Plan):
    """Compiled level-by-level contraction of a tree network with batched inputs.

    Parameters
    ----------
    structure : TNStructure
        Must satisfy :func:`is_tree`.
    device : torch.device
        Where the index tensors live.
    route : {"auto", "sequential", "log-depth", "blocked"}
        For chains (:class:`tnml.plans.ChainRoute` covers the structure): ``"auto"`` picks per batch size and
        device with :func:`tnml.plans.choose_route`; the others force a route (``"log-depth"`` and ``"blocked"``
        raise for a structure they do not cover). Other trees contract level by level, except their long spines (below).
    spines : {"auto", "always", "never"}
        Spines (paths of tensors with one tallest child each, :mod:`tnml.plans.spine`) are contracted in
        logarithmic depth when :func:`tnml.plans.spine.spine_times` models that faster for the batch and device
        (``"auto"``), always, or never. A forced ``route="sequential"`` never uses them (level by level throughout),
        nor does a chain that :class:`tnml.plans.ChainRoute` covers (its own routes apply).
    """

    kind = "tree"

    def __init__(
        self, structure: TNStructure, device: torch.device | str = "cpu", route: str = "auto", spines: str = "auto"
    ) -> None:
        if not is_tree(structure):
            raise ValueError("TreePlan needs a loop-free network with pairwise bonds; use GenericPlan")
        if route not in CHAIN_ROUTES:
            raise ValueError(f"route={route!r} is unknown; choose one of {CHAIN_ROUTES}")
        check_option("spines", spines, SPINE_MODES, fix="'auto' lets the cost model choose per spine and batch")
        super().__init__(structure)
        self.route = route
        self.chain = ChainRoute.of(structure, device)
        self._route_cache: dict[int, str] = {}  # batch -> route
        self._block_cache: dict[int, int] = {}  # batch -> sites per block on the blocked route
        self._seq_cache: dict[int, int] = {}  # batch -> sites per step on a chain's sequential route
        if route in ("log-depth", "blocked") and self.chain is None:
            raise ValueError(
                f"route={route!r} needs an open chain of at least 4 tensors with one input each, equal bonds and "
                "the output (if any) on an inner tensor; use plan='tree' (level by level) for this structure"
            )
        self.device_type = torch.device(device).type
        tensors = structure.tensors
        levels = tree_levels(structure)
        root, info = levels.rooted.root, levels.info
        group_of: dict[int, tuple[int, int]] = {}
        self.groups: list[_Group] = []
        dev = torch.device(device)
        for gid, (key, members) in enumerate(levels.groups):
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
                    _Slot(
                        "message",
                        torch.tensor(idx, dtype=torch.long, device=dev),
                        tuple(src_groups),
                        direct,
                        None if direct else _progression(idx),
                    )
                )
            for pos, k in enumerate(members):
                group_of[k] = (gid, pos)
            blocks = _blocks(slots, len(members), [len(g.names) for g in self.groups])
            self.groups.append(
                _Group(
                    names=tuple(tensors[k].name for k in members),
                    perms=tuple(info[k][1] for k in members),
                    slots=slots,
                    parent_dim=1 if noparent else shape[-1],
                    squeeze_parent=noparent,
                    core_shape=shape,
                    blocks=blocks,
                )
            )
        if len(self.groups[-1].names) != 1 or self.groups[-1].names[0] != tensors[root].name:
            raise AssertionError("tree plan: the root must be the last group")  # internal invariant
        self._build_gathers(dev)
        self._build_rescaling(tensors, group_of, info)
        self._plan_merges()
        # a chain's routes (sequential, blocked, log-depth) cover it whole: its spines are not looked for
        self.spine_mode = "never" if route == "sequential" or self.chain is not None else spines
        excluded = set(self.merge_candidates) | {c.source for c in self.merge_candidates.values()}
        self.spines: list[Spine] = [] if self.spine_mode == "never" else find_spines(
            self, info, levels.rooted, excluded, dev
        )
        self._spine_cache: dict[int, tuple[int, ...]] = {}
        self._schedules: dict[tuple[int, ...], _Schedule] = {}
        self._dev = dev

    def _plan_merges(self) -> None:
        """Find the levels that may absorb their input-only children before the data (:mod:`tnml.plans.merge`).

        A group is a candidate when all its legs are messages from one source group in blocks (a k-ary level),
        the source absorbs only inputs (leaves, or a level that is itself merged), the source is not rescaled, and
        :func:`~tnml.plans.merge.merge_costs` finds that merging at least halves the per-sample work. Which
        candidates are used depends on the batch size (:meth:`merges_for`): merging costs a batch-free
        precontraction per forward.
        """
        self.merge_candidates: dict[int, MergeCandidate] = {}
        self._native_inputs_only = {
            gid for gid, grp in enumerate(self.groups) if grp.slots and all(s.kind == "input" for s in grp.slots)
        }
        dims: dict[int, tuple[int, ...]] = {gid: self.groups[gid].core_shape[:-1] for gid in self._native_inputs_only}
        for gid, grp in enumerate(self.groups):
            if grp.blocks is None or grp.squeeze_parent or any(slot.kind != "message" for slot in grp.slots):
                continue
            src, k = grp.blocks
            if src not in dims or self.rescale[src]:
                continue
            costs = merge_costs(list(dims[src]), k, self.groups[src].parent_dim, grp.parent_dim)
            if costs is not None:
                self.merge_candidates[gid] = MergeCandidate(src, k, dims[src], *costs)
                dims[gid] = dims[src] * k
        self._merges_cache: dict[int, tuple[dict, frozenset]] = {}

    def merges_for(self, batch: int) -> tuple[dict[int, MergeCandidate], frozenset[int]]:
        """The merges used for a batch of ``batch`` samples: ``(merged group -> candidate, absorbed groups)``.

        A candidate is used when ``batch x`` its per-sample saving exceeds its precontraction cost and its
        children absorb only inputs (natively, or because they are merged for this batch too).
        """
        if batch not in self._merges_cache:
            merged: dict[int, MergeCandidate] = {}
            for gid, cand in self.merge_candidates.items():
                ready = cand.source in self._native_inputs_only or cand.source in merged
                if ready and batch * cand.saving > cand.cost:
                    merged[gid] = cand
            if len(self._merges_cache) > 64:
                self._merges_cache.clear()
            self._merges_cache[batch] = (merged, frozenset(c.source for c in merged.values()))
        return self._merges_cache[batch]

    def _build_rescaling(self, tensors, group_of, info) -> None:
        """Decide which groups rescale their output.

        Every value in the tree is a product of node factors; ``count`` is how many factors a message holds
        since its subtree was last rescaled (1 + the counts of its unrescaled children). A group rescales when
        any member reaches ``RESCALE_EVERY`` factors, so an unrescaled value is a product of at most
        ``1 + arity * (RESCALE_EVERY - 1)`` factors: a chain rescales every 8th step instead of every step,
        a binary tree every 3 levels. The root always rescales. If the result still over- or under-flows,
        ``__call__`` contracts again rescaling every group.
        """
        count: dict[int, int] = {}
        self.rescale = []
        pos_of = {name: k for k, name in enumerate(t.name for t in tensors)}
        for gid, grp in enumerate(self.groups):
            members = [pos_of[nm] for nm in grp.names]
            counts = [1 + sum(count[leg[2]] for leg in info[k][0] if leg[1] == "message") for k in members]
            flag = gid == len(self.groups) - 1 or max(counts) >= RESCALE_EVERY
            self.rescale.append(flag)
            for k, c in zip(members, counts):
                count[k] = 0 if flag else c

    def _build_gathers(self, dev: torch.device) -> None:
        """The core and input gathers of every group (:meth:`_gathers`)."""
        self.core_batches, self.stack_batches, self.input_index, self.input_sizes = self._gathers(dev, frozenset())

    def _gathers(self, dev: torch.device, skip: frozenset[int]) -> tuple[list, list, torch.Tensor | None, list[int]]:
        """Precompute how cores and inputs reach every group not in ``skip`` with O(#shape classes) ops per
        forward: ``(core_batches, stack_batches, input_index, input_sizes)``.

        Cores of one raw shape and axis permutation are stacked and permuted together; the stacks of one
        permuted shape are concatenated, reordered into group order by one ``index_select`` and split into the
        groups. Inputs are gathered by one ``index_select`` over all input slots and split. Stepping through a
        stacked parameter per group instead would cost one op per group (and O(n^2) backward if indexed).
        """
        by_shape: dict[tuple, list[int]] = {}
        for gid, grp in enumerate(self.groups):
            if gid in skip:
                continue
            by_shape.setdefault((grp.core_shape, grp.squeeze_parent), []).append(gid)
        core_batches = []
        for gids in by_shape.values():
            members = [(nm, pm) for gid in gids for nm, pm in zip(self.groups[gid].names, self.groups[gid].perms)]
            raws: dict[tuple, list[tuple[int, str]]] = {}
            for pos, (nm, pm) in enumerate(members):
                raws.setdefault(pm, []).append((pos, nm))
            order = [pos for lst in raws.values() for pos, _ in lst]
            inverse = [0] * len(order)
            for row, pos in enumerate(order):
                inverse[pos] = row
            index = None if inverse == list(range(len(order))) else torch.tensor(inverse, dtype=torch.long, device=dev)
            stacks = [
                (None if pm == tuple(range(len(pm))) else (0, *(a + 1 for a in pm)), tuple(nm for _, nm in lst))
                for pm, lst in raws.items()
            ]
            sizes = [len(self.groups[gid].names) for gid in gids]
            core_batches.append((tuple(gids), stacks, index, sizes))
        stack_batches = self._stack_gathers(dev, core_batches)
        idx: list[torch.Tensor] = [
            slot.index  # type: ignore[misc]
            for gid, grp in enumerate(self.groups) if gid not in skip
            for slot in grp.slots if slot.kind == "input"
        ]
        return core_batches, stack_batches, (torch.cat(idx) if idx else None), [len(i) for i in idx]

    def _stack_gathers(self, dev: torch.device, core_batches: list) -> list[_WholeStacks | _GatheredStacks]:
        """The same gathers for stacked storage (:func:`tnml.storage.stack_layout`). A core batch whose groups
        are each one whole stack with unpermuted axes (a TTN level) takes the stacks as they are; otherwise each
        part is joined from runs of rows of the stacks its members live in (``index_select`` where a run is not
        a whole stack), in group order where the batch has one part."""
        layout, where = self.layout, self.where
        out: list[_WholeStacks | _GatheredStacks] = []
        for gids, stacks, index, sizes in core_batches:
            direct: list[int] | None = []
            for gid in gids:
                grp = self.groups[gid]
                k = where[grp.names[0]][0]
                plain = all(pm == tuple(range(len(pm))) for pm in grp.perms)
                if not (plain and layout[k][1] == grp.names):
                    direct = None
                    break
                direct.append(k)  # type: ignore[union-attr]
            if direct is not None:
                out.append(_WholeStacks(tuple(gids), tuple(direct)))
                continue
            parts = [([where[nm] for nm in names], perm) for perm, names in stacks]
            if len(parts) == 1 and index is not None:
                parts = [([parts[0][0][i] for i in index.tolist()], parts[0][1])]
                index = None
            sel = []
            for rows, perm in parts:
                runs: list[tuple[int, list[int]]] = []  # consecutive members from one stack
                for k, row in rows:
                    if runs and runs[-1][0] == k:
                        runs[-1][1].append(row)
                    else:
                        runs.append((k, [row]))
                sel.append((
                    [(k, None if r == list(range(len(layout[k][1]))) else torch.tensor(r, dtype=torch.long, device=dev))
                     for k, r in runs],
                    perm,
                ))
            out.append(_GatheredStacks(tuple(gids), sel, index, sizes))
        return out

    def _group_cores_stacked(
        self, stacks: Sequence[torch.Tensor], batches: list | None = None
    ) -> list[torch.Tensor]:
        """Each group's cores ``(nodes, first leg, rest)``, read from the stacks of :attr:`layout` (None for the
        groups ``batches``, default :attr:`stack_batches`, leaves out)."""
        out: list = [None] * len(self.groups)
        for entry in self.stack_batches if batches is None else batches:
            if isinstance(entry, _WholeStacks):
                for gid, k in zip(entry.gids, entry.stacks):
                    st = stacks[k]
                    out[gid] = st.reshape(st.shape[0], st.shape[1] if st.dim() > 1 else 1, -1)
                continue
            parts = []
            for runs, perm in entry.parts:
                pieces = [stacks[k] if rows is None else stacks[k].index_select(0, rows) for k, rows in runs]
                parts.append((pieces[0] if len(pieces) == 1 else torch.cat(pieces), perm))
            self._split_batch(out, entry.gids, parts, entry.index, entry.sizes)
        return out

    @staticmethod
    def _split_batch(out: list, gids, parts, index, sizes) -> None:
        """Permute and join the parts of one core batch, order them as the groups want and hand each group its
        chunk, shaped (nodes, first leg, rest) as absorb multiplies it."""
        parts = [st if perm is None else st.permute(perm) for st, perm in parts]
        big = parts[0] if len(parts) == 1 else torch.cat(parts)
        big = big.contiguous() if index is None else big.index_select(0, index)
        big = big.reshape(big.shape[0], big.shape[1] if big.dim() > 1 else 1, -1)
        chunks = big.split(sizes) if len(sizes) > 1 else (big,)
        for gid, chunk in zip(gids, chunks):
            out[gid] = chunk

    def route_for(self, batch: int) -> str:
        """``"sequential"``, ``"log-depth"`` or ``"blocked"``: the route a batch of ``batch`` samples takes (see
        ``route``)."""
        if self.chain is None:
            return "sequential"
        if self.route != "auto":
            return self.route
        if batch not in self._route_cache:
            ch = self.chain
            if len(self._route_cache) > 64:
                self._route_cache.clear()
            route = choose_route(ch.n, ch.d, ch.bond, batch, self.device_type)
            self._route_cache[batch] = route
        return self._route_cache[batch]

    def blocked_block(self, batch: int) -> int:
        """Sites per block of the blocked route for a batch of ``batch`` samples (the cost model's choice)."""
        ch = self.chain
        if ch is None:
            raise ValueError("the blocked route needs a chain (ChainRoute.of covers the structure)")
        if batch not in self._block_cache:
            if len(self._block_cache) > 64:
                self._block_cache.clear()
            self._block_cache[batch] = chain_costs(ch.n, ch.d, ch.bond, batch, self.device_type).blocked_block
        return self._block_cache[batch]

    def sequential_block(self, batch: int) -> int:
        """Sites per step of a chain's sequential route for a batch of ``batch`` samples (the cost model's choice,
        :func:`tnml.plans.chain_costs`)."""
        ch = self.chain
        if ch is None:
            return 1
        if batch not in self._seq_cache:
            if len(self._seq_cache) > 64:
                self._seq_cache.clear()
            self._seq_cache[batch] = chain_costs(ch.n, ch.d, ch.bond, batch, self.device_type).sequential_block
        return self._seq_cache[batch]

    def spines_for(self, batch: int) -> tuple[int, ...]:
        """Which of :attr:`spines` a batch of ``batch`` samples contracts pairwise (indices; the others run level
        by level): all with ``spines="always"``, none with ``"never"``, else those that
        :func:`tnml.plans.spine.spine_times` models faster on this device."""
        if not self.spines or self.spine_mode == "never":
            return ()
        if batch not in self._spine_cache:
            if len(self._spine_cache) > 64:
                self._spine_cache.clear()
            used = []
            for i, sp in enumerate(self.spines):
                t = spine_times(sp.length, sp.bond, _mean_other(sp), batch, self.device_type, sp.k)
                if self.spine_mode == "always" or t["log-depth"] < t["sequential"]:
                    used.append(i)
            self._spine_cache[batch] = tuple(used)
        return self._spine_cache[batch]

    def _schedule(self, used: tuple[int, ...]) -> _Schedule:
        """The gathers for a forward that contracts the spines ``used`` pairwise (built once per set)."""
        if used not in self._schedules:
            skip = frozenset(g for i in used for g in self.spines[i].gids)
            with torch.inference_mode(False):  # cached index tensors: never inference tensors (see compile_plan)
                _, batches, index, sizes = self._gathers(self._dev, skip)
            tops = {self.spines[i].gids[-1]: i for i in used}
            self._schedules[used] = _Schedule(skip, tops, batches, index, sizes)
        return self._schedules[used]

    def describe(self, batch: int = 100) -> str:
        """How a batch of ``batch`` samples is contracted: the route, its blocking or level count, and the spines
        contracted in logarithmic depth."""
        route = self.route_for(batch)
        head = f"tree plan on {self.device_type}, batch {batch}: "
        if route == "log-depth":
            return head + self.chain.describe() + f" (route {self.route!r})"  # type: ignore[union-attr]
        if route == "blocked":
            k = self.blocked_block(batch)
            q = self.chain.blocked_layout(k)[2]  # type: ignore[union-attr]
            return head + (
                f"blocked chain: {self.chain.n} sites, blocks of {k} sites, a vector swept through {q} block "  # type: ignore[union-attr]
                f"matrices per half (route {self.route!r})"
            )
        if self.chain is not None:
            k = self.sequential_block(batch)
            q = self.chain.blocked_layout(k)[2]
            return head + (
                f"sequential chain: {self.chain.n} sites, both halves' vectors swept through blocks of {k} sites, "
                f"{q} steps (route {self.route!r})"
            )
        why = "not a covered chain" if self.chain is None else f"route {self.route!r}"
        text = head + f"sequential, {len(self.groups)} groups level by level ({why})"
        if self.spines:
            used = self.spines_for(batch)
            lengths = ", ".join(str(self.spines[i].length) for i in used)
            sp = max(self.spines, key=lambda s: s.length)
            at = spine_threshold(sp.bond, _mean_other(sp), batch, self.device_type)
            text += (
                f"; {len(self.spines)} spine(s) of {', '.join(str(s.length) for s in self.spines)} tensors, "
                + (f"{len(used)} contracted pairwise (lengths {lengths}, "
                   f"{', '.join(str(self.spines[i].levels) for i in used)} levels)" if used else "none pairwise")
                + f" (spines {self.spine_mode!r}; the cost model contracts spines of bond {sp.bond} pairwise "
                + (f"from {at} tensors at this batch)" if at is not None else "at no length at this batch)")
            )
        return text

    def run_stacks(self, stacks: Sequence[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract (rescaling every few levels; again rescaling every level if that over- or under-flowed) the
        cores given as the stacks of :attr:`layout` (each used whole where a group is one stack, a TTN level).

        Parameters
        ----------
        stacks : list of Tensor
            As :meth:`Plan.run_stacks`.
        phi : Tensor, shape (batch, n_sites, d)

        Returns
        -------
        values : Tensor, shape (batch, out_dim) or (batch,)
        exponent : Tensor, shape (batch,)
            The result is ``values * 2**exponent[:, None]``.
        """
        route = self.route_for(phi.shape[0])
        if route == "log-depth":
            return self.chain.run_stacks(stacks, phi)  # type: ignore[union-attr]
        if route == "blocked":
            return self.chain.run_blocked(stacks, phi, self.blocked_block(phi.shape[0]))  # type: ignore[union-attr]
        if self.chain is not None:
            return self.chain.run_sequential(stacks, phi, self.sequential_block(phi.shape[0]))
        return self._checked(stacks, phi)

    def _checked(self, stacks: Sequence[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Level by level (the spines of :meth:`spines_for` pairwise), rescaling where :attr:`rescale` says; again
        rescaling every group if a sample's result over- or under-flowed."""
        used = self.spines_for(phi.shape[0])
        sched = self._schedule(used) if used else None
        group_cores = self._group_cores_stacked(stacks, None if sched is None else sched.stack_batches)
        if traced(phi):  # torch.compile / torch.func: no host read of the result; rescale every group instead
            return self._run(group_cores, phi, [True] * len(self.groups), stacks, sched)
        out, exp = self._run(group_cores, phi, self.rescale, stacks, sched)
        # every sample's largest |value| must be finite and nonzero (NaN propagates through amax and aminmax). The
        # root is rescaled, so on the happy path each sample's max-abs is in [0.5, 1) and hi / lo is at most 2: one
        # host read of hi / lo, which is not finite exactly when lo is 0 or hi (or either) is inf or NaN
        lo, hi = torch.aminmax(out.detach().abs().reshape(out.shape[0], -1).amax(-1))
        if not math.isfinite(float(hi / lo)):
            out, exp = self._run(group_cores, phi, [True] * len(self.groups), stacks, sched)
        return out, exp

    @staticmethod
    def _operands(grp: _Group, outs: list, exps: list, inputs, batch: int) -> tuple[list, torch.Tensor | None]:
        """The batched vectors a group absorbs (inputs and children's messages) and their summed exponents."""
        operands = []
        exp = None
        if grp.blocks is not None:
            src, k = grp.blocks
            n = len(grp.names)
            parts = outs[src].view(k, n, batch, -1).unbind(0)
            if exps[src] is not None:
                exp = exps[src].view(k, n, batch).sum(0)
        for slot in grp.slots:
            if slot.kind == "input":
                operands.append(next(inputs))
                continue
            if slot.part is not None:
                operands.append(parts[slot.part])
                continue
            if slot.direct or len(slot.sources) == 1:
                msg, e = outs[slot.sources[0]], exps[slot.sources[0]]
            else:
                msg = torch.cat([outs[s] for s in slot.sources])
                parts = [exps[s] for s in slot.sources]
                e = None
                if any(p is not None for p in parts):
                    e = torch.cat([p if p is not None else outs[s].new_zeros(outs[s].shape[:2])
                                   for s, p in zip(slot.sources, parts)])
            if slot.view is not None:
                msg = msg[slot.view]
                e = None if e is None else e[slot.view]
            elif not slot.direct:
                msg = msg.index_select(0, slot.index)
                e = None if e is None else e.index_select(0, slot.index)
            operands.append(msg)
            if e is not None:
                exp = e if exp is None else exp + e
        return operands, exp

    def _run(
        self, group_cores, phi, rescale: list[bool], stacks: Sequence[torch.Tensor] = (),
        sched: _Schedule | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = phi.shape[0]
        inputs = iter(())
        index, sizes = (self.input_index, self.input_sizes) if sched is None else (sched.input_index, sched.input_sizes)
        if index is not None:
            # (total input slots, batch, d, 1): the trailing axis is what absorb broadcasts against
            gathered = phi.transpose(0, 1).index_select(0, index).unsqueeze(-1)
            inputs = iter(gathered.split(sizes) if len(sizes) > 1 else (gathered,))
        outs: list[torch.Tensor | None] = []
        exps: list[torch.Tensor | None] = []  # None: exponent zero (nothing rescaled below)
        merged, absorbed = self.merges_for(batch)
        held: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = {}  # absorbed group -> (core, its inputs)
        for gid, (grp, core, flag) in enumerate(zip(self.groups, group_cores, rescale)):
            if sched is not None and gid in sched.skip:  # a spine's tensor: its top holds the spine's message
                top = sched.tops.get(gid)
                out_e = (None, None) if top is None else run_spine(
                    self.spines[top], stacks, phi.transpose(0, 1), outs, exps
                )
                outs.append(out_e[0])
                exps.append(out_e[1])
                continue
            if gid in merged:  # children's cores contracted in first; the operands are their inputs
                cand = merged[gid]
                child, child_inputs = held.pop(cand.source)
                n = len(grp.names)
                core = merge_children(child, core, cand.k, list(cand.input_dims))
                operands, exp = [op[j * n:(j + 1) * n] for j in range(cand.k) for op in child_inputs], None
            else:
                operands, exp = self._operands(grp, outs, exps, inputs, batch)
            if gid in absorbed:  # contracted into its parents later (tnml.plans.merge)
                held[gid] = (core.reshape(core.shape[0], -1, grp.parent_dim), operands)
                outs.append(None)
                exps.append(None)
                continue
            if operands:
                out = absorb(core, operands)
            else:
                out = core.reshape(core.shape[0], 1, -1).expand(-1, batch, -1)
            if flag:
                out, e = normalize(out, 2)
                exp = e if exp is None else exp + e
            outs.append(out)
            exps.append(exp)
        out = outs[-1][0]  # type: ignore[index]
        exp = exps[-1][0] if exps[-1] is not None else out.new_zeros(out.shape[0])
        if self.groups[-1].squeeze_parent:
            out = out[:, 0]
        return out, exp


def _mean_other(spine: Spine) -> int:
    """The spine tensors' mean product of other leg sizes (the cost model's ``a``), at least 1."""
    return max(1, round(sum(math.prod(o) for o in spine.other) / len(spine.other)))
