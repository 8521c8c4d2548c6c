"""Mode trees (:mod:`tnml.mode_trees`, their home in the core), re-exported under their old path."""

from tnml.mode_trees import (
    ModeTree,
    contiguous_tree,
    tree_height,
    tree_leaves,
    tree_nodes,
    validate_tree,
    window_tree,
)

__all__ = [
    "ModeTree",
    "contiguous_tree",
    "tree_height",
    "tree_leaves",
    "tree_nodes",
    "validate_tree",
    "window_tree",
]
