"""Compiled contraction plans: built once per (structure, device), replayed with torch on every forward."""

from tnml.plans.base import Plan
from tnml.plans.chain import CHAIN_ROUTES, ChainRoute, chain_costs, choose_route, route_times
from tnml.plans.compile import PLAN_KINDS, compile_plan
from tnml.plans.generic import GenericPlan
from tnml.plans.sliced import SlicedContraction, contract_sliced
from tnml.plans.star import StarPlan, is_star
from tnml.plans.tree import TreePlan, is_tree

__all__ = [
    "CHAIN_ROUTES",
    "ChainRoute",
    "PLAN_KINDS",
    "GenericPlan",
    "Plan",
    "SlicedContraction",
    "StarPlan",
    "chain_costs",
    "choose_route",
    "route_times",
    "TreePlan",
    "compile_plan",
    "contract_sliced",
    "is_star",
    "is_tree",
]
