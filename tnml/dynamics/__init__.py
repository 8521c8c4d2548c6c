"""Implicit-rank dynamics: rank measures, GroupRMSprop, trackers and completion/sensing tasks (P1-P3)."""

from tnml.dynamics.cp_rank import CPRankEstimate, cp_als, cp_rank_estimate
from tnml.dynamics.group_rmsprop import GroupRMSprop
from tnml.dynamics.rank_measures import (
    effective_rank,
    hierarchical_rank,
    matricization,
    matricization_rank,
    singular_values,
)
from tnml.dynamics.tasks import (
    CompletionTask,
    SensingTask,
    completion_loss,
    fit,
    random_completion_task,
    random_cp_tensor,
    random_sensing_task,
    sensing_loss,
)
from tnml.dynamics.trackers import ComponentNormTracker, LocalComponentNormTracker, SingularValueTracker, Tracker

__all__ = [
    "CPRankEstimate",
    "CompletionTask",
    "ComponentNormTracker",
    "GroupRMSprop",
    "LocalComponentNormTracker",
    "SensingTask",
    "SingularValueTracker",
    "Tracker",
    "completion_loss",
    "cp_als",
    "cp_rank_estimate",
    "effective_rank",
    "fit",
    "hierarchical_rank",
    "matricization",
    "matricization_rank",
    "random_completion_task",
    "random_cp_tensor",
    "random_sensing_task",
    "sensing_loss",
    "singular_values",
]
