"""Contraction plan for star networks around one hyper-index (CP decompositions, shallow ConvACs).

Every tensor carries the shared rank index ``r``; each absorbs its inputs to a batched vector over ``r``
(all tensors of one shape in one batched op), the vectors are multiplied by a log-depth pairwise tree with
per-sample rescaling, and the tensor holding the output (if any) maps the result to ``(batch, out_dim)``.

One-hot inputs given as indices (:attr:`StarPlan.takes_indices`) skip the absorb: each tensor's vector over ``r``
is the core slice its input indices select, so all of them come from one gather; every entry is scaled to
``[0.5, 1)`` by its own power of two (:func:`tnml.plans.scaling.normalize_entries`, applied to the cores, not to
the gathered copy), the mantissas are multiplied over the tensors in chunks short enough never to underflow
(:func:`tnml.plans.scaling.safe_product_length`: 125 factors in float32) and the exponents are summed, so the
result carries the same per-sample exponent as the dense route.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tnml.plans.absorb import absorb
from tnml.plans.base import Plan
from tnml.plans.scaling import normalize, normalize_entries, safe_product_length
from tnml.structure import TNStructure


def is_star(structure: TNStructure) -> bool:
    """True if one hyper-index joins all tensors and no other index is shared."""
    hyper = structure.hyper_inds
    if len(hyper) != 1 or structure.bonds:
        return False
    r = hyper[0]
    return len(structure.tensors_of(r)) == len(structure.tensors)


class StarPlan(Plan):
    """Compiled contraction of a star network (see module docstring).

    The factors of one (permuted) shape are contracted together; with stacked storage (:meth:`run_stacks`) each
    group is read from the stacks it lives in — a whole stack as it is where the group is one stack (a CP's
    factors), else runs of its rows — so the factors are never unbound and stacked again.
    """

    kind = "star"
    takes_indices = True

    def __init__(self, structure: TNStructure, device: torch.device | str = "cpu") -> None:
        if not is_star(structure):
            raise ValueError("StarPlan needs one hyper-index shared by every tensor and no other bonds")
        super().__init__(structure)
        dev = torch.device(device)
        r = structure.hyper_inds[0]
        site = {ind: s for s, ind in enumerate(structure.input_inds)}
        out = structure.output_ind
        groups: dict[tuple, list] = {}
        self.head = None  # (name, perm, input sites): the tensor with the output index
        self.head_sites: list[int] = []
        for t in structure.tensors:
            dims = dict(zip(t.inds, t.shape))
            ins = sorted((i for i in t.inds if i in site), key=lambda i: -dims[i])
            if out in t.inds:
                perm = tuple(t.inds.index(i) for i in [*ins, r, out])
                self.head = (t.name, perm, torch.tensor([site[i] for i in ins], dtype=torch.long, device=dev))
                self.head_sites = [site[i] for i in ins]
                continue
            perm = tuple(t.inds.index(i) for i in [*ins, r])
            shape = tuple(dims[i] for i in [*ins, r])
            groups.setdefault(shape, []).append((t.name, perm, [site[i] for i in ins]))
        self.groups = []
        #: one-hot route: per group, (first row in the concatenated table, rows per member, strides of its input legs)
        self.gather_rows: list[tuple[int, int, tuple[int, ...]]] = []
        self.gather_sites: list[list[torch.Tensor | None]] = []
        offset = 0
        for shape, members in groups.items():
            k = len(shape) - 1
            idx = [torch.tensor([m[2][j] for m in members], dtype=torch.long, device=dev) for j in range(k)]
            self.groups.append((tuple(m[0] for m in members), tuple(m[1] for m in members), idx))
            rows = math.prod(shape[:-1])
            self.gather_rows.append((offset, rows, tuple(math.prod(shape[j + 1 : -1]) for j in range(k))))
            # the input sites of each leg, None where they are all sites in order (a CP: no column gather)
            self.gather_sites.append([None if m.tolist() == list(range(structure.n_sites)) else m for m in idx])
            offset += rows * len(members)
        self._build_stack_reads(dev)

    def _build_stack_reads(self, dev: torch.device) -> None:
        """How each group's stacked core is read from the stacks of :attr:`layout`: runs of consecutive members
        that live in one stack with one axis permutation, each ``(stack, rows, perm)`` with ``rows`` None where the
        run is the whole stack in order (no copy), a slice where it is a contiguous block, else an index."""
        self.stack_reads: list[list[tuple[int, torch.Tensor | slice | None, tuple[int, ...]]]] = []
        for names, perms, _ in self.groups:
            runs: list[tuple[int, list[int], tuple[int, ...]]] = []
            for nm, perm in zip(names, perms):
                k, row = self.where[nm]
                if runs and runs[-1][0] == k and runs[-1][2] == perm:
                    runs[-1][1].append(row)
                else:
                    runs.append((k, [row], perm))
            reads: list[tuple[int, torch.Tensor | slice | None, tuple[int, ...]]] = []
            for k, rows, perm in runs:
                full = rows == list(range(len(self.layout[k][1])))
                block = rows == list(range(rows[0], rows[0] + len(rows)))
                sel: torch.Tensor | slice | None
                if full:
                    sel = None
                elif block:
                    sel = slice(rows[0], rows[0] + len(rows))
                else:
                    sel = torch.tensor(rows, dtype=torch.long, device=dev)
                reads.append((k, sel, (0, *(a + 1 for a in perm))))
            self.stack_reads.append(reads)
        self.head_where = None if self.head is None else self.where[self.head[0]]

    @staticmethod
    def _product(vals: torch.Tensor, exps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Multiply ``vals`` (g, b, R) over g by a log-depth pairwise tree with rescaling."""
        while vals.shape[0] > 1:
            g = vals.shape[0]
            half = g // 2
            prod = vals[:half] * vals[half : 2 * half]
            pexp = exps[:half] + exps[half : 2 * half]
            prod, e = normalize(prod, 2)
            pexp = pexp + e
            if g % 2:
                prod = torch.cat([prod, vals[2 * half :]])
                pexp = torch.cat([pexp, exps[2 * half :]])
            vals, exps = prod, pexp
        return vals[0], exps[0]

    def run_stacks(self, stacks: Sequence[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract the cores given as the stacks of :attr:`layout`, read directly; see :class:`Plan`."""
        return self._run(*self._from_stacks(stacks), phi)

    def run_stacks_indices(
        self, stacks: Sequence[torch.Tensor], idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract the stacks of :attr:`layout`, read directly, with one-hot inputs given as indices
        ``(batch, n_sites)``; see :meth:`Plan.run_indices`."""
        return self._gather(*self._from_stacks(stacks), idx)

    def _from_stacks(self, stacks: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Each group's stacked, permuted cores ``(members, ins..., R)`` and the head tensor, read from the stacks
        of :attr:`layout`."""
        group_cores = []
        for reads in self.stack_reads:
            parts = []
            for k, sel, perm in reads:
                st = stacks[k]
                if isinstance(sel, torch.Tensor):
                    st = st.index_select(0, sel)
                elif sel is not None:
                    st = st[sel]
                parts.append(st.permute(perm))
            group_cores.append(parts[0] if len(parts) == 1 else torch.cat(parts))
        head = None if self.head_where is None else stacks[self.head_where[0]][self.head_where[1]]
        return group_cores, head

    def _run(
        self, group_cores: list[torch.Tensor], head: torch.Tensor | None, phi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract given each group's stacked, permuted cores ``(members, ins..., R)`` and the head tensor."""
        phi_t = phi.transpose(0, 1)
        batch = phi.shape[0]
        vals, exps = [], []
        for (names, _, idx), core in zip(self.groups, group_cores):
            if idx:
                v = absorb(core, [phi_t.index_select(0, i) for i in idx])
            else:
                v = core.unsqueeze(1).expand(len(names), batch, -1)
            v, e = normalize(v, 2)
            vals.append(v)
            exps.append(e)
        if vals:
            prod, exp = self._product(torch.cat(vals), torch.cat(exps))
        else:
            prod, exp = None, None
        if self.head is None:
            return prod.sum(-1), exp  # type: ignore[union-attr,return-value]
        _, perm, idx = self.head  # type: ignore[assignment]
        core = head.permute(perm).unsqueeze(0)  # type: ignore[union-attr]  # (1, ins..., R, out)
        ops = [phi_t.index_select(0, idx[j : j + 1]) for j in range(len(idx))]  # type: ignore[arg-type]
        if prod is not None:
            ops.append(prod.unsqueeze(0))
            exp_total = exp
        else:
            exp_total = torch.zeros(batch, dtype=phi.dtype, device=phi.device)
        if ops:
            y = absorb(core, ops)[0]
        else:
            y = core.reshape(1, -1).sum(0, keepdim=True).expand(batch, -1)
        y, e = normalize(y, 1)
        return y, exp_total + e  # type: ignore[operator]

    def _gather(
        self, group_cores: list[torch.Tensor], head: torch.Tensor | None, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The one-hot route of :meth:`_run` (see the module docstring): ``idx`` ``(batch, n_sites)`` int64."""
        batch = idx.shape[0]
        if group_cores:
            prod, exp = self._gathered_product(group_cores, idx)
            exp_total = exp.to(prod.dtype)
        elif head is not None:  # no tensor besides the head: the product over none is one
            prod = head.new_ones(batch, head.permute(self.head[1]).shape[-2])  # type: ignore[index]
            exp_total = head.new_zeros(batch)
        else:  # unreachable: a star has at least one tensor
            raise ValueError("empty star network")
        if self.head is None:
            return prod.sum(-1), exp_total
        core = head.permute(self.head[1])  # type: ignore[union-attr]  # (ins..., R, out)
        k = len(self.head_sites)
        if k:
            flat = idx[:, self.head_sites[0]] * math.prod(core.shape[1:k])
            for j in range(1, k):
                flat = flat + idx[:, self.head_sites[j]] * math.prod(core.shape[j + 1 : k])
            rows = core.reshape(-1, *core.shape[k:]).index_select(0, flat)  # (batch, R, out)
            y = torch.bmm(prod.unsqueeze(1), rows).squeeze(1)
        else:
            y = prod @ core
        y, e = normalize(y, 1)
        return y, exp_total + e

    def _gathered_product(
        self, group_cores: list[torch.Tensor], idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The product over every tensor of the core slices ``idx`` selects, as ``values * 2**exponent[:, None]``.

        Returns
        -------
        values : Tensor, shape (batch, R)
            Max-abs over ``R`` in [0.5, 1) for every sample (or all zero).
        exponent : Tensor, shape (batch,), real dtype
        """
        batch, rank = idx.shape[0], group_cores[0].shape[-1]
        table = torch.cat([c.reshape(-1, rank) for c in group_cores]) if len(group_cores) > 1 else (
            group_cores[0].reshape(-1, rank))
        mant, expo = normalize_entries(table)  # on the cores, (rows, R): small
        flats = []  # row of the table each factor reads, (batch, factors)
        for sites, (first, rows, strides), core in zip(self.gather_sites, self.gather_rows, group_cores):
            flat = torch.arange(first, first + rows * core.shape[0], rows, device=idx.device)
            for site, stride in zip(sites, strides):
                leg = idx if site is None else idx.index_select(1, site)
                flat = flat + (leg if stride == 1 else leg * stride)
            flats.append(flat.expand(batch, core.shape[0]))
        factors = sum(c.shape[0] for c in group_cores)
        n, c, pad = self._chunks(factors, safe_product_length(mant.dtype))
        if pad:  # pad every sample's factors with a row of ones (exponent 0) to n chunks of c
            mant = torch.cat([mant, mant.new_ones(1, rank)])
            expo = torch.cat([expo, expo.new_zeros(1, rank)])
            flats.append(torch.full((batch, pad), len(table), dtype=torch.long, device=idx.device))
        flat = torch.cat(flats, 1) if len(flats) > 1 else flats[0]
        vals = mant.index_select(0, flat.reshape(-1)).view(batch, n, c, rank).prod(2)  # (batch, n, R)
        exp = nn.functional.embedding_bag(flat, expo, mode="sum")  # (batch, R): the factors' exponents summed
        vals, e = normalize_entries(vals)
        exp = exp + e.sum(1)
        while vals.shape[1] > 1:  # more chunks than one chunk may hold (> 15 000 factors in float32)
            n, c, pad = self._chunks(vals.shape[1], safe_product_length(vals.dtype))
            if pad:
                vals = torch.cat([vals, vals.new_ones(batch, pad, rank)], 1)
            vals, e = normalize_entries(vals.view(batch, n, c, rank).prod(2))
            exp = exp + e.sum(1)
        vals = vals[:, 0]
        top = self._common_exponent(vals, exp)
        # exp - top <= 0 for every non-zero component; a vanished one may exceed it (its factors without the zero
        # are larger): capped so that 2**(exp - top) stays finite (its value is 0 either way; its gradient, the
        # product of its other factors, is exact below the cap, 2**(max exponent / 2) times the output)
        cap = int(math.log2(torch.finfo(exp.dtype).max)) // 2
        return vals * torch.exp2((exp - top.unsqueeze(-1)).clamp_max(cap)), top

    @staticmethod
    def _common_exponent(vals: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
        """Per sample, the largest exponent over the non-zero entries of ``vals`` ``(b, R)`` (zero entries never
        set the scale), or over all entries where every entry is zero; shape ``(b,)``."""
        top_all = exp.amax(-1)
        top = torch.where(vals.detach() != 0, exp, -math.inf).amax(-1)
        return torch.where(torch.isfinite(top), top, top_all)

    @staticmethod
    def _chunks(factors: int, longest: int) -> tuple[int, int, int]:
        """Split ``factors`` into ``n`` chunks of ``c <= longest`` (balanced), ``pad = n * c - factors`` short."""
        n = -(-factors // longest)
        c = -(-factors // n)
        return n, c, n * c - factors
