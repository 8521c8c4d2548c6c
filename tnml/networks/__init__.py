"""Architectures as tensor networks, one per file."""

from tnml.networks.cp import CP
from tnml.networks.mode_trees import contiguous_tree, tree_leaves, window_tree
from tnml.networks.mps import MPS
from tnml.networks.peps import PEPS
from tnml.networks.periodic_mps import PeriodicMPS
from tnml.networks.ttn import TTN

__all__ = ["CP", "MPS", "PEPS", "TTN", "PeriodicMPS", "contiguous_tree", "tree_leaves", "window_tree"]

from tnml.networks.factorizations import (  # noqa: E402
    DeepMatrixFactorization,
    HierarchicalTensorFactorization,
    TensorFactorization,
)

__all__ += ["DeepMatrixFactorization", "HierarchicalTensorFactorization", "TensorFactorization"]

from tnml.networks.product_gnn import ProductGNN  # noqa: E402

__all__ += ["ProductGNN"]

from tnml.networks.gcn import GCN, normalized_adjacency  # noqa: E402

__all__ += ["GCN", "normalized_adjacency"]

from tnml.networks.local_cnn import CNN1D, CNN2D  # noqa: E402

__all__ += ["CNN1D", "CNN2D"]

from tnml.networks.heads import NormalizedLogits  # noqa: E402

__all__ += ["NormalizedLogits"]
