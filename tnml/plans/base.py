"""The interface every compiled contraction plan implements.

A plan is compiled once per (structure, device) and replayed on every forward. It contracts one storage form,
the same way for every plan:

- :meth:`Plan.run_stacks` — the stacked storage of :class:`tnml.storage.CoreStacks`: a list of tensors, stack
  ``k`` of shape ``(len(names_k), *shape_k)`` where ``stack_layout(structure)[k] == (shape_k, names_k)``
  (:func:`tnml.storage.stack_layout`). Each plan reads the rows it needs from the stacks directly (no unbind into
  a dict and stacking again).

Per-tensor storage (``{tensor name: tensor}``, :meth:`Plan.__call__`) is stacked into that layout first
(:meth:`Plan.stack`: one ``torch.stack`` per stack, a view for a one-row stack), so every plan has one path.
Both return ``(values, exponent)``: the contraction is ``values * 2**exponent[:, None]`` (``values`` of shape
``(batch, out_dim)``, or ``(batch,)`` without an output index; ``exponent`` of shape ``(batch,)``).

One-hot inputs: a plan whose :attr:`Plan.takes_indices` is True also contracts inputs given as the *indices* of
one-hot vectors, ``idx`` of shape ``(batch, n_sites)``, by gathering the core slices they select instead of
multiplying dense one-hot vectors (:meth:`Plan.run_indices`, :meth:`Plan.run_stacks_indices`; the same
``(values, exponent)`` as with ``phi = one_hot(idx)``). :meth:`tnml.TNModel.forward` takes that route when its
feature map gives indices (:meth:`tnml.feature_maps.FeatureMap.indices`) and its plan takes them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch

from tnml.storage import stack_layout
from tnml.structure import TNStructure


def traced(t: torch.Tensor) -> bool:
    """True while ``torch.compile`` traces or a ``torch.func`` transform (``vmap``, ``grad``) wraps ``t``: value
    checks that read a tensor on the host (``float(t)``, ``.item()``) must be skipped or made asynchronous there."""
    return torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(t)


class Plan(ABC):
    """A compiled contraction of ``structure`` with batched input vectors (see the module docstring).

    Attributes
    ----------
    kind : str
        ``"tree"``, ``"star"`` or ``"generic"``.
    structure : TNStructure
    layout : list of (shape, names)
        The stacks :meth:`run_stacks` expects, :func:`tnml.storage.stack_layout` of ``structure``.
    where : dict
        ``{tensor name: (stack, row)}`` in ``layout``.
    """

    kind: str = ""
    #: True if the plan implements :meth:`run_indices` / :meth:`run_stacks_indices` (one-hot inputs as indices)
    takes_indices: bool = False

    def __init__(self, structure: TNStructure) -> None:
        self.structure = structure
        self.layout = stack_layout(structure)
        self.where: dict[str, tuple[int, int]] = {
            nm: (k, row) for k, (_, names) in enumerate(self.layout) for row, nm in enumerate(names)
        }

    def stack(self, cores: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """Per-tensor storage ``{name: tensor}`` as the stacks of :attr:`layout` (one ``torch.stack`` per stack; a
        one-row stack is a view)."""
        return [
            cores[names[0]].unsqueeze(0) if len(names) == 1 else torch.stack([cores[nm] for nm in names])
            for _, names in self.layout
        ]

    def __call__(self, cores: Mapping[str, torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract per-tensor cores ``{name: tensor}`` with embedded inputs ``phi`` ``(batch, n_sites, d)``: the
        cores are stacked into :attr:`layout` (:meth:`stack`) and contracted by :meth:`run_stacks`.

        Returns
        -------
        values : Tensor, shape (batch, out_dim) or (batch,)
        exponent : Tensor, shape (batch,)
            The result is ``values * 2**exponent[:, None]``.
        """
        return self.run_stacks(self.stack(cores), phi)

    @abstractmethod
    def run_stacks(self, stacks: Sequence[torch.Tensor], phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract the cores given as the stacks of :attr:`layout` with ``phi`` ``(batch, n_sites, d)``; returns
        ``(values, exponent)`` as :meth:`__call__`."""

    def run_indices(
        self, cores: Mapping[str, torch.Tensor], idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract per-tensor cores with one-hot inputs given as their indices (plans with :attr:`takes_indices`;
        the cores are stacked as in :meth:`__call__`).

        Parameters
        ----------
        cores : dict
            ``{tensor name: tensor}``.
        idx : LongTensor, shape (batch, n_sites)
            Values in ``[0, phys_dim - 1]`` (not checked here: :meth:`tnml.TNModel.forward` validates them).

        Returns
        -------
        values, exponent
            As :meth:`__call__` with ``phi = one_hot(idx)``.
        """
        return self.run_stacks_indices(self.stack(cores), idx)

    def run_stacks_indices(
        self, stacks: Sequence[torch.Tensor], idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`run_indices`, with the cores given as the stacks of :attr:`layout`."""
        raise NotImplementedError(self._no_indices())

    def _no_indices(self) -> str:
        return (
            f"the {self.kind or type(self).__name__} plan does not take one-hot inputs as indices (takes_indices is "
            "False); pass the embedded one-hot vectors instead"
        )

    def unstack(self, stacks: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{name: row view}`` from stacks in :attr:`layout` order (one ``unbind`` per stack), for plans that
        consume tensors one at a time."""
        out: dict[str, torch.Tensor] = {}
        for stack, (_, names) in zip(stacks, self.layout):
            out.update(zip(names, stack.unbind(0)))
        return out
