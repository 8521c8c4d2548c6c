"""Contraction plan for star networks around one hyper-index (CP decompositions, shallow ConvACs).

Every tensor carries the shared rank index ``r``; each absorbs its inputs to a batched vector over ``r``
(all tensors of one shape in one batched op), the vectors are multiplied by a log-depth pairwise tree with
per-sample rescaling, and the tensor holding the output (if any) maps the result to ``(batch, out_dim)``.
"""

from __future__ import annotations

import torch

from tnml.plans.absorb import absorb
from tnml.plans.scaling import normalize
from tnml.structure import TNStructure


def is_star(structure: TNStructure) -> bool:
    """True if one hyper-index joins all tensors and no other index is shared."""
    hyper = structure.hyper_inds
    if len(hyper) != 1 or structure.bonds:
        return False
    r = hyper[0]
    return len(structure.tensors_of(r)) == len(structure.tensors)


class StarPlan:
    """Compiled contraction of a star network (see module docstring)."""

    kind = "star"

    def __init__(self, structure: TNStructure, device: torch.device | str = "cpu") -> None:
        if not is_star(structure):
            raise ValueError("StarPlan needs one hyper-index shared by every tensor and no other bonds")
        self.structure = structure
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

    def __call__(self, cores: dict[str, torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        phi_t = phi.transpose(0, 1)
        batch = phi.shape[0]
        vals, exps = [], []
        for names, perms, idx in self.groups:
            core = torch.stack([cores[nm].permute(p) for nm, p in zip(names, perms)])
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
        name, perm, idx = self.head  # type: ignore[assignment]
        core = cores[name].permute(perm).unsqueeze(0)  # (1, ins..., R, out)
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
