"""Preprocessing driven by entanglement: walk-index edge sparsification (WIS, 1-WIS) and its baselines."""

from tnml.preprocessing.one_wis import one_wis
from tnml.preprocessing.sparsify_baselines import (
    degree_sparsification,
    effective_resistances,
    random_sparsification,
    spectral_sparsification,
)
from tnml.preprocessing.wis import walk_index_sparsification

__all__ = [
    "degree_sparsification",
    "effective_resistances",
    "one_wis",
    "random_sparsification",
    "spectral_sparsification",
    "walk_index_sparsification",
]

from tnml.preprocessing.igtd import IGTDRearrangement  # noqa: E402
from tnml.preprocessing.rearrangement import FeatureRearrangement, RandomRearrangement  # noqa: E402

__all__ += ["FeatureRearrangement", "IGTDRearrangement", "RandomRearrangement"]
