"""The command line: listing, running, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from tnml.cli import main
from tnml.experiments import EXPERIMENTS, Comparison, ExperimentResult, run_experiments
from tnml.experiments.registry import register_experiment


def test_list(capsys):
    assert main(["list"]) == 0
    assert "digits-classifiers" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nope"], "unknown experiment 'nope'"),
        (["run", "digits-classifiers", "--device", "cuda:0"], "CUDA is not available"),
        (["run", "digits-classifiers", "--device", "banana"], "is not a torch device"),
        (["run", "digits-classifiers", "--seed", "x"], "--seed: must be an integer in [0, 4294967295], got 'x'"),
        (["frobnicate"], "invalid choice"),
        (["run", "digits-classifiers", "--threads", "0"], "--threads must be in [1, "),
    ],
)
def test_errors_exit_2_with_one_line(argv, message, capsys):
    import torch

    if "cuda" in " ".join(argv) and torch.cuda.is_available():
        pytest.skip("CUDA present")
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["run", "digits-classifiers", "--out", str(f)]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.fixture
def toy_experiment():
    @register_experiment("toy-test", "a toy")
    def run(cfg):
        (cfg.out_dir / "plot.png").write_bytes(b"png")
        return ExperimentResult(
            {"value": 1.5, "quick": cfg.quick}, [Comparison("value", 1.5, 2.0, "toy")], ["plot.png"]
        )

    yield "toy-test"
    del EXPERIMENTS["toy-test"]


def test_runner_writes_metrics_and_summary(tmp_path, toy_experiment):
    run_experiments([toy_experiment], tmp_path, quick=True, seed=3)
    meta = json.loads((tmp_path / toy_experiment / "metrics.json").read_text())
    assert meta["metrics"] == {"value": 1.5, "quick": True} and meta["seed"] == 3
    summary = (tmp_path / "summary.md").read_text()
    assert "| value | 1.5 | 2 |" in summary and "- **value**: toy" in summary
    assert "[plot.png](toy-test/plot.png)" in summary
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temp files left behind


def test_digits_classifiers_quick_reaches_95_percent(tmp_path, capsys, monkeypatch):
    """The issue's acceptance: `tnml run digits-classifiers --quick`, better model >= 95 % test accuracy (the 8x8
    models only: the 784-pixel ones are covered by tests/experiments/test_claims_digits_classifiers.py)."""
    from tnml.experiments import digits_classifiers

    monkeypatch.setattr(digits_classifiers, "MODEL_NAMES", ("mps", "ttn"))
    assert main(["run", "digits-classifiers", "--quick", "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "digits-classifiers" / "metrics.json").read_text())["metrics"]
    best = meta[meta["best_model"]]["test_acc"]
    assert best >= 0.95, meta
    assert (tmp_path / "digits-classifiers" / "training_curves.png").stat().st_size > 1000
    assert (tmp_path / "summary.md").exists()
