"""The README's Python examples run as written (in order, sharing one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "README has no python examples"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["y"].shape == (32, 10)


# ---- the README's experiment table is generated from a stored reference run (scripts/readme_table.py) ----
def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_table", README.parent / "scripts" / "readme_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_table_matches_the_reference_run():
    """After a main run: ``python scripts/readme_table.py runs --store --write-readme`` updates both."""
    import pytest

    from tnml.experiments.tables import load_run, readme_table

    script = _script()
    run = load_run(script.REFERENCE_RUN)
    if not run:
        pytest.skip(f"no reference run stored in {script.REFERENCE_RUN} yet (scripts/readme_table.py RUNS --store)")
    expected = readme_table(run).strip()
    assert script.readme_block(README.read_text(encoding="utf-8")) == expected, (
        "README's experiment table differs from the stored reference run; regenerate it with "
        "`python scripts/readme_table.py RUNS --store --write-readme`"
    )


def test_readme_table_script_stores_and_writes(tmp_path, monkeypatch):
    import json

    from tnml.experiments.registry import EXPERIMENTS, Claim, Comparison, ExperimentResult, register_experiment
    from tnml.experiments.runner import run_experiments

    @register_experiment("fake-readme", "a fake experiment")
    def run(cfg):
        return ExperimentResult(
            {"big": list(range(100))},
            [Comparison("value", 1.5, 2.0, "long note", key=True), Comparison("other", 3, None)],
            claims=[Claim("value near 2", "reproduced with differences", "1.5")],
            about="A fake experiment. It shows how the table is built.",
        )

    try:
        run_experiments(["fake-readme"], tmp_path / "runs", quick=True, seed=4)
    finally:
        del EXPERIMENTS["fake-readme"]
    script = _script()
    ref = tmp_path / "reference"
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{script.START}\nold table\n{script.END}\noutro\n")
    monkeypatch.setattr(script, "REFERENCE_RUN", ref)
    monkeypatch.setattr(script, "README", readme)
    assert script.main([str(tmp_path / "runs"), "--store", "--write-readme"]) == 0
    stored = json.loads((ref / "fake-readme" / "metrics.json").read_text())
    assert "metrics" not in stored and stored["seed"] == 4 and stored["claims"][0]["text"] == "value near 2"
    text = readme.read_text()
    assert text.startswith(f"intro\n{script.START}\n| experiment |") and text.endswith(f"{script.END}\noutro\n")
    row = next(line for line in text.splitlines() if line.startswith("| `fake-readme`"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert cells[1] == "a fake experiment" and cells[2] == "value: 1.5 (2)"  # the key row only
    assert cells[3] == "1 reproduced with differences" and cells[4].endswith(" s")
    assert "quick run, seed 4, cpu" in text
    assert script.main([str(tmp_path / "empty")]) == 2
