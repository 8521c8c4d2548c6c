"""Embedded data sets and loaders for real files."""

from tnml.datasets.embedded import digits

__all__ = ["digits"]
