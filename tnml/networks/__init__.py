"""Architectures as tensor networks, one per file.

The mode-tree helpers listed here (``contiguous_tree``, ``window_tree``, ...) live in :mod:`tnml.mode_trees`; models
that are not tensor networks (GCNs, CNNs) are in :mod:`tnml.baselines`.
"""

from tnml.mode_trees import contiguous_tree, interleaved_window_tree, tree_leaves, window_tree
from tnml.networks.cp import CP
from tnml.networks.factorizations import (
    DeepMatrixFactorization,
    HierarchicalTensorFactorization,
    TensorFactorization,
)
from tnml.networks.heads import NormalizedLogits
from tnml.networks.mps import MPS
from tnml.networks.peps import PEPS
from tnml.networks.periodic_mps import PeriodicMPS
from tnml.networks.product_gnn import ProductGNN
from tnml.networks.ttn import TTN

__all__ = [
    "CP",
    "MPS",
    "PEPS",
    "TTN",
    "DeepMatrixFactorization",
    "HierarchicalTensorFactorization",
    "NormalizedLogits",
    "PeriodicMPS",
    "ProductGNN",
    "TensorFactorization",
    "contiguous_tree",
    "interleaved_window_tree",
    "tree_leaves",
    "window_tree",
]
