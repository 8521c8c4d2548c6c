"""Entanglement of tensor networks: partitions, Schmidt spectra, cut ranks, entropies and min-cut bounds."""

from tnml.entanglement.mincut import MinCutResult, min_cut_on_tree, mincut_bound, mincut_bounds
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
from tnml.entanglement.walk_index import boundary, walk_counts, walk_index

__all__ = [
    "boundary",
    "walk_counts",
    "walk_index",
    "MinCutResult",
    "Partition",
    "PartitionRecord",
    "Report",
    "SeparationRankResult",
    "canonical_partitions",
    "contiguous_partitions",
    "RankUncertaintyWarning",
    "cut_rank",
    "cut_rank_bounds",
    "entanglement_entropies",
    "entanglement_entropy",
    "entanglement_report",
    "interleaved_partitions",
    "min_cut_on_tree",
    "mincut_bound",
    "mincut_bounds",
    "schmidt_spectra",
    "schmidt_values",
    "separation_rank",
    "tree_partitions",
    "validate_partition",
]

from tnml.entanglement.data_entanglement import DataEntanglementResult, data_entanglement  # noqa: E402
from tnml.entanglement.surrogate import abs_correlation, surrogate_entanglement  # noqa: E402

__all__ += ["DataEntanglementResult", "abs_correlation", "data_entanglement", "surrogate_entanglement"]

from tnml.entanglement.suitability import SuitabilityRecord, SuitabilityResult, suitability  # noqa: E402

__all__ += ["SuitabilityRecord", "SuitabilityResult", "suitability"]

from tnml.entanglement.gnn_bounds import GNNBound, gnn_separation_rank_bounds  # noqa: E402

__all__ += ["GNNBound", "gnn_separation_rank_bounds"]
