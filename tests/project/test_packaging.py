"""Packaging metadata (fast, static): PEP 639 licence, one version source, py.typed and the shipped data in the
package data, a citation file with the papers' correct authors. The build itself (sdist + wheel with no
deprecation warning, installed into a fresh venv) is checked by ``.ci/check_wheel.sh`` in CI."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

import tnml  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def test_pep639_licence():
    assert PROJECT["license"] == "MIT", "license must be an SPDX expression string (PEP 639), not a table"
    for pattern in PROJECT["license-files"]:
        assert glob.glob(str(ROOT / pattern)), f"license-files pattern {pattern!r} matches no file"
    assert not [c for c in PROJECT.get("classifiers", []) if c.startswith("License ::")], (
        "PEP 639: no licence classifiers beside a licence expression"
    )
    requires = " ".join(PYPROJECT["build-system"]["requires"])
    version = re.search(r"setuptools>=(\d+)", requires)
    assert version and int(version.group(1)) >= 77, "PEP 639 metadata needs setuptools >= 77"


def test_one_version_source():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "tnml.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*", tnml.__version__)
    assert f"version: {tnml.__version__}" in (ROOT / "CITATION.cff").read_text()


def test_package_data_ships_typing_marker_and_data():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["tnml"] and (ROOT / "tnml" / "py.typed").is_file()
    for package, patterns in data.items():
        folder = ROOT / package.replace(".", "/")
        for pattern in patterns:
            assert glob.glob(str(folder / pattern)), f"package-data {package}: {pattern!r} matches no file"
    assert "Typing :: Typed" in PROJECT["classifiers"]


def test_extras_pin_the_docs_and_type_checker():
    extras = PROJECT["optional-dependencies"]
    for name in ("sphinx", "numpydoc", "myst-nb", "sphinx-argparse"):
        assert any(d.startswith(f"{name}==") for d in extras["docs"]), f"docs extra must pin {name}"
    assert any(d.startswith("mypy==") for d in extras["typecheck"])
    assert "files" in PYPROJECT["tool"]["mypy"]


# the five papers: (arXiv id, authors in order)
PAPERS = {
    "2005.06398": ["Razin", "Cohen"],
    "2102.09972": ["Razin", "Maman", "Cohen"],
    "2201.11729": ["Razin", "Maman", "Cohen"],
    "2211.16494": ["Razin", "Verbin", "Cohen"],
    "2303.11249": ["Alexander", "De La Vega", "Razin", "Cohen"],
}


def test_citation_names_the_papers_with_their_authors():
    text = (ROOT / "CITATION.cff").read_text()
    refs = text.split("\n  - type: ")[1:]
    assert len(refs) == len(PAPERS)
    for ref in refs:
        arxiv = re.search(r"arXiv:(\d{4}\.\d{5})", ref).group(1)
        assert re.findall(r"family-names: (.+)", ref) == PAPERS[arxiv], arxiv


def test_docs_and_tutorials_name_the_right_p5_authors():
    paths = [ROOT / "README.md", ROOT / "CITATION.cff", *(ROOT / "docs").rglob("*.md"), *(ROOT / "tnml").rglob("*.py")]
    paths += [
        ROOT / "tutorials" / "02_entanglement_of_architectures.ipynb",
        ROOT / "tutorials" / "04_data_entanglement.ipynb",
    ]
    for path in paths:
        if "_build" in path.parts:
            continue
        assert "Ben-David" not in path.read_text(), f"{path}: P5 is Alexander, De La Vega, Razin, Cohen"
    papers = (ROOT / "docs" / "science" / "papers.md").read_text()
    assert "Yotam Alexander, Nimrod De La Vega, Noam Razin, Nadav Cohen" in papers
    for arxiv in PAPERS:
        assert arxiv in papers


def test_readme_names_no_path_outside_the_project():
    readme = (ROOT / "README.md").read_text()
    assert "../" not in readme and "/work/" not in readme
    quickstart = readme.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert [ln.split("#")[0].strip() for ln in quickstart.strip().splitlines()] == [
        "bash scripts/run_main.sh",
        "bash scripts/test.sh",
    ]
