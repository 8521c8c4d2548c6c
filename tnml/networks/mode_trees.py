"""Mode trees (:mod:`tnml.mode_trees`, their home in the core), re-exported under their old path."""

import tnml.mode_trees as _home
from tnml.mode_trees import *  # noqa: F403  (ModeTree, contiguous_tree, window_tree, tree_leaves, ...)

__all__ = list(_home.__all__)
