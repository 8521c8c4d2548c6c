"""Experiment registry: each reproduced result is a function ``run(config) -> ExperimentResult``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnml.checkpoint import Checkpointer

#: sub-folder of an experiment's ``out_dir`` that holds its training checkpoints (removed once it finishes)
CHECKPOINT_DIR = "checkpoints"


@dataclass(frozen=True)
class RunConfig:
    """Options shared by every experiment.

    Parameters
    ----------
    out_dir : Path
        Folder for this experiment's files (created by the runner).
    quick : bool
        The quick version (minutes on 2 CPU cores).
    device : str
    seed : int
    checkpoint_every : int, default 0
        Save a training checkpoint every this many epochs (and after the last); 0 turns checkpointing off.
    resume : bool, default False
        Continue from the checkpoints in ``out_dir/checkpoints`` instead of ignoring them.
    name : str, default ""
        The experiment's registered name (recorded in its checkpoints; the runner sets it).
    """

    out_dir: Path
    quick: bool = False
    device: str = "cpu"
    seed: int = 0
    checkpoint_every: int = 0
    resume: bool = False
    name: str = ""

    def checkpointer(self, tag: str, **meta: Any) -> Checkpointer | None:
        """A :class:`~tnml.checkpoint.Checkpointer` for one training loop of this experiment, or None when
        checkpointing is off: ``train_classifier(..., checkpointer=cfg.checkpointer("mps"))``.

        ``tag`` names the loop (unique within the experiment: it becomes ``out_dir/checkpoints/TAG.pt``); ``meta``
        adds whatever else identifies it (the experiment, quick/full and seed are recorded already).
        """
        if self.checkpoint_every <= 0:
            return None
        if not tag or not all(c.isalnum() or c in "-_." for c in tag):
            raise ValueError(f"tag must be a non-empty file-name-safe string (letters, digits, -_.), got {tag!r}")
        return Checkpointer(
            Path(self.out_dir) / CHECKPOINT_DIR / f"{tag}.pt",
            every=self.checkpoint_every,
            meta={"experiment": self.name, "tag": tag, "quick": self.quick, "seed": self.seed, **meta},
            resume=self.resume,
        )


@dataclass
class Comparison:
    """One measured number set beside the thesis's (``thesis`` None where the thesis has no such number).

    Attributes
    ----------
    quantity : str
        What was measured (a row label of ``summary.md``).
    measured : float or str
        The measured value.
    thesis : float, str or None
        The thesis's value, None where it has none.
    note : str
        Conditions, spread over seeds, or why the numbers differ.
    """

    quantity: str
    measured: float | str
    thesis: float | str | None = None
    note: str = ""


@dataclass
class ExperimentResult:
    """What an experiment returns: its metrics, the comparisons with the thesis and the plots it wrote.

    Attributes
    ----------
    metrics : dict
        Every number of the run (JSON-serializable); written to ``metrics.json``.
    comparisons : list of Comparison
        The rows of ``summary.md``.
    plots : list of str
        File names of the plots, relative to the experiment's output folder.
    """

    metrics: dict[str, Any]
    comparisons: list[Comparison] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # file names relative to out_dir


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    run: Callable[[RunConfig], ExperimentResult]


EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(name: str, description: str) -> Callable:
    """Decorator adding ``run(config)`` to the registry under ``name``.

    Parameters
    ----------
    name : str
        The name ``tnml run NAME`` uses; must be new.
    description : str
        One line for ``tnml list``.

    Returns
    -------
    callable
        The decorator; it returns the decorated function unchanged.
    """

    def deco(fn: Callable[[RunConfig], ExperimentResult]) -> Callable[[RunConfig], ExperimentResult]:
        if name in EXPERIMENTS:
            raise ValueError(f"experiment {name!r} is already registered")
        EXPERIMENTS[name] = Experiment(name, description, fn)
        return fn

    return deco
