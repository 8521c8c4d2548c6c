"""Experiment registry: each reproduced result is a function ``run(config) -> ExperimentResult``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnml.checkpoint import Checkpointer
from tnml.validation import check_option

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


#: the verdicts a :class:`Claim` can carry (the overview page's last column)
VERDICTS = ("reproduced", "reproduced with differences", "not reproduced")
#: the most characters a table cell may hold (``quantity``, ``measured``, ``thesis``; a claim's ``text`` and
#: ``evidence``): tables stay readable at phone width; anything longer belongs in a note
MAX_CELL = {"quantity": 60, "measured": 40, "thesis": 40, "text": 90, "evidence": 60}
#: words a user cannot resolve (the project's internal vocabulary); outputs and docs must not contain them
PROCESS_WORDS = ("issue", "SPEC", "session", "target of the issue")


@dataclass
class Comparison:
    """One measured number set beside the thesis's: a row of the experiment's table.

    The table (in ``summary.md``, the experiment's docs page and the README) has three short columns —
    ``quantity``, ``measured``, ``thesis`` — of a few words each (at most :data:`MAX_CELL` characters); the
    ``note`` is prose printed *below* the table, so it may be long: settings, seeds, spread, why numbers differ.

    Attributes
    ----------
    quantity : str
        What was measured, in a few words (a row label): ``"|W_11| at loss 1e-4, det W(0) > 0"``.
    measured : float or str
        The measured value, as the run computed it (never a number from an earlier run): ``70.7`` or
        ``"0.95 ± 0.01"``.
    thesis : float, str or None
        The thesis's value, None where it has none.
    note : str
        Conditions, spread over seeds, or why the numbers differ (printed below the table as prose).
    key : bool, default False
        One of the experiment's headline numbers: shown in the README's experiment table.
    """

    quantity: str
    measured: float | str
    thesis: float | str | None = None
    note: str = ""
    key: bool = False


@dataclass
class Claim:
    """A claim of the thesis that the experiment tests, and what the run found: a row of the overview page.

    Attributes
    ----------
    text : str
        The claim in one short sentence (at most ``MAX_CELL["text"]`` characters), e.g.
        ``"det W(0) > 0: |W_11| ~ 1/sqrt(loss), norms diverge"``.
    verdict : str
        One of :data:`VERDICTS`, computed by the run from its measured numbers (not written in advance).
    evidence : str, default ""
        The deciding measurement in a few words, e.g. ``"|W_11|·√loss 0.707 at 1e-6, 4/4 seeds"``.

    Raises
    ------
    ValueError
        ``verdict`` is not one of :data:`VERDICTS`.
    """

    text: str
    verdict: str
    evidence: str = ""

    def __post_init__(self) -> None:
        check_option("verdict", self.verdict, VERDICTS, fix="pick the one the run measured")


@dataclass
class ExperimentResult:
    """What an experiment returns: its metrics, the comparisons with the thesis, its claims and plots.

    Everything a reader sees is built from this object (saved in ``metrics.json``): ``summary.md``, the
    experiment's docs page (``about``, then the table of ``comparisons``, the ``plots`` right under it, then the
    comparisons' notes and ``notes`` as prose), the overview of claims and the README's experiment table. Only
    numbers the run measured go into it; findings of earlier explorations belong in the docs with how they were
    measured. No internal vocabulary (:data:`PROCESS_WORDS`): cite the papers (P1 = Razin & Cohen NeurIPS 2020, …)
    or the docs' science pages.

    Attributes
    ----------
    metrics : dict
        Every number of the run (JSON-serializable); written to ``metrics.json``.
    comparisons : list of Comparison
        The rows of the experiment's table (short cells; long text in their ``note``).
    plots : list of str
        File names of the plots, relative to the experiment's output folder (shown under the table).
    claims : list of Claim
        The thesis's claims this run tested, each with the verdict the run reached.
    about : str
        Two or three sentences: what the experiment shows and which paper it reproduces.
    notes : list of str
        Paragraphs of prose printed after the comparisons' notes: settings, seeds, what differs from the paper,
        negative results.
    """

    metrics: dict[str, Any]
    comparisons: list[Comparison] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # file names relative to out_dir
    claims: list[Claim] = field(default_factory=list)
    about: str = ""
    notes: list[str] = field(default_factory=list)


def cell_problems(result: ExperimentResult, name: str = "") -> list[str]:
    """Cells of ``result`` longer than :data:`MAX_CELL` (empty list: the tables stay short).

    Parameters
    ----------
    result : ExperimentResult
    name : str, default ""
        The experiment's name, used in the messages.

    Returns
    -------
    list of str
        One message per over-long cell, naming the experiment, the row, the column and the length.
    """
    problems = []
    rows = [(c.quantity, c) for c in result.comparisons] + [(c.text, c) for c in result.claims]
    for row, obj in rows:
        for col, limit in MAX_CELL.items():
            value = getattr(obj, col, None)
            text = "" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
            if len(text) > limit:
                problems.append(f"{name}: row {row[:40]!r}: {col} has {len(text)} characters (at most {limit})")
    return problems


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
