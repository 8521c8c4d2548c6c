"""The layering rules of DESIGN.md, checked on the import statements of every module of ``tnml`` (ast, not run).

Dependencies point down: cli -> experiments/commands -> workflows -> preprocessing, dynamics, regularization ->
entanglement -> networks, baselines, datasets -> core (:data:`LAYERS`). The rules checked:

- ``upward``: a package imports only packages of its own layer and of the layers below; so a model never imports
  its analysis (networks -> entanglement), an analysis never the actions it informs (entanglement ->
  preprocessing), and the core — the top-level modules ``tnml/*.py`` except the entry points, plus the contraction
  plans ``tnml.plans`` — no subpackage;
- ``circle``: no two packages import each other, directly or through others (the package graph has no cycle);
- ``plans -> model``: the contraction plans are compiled from structures and know no :class:`tnml.TNModel`;
- ``datasets -> contraction``: data loaders know no contraction code (``tnml.plans``, ``tnml.model``,
  ``tnml.dense``);
- ``private``: no private name (``_x``, a function, class or module) is imported from another package.

Every import counts, module level or inside a function, and so does ``importlib.import_module("tnml...")`` (an
f-string target counts as the package of its constant prefix). A package is ``tnml.<name>`` for a subpackage,
``tnml.cli`` for the entry points (``tnml.cli``, ``tnml.__main__``) and ``core`` for the core. Violations that
remain because the code has not been moved yet are listed in ``KNOWN_VIOLATIONS``; the test fails when a new one
appears *and* when a listed one is gone (then delete its line), so the list only shrinks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TNML = ROOT / "tnml"
CONTRACTION = ("tnml.plans", "tnml.model", "tnml.dense")
CORE_SUBPACKAGES = {"plans"}  # subpackages that belong to the core
ENTRY_POINTS = {"tnml.cli", "tnml.__main__"}  # top-level modules that are not core (the CLI drives the experiments)

#: DESIGN.md's layers, bottom up: a package may import packages of its own layer (without forming a circle) and of
#: the layers below. A new subpackage must be placed here.
LAYERS: dict[str, int] = {
    "core": 0,
    "tnml.networks": 1,
    "tnml.baselines": 1,
    "tnml.datasets": 1,
    "tnml.entanglement": 2,
    "tnml.preprocessing": 3,
    "tnml.dynamics": 3,
    "tnml.regularization": 3,
    "tnml.workflows": 4,
    "tnml.experiments": 5,
    "tnml.commands": 5,
    "tnml.cli": 6,
}

#: (rule, importing module, imported module or module.name) still to be fixed
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module: str) -> str:
    """``core`` for the core, ``tnml.cli`` for the entry points, else ``tnml.<subpackage>`` (``tnml`` is core)."""
    if module in ENTRY_POINTS:
        return "tnml.cli"
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and (TNML / f"{parts[1]}.py").exists()):
        return "core"
    return "core" if parts[1] in CORE_SUBPACKAGES else f"tnml.{parts[1]}"


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def _dynamic_target(node: ast.Call) -> str | None:
    """The module a call ``import_module("tnml...")`` / ``importlib.import_module(f"tnml.pkg.{x}")`` loads (for an
    f-string: the package of its constant prefix), else None."""
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    if name != "import_module" or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        target = arg.value
    elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        target = str(arg.values[0].value).rsplit(".", 1)[0]
    else:
        return None
    return target if target.split(".")[0] == "tnml" else None


def _imports(path: Path, module: str) -> list[tuple[str, str | None]]:
    """``(imported module, imported name or None)`` for every import of a tnml module in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (dynamic := _dynamic_target(node)) is not None:
            out.append((dynamic, None))
        elif isinstance(node, ast.Import):
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


def _circles(edges: dict[tuple[str, str], set[tuple[str, str]]]) -> set[tuple[str, str, str]]:
    """``("circle", module, target)`` for every import whose two packages lie on one cycle of the package graph."""
    graph = nx.DiGraph(list(edges))
    out: set[tuple[str, str, str]] = set()
    for scc in nx.strongly_connected_components(graph):
        if len(scc) > 1:
            for (a, b), imports in edges.items():
                if a in scc and b in scc:
                    out.update(("circle", src, dst) for src, dst in imports)
    return out


