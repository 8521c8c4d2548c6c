"""Render experiment results for people: ``summary.md`` (a terminal), the docs' experiment pages and overview,
and the README's experiment table — all from the same :class:`~tnml.experiments.registry.ExperimentResult` (or
its ``metrics.json``), so that every place shows the numbers of one run.

Each experiment gets a short table (quantity / measured / thesis, a few words per cell), its plots right under it,
then its notes as prose; the overview has one row per claim with the verdict the run reached.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from tnml.experiments.registry import Claim, Comparison, ExperimentResult

__all__ = [
    "claims_table",
    "comparison_table",
    "experiment_markdown",
    "load_run",
    "notes_markdown",
    "readme_table",
    "result_from_json",
    "verdict_counts",
]


def result_from_json(meta: dict[str, Any]) -> ExperimentResult:
    """An :class:`ExperimentResult` from the dictionary stored in ``metrics.json`` (older files without claims,
    ``about`` or ``notes`` give empty ones)."""
    return ExperimentResult(
        metrics=meta.get("metrics", {}),
        comparisons=[Comparison(**c) for c in meta.get("comparisons", [])],
        plots=list(meta.get("plots", [])),
        claims=[Claim(**c) for c in meta.get("claims", [])],
        about=meta.get("about", ""),
        notes=list(meta.get("notes", [])),
    )


def load_run(folder: Path) -> dict[str, tuple[ExperimentResult, dict[str, Any]]]:
    """Every ``folder/NAME/metrics.json`` as ``{NAME: (result, metadata)}`` (metadata: seconds, quick, seed, …),
    sorted by name."""
    out = {}
    for path in sorted(Path(folder).glob("*/metrics.json")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError(f"a JSON object is expected, got a {type(meta).__name__}")
            result = result_from_json(meta)
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a metrics.json written by `tnml run` ({type(e).__name__}: {e}); "
                             "run the experiment again or remove its folder") from None
        out[path.parent.name] = (result, {k: v for k, v in meta.items() if k != "metrics"})
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(value: Any) -> str:
    """A markdown table cell: ``|`` escaped (``|W_11|`` would split the row), newlines flattened."""
    return " ".join(_fmt(value).replace("|", "\\|").splitlines())


def _row(cells) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def comparison_table(result: ExperimentResult) -> list[str]:
    """The experiment's short table: quantity / measured / thesis (markdown lines)."""
    lines = ["| quantity | measured | thesis |", "|---|---|---|"]
    return lines + [_row((c.quantity, c.measured, c.thesis)) for c in result.comparisons]


def notes_markdown(result: ExperimentResult, width: int | None = None) -> list[str]:
    """The comparisons' notes (as a list, each led by its quantity) and the experiment's ``notes`` paragraphs;
    wrapped at ``width`` columns when given (for a terminal)."""

    def wrap(text: str, first: str = "", rest: str = "") -> list[str]:
        if width is None:
            return [first + text]
        return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest) or [first]

    lines: list[str] = []
    for c in result.comparisons:
        if c.note:
            lines += wrap(f"**{c.quantity}**: {c.note}", "- ", "  ")
    for para in result.notes:
        if lines:
            lines.append("")
        lines += wrap(para)
    return lines


def experiment_markdown(
    name: str,
    result: ExperimentResult,
    *,
    plot_prefix: str | None = None,
    heading: str = "##",
    seconds: float | None = None,
    width: int | None = None,
) -> list[str]:
    """One experiment's section: heading, ``about``, the short table, its plots right under it, then the notes.

    Parameters
    ----------
    name : str
    result : ExperimentResult
    plot_prefix : str or None
        Folder prefix of the plots (``"NAME/"`` in ``summary.md``); None leaves the plots out.
    heading : str, default "##"
        Markdown heading level of the section title.
    seconds : float or None
        Run time, shown in the title when given.
    width : int or None
        Wrap prose at this many columns (terminal output); None: no wrapping.
    """
    title = f"{heading} {name}" + (f" ({seconds:.1f} s)" if seconds is not None else "")
    lines = [title, ""]
    if result.about:
        lines += (textwrap.wrap(result.about, width) if width else [result.about]) + [""]
    lines += comparison_table(result) + [""]
    if plot_prefix is not None and result.plots:
        lines += [f"![{name}: {Path(p).stem}]({plot_prefix}{p})" for p in result.plots] + [""]
    notes = notes_markdown(result, width)
    if notes:
        lines += notes + [""]
    return lines


def claims_table(results: dict[str, ExperimentResult], link: str | None = None) -> list[str]:
    """One row per claim: experiment / claim / measured / verdict. ``link`` (e.g. ``"{name}.md"``) turns the
    experiment's name into a link to its page. Experiments without claims get one row saying so."""
    lines = ["| experiment | claim | measured | verdict |", "|---|---|---|---|"]
    for name, res in results.items():
        label = f"[{name}]({link.format(name=name)})" if link else name
        if not res.claims:
            lines.append(f"| {label} | — | — | no claim recorded |")
        for c in res.claims:
            lines.append(f"| {label} | " + " | ".join(_cell(v) for v in (c.text, c.evidence or "—", c.verdict)) + " |")
    return lines


def verdict_counts(claims: list[Claim]) -> str:
    """``"2 reproduced, 1 not reproduced"`` (empty for no claims)."""
    counts: dict[str, int] = {}
    for c in claims:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    return ", ".join(f"{n} {v}" for v, n in counts.items())


def readme_table(run: dict[str, tuple[ExperimentResult, dict[str, Any]]]) -> str:
    """The README's experiment table from a run (:func:`load_run`): experiment, what it shows (its registered
    description), the run's headline numbers (comparisons marked ``key``, else the first two), the claims' verdicts
    and the run time."""
    lines = [
        "| experiment | what it shows | measured (thesis) | verdicts | time |",
        "|---|---|---|---|---|",
    ]
    for name, (res, meta) in run.items():
        rows = [c for c in res.comparisons if c.key] or res.comparisons[:2]
        measured = "; ".join(
            f"{c.quantity}: {_fmt(c.measured)}" + (f" ({_fmt(c.thesis)})" if c.thesis is not None else "") for c in rows
        )
        verdicts = verdict_counts(res.claims) or "—"
        about = meta.get("description") or (res.about.split(". ")[0].rstrip(".") if res.about else "—")
        seconds = meta.get("seconds")
        time_s = "—" if seconds is None else f"{seconds:.0f} s"
        lines.append(
            "| " + " | ".join(_cell(v) for v in (f"`{name}`", about, measured or "—", verdicts)) + f" | {time_s} |"
        )
    mode = {(m.get("quick"), m.get("seed"), m.get("device")) for _, m in run.values()}
    foot = ", ".join(f"{'quick' if q else 'full'} run, seed {s}, {d}" for q, s, d in sorted(mode, key=str))
    return "\n".join(lines) + f"\n\nMeasured by one {foot} (`scripts/readme_table.py`).\n"
