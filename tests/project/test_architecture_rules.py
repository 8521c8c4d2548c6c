"""The layering rules of DESIGN.md, checked on the import statements of every module of ``tnml`` (ast, not run).

Dependencies point down: experiments/commands -> workflows -> preprocessing, dynamics, regularization ->
entanglement -> networks -> core. The rules checked (issue 18):

- ``networks -> entanglement``: a model never imports its analysis;
- ``entanglement -> preprocessing``: an analysis never imports the actions it informs;
- ``datasets -> contraction``: data loaders know no contraction code (``tnml.plans``, ``tnml.model``,
  ``tnml.dense``);
- ``private``: no private name (``_x``, a function, class or module) is imported from another package;
- ``core -> subpackage``: the core — the top-level modules ``tnml/*.py`` except the CLI, plus the contraction
  plans ``tnml.plans`` (DESIGN.md lists "compiled contraction plans" in the core) — imports no other subpackage.

Every import counts, module level or inside a function. A package is ``tnml.<name>`` for a subpackage and
``core`` for the core. Violations that remain because the code has not been moved yet are listed in
``KNOWN_VIOLATIONS``; the test fails when a new one appears *and* when a listed one is gone (then delete its
line), so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TNML = ROOT / "tnml"
CONTRACTION = ("tnml.plans", "tnml.model", "tnml.dense")
CORE_SUBPACKAGES = {"plans"}  # subpackages that belong to the core
OUTSIDE_CORE = {"tnml.cli"}  # top-level modules that are not core (the CLI drives the experiments)

#: (rule, importing module, imported module or module.name) still to be fixed, with who fixes them
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()  # all fixed (issue 18); keep it empty


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module: str) -> str:
    """``core`` for the core, else ``tnml.<subpackage>`` (``tnml`` itself is core)."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and (TNML / f"{parts[1]}.py").exists()):
        return "core"
    return "core" if parts[1] in CORE_SUBPACKAGES else f"tnml.{parts[1]}"


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def _imports(path: Path, module: str) -> list[tuple[str, str | None]]:
    """``(imported module, imported name or None)`` for every import of a tnml module in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] == "tnml"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = module.split(".") if is_pkg else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "tnml":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub, None) if _is_module(sub) else (base, a.name))
    return out


def _violations() -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for path in sorted(TNML.rglob("*.py")):
        module = _module_name(path)
        pkg = _package(module)
        for target, name in _imports(path, module):
            tpkg = _package(target)
            rules = []
            if pkg == "tnml.networks" and tpkg == "tnml.entanglement":
                rules.append("networks -> entanglement")
            if pkg == "tnml.entanglement" and tpkg == "tnml.preprocessing":
                rules.append("entanglement -> preprocessing")
            if pkg == "tnml.datasets" and any(target == c or target.startswith(c + ".") for c in CONTRACTION):
                rules.append("datasets -> contraction")
            if pkg == "core" and module not in OUTSIDE_CORE and tpkg != "core":
                rules.append("core -> subpackage")
            if pkg != tpkg and any(p.startswith("_") and not p.startswith("__") for p in target.split(".")):
                rules.append("private")  # a private module of another package
            found.update((rule, module, target) for rule in rules)
            if pkg != tpkg and name is not None and name.startswith("_") and not name.startswith("__"):
                found.add(("private", module, f"{target}.{name}"))
    return found


def test_rules_hold_except_the_known_violations():
    found = _violations()
    new = sorted(found - KNOWN_VIOLATIONS)
    gone = sorted(KNOWN_VIOLATIONS - found)
    assert not new, "imports that break DESIGN.md's layering (move the code, or import from the right layer):\n" + (
        "\n".join(f"  {rule}: {src} imports {dst}" for rule, src, dst in new)
    )
    assert not gone, "fixed, well done: delete these from KNOWN_VIOLATIONS so they cannot come back:\n" + (
        "\n".join(f"  {v}" for v in gone)
    )


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from tnml.entanglement.walk_index import _propagate\n", "tnml.networks.x",
         {("networks -> entanglement", "tnml.networks.x", "tnml.entanglement.walk_index"),
          ("private", "tnml.networks.x", "tnml.entanglement.walk_index._propagate")}),
        ("def f():\n    import tnml.preprocessing.rearrangement\n", "tnml.entanglement.x",
         {("entanglement -> preprocessing", "tnml.entanglement.x", "tnml.preprocessing.rearrangement")}),
        ("from tnml.plans import compile_plan\n", "tnml.datasets.x",
         {("datasets -> contraction", "tnml.datasets.x", "tnml.plans")}),
        ("from tnml.networks import MPS\n", "tnml.model", {("core -> subpackage", "tnml.model", "tnml.networks")}),
        ("from tnml.entanglement._inputs import graph_and_sides\n", "tnml.dynamics.x",
         {("private", "tnml.dynamics.x", "tnml.entanglement._inputs")}),
        # allowed: downhill imports, private names inside one package, the core's own plans
        ("from tnml.networks.mode_trees import window_tree\nfrom tnml.entanglement._inputs import q\n",
         "tnml.entanglement.x", set()),
        ("from tnml.plans.tree import TreePlan\nfrom tnml.storage import _classes\n", "tnml.model", set()),
    ],
)
def test_the_checker_sees_each_rule(tmp_path, monkeypatch, source, module, expected):
    """The checker itself, on synthetic modules placed in a scratch copy of the package layout."""
    import tests.project.test_architecture_rules as rules

    fake_root = tmp_path
    for sub in ["networks", "entanglement", "preprocessing", "datasets", "plans", "dynamics"]:
        (fake_root / "tnml" / sub).mkdir(parents=True)
        (fake_root / "tnml" / sub / "__init__.py").write_text("")
    (fake_root / "tnml" / "__init__.py").write_text("")
    for mod in ["model", "dense", "storage"]:
        (fake_root / "tnml" / f"{mod}.py").write_text("")
    for mod in ["entanglement/walk_index", "entanglement/_inputs", "preprocessing/rearrangement",
                "networks/mode_trees", "plans/tree"]:
        (fake_root / "tnml" / f"{mod}.py").write_text("")
    path = fake_root / Path(*module.split(".")).with_suffix(".py")
    path.write_text(source)
    monkeypatch.setattr(rules, "ROOT", fake_root)
    monkeypatch.setattr(rules, "TNML", fake_root / "tnml")
    assert rules._violations() == expected


def _rank_calls(source: str) -> list[str]:
    """Names of rank-counting calls that bypass tnml.spectrum: ``*.matrix_rank(...)`` (numpy's or torch's)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name == "matrix_rank":
                out.append(name)
    return out


def test_ranks_are_counted_by_tnml_spectrum():
    """Issue 18: one rank rule. Library code counts ranks with tnml.spectrum.numerical_rank (its tolerance policy),
    never with numpy's / torch's matrix_rank, whose defaults differ from the routes' (docstring examples aside)."""
    bad = [str(p.relative_to(ROOT)) for p in sorted(TNML.rglob("*.py")) if _rank_calls(p.read_text())]
    assert not bad, f"use tnml.spectrum.numerical_rank (with default_rtol) instead of matrix_rank in {bad}"
    assert _rank_calls("import numpy as np\nr = np.linalg.matrix_rank(a)\n") == ["matrix_rank"]
    assert _rank_calls('"""\n>>> np.linalg.matrix_rank(a)\n"""\n') == []
