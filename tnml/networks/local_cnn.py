"""Moved: the locally connected CNNs are baselines, not tensor networks — see :mod:`tnml.baselines.local_cnn`.

This module stays so that ``from tnml.networks.local_cnn import CNN1D`` keeps working.
"""

from tnml.baselines.local_cnn import CNN1D, CNN2D, pooling_depth, tree_channels

__all__ = ["CNN1D", "CNN2D", "pooling_depth", "tree_channels"]
