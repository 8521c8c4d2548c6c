"""Run registered experiments, write ``OUT/NAME/metrics.json`` and ``OUT/summary.md`` (atomically)."""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path

import torch

from tnml.experiments.registry import EXPERIMENTS, ExperimentResult, RunConfig
from tnml.io import write_json, write_text


def run_experiments(
    names: list[str], out: Path, *, quick: bool, device: str = "cpu", seed: int = 0
) -> dict[str, ExperimentResult]:
    """Run ``names`` in order; each gets ``out/NAME/``. Writes ``out/summary.md`` at the end."""
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; `tnml list` shows {sorted(EXPERIMENTS)}")
    out = Path(out)
    results: dict[str, ExperimentResult] = {}
    timings: dict[str, float] = {}
    for name in names:
        cfg = RunConfig(out_dir=out / name, quick=quick, device=device, seed=seed)
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        res = EXPERIMENTS[name].run(cfg)
        timings[name] = time.perf_counter() - t0
        results[name] = res
        write_json(
            cfg.out_dir / "metrics.json",
            {
                "experiment": name,
                "quick": quick,
                "seed": seed,
                "device": device,
                "seconds": timings[name],
                "torch": torch.__version__,
                "python": platform.python_version(),
                "metrics": res.metrics,
                "comparisons": [dataclasses.asdict(c) for c in res.comparisons],
                "plots": res.plots,
            },
        )
    write_text(out / "summary.md", summary_markdown(results, timings, quick=quick, seed=seed))
    return results


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


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
            lines.append(f"| {name} | {c.quantity} | {_fmt(c.measured)} | {_fmt(c.thesis)} | {c.note} |")
    lines += ["", "## Plots and run times", ""]
    for name, res in results.items():
        links = ", ".join(f"[{p}]({name}/{p})" for p in res.plots) or "—"
        lines.append(
            f"- **{name}** ({timings[name]:.1f} s): {links}; metrics in [{name}/metrics.json]({name}/metrics.json)"
        )
    return "\n".join(lines) + "\n"
