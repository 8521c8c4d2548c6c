"""Sphinx configuration of the tnml documentation (build: ``bash scripts/docs.sh``, warnings are errors)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tnml_docs_api import write_api_pages  # noqa: E402

import tnml  # noqa: E402

project = "tnml"
author = "tnml contributors"
copyright = "2026, tnml contributors"
version = release = tnml.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from _static: equations render without a network
    "numpydoc",
    "myst_nb",
    "sphinxarg.ext",
]

# ---- generated sources (never edited by hand; see .gitignore) -------------------------------------------------
write_api_pages(DOCS / "api")  # one page per package, from __all__


def _copy_tutorials() -> None:
    """Copy ``tutorials/*.ipynb`` into ``docs/tutorials/`` (rendered from their stored outputs)."""
    dst = DOCS / "tutorials"
    dst.mkdir(exist_ok=True)
    for nb in sorted((ROOT / "tutorials").glob("*.ipynb")):
        target = dst / nb.name
        if not target.exists() or target.read_bytes() != nb.read_bytes():
            shutil.copyfile(nb, target)


def _copy_runs() -> None:
    """Copy ``$TNML_RUNS`` (default ``runs/``: the main job's output) into ``docs/experiments/runs`` if present."""
    src = Path(os.environ.get("TNML_RUNS", ROOT / "runs"))
    dst = DOCS / "experiments" / "runs"
    if dst.exists():
        shutil.rmtree(dst)
    if not (src / "summary.md").is_file():
        return
    dst.mkdir(parents=True)
    shutil.copyfile(src / "summary.md", dst / "summary.md")
    for f in sorted(src.glob("*/*")):
        if f.suffix in {".png", ".json"} and f.parent.name != "checkpoints":
            (dst / f.parent.name).mkdir(exist_ok=True)
            shutil.copyfile(f, dst / f.parent.name / f.name)


def _cell(value: object) -> str:
    """One markdown table cell: numbers to 4 significant digits, pipes escaped."""
    if value is None:
        return "—"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _write_latest() -> None:
    """Write ``experiments/latest.md``: the copied ``summary.md`` and every plot, or how to produce them."""
    runs = DOCS / "experiments" / "runs"
    lines = ["# Latest run", ""]
    summary = runs / "summary.md"
    if not summary.is_file():
        lines += [
            "No run was found when this site was built. Run the main job (`bash scripts/run_main.sh`, or",
            "`tnml run NAME --quick --out runs` for one experiment) and rebuild: this page then shows",
            "`runs/summary.md`",
            "and every plot (set `TNML_RUNS=DIR` to take them from another folder).",
            "",
        ]
    else:
        mode = [ln for ln in summary.read_text().splitlines() if ln.startswith("Mode:")]
        lines += [
            "Measured numbers of the run the site was built with, beside the thesis's (from each experiment's",
            "`metrics.json`). " + (mode[0] if mode else ""),
            "",
        ]
        lines += ["| experiment | quantity | measured | thesis | note |", "|---|---|---|---|---|"]
        for exp in sorted(p for p in runs.iterdir() if p.is_dir()):
            metrics = exp / "metrics.json"
            comparisons = json.loads(metrics.read_text()).get("comparisons", []) if metrics.is_file() else []
            for c in comparisons:
                cells = [exp.name] + [_cell(c.get(k)) for k in ("quantity", "measured", "thesis", "note")]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for exp in sorted(p for p in runs.iterdir() if p.is_dir()):
            pngs = sorted(exp.glob("*.png"))
            if pngs:
                lines += [f"## {exp.name}", ""]
                lines += [f"![{exp.name}: {png.stem}](runs/{exp.name}/{png.name})" for png in pngs] + [""]
    text = "\n".join(lines)
    target = DOCS / "experiments" / "latest.md"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


_copy_tutorials()
_copy_runs()
_write_latest()

# ---- sources ----------------------------------------------------------------------------------------------------
exclude_patterns = ["_build", "**.ipynb_checkpoints", "experiments/runs/**"]
templates_path = ["_templates"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # tutorials are executed by the test suite; the site shows their stored outputs
nb_merge_streams = True
suppress_warnings = ["mystnb.unknown_mime_type"]

# ---- API reference ----------------------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc sections carry the types
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # torch.nn.Module's docstrings are not ours to render
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()  # validated by tests/test_docstrings.py instead

# ---- output -----------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"tnml {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
nitpicky = False
