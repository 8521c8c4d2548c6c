"""Architectures as tensor networks, one per file."""

from tnml.networks.cp import CP
from tnml.networks.mode_trees import contiguous_tree, tree_leaves, window_tree
from tnml.networks.mps import MPS
from tnml.networks.ttn import TTN

__all__ = ["CP", "MPS", "TTN", "contiguous_tree", "tree_leaves", "window_tree"]
