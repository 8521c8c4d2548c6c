"""runs/summary.md stays a valid markdown table when a quantity contains ``|`` (e.g. ``|W_11|``)."""

from __future__ import annotations

from tnml.experiments.registry import Comparison, ExperimentResult
from tnml.experiments.runner import summary_markdown


def test_pipes_in_cells_are_escaped():
    res = ExperimentResult({}, [Comparison("|W_11| at loss 0.1", 1.84, 2.0, "a | b\nc")], [])
    text = summary_markdown({"dmf-norms": res}, {"dmf-norms": 1.0}, quick=True, seed=0)
    row = next(line for line in text.splitlines() if line.startswith("| dmf-norms |"))
    # five cells: the escaped pipes do not split the row
    assert row.replace("\\|", "").count("|") == 6
    assert "\\|W_11\\| at loss 0.1" in row and "a \\| b c" in row
