"""One answer to "which network is this?": a model, a structure or a quimb network, read once into one form.

The analysis (spectra, min-cut bounds, reports, separation rank) and the sliced contraction accept a
:class:`~tnml.TNModel`, a :class:`~tnml.TNStructure` or a ``quimb.tensor.TensorNetwork``. :func:`as_network` turns
any of them into a :class:`NetworkForm` — the structure, the values of its tensors and what it came from — once
per call; everything after works on that form. A quimb network's open indices all become inputs, in
``outer_inds()`` order, so a part given as index names maps to input sites like a model's part.

A model is recognized by what it offers (a ``torch.nn.Module`` with a :class:`~tnml.TNStructure` ``structure`` and a
``core_dict()`` method), so this module, and the contraction plans that use it, need not import :mod:`tnml.model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import quimb.tensor as qtn
import torch

from tnml.quimb_interop import structure_from_quimb
from tnml.structure import TNStructure

__all__ = ["NetworkForm", "NetworkKind", "as_network", "network_kind"]

#: what a network came from
NetworkKind = Literal["model", "structure", "quimb"]

_LABELS: dict[str, str] = {"model": "tnml.TNModel", "structure": "tnml.TNStructure", "quimb": "quimb TensorNetwork"}


@dataclass(frozen=True)
class NetworkForm:
    """A network read once: its structure, the values of its tensors and what it came from.

    Attributes
    ----------
    structure : TNStructure
        For a quimb network: every open index an input, in ``outer_inds()`` order, no output index.
    arrays : tuple of arrays, or None
        One array per ``structure.tensors``, in that order: torch tensors for a model, the network's own arrays
        (numpy or torch) for a quimb network; None for a bare structure or when values were not asked for.
    kind : {"model", "structure", "quimb"}
        What :attr:`source` is.
    source : object
        The object given (a model keeps its feature map, a quimb network its arrays' type).
    """

    structure: TNStructure
    arrays: tuple | None
    kind: NetworkKind
    source: Any

    @property
    def from_quimb(self) -> bool:
        """True for a quimb network (whose results are returned as numpy arrays by the analysis)."""
        return self.kind == "quimb"

    def cores(self) -> dict[str, torch.Tensor]:
        """The values as torch tensors by tensor name (numpy arrays are wrapped without a copy).

        Raises
        ------
        ValueError
            If the form holds no values (a bare structure, or ``as_network(..., values=False)``).
        """
        if self.arrays is None:
            raise ValueError(
                f"this {_LABELS[self.kind]} was read without values; pass a model or a quimb network with "
                "values=True (a TNStructure has geometry only)"
            )
        return {t.name: torch.as_tensor(a) for t, a in zip(self.structure.tensors, self.arrays)}


def _is_model(obj) -> bool:
    return (
        isinstance(obj, torch.nn.Module)
        and isinstance(getattr(obj, "structure", None), TNStructure)
        and callable(getattr(obj, "core_dict", None))
    )


def network_kind(obj) -> NetworkKind | None:
    """``"model"``, ``"structure"`` or ``"quimb"`` for what :func:`as_network` reads, else None.

    Parameters
    ----------
    obj : object
        Anything; nothing is converted.

    Returns
    -------
    {"model", "structure", "quimb"} or None
        The kind :func:`as_network` would read ``obj`` as (a :class:`NetworkForm` gives its own kind), or None
        when it reads none of them.

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> network_kind(MPS(n_sites=3)), network_kind(MPS(n_sites=3).structure), network_kind([1, 2])
    ('model', 'structure', None)
    """
    if isinstance(obj, NetworkForm):
        return obj.kind
    if _is_model(obj):
        return "model"
    if isinstance(obj, TNStructure):
        return "structure"
    if isinstance(obj, qtn.TensorNetwork):
        return "quimb"
    return None


def _alternatives(labels: Sequence[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def as_network(
    obj,
    *,
    accept: Sequence[NetworkKind] = ("model", "structure", "quimb"),
    values: bool = True,
    name: str = "obj",
    also: Sequence[str] = (),
) -> NetworkForm:
    """Read a model, a structure or a quimb network into a :class:`NetworkForm` (a form is returned as it is).

    Parameters
    ----------
    obj : TNModel, TNStructure, quimb.tensor.TensorNetwork or NetworkForm
    accept : sequence of {"model", "structure", "quimb"}
        The kinds the caller takes; another raises ``TypeError``.
    values : bool
        Read the tensors' values (``model.core_dict()``; a quimb network's arrays). False: geometry only.
    name : str
        The caller's parameter name, for the error message.
    also : sequence of str
        Other types the caller takes before calling this (e.g. ``"numpy array"``), named in the error message.

    Returns
    -------
    NetworkForm

    Raises
    ------
    TypeError
        ``obj`` is none of the accepted kinds.

    Examples
    --------
    >>> import quimb.tensor as qtn
    >>> form = as_network(qtn.MPS_rand_state(4, 2, seed=0))
    >>> form.kind, form.structure.input_inds
    ('quimb', ('k0', 'k1', 'k2', 'k3'))
    """
    kind = network_kind(obj)
    if kind is None or kind not in accept:
        labels = list(also) + [_LABELS[k] for k in accept]
        article = "an" if labels[0][0] in "aeiou" else "a"
        raise TypeError(f"{name} must be {article} {_alternatives(labels)}, got {type(obj).__name__}")
    if isinstance(obj, NetworkForm):
        if values and obj.arrays is None and obj.kind != "structure":
            return as_network(obj.source, accept=accept, values=True, name=name, also=also)
        return obj
    if kind == "model":
        structure = obj.structure
        arrays = None
        if values:
            cores = obj.core_dict()
            arrays = tuple(cores[t.name] for t in structure.tensors)
        return NetworkForm(structure, arrays, "model", obj)
    if kind == "structure":
        return NetworkForm(obj, None, "structure", obj)
    read, raw = structure_from_quimb(obj, tuple(obj.outer_inds()), as_numpy=False)
    return NetworkForm(read, tuple(raw) if values else None, "quimb", obj)

