"""Names removed before the first release stay removed, their new homes import, and the docs list every one."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "guide" / "moved-names.md"

#: (old module, old attribute or None for the module itself) -> (new module, attribute or None)
MOVED = {
    ("tnml.networks.gcn", None): ("tnml.baselines.gcn", None),
    ("tnml.networks", "GCN"): ("tnml.baselines", "GCN"),
    ("tnml.networks", "GraphGCN"): ("tnml.baselines", "GraphGCN"),
    ("tnml.networks", "normalized_adjacency"): ("tnml.baselines", "normalized_adjacency"),
    ("tnml.networks.local_cnn", None): ("tnml.baselines.local_cnn", None),
    ("tnml.networks", "CNN1D"): ("tnml.baselines", "CNN1D"),
    ("tnml.networks", "CNN2D"): ("tnml.baselines", "CNN2D"),
    ("tnml.networks.mode_trees", None): ("tnml.mode_trees", None),
    ("tnml.entanglement.suitability", None): ("tnml.entanglement.fit_bounds", None),
    ("tnml.entanglement", "suitability"): ("tnml.workflows", "suitability"),
    ("tnml.entanglement", "SuitabilityRecord"): ("tnml.workflows.suitability", "SuitabilityRecord"),
    ("tnml.entanglement", "SuitabilityResult"): ("tnml.workflows.suitability", "SuitabilityResult"),
    ("tnml.dense", "format_bytes"): ("tnml.io", "format_bytes"),
    ("tnml.entanglement", "min_cut_on_graph"): ("tnml.entanglement", "mincut_on_graph"),
    ("tnml.entanglement", "min_cut_on_tree"): ("tnml.entanglement", "mincut_on_tree"),
}


def _dotted(module: str, attr: str | None) -> str:
    return module if attr is None else f"{module}.{attr}"


@pytest.mark.parametrize(("old", "new"), list(MOVED.items()), ids=[_dotted(*k) for k in MOVED])
def test_the_old_name_is_gone_and_the_new_home_imports(old, new):
    module, attr = old
    if attr is None:
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(module)
    else:
        assert not hasattr(importlib.import_module(module), attr)
    new_module, new_attr = new
    home = importlib.import_module(new_module)
    assert new_attr is None or hasattr(home, new_attr)


def test_the_docs_list_every_removed_name():
    text = PAGE.read_text()
    missing = [_dotted(*k) for k in MOVED if f"`{_dotted(*k)}" not in text]
    assert not missing, f"add these to {PAGE.relative_to(ROOT)}: {missing}"


def test_p5s_fit_bounds_are_one_object_in_the_analysis():
    """The bounds moved, not copied: the analysis package exports the functions of tnml.entanglement.fit_bounds."""
    import tnml.entanglement as ent
    from tnml.entanglement import fit_bounds

    for name in fit_bounds.__all__:
        assert getattr(ent, name) is getattr(fit_bounds, name) and name in ent.__all__
