"""Stacked parameter storage: tensors of one shape live in rows of a shared ``nn.Parameter``.

A 784-site MPS has 784 tensors but only four shapes. Storing one parameter per tensor costs, per train step,
one gradient accumulation per tensor, an optimizer that walks 784 parameters (fused Adam: ~8 ms against
~0.2 ms for one stacked parameter of the same size, measured on a 2-core CPU) and a ``torch.stack`` of all
cores in every forward (the plans contract identical tensors together). :class:`CoreStacks` keeps one
parameter per *stack* instead (:func:`stack_layout`: one per shape class, or one per tree level where a class
spans few levels); each tensor is a row (a view), so reading and in-place writing a single tensor still works,
and the tree plan reads the stacks as they are."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from tnml.rooting import is_tree, tree_levels
from tnml.structure import TNStructure

#: a tree's shape class spread over at most this many plan groups (TTN levels) gets one stack per group
MAX_GROUP_STACKS = 8


def stack_layout(structure: TNStructure) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
    """The stacks of a structure's tensors: tensors of one shape share a stack, in order of first appearance.

    In a tree network (:func:`tnml.rooting.is_tree`) rows are in the order the tree plan contracts them
    (:func:`tnml.rooting.tree_levels`: by level, each level slot-major), and a shape class that spans at most
    :data:`MAX_GROUP_STACKS` plan groups (a TTN's inner nodes: one group per level) gets one stack per group.
    The plan then uses each stack whole: no ``index_select`` (whose backward zero-fills and scatters a gradient
    the size of the stack) and no ``split`` (whose backward concatenates the levels' gradients into a fresh
    stack-sized tensor: 18 ms of a 200 ms bond-64 TTN step). A chain's bulk (hundreds of two-member groups) stays
    one stack, so the optimizer still sees a handful of parameters.

    Returns
    -------
    list of (shape, names)
        Stack ``k`` has shape ``(len(names), *shape)``; tensor ``names[r]`` is its row ``r``.
    """
    if not is_tree(structure):
        return _classes(structure)
    tensors = structure.tensors
    runs: dict[tuple[int, ...], list[list[str]]] = {}
    for t in tensors:  # classes in order of first appearance
        runs.setdefault(tuple(t.shape), [])
    for _, members in tree_levels(structure).groups:
        by_shape: dict[tuple[int, ...], list[str]] = {}
        for k in members:
            by_shape.setdefault(tuple(tensors[k].shape), []).append(tensors[k].name)
        for shape, names in by_shape.items():
            runs[shape].append(names)
    out: list[tuple[tuple[int, ...], tuple[str, ...]]] = []
    for shape, groups in runs.items():
        if len(groups) <= MAX_GROUP_STACKS:
            out.extend((shape, tuple(names)) for names in groups)
        else:
            out.append((shape, tuple(nm for names in groups for nm in names)))
    return out


def _classes(structure: TNStructure) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
    """One stack per shape, rows in structure order (the layout of non-tree networks, and of state_dict
    version 1 for every network)."""
    classes: dict[tuple[int, ...], list[str]] = {}
    for t in structure.tensors:
        classes.setdefault(tuple(t.shape), []).append(t.name)
    return [(shape, tuple(names)) for shape, names in classes.items()]


class CoreStacks(nn.Module):
    """Mapping ``key -> tensor`` over stacked parameters (one ``nn.Parameter`` per shape class).

    Reads like the ``nn.ParameterDict`` of per-tensor storage (``keys``, ``values``, ``items``, ``[key]``), but
    values are views into the stacks: in-place writes under ``torch.no_grad()`` change the parameter, and
    gradients live on the stacks (see :meth:`grad`). A ``state_dict`` written with per-tensor storage
    (``cores.<key>`` entries) loads too: its tensors are copied into their rows.

    Parameters
    ----------
    structure : TNStructure
    keys : list of str
        The ``state_dict`` key of each tensor of ``structure`` (same order).
    device, dtype : factory kwargs.
    """

    #: state_dict version: 2 stacks a tree as the plan reads it (:func:`stack_layout`); version-1 stacks (one per
    #: shape, structure order) are converted on load
    _version = 2

    def __init__(self, structure: TNStructure, keys: list[str], device=None, dtype=None) -> None:
        super().__init__()
        key_of = dict(zip(structure.tensor_names, keys))
        self.layout = stack_layout(structure)
        factory = {"device": device, "dtype": dtype}
        self.stacks = nn.ParameterList(
            [nn.Parameter(torch.empty((len(names), *shape), **factory)) for shape, names in self.layout]
        )
        self.layout_keys = [tuple(key_of[nm] for nm in names) for _, names in self.layout]
        self.where: dict[str, tuple[int, int]] = {
            key: (k, row) for k, ks in enumerate(self.layout_keys) for row, key in enumerate(ks)
        }
        self._keys = list(keys)
        self._v1_layout = [tuple(key_of[nm] for nm in names) for _, names in _classes(structure)]

    def stack_list(self) -> list[torch.Tensor]:
        """The stacked parameters, in layout order (read from the list's storage: no per-call overhead)."""
        params = self.stacks._parameters
        return [params[str(k)] for k in range(len(self.layout))]  # type: ignore[misc]

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self.where:
            more = "..." if len(self._keys) > 5 else ""
            raise KeyError(f"no tensor {key!r}; the tensors are {self._keys[:5]}{more}")
        k, row = self.where[key]
        return self.stack_list()[k][row]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self.where

    def keys(self) -> list[str]:
        return list(self._keys)

    def values(self) -> list[torch.Tensor]:
        views = self.unbound()
        return [views[k] for k in self._keys]

    def items(self) -> list[tuple[str, torch.Tensor]]:
        views = self.unbound()
        return [(k, views[k]) for k in self._keys]

    def unbound(self) -> dict[str, torch.Tensor]:
        """``{key: view}`` for every tensor, one ``unbind`` per stack (one autograd op per stack, not per tensor)."""
        out: dict[str, torch.Tensor] = {}
        for stack, keys in zip(self.stack_list(), self.layout_keys):
            out.update(zip(keys, stack.unbind(0)))
        return out

    def grad(self, key: str) -> torch.Tensor | None:
        """The gradient of one tensor (a view into its stack's ``.grad``), or None before any backward."""
        k, row = self.where[key]
        g = self.stack_list()[k].grad
        return None if g is None else g[row]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Accept per-tensor entries (``prefix + key``, as written by per-tensor storage): they are stacked into
        ``prefix + "stacks.<k>"`` entries before the stacks load, so shape checks and strictness work as usual."""
        # version 1 stored one stack per shape in structure order: unstack it into per-tensor entries, which load
        # below. A state_dict without metadata (e.g. rebuilt as a plain dict) is taken to be current.
        if (local_metadata or {}).get("version", CoreStacks._version) < 2 and self._v1_layout != self.layout_keys:
            for k, keys in enumerate(self._v1_layout):
                old = state_dict.get(f"{prefix}stacks.{k}")
                if old is not None and old.dim() > 0 and old.shape[0] == len(keys):
                    state_dict.pop(f"{prefix}stacks.{k}")
                    state_dict.update({prefix + key: row for key, row in zip(keys, old.unbind(0))})
        legacy = [k for k in self._keys if prefix + k in state_dict]
        has_stacks = any(k.startswith(prefix + "stacks.") for k in state_dict)
        if legacy and not has_stacks:
            if len(legacy) != len(self._keys):
                missing_keys.extend(prefix + k for k in self._keys if prefix + k not in state_dict)
            else:
                for k, (keys, stack) in enumerate(zip(self.layout_keys, self.stack_list())):
                    rows = [state_dict[prefix + key] for key in keys]
                    shapes = {tuple(r.shape) for r in rows}
                    if shapes != {tuple(stack.shape[1:])}:
                        error_msgs.append(
                            f"size mismatch for the tensors {list(keys)[:3]}...: shapes {sorted(shapes)} in the "
                            f"state_dict, {tuple(stack.shape[1:])} in the current model"
                        )
                        continue
                    state_dict[f"{prefix}stacks.{k}"] = torch.stack([torch.as_tensor(r) for r in rows])
            for key in legacy:
                state_dict.pop(prefix + key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
