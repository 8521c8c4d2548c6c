"""Run registered experiments, write ``OUT/NAME/metrics.json`` and ``OUT/summary.md`` (atomically).

With ``resume=True`` an experiment whose ``metrics.json`` exists is not run again (its results are reloaded into
the summary), and one that was interrupted continues from the checkpoints in ``OUT/NAME/checkpoints/`` (written
every ``checkpoint_every`` epochs by loops that take ``cfg.checkpointer(...)``). Checkpoints are deleted once the
experiment's ``metrics.json`` is written.

Each ``OUT/NAME/`` is locked while its experiment runs (:class:`tnml.io.FolderLock`): a second run into the same
folder is refused at once with :class:`tnml.io.FolderLockedError`, and nothing inside a run folder is reached
through a symbolic link.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from tnml.checkpoint import CheckpointError
from tnml.experiments.registry import CHECKPOINT_DIR, EXPERIMENTS, ExperimentResult, RunConfig
from tnml.experiments.tables import claims_table, experiment_markdown, result_from_json, verdict_counts
from tnml.io import FolderLock, check_no_symlinks, write_json, write_text
from tnml.training import progress_mode


def run_experiments(
    names: list[str],
    out: Path,
    *,
    quick: bool,
    device: str = "cpu",
    seed: int = 0,
    checkpoint_every: int = 0,
    resume: bool = False,
    progress: bool | None = None,
) -> dict[str, ExperimentResult]:
    """Run ``names`` in order; each gets ``out/NAME/``. Writes ``out/summary.md`` at the end.

    While it runs, one line per finished experiment goes to stderr (``[2/10] dmf-norms: 41.2 s``); at the end
    one line per experiment (name, run time, the claims' verdicts) goes to stdout, whatever ``progress`` is.

    Parameters
    ----------
    progress : bool or None, default None
        Progress bars of the training loops (:func:`tnml.training.progress_bar`): None shows them only when
        stderr is a terminal (a log file, CI or ``nohup`` gets no ``\\r`` updates), True forces them, False
        turns them off.
    checkpoint_every : int, default 0
        Training checkpoints every this many epochs (0: none); see :meth:`RunConfig.checkpointer`.
    resume : bool, default False
        Skip experiments whose ``metrics.json`` exists (same quick/seed, else :class:`CheckpointError`) and
        continue interrupted ones from their checkpoints. ``False`` ignores and deletes old checkpoints.

    Raises
    ------
    CheckpointError
        On resume: a ``metrics.json`` or checkpoint that is unreadable or from other settings.
    tnml.io.FolderLockedError
        Another process is running an experiment into the same ``out/NAME/`` (each experiment folder is locked
        while it runs; the message names the holder).
    tnml.io.OutputPathError
        ``out/NAME``, its ``checkpoints`` folder or ``metrics.json`` is a symbolic link (never followed).
    """
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; `tnml list` shows {sorted(EXPERIMENTS)}")
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0 (0 turns checkpoints off), got {checkpoint_every}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (auto: only on a terminal), got {progress!r}")
    out = Path(out)
    results: dict[str, ExperimentResult] = {}
    timings: dict[str, float] = {}
    for k, name in enumerate(names):
        cfg = RunConfig(
            out_dir=out / name,
            quick=quick,
            device=device,
            seed=seed,
            checkpoint_every=checkpoint_every,
            resume=resume,
            name=name,
        )
        for path in (cfg.out_dir, cfg.out_dir / CHECKPOINT_DIR, cfg.out_dir / "metrics.json"):
            check_no_symlinks(path, out)
        with FolderLock(cfg.out_dir), progress_mode(progress):  # one run per experiment folder
            results[name], timings[name] = _run_one(name, cfg, resume=resume, device=device)
        print(f"[{k + 1}/{len(names)}] {name}: {timings[name]:.1f} s", file=sys.stderr, flush=True)
    write_text(out / "summary.md", summary_markdown(results, timings, quick=quick, seed=seed))
    print(*summary_lines(results, timings), f"summary: {out / 'summary.md'}", sep="\n", flush=True)
    return results


def _run_one(name: str, cfg: RunConfig, *, resume: bool, device: str) -> tuple[ExperimentResult, float]:
    """Run one experiment into ``cfg.out_dir`` (its lock held by the caller); returns the result and seconds."""
    metrics_path = cfg.out_dir / "metrics.json"
    if resume and metrics_path.is_file():
        return load_result(metrics_path, name=name, quick=cfg.quick, seed=cfg.seed)
    if not resume:
        shutil.rmtree(cfg.out_dir / CHECKPOINT_DIR, ignore_errors=True)
    t0 = time.perf_counter()
    res = EXPERIMENTS[name].run(cfg)
    seconds = time.perf_counter() - t0
    write_json(
        metrics_path,
        {
            "experiment": name,
            "quick": cfg.quick,
            "seed": cfg.seed,
            "device": device,
            "seconds": seconds,
            "cpu_count": os.cpu_count(),
            "load_average": _load_average(),  # 1-minute load when it finished: timings on a shared machine
            "torch": torch.__version__,
            "python": platform.python_version(),
            "metrics": res.metrics,
            "description": EXPERIMENTS[name].description,
            "about": res.about,
            "comparisons": [dataclasses.asdict(c) for c in res.comparisons],
            "claims": [dataclasses.asdict(c) for c in res.claims],
            "notes": res.notes,
            "plots": res.plots,
        },
    )
    shutil.rmtree(cfg.out_dir / CHECKPOINT_DIR, ignore_errors=True)
    return res, seconds


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def load_result(path: Path, *, name: str, quick: bool, seed: int) -> tuple[ExperimentResult, float]:
    """An experiment's result and run time read back from its ``metrics.json`` (for ``--resume``).

    Raises
    ------
    CheckpointError
        The file is unreadable, or was written by another experiment or with another quick/seed setting.
    """
    fix = "delete it or run without --resume"
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        if not {"metrics", "comparisons", "plots"} <= meta.keys():
            raise KeyError("metrics, comparisons or plots")
        res = result_from_json(meta)
        seconds = float(meta["seconds"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        why = type(e).__name__
        raise CheckpointError(f"{str(path)!r} is not a readable tnml metrics file ({why}); {fix}") from None
    found = {k: meta.get(k) for k in ("experiment", "quick", "seed")}
    wanted = {"experiment": name, "quick": quick, "seed": seed}
    if found != wanted:
        diff = ", ".join(f"{k}: {found[k]!r} there, {wanted[k]!r} now" for k in wanted if found[k] != wanted[k])
        raise CheckpointError(f"{str(path)!r} was written by another experiment or other settings ({diff}); {fix}")
    return res, seconds


def summary_markdown(
    results: dict[str, ExperimentResult], timings: dict[str, float], *, quick: bool, seed: int, width: int = 100
) -> str:
    """``summary.md``: the claims with their verdicts, then per experiment its short table (quantity / measured /
    thesis), links to its plots and ``metrics.json``, and its notes as prose wrapped at ``width`` columns."""
    lines = [
        "# tnml results",
        "",
        f"Mode: {'quick' if quick else 'full'}; seed {seed}; torch {torch.__version__}.",
        "",
        "## Claims",
        "",
        *claims_table(results),
        "",
    ]
    for name, res in results.items():
        section = experiment_markdown(name, res, seconds=timings.get(name), width=width)
        links = ", ".join(f"[{p}]({name}/{p})" for p in res.plots) or "no plots"
        table_end = section.index("", section.index("| quantity | measured | thesis |"))
        section[table_end:table_end] = [
            "",
            f"Plots: {links}; all numbers in [{name}/metrics.json]({name}/metrics.json).",
        ]
        lines += section
    return "\n".join(lines).rstrip("\n") + "\n"


def summary_lines(results: dict[str, ExperimentResult], timings: dict[str, float]) -> list[str]:
    """One line per experiment: name, run time, the claims' verdicts (the end of a run's log)."""
    width = max((len(n) for n in results), default=0)
    return [
        f"{name:<{width}}  {timings.get(name, 0.0):7.1f} s  {verdict_counts(res.claims) or 'no claim recorded'}"
        for name, res in results.items()
    ]