def _violations() -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for path in sorted(TNML.rglob("*.py")):
        module = _module_name(path)
        pkg = _package(module)
        for target, name in _imports(path, module):
            tpkg = _package(target)
            for p in (pkg, tpkg):
                if p not in LAYERS:
                    raise AssertionError(f"package {p} has no layer: add it to LAYERS (DESIGN.md's order)")
            rules = []
            if pkg != tpkg:
                edges.setdefault((pkg, tpkg), set()).add((module, target))
            if LAYERS[tpkg] > LAYERS[pkg]:
                rules.append("upward")
            if module.startswith("tnml.plans") and (target == "tnml.model" or target.startswith("tnml.model.")):
                rules.append("plans -> model")
            if pkg == "tnml.datasets" and any(target == c or target.startswith(c + ".") for c in CONTRACTION):
                rules.append("datasets -> contraction")
            if pkg != tpkg and any(p.startswith("_") and not p.startswith("__") for p in target.split(".")):
                rules.append("private")  # a private module of another package
            found.update((rule, module, target) for rule in rules)
            if pkg != tpkg and name is not None and name.startswith("_") and not name.startswith("__"):
                found.add(("private", module, f"{target}.{name}"))
    return found | _circles(edges)


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
         {("upward", "tnml.networks.x", "tnml.entanglement.walk_index"),
          ("private", "tnml.networks.x", "tnml.entanglement.walk_index._propagate")}),
        ("def f():\n    import tnml.preprocessing.rearrangement\n", "tnml.entanglement.x",
         {("upward", "tnml.entanglement.x", "tnml.preprocessing.rearrangement")}),
        ("from tnml.plans import compile_plan\n", "tnml.datasets.x",
         {("datasets -> contraction", "tnml.datasets.x", "tnml.plans")}),
        ("from tnml.networks import MPS\n", "tnml.model", {("upward", "tnml.model", "tnml.networks")}),
        ("from tnml.entanglement._inputs import graph_and_sides\n", "tnml.dynamics.x",
         {("private", "tnml.dynamics.x", "tnml.entanglement._inputs")}),
        # dynamic imports count: a string target, and an f-string's constant prefix
        ("from importlib import import_module\nimport_module('tnml.dynamics.x')\n", "tnml.entanglement.x",
         {("upward", "tnml.entanglement.x", "tnml.dynamics.x")}),
        ("import importlib\nimportlib.import_module(f'tnml.preprocessing.{n}')\n", "tnml.entanglement.x",
         {("upward", "tnml.entanglement.x", "tnml.preprocessing")}),
        ("def f():\n    from tnml.model import TNModel\n", "tnml.plans.x",
         {("plans -> model", "tnml.plans.x", "tnml.model")}),
        # allowed: downhill imports, private names inside one package, the core's own plans, same-layer imports
        ("from tnml.mode_trees import window_tree\nfrom tnml.entanglement._inputs import q\n",
         "tnml.entanglement.x", set()),
        ("from tnml.plans.tree import TreePlan\nfrom tnml.storage import _classes\n", "tnml.model", set()),
        ("from tnml.dynamics.x import f\n", "tnml.preprocessing.x", set()),
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
    for mod in ["model", "dense", "storage", "mode_trees"]:
        (fake_root / "tnml" / f"{mod}.py").write_text("")
    for mod in ["entanglement/walk_index", "entanglement/_inputs", "preprocessing/rearrangement",
                "dynamics/x", "plans/tree"]:
        (fake_root / "tnml" / f"{mod}.py").write_text("")
    path = fake_root / Path(*module.split(".")).with_suffix(".py")
    path.write_text(source)
    monkeypatch.setattr(rules, "ROOT", fake_root)
    monkeypatch.setattr(rules, "TNML", fake_root / "tnml")
    assert rules._violations() == expected


def test_the_checker_sees_a_circle(tmp_path, monkeypatch):
    """Two packages of one layer that import each other (one of them through import_module) form a circle; a new
    subpackage without a layer is refused."""
    import tests.project.test_architecture_rules as rules

    for sub in ["networks", "baselines"]:
        (tmp_path / "tnml" / sub).mkdir(parents=True)
        (tmp_path / "tnml" / sub / "__init__.py").write_text("")
    (tmp_path / "tnml" / "__init__.py").write_text("")
    (tmp_path / "tnml" / "networks" / "a.py").write_text("from tnml.baselines.b import f\n")
    dynamic = "import importlib\nimportlib.import_module('tnml.networks.a')\n"
    (tmp_path / "tnml" / "baselines" / "b.py").write_text(dynamic)
    monkeypatch.setattr(rules, "ROOT", tmp_path)
    monkeypatch.setattr(rules, "TNML", tmp_path / "tnml")
    assert rules._violations() == {("circle", "tnml.networks.a", "tnml.baselines.b"),
                                   ("circle", "tnml.baselines.b", "tnml.networks.a")}
    (tmp_path / "tnml" / "extras").mkdir()
    (tmp_path / "tnml" / "extras" / "__init__.py").write_text("import tnml.networks\n")
    with pytest.raises(AssertionError, match="tnml.extras has no layer"):
        rules._violations()


def test_importing_the_analysis_loads_no_layer_above_it():
    """At run time too: ``import tnml.entanglement`` loads neither the actions (preprocessing, dynamics,
    regularization) nor the workflows, experiments or CLI."""
    above = sorted(p for p, layer in LAYERS.items() if layer > LAYERS["tnml.entanglement"])
    code = (
        "import sys, tnml.entanglement; "
        f"bad = sorted(m for m in sys.modules if m.startswith({tuple(p + '.' for p in above)!r}) or m in {above!r}); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


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
    """One rank rule. Library code counts ranks with tnml.spectrum.numerical_rank (its tolerance policy),
    never with numpy's / torch's matrix_rank, whose defaults differ from the routes' (docstring examples aside)."""
    bad = [str(p.relative_to(ROOT)) for p in sorted(TNML.rglob("*.py")) if _rank_calls(p.read_text())]
    assert not bad, f"use tnml.spectrum.numerical_rank (with default_rtol) instead of matrix_rank in {bad}"
    assert _rank_calls("import numpy as np\nr = np.linalg.matrix_rank(a)\n") == ["matrix_rank"]
    assert _rank_calls('"""\n>>> np.linalg.matrix_rank(a)\n"""\n') == []
