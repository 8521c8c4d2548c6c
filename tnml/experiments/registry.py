"""Experiment registry: each reproduced result is a function ``run(config) -> ExperimentResult``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    """

    out_dir: Path
    quick: bool = False
    device: str = "cpu"
    seed: int = 0


@dataclass
class Comparison:
    """One measured number set beside the thesis's (``thesis`` None where the thesis has no such number)."""

    quantity: str
    measured: float | str
    thesis: float | str | None = None
    note: str = ""


@dataclass
class ExperimentResult:
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
    """Decorator adding ``run(config)`` to the registry under ``name``."""

    def deco(fn: Callable[[RunConfig], ExperimentResult]) -> Callable[[RunConfig], ExperimentResult]:
        if name in EXPERIMENTS:
            raise ValueError(f"experiment {name!r} is already registered")
        EXPERIMENTS[name] = Experiment(name, description, fn)
        return fn

    return deco
