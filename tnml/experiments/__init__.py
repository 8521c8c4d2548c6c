"""Reproduced results, one file each, registered by name; ``tnml run NAME`` runs them."""

import tnml.experiments.anti_locality  # noqa: F401  (registers)
import tnml.experiments.data_suitability  # noqa: F401  (registers)
import tnml.experiments.design  # noqa: F401  (registers)
import tnml.experiments.dmf_norms  # noqa: F401  (registers)
import tnml.experiments.gnn_interactions  # noqa: F401  (registers)
import tnml.experiments.htf_dynamics  # noqa: F401  (registers)
import tnml.experiments.natural_data_rank  # noqa: F401  (registers)
import tnml.experiments.pooling_geometry  # noqa: F401  (registers)
import tnml.experiments.tf_incremental_rank  # noqa: F401  (registers)
import tnml.experiments.wis_sparsification  # noqa: F401  (registers)
from tnml.experiments import digits_classifiers  # noqa: F401  (registers)
from tnml.experiments.registry import EXPERIMENTS, Claim, Comparison, ExperimentResult, RunConfig, register_experiment
from tnml.experiments.runner import run_experiments

__all__ = [
    "EXPERIMENTS",
    "Claim",
    "Comparison",
    "ExperimentResult",
    "RunConfig",
    "register_experiment",
    "run_experiments",
]
