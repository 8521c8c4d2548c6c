"""Shared input handling: a network read once (:func:`tnml.network_form.as_network`) and a "part" turned into input
sites (sites of a model or structure, outer index names of a quimb network)."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import numpy as np
import torch

from tnml.entanglement.partitions import validated_sites
from tnml.network_form import as_network
from tnml.options import OutputSide
from tnml.structure import TensorSpec, TNStructure
from tnml.validation import check_finite_cores, check_option


def quimb_part(outer: tuple[str, ...], part) -> tuple[str, ...]:
    """Validate ``part`` as outer index names of a quimb network (``outer``: its ``outer_inds()``); return side A's
    names in ``outer`` order."""
    names = list(outer)
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
            f"{names[:8]}"
        )
    if not items:
        raise ValueError("part is empty; side A must hold at least one outer index")
    dup = sorted({p for p in items if items.count(p) > 1})
    if dup:
        raise ValueError(f"part repeats indices {dup[:8]}; list each once")
    unknown = [p for p in items if p not in set(names)]
    if unknown:
        raise ValueError(f"part holds {unknown[:8]}, which are not outer indices of the network; those are {names[:8]}")
    side_a = set(items)
    if len(side_a) == len(names):
        raise ValueError(f"part holds all {len(names)} outer indices, so side B is empty; leave at least one out")
    return tuple(i for i in names if i in side_a)


def part_sites(structure: TNStructure, part, from_quimb: bool) -> np.ndarray:
    """Side A of ``part`` as sorted input sites (int64) of ``structure``: a model's or structure's sites are
    validated as such; a quimb network's outer index names (``structure.input_inds`` of its form) are mapped to their
    positions."""
    if from_quimb:
        pos = {ind: k for k, ind in enumerate(structure.input_inds)}
        return np.array(sorted(pos[i] for i in quimb_part(structure.input_inds, part)), dtype=np.int64)
    return validated_sites(part, structure.n_sites)


class Network:
    """A network with values, its open indices split into sides A and B (the output leg, if any, removed).

    The split is kept as the sorted input ``sites`` of side A; ``side_a``/``side_b`` (index names in site order)
    are built from them on first access, so routes that work with sites pay nothing per index.
    """

    def __init__(
        self,
        structure: TNStructure,
        cores: dict[str, torch.Tensor],
        from_quimb: bool = False,
        input_array: np.ndarray | None = None,
        sites: np.ndarray | None = None,
    ) -> None:
        self.structure = structure
        self.cores = cores
        #: the network came from quimb (the analysis then returns numpy arrays)
        self.from_quimb = from_quimb
        #: ``structure.input_inds`` as an object array (site -> index name), shared by every split of one network
        self.input_array = np.array(structure.input_inds, dtype=object) if input_array is None else input_array
        #: side A as sorted input sites (int64 array); None before :func:`with_sides`
        self.sites = sites
        self._sides: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def _split(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self._sides is None:
            inds = self.input_array
            on_a = np.zeros(len(inds), dtype=bool)
            if self.sites is not None:
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
    assert dim is not None, "called for a structure with an output leg only"
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
    """Structure and values of a TNModel or quimb network (or a form of one; output leg sliced at ``output``);
    sides left empty."""
    form = as_network(obj, accept=("model", "quimb"), also=("numpy array", "torch tensor"))
    structure, cores = form.structure, form.cores()
    if form.from_quimb:
        if output is not None:
            raise ValueError(
                "output= applies to TNModels only; for a quimb network select the component yourself "
                "(e.g. tn.isel({ind: k}))"
            )
    elif structure.output_ind is not None:
        if output is None:
            raise ValueError(
                f"the model has an output index {structure.output_ind!r} of size {structure.out_dim}; the "
                f"spectrum is defined per output component: pass output=k with 0 <= k < {structure.out_dim}"
            )
        structure, cores = _select_output(structure, cores, output)
    elif output is not None:
        raise ValueError(f"output={output!r} was given but the model has no output index; drop it")
    check_finite_cores(cores)
    if any(c.dtype in (torch.float16, torch.bfloat16) for c in cores.values()):  # no half-precision QR / SVD
        cores = {k: c.float() if c.dtype in (torch.float16, torch.bfloat16) else c for k, c in cores.items()}
    return Network(structure, cores, from_quimb=form.from_quimb)


def with_sides(net: Network, obj, part) -> Network:
    """``net`` with its open indices split by ``part`` (sites for a TNModel, outer index names for quimb).

    Side A lists its indices in site order, side B the others in site order (quimb: in ``outer_inds()`` order).
    ``obj`` is the object ``net`` was read from; the split needs only ``net``.
    """
    sites = part_sites(net.structure, part, net.from_quimb)
    return Network(net.structure, net.cores, from_quimb=net.from_quimb, input_array=net.input_array, sites=sites)


def terminals(structure: TNStructure, sites: np.ndarray, output_side: OutputSide | None = None) -> tuple[set, set]:
    """The terminal nodes of :meth:`TNStructure.graph` on sides A (input ``sites``) and B (the other inputs); the
    output terminal joins side ``output_side`` (None: unconstrained)."""
    on_a = np.zeros(structure.n_sites, dtype=bool)
    on_a[sites] = True
    a = {f"input:{ind}" for ind, x in zip(structure.input_inds, on_a.tolist()) if x}
    b = {f"input:{ind}" for ind, x in zip(structure.input_inds, on_a.tolist()) if not x}
    if structure.output_ind is not None and output_side is not None:
        (a if output_side == "A" else b).add(f"output:{structure.output_ind}")
    return a, b


def check_output_side(output_side) -> None:
    check_option("output_side", output_side, OutputSide | None, fix="None leaves the output leg unconstrained")


def graph_and_sides(obj, part: Iterable, output_side: OutputSide | None = None) -> tuple[nx.MultiGraph, set, set]:
    """The network graph and the terminal nodes of sides A and B (for the min-cut bound)."""
    check_output_side(output_side)
    form = as_network(obj, values=False)
    return form.structure.graph(), *terminals(form.structure, part_sites(form.structure, part, form.from_quimb),
                                              output_side)
