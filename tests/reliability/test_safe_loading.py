"""Invariant: nothing in tnml unpickles or evaluates what a user hands it.

The package source (and examples/) is parsed with ``ast`` and every call is checked: ``torch.load`` only with
``weights_only=True``; no ``pickle``/``dill``/``marshal``/``shelve``/``joblib``/``cloudpickle``; no builtin
``eval``/``exec``; ``np.load`` never with ``allow_pickle=True``; no ``yaml.load``, ``pandas.read_pickle`` or
``torch.jit.load``. The checker is itself tested on snippets that break each rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}
UNSAFE_CALLS = {"yaml.load", "pd.read_pickle", "pandas.read_pickle", "torch.jit.load", "torch.package.PackageImporter"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else "<non-constant>"
    return None


def unsafe_uses(source: str, filename: str = "<snippet>") -> list[str]:
    """Every unsafe load or evaluation in ``source``, as ``file:line: what``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{where}: imports {m}" for m in mods if m.split(".")[0] in UNSAFE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name in ("eval", "exec", "builtins.eval", "builtins.exec"):
            found.append(f"{where}: calls {name}")
        elif name == "torch.load" and _kw(node, "weights_only") is not True:
            found.append(f"{where}: torch.load without weights_only=True")
        elif name in ("np.load", "numpy.load") and _kw(node, "allow_pickle") not in (None, False):
            found.append(f"{where}: {name} with allow_pickle={_kw(node, 'allow_pickle')}")
        elif name in UNSAFE_CALLS:
            found.append(f"{where}: calls {name}")
    return found


def _sources() -> list[Path]:
    files = sorted((ROOT / "tnml").rglob("*.py")) + sorted((ROOT / "examples").rglob("*.py"))
    assert len(files) > 20  # the scan found the package
    return files


def test_no_unsafe_loading_or_eval_in_the_package():
    problems = [p for f in _sources() for p in unsafe_uses(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))]
    assert problems == []


def test_the_checkpoint_loader_is_the_weights_only_kind():
    src = (ROOT / "tnml" / "checkpoint.py").read_text(encoding="utf-8")
    assert "weights_only=True" in src and unsafe_uses(src) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import torch\ntorch.load('x.pt')",
        "import torch\ntorch.load('x.pt', weights_only=False)",
        "import torch\nflag = True\ntorch.load('x.pt', weights_only=flag)",
        "import pickle",
        "from pickle import loads",
        "import joblib.numpy_pickle",
        "eval('1 + 1')",
        "exec('x = 1')",
        "import numpy as np\nnp.load('a.npy', allow_pickle=True)",
        "import yaml\nyaml.load(open('a'))",
        "import pandas as pd\npd.read_pickle('a')",
    ],
)
def test_the_checker_catches_each_unsafe_pattern(snippet):
    assert len(unsafe_uses(snippet)) == 1


@pytest.mark.parametrize(
    "snippet",
    [
        "import torch\ntorch.load('x.pt', weights_only=True, map_location='cpu')",
        "model.eval()",
        "import numpy as np\nnp.load('a.npz', allow_pickle=False)\nnp.load('b.npy')",
        "import yaml\nyaml.safe_load(open('a'))",
    ],
)
def test_the_checker_lets_safe_code_through(snippet):
    assert unsafe_uses(snippet) == []
