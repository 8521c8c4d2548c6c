"""Dense coefficient tensor of a network, with a memory guard."""

from __future__ import annotations

import math

import opt_einsum as oe
import torch

import tnml.io
from tnml import settings
from tnml.structure import TNStructure


def dense_size_bytes(structure: TNStructure, dtype: torch.dtype) -> int:
    """Bytes of the dense tensor over all open indices (inputs in site order, then the output)."""
    sd = structure.size_dict
    n = math.prod(sd[i] for i in structure.input_inds)
    if structure.output_ind is not None:
        n *= sd[structure.output_ind]
    return n * torch.empty((), dtype=dtype).element_size()


def contract_dense(
    structure: TNStructure, cores: dict[str, torch.Tensor], max_bytes: int | None = None
) -> torch.Tensor:
    """Contract every bond and return the tensor of shape ``(*phys_dims[, out_dim])``.

    Raises
    ------
    MemoryLimitError
        If the result would exceed ``max_bytes`` (default ``tnml.settings.max_dense_bytes``).
    """
    limit = settings.max_dense_bytes if max_bytes is None else int(max_bytes)
    dtype = next(iter(cores.values())).dtype
    need = dense_size_bytes(structure, dtype)
    if need > limit:
        raise settings.MemoryLimitError(
            f"the dense tensor needs {tnml.io.format_bytes(need)} (dims {structure.phys_dims[:6]}"
            f"{'...' if structure.n_sites > 6 else ''} over {structure.n_sites} sites) but the limit is "
            f"{tnml.io.format_bytes(limit)}; pass max_bytes=... or set tnml.settings.max_dense_bytes to raise it, "
            "or use a smaller model (densifying is exponential in the number of sites)"
        )
    out = list(structure.input_inds) + ([structure.output_ind] if structure.output_ind is not None else [])
    sym: dict[str, str] = {}
    for t in structure.tensors:
        for i in t.inds:
            sym.setdefault(i, oe.get_symbol(len(sym)))
    eq = ",".join("".join(sym[i] for i in t.inds) for t in structure.tensors) + "->" + "".join(sym[i] for i in out)
    return oe.contract(eq, *[cores[t.name] for t in structure.tensors], backend="torch", optimize="auto")
