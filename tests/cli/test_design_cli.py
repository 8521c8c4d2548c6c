"""`tnml design`: CSV -> TTN spec JSON that TTN.from_spec rebuilds; one-line errors, exit 2, nothing half-written."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from tnml.cli import main
from tnml.mode_trees import tree_nodes
from tnml.networks import TTN


@pytest.fixture
def design_csv(planted_csv):
    """16 features in a shuffled column order (f_j ≈ f_{j+8}), 200 rows, the label fourth."""
    return functools.partial(planted_csv, m=200, half=8, label_at=3, shuffle=True)


def test_design_cli_round_trip(tmp_path, capsys, design_csv):
    data = design_csv(tmp_path / "d.csv")
    out = tmp_path / "spec.json"
    assert main(["design", str(data), "--label", "target", "--out", str(out), "--budget", "600"]) == 0
    assert "TTN design" in capsys.readouterr().out
    spec = json.loads(out.read_text())
    model = TTN.from_spec(out)
    assert spec["n_params"] == sum(p.numel() for p in model.parameters()) <= 600
    assert model.out_dim == 2 and model.n_sites == 16
    assert {tuple(e["sites"]): e["width"] for e in spec["edges"]} == model.edge_widths
    # leaf k is the CSV's feature column features[k]: the planted pairs f_j, f_{j+8} are siblings
    names = spec["features"]
    pairs = {frozenset(names[k] for k in b) for b in tree_nodes(model.tree) if len(b) == 2}
    assert pairs == {frozenset((f"f{j}", f"f{j + 8}")) for j in range(8)}
    assert model(torch.rand(3, 16)).shape == (3, 2)
    assert len(spec["design"]["edges"]) == len(spec["edges"])
    # a second run replaces its own spec without --force
    assert main(["design", str(data), "--label", "target", "--out", str(out), "--bond", "3", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["summary"]["width_max"] == rep["summary"]["width_min"] == 3


@pytest.mark.parametrize("extra,match", [
    (["--label", "nope"], "no column 'nope'"),
    (["--label", "target", "--budget", "0"], "--budget must be"),
    (["--label", "target", "--budget", "3"], "--budget 3 is below"),
    (["--label", "target", "--bond", "wide"], "--bond must be"),
    (["--label", "target", "--bond", "3", "--budget", "500"], "--budget applies to --bond auto"),
    (["--label", "target", "--dims", "3"], "--dims must be 1"),
    (["--label", "target", "--shape", "3", "5"], "--shape 3 5 holds 15"),
    (["--label", "target", "--margin", "-1"], "--margin"),
    (["--label", "target", "--sketch-size", "1"], "--sketch-size must be an integer >= 2"),
])
def test_design_cli_errors_write_nothing(tmp_path, capsys, extra, match, design_csv, one_line_error):
    data = design_csv(tmp_path / "d.csv")
    out = tmp_path / "spec.json"
    err = one_line_error(main(["design", str(data), "--out", str(out), *extra]))
    assert match in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]  # no temporary file left behind


def test_design_cli_refuses_to_overwrite(tmp_path, capsys, design_csv, one_line_error):
    data = design_csv(tmp_path / "d.csv")
    err = one_line_error(main(["design", str(data), "--label", "target", "--out", str(data)]))
    assert "is the input DATA" in err
    other = tmp_path / "notes.json"
    other.write_text('{"mine": 1}')
    err = one_line_error(main(["design", str(data), "--label", "target", "--out", str(other)]))
    assert "--force" in err and json.loads(other.read_text()) == {"mine": 1}
    assert main(["design", str(data), "--label", "target", "--out", str(other), "--force"]) == 0
    assert json.loads(other.read_text())["format"] == "tnml-ttn-spec"


def test_design_cli_qe_route(tmp_path, capsys, design_csv):
    """--qe-method picks the QE route of the widths; the JSON report names it (default: P5's batches)."""
    data = design_csv(tmp_path / "d.csv")
    out = tmp_path / "spec.json"
    assert main(["design", str(data), "--label", "target", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["qe_method"] == "batches" and summary["qe_sketch_size"] is None
    assert main(["design", str(data), "--label", "target", "--out", str(out), "--json", "--qe-method", "sketch",
                 "--sketch-size", "50"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["qe_method"] == "sketch" and summary["qe_sketch_size"] == 50 and summary["qe_samples"] == 200
    assert summary["qe_error_estimate_max"] >= 0
    assert json.loads(out.read_text())["design"]["summary"]["qe_method"] == "sketch"
