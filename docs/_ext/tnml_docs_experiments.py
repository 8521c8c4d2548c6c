"""Sphinx extension: the Experiments section, generated from a run's ``metrics.json`` files.

One page per registered experiment (``experiments/pages/NAME.md``: what it shows, the short quantity / measured /
thesis table, its plots right under the table, then the notes as prose) and an overview
(``experiments/latest.md``: one row per claim with the verdict the run reached, linking to the page).

The numbers come from ``$TNML_RUNS`` (default ``runs/``, the main job's output) when it holds a ``summary.md``;
else from the stored reference run (``benchmarks/results/reference_run``, metrics only, no plots); else the pages
say how to produce them. A stylesheet makes wide tables wrap and scroll instead of being clipped.

Also usable without Sphinx: ``write_experiment_pages(docs_dir, root)`` returns the pages it wrote (the tests use
it to check cell lengths and plot placement).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

#: the stored reference run (metrics only) used when no run folder is found
REFERENCE_RUN = ROOT / "benchmarks" / "results" / "reference_run"
STATIC = Path(__file__).resolve().parent / "static"


def _source(root: Path) -> tuple[Path | None, str]:
    runs = Path(os.environ.get("TNML_RUNS", root / "runs"))
    if (runs / "summary.md").is_file():
        return runs, "run"
    if any(REFERENCE_RUN.glob("*/metrics.json")):
        return REFERENCE_RUN, "reference"
    return None, "none"


def _write(path: Path, text: str) -> None:
    """Write only when the content changes (Sphinx then rebuilds only what changed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _mode_line(meta: dict) -> str:
    parts = [
        "quick run" if meta.get("quick") else "full run",
        f"seed {meta.get('seed')}",
        f"device {meta.get('device')}",
    ]
    if meta.get("seconds") is not None:
        parts.append(f"{meta['seconds']:.0f} s")
    if meta.get("load_average") is not None and meta.get("cpu_count"):
        parts.append(f"load average {meta['load_average']:g} on {meta['cpu_count']} cores")
    if meta.get("torch"):
        parts.append(f"torch {meta['torch']}")
    return "Measured by one " + ", ".join(parts) + "."


def write_experiment_pages(docs: Path, root: Path = ROOT) -> dict[str, Path]:
    """Write ``docs/experiments/latest.md`` and ``docs/experiments/pages/NAME.md`` for every registered experiment;
    copy the run's plots to ``docs/experiments/runs/NAME/``. Returns ``{NAME: page path}``."""
    from tnml.experiments import EXPERIMENTS
    from tnml.experiments.tables import claims_table, experiment_markdown, load_run

    exp_dir = Path(docs) / "experiments"
    pages, copied = exp_dir / "pages", exp_dir / "runs"
    src, kind = _source(Path(root))
    run = load_run(src) if src is not None else {}
    if copied.exists():
        shutil.rmtree(copied)
    for stale in pages.glob("*.md") if pages.is_dir() else []:
        if stale.stem not in EXPERIMENTS:
            stale.unlink()
    written = {}
    for name in sorted(EXPERIMENTS):
        if name not in run:
            text = "\n".join(
                [
                    f"# {name}",
                    "",
                    EXPERIMENTS[name].description,
                    "",
                    f"No measured numbers were found when this site was built: run `tnml run {name} --quick --out "
                    "runs` (or the main job, `bash scripts/run_main.sh`) and rebuild.",
                    "",
                ]
            )
        else:
            res, meta = run[name]
            prefix = None
            if kind == "run" and res.plots:
                for p in res.plots:
                    f = src / name / p
                    if f.is_file():
                        (copied / name).mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(f, copied / name / p)
                prefix = f"../runs/{name}/"
            lines = experiment_markdown(name, res, plot_prefix=prefix, heading="#")
            lines.insert(2, _mode_line(meta))
            lines.insert(3, "")
            if kind == "reference" and res.plots:
                table_end = lines.index("", lines.index("| quantity | measured | thesis |"))
                lines.insert(table_end + 1, f"Plots ({', '.join(res.plots)}) appear when the site is built from a run.")
                lines.insert(table_end + 2, "")
            text = "\n".join(lines).rstrip("\n") + "\n"
        written[name] = pages / f"{name}.md"
        _write(written[name], text)
    overview = ["# Latest run", ""]
    if not run:
        overview += [
            "No run was found when this site was built. Run the main job (`bash scripts/run_main.sh`, or",
            "`tnml run NAME --quick --out runs` for one experiment) and rebuild: the experiment pages then show",
            "the measured numbers and plots (set `TNML_RUNS=DIR` to take them from another folder).",
            "",
        ]
    else:
        origin = "the main job's output" if kind == "run" else "the stored reference run (no plots)"
        overview += [
            "One row per claim of the thesis that an experiment tests, with the verdict the run reached; the",
            f"experiment's page has the numbers, plots and notes. Source: {origin}.",
            "",
            *claims_table({n: run[n][0] for n in sorted(run) if n in EXPERIMENTS}, link="pages/{name}.md"),
            "",
        ]
        missing = [n for n in sorted(EXPERIMENTS) if n not in run]
        if missing:
            overview += ["Not in this run: " + ", ".join(f"[{n}](pages/{n}.md)" for n in missing) + ".", ""]
    _write(exp_dir / "latest.md", "\n".join(overview))
    return written


def _on_config_inited(app, config) -> None:
    write_experiment_pages(Path(app.srcdir), ROOT)
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app):
    app.connect("config-inited", _on_config_inited)
    app.add_css_file("tnml_tables.css")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
