"""numpydoc validation of the public API: every class and function named in a package's ``__all__`` has a docstring
with a one-line summary, documents every parameter of its signature (``Parameters`` / ``Other Parameters``; for a
class also ``Attributes``, the usual place for a result record's fields) and, for a function that returns a value,
has a ``Returns`` (or ``Yields``) section.

Docstrings that do not meet this yet are listed in ``KNOWN_GAPS`` (qualified name -> missing parts). The list may
only shrink: a new gap fails, and so does a listed gap that has been fixed (delete its line then).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

docscrape = pytest.importorskip("numpydoc.docscrape")

ROOT = Path(__file__).resolve().parents[2]

# measured when this test was written; fix a docstring, then delete its entry
KNOWN_GAPS: dict[str, set[str]] = {
    "tnml.datasets.embedded.digits": {"params"},
    "tnml.experiments.runner.run_experiments": {"params", "returns"},
    "tnml.feature_maps.IdentityMap": {"params"},
    "tnml.feature_maps.LinearMap": {"params"},
    "tnml.feature_maps.OneHotMap": {"params"},
    "tnml.feature_maps.PolynomialMap": {"params"},
    "tnml.feature_maps.TrigMap": {"params"},
    "tnml.feature_maps.available_feature_maps": {"docstring"},
    "tnml.feature_maps.get_feature_map": {"params", "returns"},
    "tnml.plans.star.StarPlan": {"params"},
    "tnml.plans.star.is_star": {"params", "returns"},
}


#: public modules (not packages) documented as a page of their own (docs/_ext/tnml_docs_api.py MODULES)
PUBLIC_MODULES = ["tnml.init", "tnml.network_form", "tnml.options"]


def _public_objects() -> dict[str, object]:
    objs = {}
    modules = [".".join(init.parent.relative_to(ROOT).parts) for init in sorted((ROOT / "tnml").rglob("__init__.py"))]
    for module in [*modules, *PUBLIC_MODULES]:
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                objs[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return objs


def _documented(doc) -> set[str]:
    names = set()
    for section in ("Parameters", "Other Parameters", "Attributes"):
        for param in doc[section]:
            for n in param.name.split(","):
                names.add(n.strip().lstrip("*"))
    return names


def gaps(obj) -> set[str]:
    """The parts of ``obj``'s docstring that are missing: docstring, summary, params, returns."""
    raw = inspect.getdoc(obj) if inspect.isfunction(obj) else obj.__dict__.get("__doc__")
    if not raw or not raw.strip():
        return {"docstring"}
    doc = docscrape.NumpyDocString(inspect.cleandoc(raw))
    out = set()
    if not doc["Summary"]:
        out.add("summary")
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        required = {
            p.name
            for p in sig.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        if required - _documented(doc):
            out.add("params")
        if inspect.isfunction(obj) and sig.return_annotation not in (None, "None") and _returns_value(obj):
            if not doc["Returns"] and not doc["Yields"]:
                out.add("returns")
    return out


def _returns_value(func) -> bool:
    try:
        src = inspect.getsource(func)
    except OSError:
        return True
    return any(line.strip().startswith(("return ", "yield ")) for line in src.splitlines())


OBJECTS = _public_objects()


def test_public_api_is_found():
    assert len(OBJECTS) > 80


@pytest.mark.parametrize("qualname", sorted(OBJECTS))
def test_public_docstring(qualname):
    found = gaps(OBJECTS[qualname])
    known = KNOWN_GAPS.get(qualname, set())
    new = found - known
    assert not new, f"{qualname}: docstring lacks {sorted(new)} (numpydoc: summary, Parameters, Returns)"
    fixed = known - found
    assert not fixed, f"{qualname}: {sorted(fixed)} now documented: delete it from KNOWN_GAPS in {__file__}"


def test_known_gaps_name_public_objects():
    stale = sorted(set(KNOWN_GAPS) - set(OBJECTS))
    assert not stale, f"KNOWN_GAPS lists names that are not public (delete them): {stale}"


def test_checker_catches_a_missing_parameter():
    def f(x, y):
        """Add.

        Parameters
        ----------
        x : int
            First.

        Returns
        -------
        int
            The sum.
        """
        return x + y

    assert gaps(f) == {"params"}
