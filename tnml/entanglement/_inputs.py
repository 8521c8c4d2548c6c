"""Shared input handling: turn a TNModel / TNStructure / quimb network plus a "part" into named open indices."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import numpy as np
import torch

from tnml.entanglement.partitions import validate_partition, validated_sites
from tnml.model import TNModel
from tnml.quimb_interop import structure_from_quimb
from tnml.structure import TensorSpec, TNStructure
from tnml.validation import check_finite_cores


def is_quimb_network(obj) -> bool:
    try:
        import quimb.tensor as qtn
    except ImportError:  # pragma: no cover - quimb is a dependency
        return False
    return isinstance(obj, qtn.TensorNetwork)


def quimb_part(tn, part) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate ``part`` as outer index names of a quimb network; return (side A inds, side B inds)."""
    outer = list(tn.outer_inds())
    if isinstance(part, str):
        part = [part]
    try:
        items = list(part)
    except TypeError:
        raise TypeError(f"part must be an iterable of outer index names, got {type(part).__name__}") from None
    bad = [p for p in items if not isinstance(p, str)]
    if bad:
        raise TypeError(
            f"for a quimb network part must hold outer index names (str), got {bad[:4]}; its outer indices are "
            f"{outer[:8]}"
        )
    if not items:
        raise ValueError("part is empty; side A must hold at least one outer index")
    dup = sorted({p for p in items if items.count(p) > 1})
    if dup:
        raise ValueError(f"part repeats indices {dup[:8]}; list each once")
    unknown = [p for p in items if p not in set(outer)]
    if unknown:
        raise ValueError(f"part holds {unknown[:8]}, which are not outer indices of the network; those are {outer[:8]}")
    side_a = set(items)
    rest = tuple(i for i in outer if i not in side_a)
    if not rest:
        raise ValueError(f"part holds all {len(outer)} outer indices, so side B is empty; leave at least one out")
    return tuple(i for i in outer if i in side_a), rest


class Network:
    """A network with values, its open indices split into sides A and B (the output leg, if any, removed).

    For a TNModel the split is kept as the sorted input ``sites`` of side A; ``side_a``/``side_b`` (index names in
    site order) are built from them on first access, so routes that work with sites pay nothing per index.
    """

    def __init__(
        self,
        structure: TNStructure,
        cores: dict[str, torch.Tensor],
        side_a: tuple[str, ...] = (),
        side_b: tuple[str, ...] = (),
        numpy_out: bool = False,
        input_array: np.ndarray | None = None,
        sites: np.ndarray | None = None,
    ) -> None:
        self.structure = structure
        self.cores = cores
        self.numpy_out = numpy_out
        #: ``structure.input_inds`` as an object array (site -> index name), shared by every split of one network
        self.input_array = input_array
        #: side A as sorted input sites (int64 array), or None where the sides were given as index names
        self.sites = sites
        self._sides = None if sites is not None else (tuple(side_a), tuple(side_b))

    def _split(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self._sides is None:
            inds = self.input_array
            if inds is None:
                inds = self.input_array = np.array(self.structure.input_inds, dtype=object)
            on_a = np.zeros(len(inds), dtype=bool)
            on_a[self.sites] = True
            self._sides = (tuple(inds[on_a].tolist()), tuple(inds[~on_a].tolist()))
        return self._sides

    @property
    def side_a(self) -> tuple[str, ...]:
        return self._split()[0]

    @property
    def side_b(self) -> tuple[str, ...]:
        return self._split()[1]


def _select_output(structure: TNStructure, cores: dict[str, torch.Tensor], output) -> tuple[TNStructure, dict]:
    """Slice the output leg at component ``output`` (removing the output index)."""
    y = structure.output_ind
    dim = structure.out_dim
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)) or not 0 <= output < dim:
        raise ValueError(
            f"output={output!r} must be an integer in 0..{dim - 1} (a component of the output index "
            f"{y!r} of size {dim})"
        )
    specs, new = [], {}
    for t in structure.tensors:
        c = cores[t.name]
        if y in t.inds:
            ax = t.inds.index(y)
            c = c.select(ax, int(output))
            t = TensorSpec(t.name, t.inds[:ax] + t.inds[ax + 1 :], t.shape[:ax] + t.shape[ax + 1 :])
        specs.append(t)
        new[t.name] = c
    return TNStructure(tuple(specs), structure.input_inds, None), new


