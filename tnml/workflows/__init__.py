"""Workflows: analyses that combine several layers (entanglement measures, min-cut bounds, preprocessing) into one
report, above all of them; and the design of a tree network from the data's entanglement."""

from tnml.workflows.design import DesignReport, auto_widths, design_ttn, edge_entanglement, ttn_param_count
from tnml.workflows.mode_tree_learning import learn_mode_tree, learn_mode_tree_layout
from tnml.workflows.suitability import suitability

__all__ = [
    "DesignReport",
    "auto_widths",
    "design_ttn",
    "edge_entanglement",
    "learn_mode_tree",
    "learn_mode_tree_layout",
    "suitability",
    "ttn_param_count",
]
