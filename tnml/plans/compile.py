"""Choose and build the contraction plan for a structure; plans are cached per (structure, device, kind)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import torch

from tnml.plans.base import Plan
from tnml.plans.generic import GenericPlan
from tnml.plans.star import StarPlan, is_star
from tnml.plans.tree import TreePlan, is_tree
from tnml.structure import TNStructure

PLAN_KINDS = ("auto", "tree", "star", "generic", "sequential", "log-depth", "blocked")
#: the option strings of ``plan=`` / ``kind=`` (static type of :data:`PLAN_KINDS`' members)
PlanKind = Literal["auto", "tree", "star", "generic", "sequential", "log-depth", "blocked"]


@lru_cache(maxsize=256)
def compile_plan(structure: TNStructure, device: str = "cpu", kind: PlanKind = "auto") -> Plan:
    """Return a compiled plan for ``structure`` (a :class:`~tnml.plans.base.Plan`: ``plan(cores, phi)`` with
    per-tensor cores, ``plan.run_stacks(stacks, phi)`` with stacked storage, both ``-> (values, exponent)``).

    ``kind="auto"`` picks the tree plan for loop-free networks, the star plan for CP-like networks and the
    generic cotengra-path plan otherwise. Plans do not depend on dtype; they are cached by structure and device.
    A chain's tree plan chooses per batch among the sequential, log-depth and blocked routes
    (:func:`tnml.plans.choose_route`; ``plan.describe(batch)`` says which); ``kind="sequential"``,
    ``"log-depth"`` or ``"blocked"`` gives a tree plan with that route forced.
    """
    if kind not in PLAN_KINDS:
        raise ValueError(f"plan kind must be one of {PLAN_KINDS}, got {kind!r}")
    # the plan's index tensors are normal tensors even when the first call runs under torch.inference_mode(): the
    # plan is cached and shared, and an inference tensor could not be saved for a later backward pass
    with torch.inference_mode(False):
        return _build(structure, torch.device(device), kind)


def _build(structure: TNStructure, dev: torch.device, kind: PlanKind) -> Plan:
    """The plan :func:`compile_plan` returns."""
    if kind in ("sequential", "log-depth", "blocked"):
        return TreePlan(structure, dev, route=kind)
    if kind == "tree" or (kind == "auto" and is_tree(structure)):
        return TreePlan(structure, dev)
    if kind == "star" or (kind == "auto" and is_star(structure)):
        return StarPlan(structure, dev)
    return GenericPlan(structure, dev)
