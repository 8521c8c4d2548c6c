"""Conversion between tnml structures/values and quimb tensor networks (the interchange format)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import quimb.tensor as qtn
import torch

from tnml.structure import TensorSpec, TNStructure


def to_quimb(structure: TNStructure, cores: dict[str, torch.Tensor]) -> qtn.TensorNetwork:
    """A quimb network with the current values (numpy copies); each tensor is tagged with its name."""
    ts = []
    for t in structure.tensors:
        data = cores[t.name].detach().cpu().numpy().copy()
        ts.append(qtn.Tensor(data, inds=t.inds, tags={t.name}))
    return qtn.TensorNetwork(ts, virtual=True)


def mps_to_quimb(structure: TNStructure, cores: dict[str, torch.Tensor]) -> qtn.TensorNetwork:
    """An MPS (tensors ``site{i}`` with indices ``(b{i-1}, x{i}, b{i})``) as quimb's ``MatrixProductState``.

    Site tags are the tensor names (``site_tag_id="site{}"``), physical indices ``x{i}`` and bonds ``b{i}`` keep
    their names, so ``canonize``, ``entropy``, ``schmidt_values``, ``compress`` work on the result directly. With an
    output leg (or fewer than two sites) there is no MPS form: the plain network of :func:`to_quimb` is returned.
    """
    n = structure.n_sites
    if structure.output_ind is not None or n < 2:
        return to_quimb(structure, cores)
    arrays = [cores[f"site{i}"].detach().cpu().numpy().copy() for i in range(n)]
    mps = qtn.MatrixProductState(arrays, shape="lpr", site_ind_id="x{}", site_tag_id="site{}")
    mps.reindex_({mps.bond(i, i + 1): f"b{i}" for i in range(n - 1)})
    return mps


def structure_from_quimb(
    tn: qtn.TensorNetwork, input_inds: Sequence[str], output_ind: str | None = None, *, as_numpy: bool = True
) -> tuple[TNStructure, list]:
    """Read a quimb network's structure and values.

    Tensor names are the tensor's only tag when it has exactly one unused tag, else ``"T{k}"``. The values come as
    numpy arrays (``as_numpy=True``) or as the network holds them (numpy or torch; ``as_numpy=False``).
    """
    if not isinstance(tn, qtn.TensorNetwork):
        raise TypeError(f"tn must be a quimb.tensor.TensorNetwork, got {type(tn).__name__}")
    missing = [i for i in input_inds if i not in tn.ind_map]
    if missing:
        raise ValueError(
            f"input_inds {missing[:5]} are not indices of the network; its outer indices are "
            f"{list(tn.outer_inds())[:8]}"
        )
    if output_ind is not None and output_ind not in tn.ind_map:
        raise ValueError(
            f"output_ind={output_ind!r} is not an index of the network; outer indices are {list(tn.outer_inds())[:8]}"
        )
    if output_ind is not None and output_ind in set(input_inds):
        raise ValueError(
            f"output_ind={output_ind!r} is also one of input_inds; an open index either takes data or carries the "
            "output: remove it from input_inds or choose another output_ind"
        )
    specs, arrays, used = [], [], set()
    for k, t in enumerate(tn.tensors):
        tags = sorted(t.tags)
        name = tags[0] if len(tags) == 1 and tags[0] not in used else f"T{k}"
        used.add(name)
        data = np.asarray(t.data) if as_numpy else t.data
        specs.append(TensorSpec(name, tuple(t.inds), tuple(int(d) for d in t.shape)))
        arrays.append(data)
    return TNStructure(tuple(specs), tuple(input_inds), output_ind), arrays


def torch_dtype_of(arrays: Sequence[np.ndarray]) -> torch.dtype:
    """The torch dtype that holds every array without loss: numpy's common type of the floating/complex arrays
    (float32 stays float32, any float64 makes float64, any complex makes complex); the default dtype when none is
    floating (e.g. integer or boolean networks).

    Examples
    --------
    >>> torch_dtype_of([np.zeros(2, np.float32), np.zeros(2, np.float64)])
    torch.float64
    >>> torch_dtype_of([np.zeros(2, np.float32), np.zeros(2, np.complex64)])
    torch.complex64
    """
    kinds = [np.asarray(a).dtype for a in arrays if np.asarray(a).dtype.kind in "fc"]
    if not kinds:
        return torch.get_default_dtype()
    common = np.result_type(*kinds)
    if common == np.float16:
        return torch.float16
    return torch.from_numpy(np.zeros(0, dtype=common)).dtype