def base_network(obj, output=None) -> Network:
    """Structure and values of a TNModel or quimb network (output leg sliced at ``output``); sides left empty."""
    if isinstance(obj, TNModel):
        structure, cores = obj.structure, obj.core_dict()
        if structure.output_ind is not None:
            if output is None:
                raise ValueError(
                    f"the model has an output index {structure.output_ind!r} of size {structure.out_dim}; the "
                    f"spectrum is defined per output component: pass output=k with 0 <= k < {structure.out_dim}"
                )
            structure, cores = _select_output(structure, cores, output)
        elif output is not None:
            raise ValueError(f"output={output!r} was given but the model has no output index; drop it")
        check_finite_cores(cores)
        return Network(structure, cores, numpy_out=False, input_array=np.array(structure.input_inds, dtype=object))
    if is_quimb_network(obj):
        if output is not None:
            raise ValueError(
                "output= applies to TNModels only; for a quimb network select the component yourself "
                "(e.g. tn.isel({ind: k}))"
            )
        outer = tuple(obj.outer_inds())
        structure, arrays = structure_from_quimb(obj, outer)
        cores = {t.name: torch.as_tensor(np.asarray(a)) for t, a in zip(structure.tensors, arrays)}
        check_finite_cores(cores)
        return Network(structure, cores, numpy_out=True)
    raise TypeError(
        f"obj must be a numpy array, torch tensor, tnml.TNModel or quimb TensorNetwork, got {type(obj).__name__}"
    )


def with_sides(net: Network, obj, part) -> Network:
    """``net`` with its open indices split by ``part`` (sites for a TNModel, outer index names for quimb).

    Side A lists its indices in site order, side B the others in site order (quimb: in ``outer_inds()`` order).
    """
    if net.numpy_out:
        side_a, side_b = quimb_part(obj, part)
        return Network(net.structure, net.cores, side_a, side_b, net.numpy_out)
    sites = validated_sites(part, net.structure.n_sites)
    return Network(net.structure, net.cores, numpy_out=False, input_array=net.input_array, sites=sites)


def graph_and_sides(obj, part: Iterable, output_side: str | None = None) -> tuple[nx.MultiGraph, set, set]:
    """The network graph and the terminal nodes of sides A and B (for the min-cut bound)."""
    if output_side not in (None, "A", "B"):
        raise ValueError(f"output_side={output_side!r} must be None (output leg unconstrained), 'A' or 'B'")
    if isinstance(obj, TNModel):
        obj = obj.structure
    if is_quimb_network(obj):
        side_a, side_b = quimb_part(obj, part)
        structure, _ = structure_from_quimb(obj, side_a + side_b)
        return structure.graph(), {f"input:{i}" for i in side_a}, {f"input:{i}" for i in side_b}
    if isinstance(obj, TNStructure):
        sites = set(validate_partition(part, obj.n_sites))
        a = {f"input:{ind}" for s, ind in enumerate(obj.input_inds) if s in sites}
        b = {f"input:{ind}" for s, ind in enumerate(obj.input_inds) if s not in sites}
        if obj.output_ind is not None and output_side is not None:
            (a if output_side == "A" else b).add(f"output:{obj.output_ind}")
        return obj.graph(), a, b
    raise TypeError(f"obj must be a tnml.TNModel, tnml.TNStructure or quimb TensorNetwork, got {type(obj).__name__}")
