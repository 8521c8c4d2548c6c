"""Entanglement of tensor networks: partitions, Schmidt spectra, cut ranks, entropies and min-cut bounds."""

from tnml.entanglement.mincut import MinCutResult, mincut_bound
from tnml.entanglement.partitions import (
    Partition,
    canonical_partitions,
    contiguous_partitions,
    interleaved_partitions,
    tree_partitions,
    validate_partition,
)
from tnml.entanglement.spectra import (
    cut_rank,
    entanglement_entropies,
    entanglement_entropy,
    schmidt_spectra,
    schmidt_values,
)

__all__ = [
    "MinCutResult",
    "Partition",
    "canonical_partitions",
    "contiguous_partitions",
    "cut_rank",
    "entanglement_entropies",
    "entanglement_entropy",
    "interleaved_partitions",
    "mincut_bound",
    "schmidt_spectra",
    "schmidt_values",
    "tree_partitions",
    "validate_partition",
]
