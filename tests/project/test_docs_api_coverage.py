"""The API reference covers every public name: each name in each package's ``__all__`` is listed on its package's
page of the generated reference (``docs/_ext/tnml_docs_api.py``, run by ``docs/conf.py`` at every build), and every
listed name exists. The packages are found here independently of the generator, from the files under ``tnml/``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "_ext" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _packages_on_disk() -> dict[str, list[str]]:
    """{package: __all__} for every directory under tnml/ with an __init__.py whose module defines __all__."""
    out = {}
    for init in sorted((ROOT / "tnml").rglob("__init__.py")):
        name = ".".join(init.parent.relative_to(ROOT).parts)
        mod = importlib.import_module(name)
        if hasattr(mod, "__all__"):
            out[name] = list(mod.__all__)
    for name in _load("tnml_docs_api").MODULES:  # public modules with a page of their own
        out[name] = list(importlib.import_module(name).__all__)
    return out


PACKAGES = _packages_on_disk()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, str]:
    api = _load("tnml_docs_api")
    out = tmp_path_factory.mktemp("api")
    pages = api.write_api_pages(out)
    return {p.stem: p.read_text() for p in pages}


def test_core_packages_are_public():
    for pkg in ["tnml", "tnml.networks", "tnml.entanglement", "tnml.preprocessing", "tnml.dynamics", "tnml.plans"]:
        assert pkg in PACKAGES, f"{pkg} has no __all__"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_public_name_is_in_the_reference(package, generated):
    assert package in generated, f"no API page for {package}"
    listed = re.findall(r"^   (\S+)$", generated[package].split(".. autosummary::", 1)[1], re.M)
    listed = [n for n in listed if not n.startswith(":")]
    missing = sorted(set(PACKAGES[package]) - set(listed))
    assert not missing, f"{package}: public names missing from the API reference: {missing}"
    assert len(listed) == len(set(PACKAGES[package])), "names listed twice or not public"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_public_name_exists(package):
    mod = importlib.import_module(package)
    absent = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not absent, f"{package}.__all__ names objects that do not exist: {absent}"
    assert len(mod.__all__) == len(set(mod.__all__)), f"{package}.__all__ lists a name twice"


def test_index_links_every_package(generated):
    for package in PACKAGES:
        assert f":doc:`{package}`" in generated["index"]


def test_site_checker_expects_a_page_per_name(tmp_path):
    # an empty output folder lacks every page the checker knows of, one per public name among them
    missing = _load("check_site").missing_pages(tmp_path)
    for package, names in PACKAGES.items():
        for name in names:
            assert f"api/generated/{package}.{name}.html" in missing
