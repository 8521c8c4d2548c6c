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
import platform
import shutil
import time
from pathlib import Path

import torch

from tnml.checkpoint import CheckpointError
from tnml.experiments.registry import CHECKPOINT_DIR, EXPERIMENTS, Comparison, ExperimentResult, RunConfig
from tnml.io import FolderLock, check_no_symlinks, write_json, write_text


def run_experiments(
    names: list[str],
    out: Path,
    *,
    quick: bool,
    device: str = "cpu",
    seed: int = 0,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> dict[str, ExperimentResult]:
    """Run ``names`` in order; each gets ``out/NAME/``. Writes ``out/summary.md`` at the end.

    Parameters
    ----------
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
    out = Path(out)
    results: dict[str, ExperimentResult] = {}
    timings: dict[str, float] = {}
    for name in names:
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
        with FolderLock(cfg.out_dir):  # one run per experiment folder; a second one is refused here
            results[name], timings[name] = _run_one(name, cfg, resume=resume, device=device)
    write_text(out / "summary.md", summary_markdown(results, timings, quick=quick, seed=seed))
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
            "torch": torch.__version__,
            "python": platform.python_version(),
            "metrics": res.metrics,
            "comparisons": [dataclasses.asdict(c) for c in res.comparisons],
            "plots": res.plots,
        },
    )
    shutil.rmtree(cfg.out_dir / CHECKPOINT_DIR, ignore_errors=True)
    return res, seconds


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
        res = ExperimentResult(
            meta["metrics"], [Comparison(**c) for c in meta["comparisons"]], list(meta["plots"])
        )
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


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(value) -> str:
    """A markdown table cell: ``|`` escaped (``|W_11|`` would split the row), newlines flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def summary_markdown(results: dict[str, ExperimentResult], timings: dict[str, float], *, quick: bool, seed: int) -> str:
    lines = [
        "# tnml results",
        "",
        f"Mode: {'quick' if quick else 'full'}; seed {seed}; torch {torch.__version__}.",
        "",
        "| experiment | quantity | measured | thesis | note |",
        "|---|---|---|---|---|",
    ]
    for name, res in results.items():
        for c in res.comparisons:
            cells = (name, c.quantity, _fmt(c.measured), _fmt(c.thesis), c.note)
            lines.append("| " + " | ".join(_cell(v) for v in cells) + " |")
    lines += ["", "## Plots and run times", ""]
    for name, res in results.items():
        links = ", ".join(f"[{p}]({name}/{p})" for p in res.plots) or "—"
        lines.append(
            f"- **{name}** ({timings[name]:.1f} s): {links}; metrics in [{name}/metrics.json]({name}/metrics.json)"
        )
    return "\n".join(lines) + "\n"
