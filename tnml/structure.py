"""Named structure of a tensor network: tensors, their indices and sizes, and which open indices are what.

A :class:`TNStructure` is immutable and hashable, so compiled contraction plans can be cached on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx

from tnml.validation import ArgumentTypeError, is_int


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a network: a name, its index names and their sizes (same order as the data's axes).

    Parameters
    ----------
    name : str
        Unique name of the tensor inside its network (also the key of its parameter).
    inds : tuple of str
        Index names, one per axis.
    shape : tuple of int
        Size of each axis.
    """

    name: str
    inds: tuple[str, ...]
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inds", tuple(self.inds))
        for s in self.shape:
            if not is_int(s):
                raise ArgumentTypeError(
                    f"tensor {self.name!r}: shape entries must be integers, got {s!r} in shape={tuple(self.shape)}"
                )
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if len(self.inds) != len(self.shape):
            raise ValueError(
                f"tensor {self.name!r}: inds has {len(self.inds)} names but shape has {len(self.shape)} sizes; "
                "give one size per index"
            )
        if len(set(self.inds)) != len(self.inds):
            raise ValueError(
                f"tensor {self.name!r}: repeated index in inds={self.inds}; a trace inside one tensor is not "
                "supported, contract it away before building the structure"
            )
        for ind, size in zip(self.inds, self.shape):
            if size < 1:
                raise ValueError(f"tensor {self.name!r}: index {ind!r} has size {size}; sizes must be >= 1")


@dataclass(frozen=True)
class TNStructure:
    """The structure of a tensor-network model.

    Parameters
    ----------
    tensors : sequence of TensorSpec
        The tensors; their names must be unique.
    input_inds : sequence of str
        Open indices that take the embedded data, in site order (site ``i`` is ``input_inds[i]``).
    output_ind : str or None
        The open index that carries the model's output (e.g. class scores), or None for a scalar model.

    Notes
    -----
    An index shared by two tensors is a *bond*; one shared by three or more is a *hyper-index* (e.g. the rank
    index of a CP decomposition). Every index that appears in exactly one tensor must be an input or the output.
    """

    tensors: tuple[TensorSpec, ...]
    input_inds: tuple[str, ...]
    output_ind: str | None = None
    _ind_tensors: dict = field(default=None, init=False, repr=False, compare=False, hash=False)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", tuple(self.tensors))
        object.__setattr__(self, "input_inds", tuple(self.input_inds))
        if not self.tensors:
            raise ValueError("tensors is empty; a network needs at least one tensor")
        names = [t.name for t in self.tensors]
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise ValueError(f"tensor names must be unique; repeated: {dup}")
        where: dict[str, list[int]] = {}
        size: dict[str, int] = {}
        for k, t in enumerate(self.tensors):
            for ind, s in zip(t.inds, t.shape):
                where.setdefault(ind, []).append(k)
                if size.setdefault(ind, s) != s:
                    raise ValueError(
                        f"index {ind!r} has size {size[ind]} in one tensor and {s} in tensor {t.name!r}; "
                        "a shared index must have one size"
                    )
        object.__setattr__(self, "_ind_tensors", {i: tuple(v) for i, v in where.items()})
        if len(set(self.input_inds)) != len(self.input_inds):
            raise ValueError(f"input_inds has repeated names: {self.input_inds}")
        if self.output_ind is not None and self.output_ind in self.input_inds:
            raise ValueError(
                f"output_ind={self.output_ind!r} is also in input_inds; an open index is either an input or the "
                "output; rename one of them"
            )
        declared = set(self.input_inds) | ({self.output_ind} if self.output_ind is not None else set())
        for ind in declared:
            if ind not in where:
                raise ValueError(f"open index {ind!r} is not an index of any tensor; check input_inds/output_ind")
            if len(where[ind]) != 1:
                raise ValueError(
                    f"open index {ind!r} appears in {len(where[ind])} tensors; an input or output index must "
                    "belong to exactly one tensor"
                )
        dangling = [i for i, v in where.items() if len(v) == 1 and i not in declared]
        if dangling:
            raise ValueError(
                f"indices {sorted(dangling)} are open but neither inputs nor the output; list them in input_inds, "
                "make one the output_ind, or contract them away"
            )

    # ----------------------------------------------------------------- derived views
    @property
    def n_sites(self) -> int:
        return len(self.input_inds)

    @property
    def size_dict(self) -> dict[str, int]:
        return {i: t.shape[t.inds.index(i)] for t in self.tensors for i in t.inds}

    @property
    def tensor_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tensors)

    def tensor(self, name: str) -> TensorSpec:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"no tensor named {name!r}; known: {self.tensor_names[:8]}...")

    def tensors_of(self, ind: str) -> tuple[int, ...]:
        """Positions of the tensors that carry index ``ind``."""
        return self._ind_tensors[ind]

    @property
    def bonds(self) -> tuple[str, ...]:
        """Indices shared by exactly two tensors."""
        return tuple(i for i, v in self._ind_tensors.items() if len(v) == 2)

    @property
    def hyper_inds(self) -> tuple[str, ...]:
        """Indices shared by three or more tensors."""
        return tuple(i for i, v in self._ind_tensors.items() if len(v) > 2)

    @property
    def phys_dims(self) -> tuple[int, ...]:
        sd = self.size_dict
        return tuple(sd[i] for i in self.input_inds)

    @property
    def out_dim(self) -> int | None:
        return None if self.output_ind is None else self.size_dict[self.output_ind]

    def n_params(self) -> int:
        total = 0
        for t in self.tensors:
            p = 1
            for s in t.shape:
                p *= s
            total += p
        return total

    def graph(self) -> nx.MultiGraph:
        """The network as a networkx multigraph.

        Nodes are tensor names (``kind="tensor"``, with ``inds`` and ``shape``), one terminal node per open leg
        (``"input:<ind>"`` with ``kind="input"`` and its ``site``, or ``"output:<ind>"`` with ``kind="output"``)
        and one node per hyper-index (``"hyper:<ind>"``, ``kind="hyper"``). Every edge carries ``ind`` and
        ``dim``; parallel bonds between two tensors are parallel edges.
        """
        g = nx.MultiGraph()
        for t in self.tensors:
            g.add_node(t.name, kind="tensor", inds=t.inds, shape=t.shape)
        names = self.tensor_names
        sd = self.size_dict
        site = {ind: s for s, ind in enumerate(self.input_inds)}
        for ind, owners in self._ind_tensors.items():
            if len(owners) == 1:
                if ind in site:
                    node = f"input:{ind}"
                    g.add_node(node, kind="input", site=site[ind], ind=ind)
                else:
                    node = f"output:{ind}"
                    g.add_node(node, kind="output", ind=ind)
                g.add_edge(names[owners[0]], node, ind=ind, dim=sd[ind])
            elif len(owners) == 2:
                g.add_edge(names[owners[0]], names[owners[1]], ind=ind, dim=sd[ind])
            else:
                node = f"hyper:{ind}"
                g.add_node(node, kind="hyper", ind=ind, dim=sd[ind])
                for k in owners:
                    g.add_edge(names[k], node, ind=ind, dim=sd[ind])
        return g

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_arrays(
        cls,
        tensors: Iterable[tuple[str, Sequence[str], Sequence[int]]],
        input_inds: Sequence[str],
        output_ind: str | None = None,
    ) -> TNStructure:
        """Build from ``(name, inds, shape)`` triples."""
        return cls(tuple(TensorSpec(n, tuple(i), tuple(s)) for n, i, s in tensors), tuple(input_inds), output_ind)
