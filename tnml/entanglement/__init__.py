"""Entanglement of tensor networks: partitions, Schmidt spectra, cut ranks, entropies and min-cut bounds."""

from tnml.entanglement.data_entanglement import DataEntanglementResult, data_entanglement
from tnml.entanglement.fit_bounds import necessary_qe_max, sufficient_error_bound, truncated_hsvd
from tnml.entanglement.gnn_bounds import GNNBound, gnn_separation_rank_bounds
from tnml.entanglement.mincut import MinCutResult, mincut_bound, mincut_bounds, mincut_on_graph, mincut_on_tree
from tnml.entanglement.partitions import (
    Partition,
    canonical_partitions,
    contiguous_partitions,
    interleaved_partitions,
    tree_partitions,
    validate_partition,
)
from tnml.entanglement.report import PartitionRecord, Report, entanglement_report
from tnml.entanglement.separation_rank import SeparationRankResult, separation_rank
from tnml.entanglement.spectra import (
    RankUncertaintyWarning,
    cut_rank,
    cut_rank_bounds,
    entanglement_entropies,
    entanglement_entropy,
    schmidt_spectra,
    schmidt_values,
)
from tnml.entanglement.surrogate import abs_correlation, surrogate_entanglement
from tnml.entanglement.walk_index import boundary, walk_counts, walk_index

__all__ = [
    "DataEntanglementResult",
    "GNNBound",
    "MinCutResult",
    "Partition",
    "PartitionRecord",
    "RankUncertaintyWarning",
    "Report",
    "SeparationRankResult",
    "abs_correlation",
    "boundary",
    "canonical_partitions",
    "contiguous_partitions",
    "cut_rank",
    "cut_rank_bounds",
    "data_entanglement",
    "entanglement_entropies",
    "entanglement_entropy",
    "entanglement_report",
    "gnn_separation_rank_bounds",
    "interleaved_partitions",
    "mincut_bound",
    "mincut_bounds",
    "mincut_on_graph",
    "mincut_on_tree",
    "necessary_qe_max",
    "schmidt_spectra",
    "schmidt_values",
    "separation_rank",
    "sufficient_error_bound",
    "surrogate_entanglement",
    "tree_partitions",
    "truncated_hsvd",
    "validate_partition",
    "walk_counts",
    "walk_index",
]
