"""Contraction plan for star networks around one hyper-index (CP decompositions, shallow ConvACs).

Every tensor carries the shared rank index ``r``; each absorbs its inputs to a batched vector over ``r``
(all tensors of one shape in one batched op), the vectors are multiplied by a log-depth pairwise tree with
per-sample rescaling, and the tensor holding the output (if any) maps the result to ``(batch, out_dim)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from tnml.plans.absorb import absorb
from tnml.plans.base import Plan
from tnml.plans.scaling import normalize
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
        for t in structure.tensors:
            dims = dict(zip(t.inds, t.shape))
            ins = sorted((i for i in t.inds if i in site), key=lambda i: -dims[i])
            if out in t.inds:
                perm = tuple(t.inds.index(i) for i in [*ins, r, out])
                self.head = (t.name, perm, torch.tensor([site[i] for i in ins], dtype=torch.long, device=dev))
                continue
            perm = tuple(t.inds.index(i) for i in [*ins, r])
            shape = tuple(dims[i] for i in [*ins, r])
            groups.setdefault(shape, []).append((t.name, perm, [site[i] for i in ins]))
        self.groups = []
        for shape, members in groups.items():
            k = len(shape) - 1
            idx = [torch.tensor([m[2][j] for m in members], dtype=torch.long, device=dev) for j in range(k)]
            self.groups.append((tuple(m[0] for m in members), tuple(m[1] for m in members), idx))
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

    def __call__(self, cores: Mapping[str, torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract per-tensor cores ``{name: tensor}`` with ``phi`` ``(batch, n_sites, d)``; see :class:`Plan`."""
        group_cores = [torch.stack([cores[nm].permute(p) for nm, p in zip(names, perms)])
                       for names, perms, _ in self.groups]
        head = None if self.head is None else cores[self.head[0]]
        return self._run(group_cores, head, phi)

    def run_stacks(self, stacks: Sequence[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`__call__`, with the cores given as the stacks of :attr:`layout`, read directly."""
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
        return self._run(group_cores, head, phi)

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
