"""Workflows: analyses that combine several layers (entanglement measures, min-cut bounds, preprocessing) into one
report, above all of them."""

from tnml.workflows.suitability import suitability

__all__ = ["suitability"]
