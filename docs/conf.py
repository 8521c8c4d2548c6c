"""Sphinx configuration of the tnml documentation (build: ``bash scripts/docs.sh``, warnings are errors)."""

from __future__ import annotations

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
    "tnml_docs_experiments",  # docs/_ext: experiment pages from a run's metrics.json
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


_copy_tutorials()
# the Experiments section (pages per experiment, the claims overview, table CSS): tnml_docs_experiments

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
numpydoc_validation_checks: set[str] = set()  # validated by tests/project/test_docstrings.py instead

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
