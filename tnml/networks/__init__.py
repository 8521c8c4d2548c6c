"""Architectures as tensor networks, one per file.

``GCN``, ``GraphGCN``, ``normalized_adjacency``, ``CNN1D`` and ``CNN2D`` are not tensor networks: they stay
importable from here for compatibility but are not in ``__all__``; their public (and documented) home is
:mod:`tnml.baselines` (``tnml.networks.local_cnn`` is an alias of ``tnml.baselines.local_cnn``).
"""

from tnml.networks.cp import CP
from tnml.networks.factorizations import (
    DeepMatrixFactorization,
    HierarchicalTensorFactorization,
    TensorFactorization,
)
from tnml.networks.gcn import GCN as GCN  # compatibility re-exports (public home: tnml.baselines)
from tnml.networks.gcn import GraphGCN as GraphGCN
from tnml.networks.gcn import normalized_adjacency as normalized_adjacency
from tnml.networks.heads import NormalizedLogits
from tnml.networks.local_cnn import CNN1D as CNN1D
from tnml.networks.local_cnn import CNN2D as CNN2D
from tnml.networks.mode_trees import contiguous_tree, interleaved_window_tree, tree_leaves, window_tree
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
