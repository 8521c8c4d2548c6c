"""Contraction plan for any network (loops, parallel bonds, hyper-indices): a pairwise path found once.

The path is searched on the network *without* the batch index (cores plus one vector per input index), with
cotengra; each pairwise step is then replayed with ``torch.einsum``, the batch index added to the operands that
depend on the data. Batched intermediates are rescaled per sample.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import cotengra as ctg
import torch

from tnml.plans.base import Plan
from tnml.plans.scaling import normalize
from tnml.structure import TNStructure

_LETTERS = string.ascii_letters


class GenericPlan(Plan):
    """Compiled pairwise contraction of an arbitrary network.

    Parameters
    ----------
    structure : TNStructure
    device : torch.device or str
    optimize : str
        cotengra path optimizer (``"greedy"`` by default: fast to find; ``"auto-hq"`` for small networks).
    """

    kind = "generic"

    def __init__(self, structure: TNStructure, device: torch.device | str = "cpu", optimize: str = "greedy") -> None:
        super().__init__(structure)
        sd = structure.size_dict
        inputs = [t.inds for t in structure.tensors] + [(i,) for i in structure.input_inds]
        output = (structure.output_ind,) if structure.output_ind is not None else ()
        path = ctg.array_contract_path(inputs, output, sd, optimize=optimize)
        # replay the path symbolically: operands are (inds, batched)
        n_cores = len(structure.tensors)
        ops = [(tuple(ix), k >= n_cores) for k, ix in enumerate(inputs)]
        self.steps = []
        for step in path:
            step = sorted(step, reverse=True)
            taken = [ops.pop(i) for i in step]
            remaining = set(output)
            for ix, _ in ops:
                remaining.update(ix)
            seen: list[str] = []
            for ix, _ in taken:
                for i in ix:
                    if i not in seen:
                        seen.append(i)
            keep = tuple(i for i in seen if i in remaining)
            batched = any(b for _, b in taken)
            letters = {i: _LETTERS[k + 1] for k, i in enumerate(seen)}
            if len(seen) + 1 > len(_LETTERS):
                raise ValueError(
                    f"a pairwise step of this network touches {len(seen)} indices; torch.einsum allows "
                    f"{len(_LETTERS) - 1}: merge parallel bonds or use a smaller network"
                )
            terms = [("a" if b else "") + "".join(letters[i] for i in ix) for ix, b in taken]
            eq = ",".join(terms) + "->" + ("a" if batched else "") + "".join(letters[i] for i in keep)
            self.steps.append((tuple(step), eq, batched))
            ops.append((keep, batched))
        (final_inds, final_batched) = ops[0]
        self.final_batched = final_batched
        self.names = structure.tensor_names
        self._rows = [self.where[nm] for nm in self.names]
        self.input_pos = torch.arange(structure.n_sites, device=torch.device(device))

    def run_stacks(self, stacks: Sequence[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract the cores given as the stacks of :attr:`layout` (each pairwise step takes single tensors: one
        ``unbind`` per stack); see :class:`Plan`."""
        rows = [stack.unbind(0) for stack in stacks]
        return self._run([rows[k][r] for k, r in self._rows], phi)

    def _run(self, cores: list[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Replay the path given the cores in structure order."""
        batch = phi.shape[0]
        zero = torch.zeros(batch, dtype=phi.dtype, device=phi.device)
        ops: list = [(c, None) for c in cores]
        ops += [(v, zero) for v in phi.unbind(1)]
        for step, eq, batched in self.steps:
            taken = [ops.pop(i) for i in step]
            out = torch.einsum(eq, *[t for t, _ in taken])
            if batched:
                exp = sum(e for _, e in taken if e is not None)
                out, e = normalize(out, 1)
                ops.append((out, exp + e))
            else:
                ops.append((out, None))
        out, exp = ops[0]
        if exp is None:  # a network that does not depend on its inputs
            out = out.unsqueeze(0).expand(batch, *out.shape)
            out, exp = normalize(out, 1)
        return out, exp
