"""Models that are not tensor networks: the baselines the experiments compare tensor networks against.

- :class:`GCN` (node classification) and :class:`GraphGCN` (graph prediction on a fixed graph), with
  :func:`normalized_adjacency` — P4's message-passing baselines;
- :class:`CNN1D`, :class:`CNN2D` — the locally connected CNNs of P5 (pooling trees over the sites);
- :func:`global_cnn` (and its :func:`receptive_field`) — a CNN whose last unit sees the whole input.
"""

from tnml.baselines.gcn import GCN, GraphGCN, normalized_adjacency
from tnml.baselines.global_cnn import global_cnn, receptive_field
from tnml.baselines.local_cnn import CNN1D, CNN2D

__all__ = ["CNN1D", "CNN2D", "GCN", "GraphGCN", "global_cnn", "normalized_adjacency", "receptive_field"]
