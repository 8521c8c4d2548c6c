"""Models that are not tensor networks: the baselines the experiments compare tensor networks against.

- :class:`GCN` (node classification) and :class:`GraphGCN` (graph prediction on a fixed graph), with
  :func:`normalized_adjacency` — P4's message-passing baselines;
- :class:`CNN1D`, :class:`CNN2D` — the locally connected CNNs of P5 (pooling trees over the sites);
- :func:`global_cnn` (and its :func:`receptive_field`) — a CNN whose last unit sees the whole input.

``GCN``, ``GraphGCN``, ``normalized_adjacency``, ``CNN1D`` and ``CNN2D`` are also importable from
:mod:`tnml.networks` (``tnml.networks.local_cnn`` is now an alias of :mod:`tnml.baselines.local_cnn`; the GCNs'
module still lives at ``tnml.networks.gcn``); new code should import them from here.
"""

from tnml.baselines.global_cnn import global_cnn, receptive_field
from tnml.baselines.local_cnn import CNN1D, CNN2D
from tnml.networks.gcn import GCN, GraphGCN, normalized_adjacency

__all__ = ["CNN1D", "CNN2D", "GCN", "GraphGCN", "global_cnn", "normalized_adjacency", "receptive_field"]
