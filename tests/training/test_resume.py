"""Checkpoints and ``tnml run --resume``: a run killed with SIGKILL and resumed ends bit-identical to an
uninterrupted one; checkpoint files are never half-written; bad checkpoints give one line and exit code 2."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import tnml.checkpoint as ckpt_mod
from tnml.checkpoint import Checkpointer, CheckpointError, rng_state, set_rng_state
from tnml.cli import main
from tnml.experiments import EXPERIMENTS
from tnml.experiments.registry import Experiment
from tnml.experiments.training import train_classifier
from tnml.networks import MPS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "_resume_script.py"
TOY = "toy-resume"


def _run(out: Path, *extra: str) -> int:
    return main(["run", TOY, "--out", str(out), "--checkpoint-every", "1", *extra])


def _metrics(out: Path) -> dict:
    return json.loads((out / TOY / "metrics.json").read_text())["metrics"]


def _data(n: int = 120):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 6, generator=g, dtype=torch.float64)
    y = (x[:, 0] + x[:, 5] > 1).long()
    return x[:90], y[:90], x[90:], y[90:]


def _model(seed: int) -> MPS:
    torch.manual_seed(seed)
    return MPS(6, 2, 3, out_dim=2, dtype=torch.float64)


# ------------------------------------------------------------------------------------------- unit level
def test_rng_state_round_trip_through_a_safe_load(tmp_path):
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    ck = Checkpointer(tmp_path / "r.pt")
    ck.save({"rng": rng_state()})
    ref = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)], np.random.randn())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(ck.load()["rng"])  # a weights_only=True load: the states hold tensors, numbers, tuples only
    got = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)], np.random.randn())
    assert torch.equal(ref[0], got[0]) and np.array_equal(ref[1], got[1])
    assert ref[2] == got[2] and ref[3] == got[3]


def test_train_classifier_continues_bit_identically_after_an_interrupt(tmp_path, monkeypatch):
    xtr, ytr, xte, yte = _data()
    kw = dict(epochs=5, lr=2e-2, batch_size=16, seed=3)
    ref_model = _model(0)
    ref = train_classifier(ref_model, xtr, ytr, xte, yte, **kw)

    ck = Checkpointer(tmp_path / "c.pt", every=2)
    real_save = Checkpointer.save
    calls = []

    def save_then_die(self, state):  # the first save (epoch 2) lands, then the process "dies" in epoch 3
        real_save(self, state)
        calls.append(state["progress"])
        raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(_model(0), xtr, ytr, xte, yte, checkpointer=ck, **kw)
    monkeypatch.setattr(Checkpointer, "save", real_save)
    assert calls == [2]
    torch.manual_seed(123)  # the global RNG is restored from the checkpoint, whatever it is now
    model = _model(7)  # other initial values: the checkpoint's replace them
    got = train_classifier(model, xtr, ytr, xte, yte, checkpointer=Checkpointer(ck.path, every=2), **kw)
    assert got == ref
    for a, b in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(a, b)
    # a finished checkpoint: a further call returns at once with the final model
    again = _model(8)
    assert train_classifier(again, xtr, ytr, xte, yte, checkpointer=Checkpointer(ck.path, every=2), **kw) == ref
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), ref_model.parameters()))


def test_a_save_interrupted_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    ck = Checkpointer(tmp_path / "c.pt")
    ck.save({"epoch": 1, "w": torch.arange(4.0)})
    real = torch.save

    def half_then_crash(obj, f):  # write half a file, then fail like a full disk or a kill
        real(obj, f)
        f.truncate(f.tell() // 2)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", half_then_crash)
    with pytest.raises(OSError):
        ck.save({"epoch": 2, "w": torch.zeros(4)})
    state = ck.load()
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.arange(4.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # the temp file is gone too
    # a temp file left by SIGKILL (no cleanup ran) never sits under the final name and goes with the next save
    # (temp names carry HOST-PID; only this process's and those of dead processes of this host are removed)
    (tmp_path / f".c.pt.{ckpt_mod._owner_tag()}.abcd.tmp").write_bytes(b"half a checkpoint")
    monkeypatch.setattr(ckpt_mod.torch, "save", real)
    assert ck.load()["epoch"] == 1
    ck.save({"epoch": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"] and ck.load() == {"epoch": 3}


class _NotAllowed:
    pass


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "cannot be read"),
        (b"\x00\xffgarbage" * 10, "cannot be read"),
        ("pickled-object", "cannot be read"),  # weights_only=True refuses to unpickle a class
        ("truncated", "cannot be read"),
        ("old-format", "not a tnml checkpoint"),
    ],
)
def test_bad_checkpoint_files_raise_checkpoint_error(tmp_path, content, message):
    path = tmp_path / "c.pt"
    if content == "pickled-object":
        torch.save({"format": 1, "meta": {}, "state": _NotAllowed()}, path)
    elif content == "truncated":
        Checkpointer(path).save({"w": torch.ones(100)})
        path.write_bytes(path.read_bytes()[:300])
    elif content == "old-format":
        torch.save({"w": torch.ones(3)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        Checkpointer(path).load()
    assert Checkpointer(path, resume=False).load() is None  # without resume the file is ignored


def test_checkpointer_rejects_a_bad_interval():
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        Checkpointer("x.pt", every=0)


# ------------------------------------------------------------------------------------------- the CLI
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, toy, capsys):
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    assert _run(ref_out) == 0
    ref = _metrics(ref_out)
    assert not (ref_out / TOY / "checkpoints").exists()  # removed once metrics.json is written

    env = {**os.environ, "TNML_TOY_SLEEP": "0.02", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(SCRIPT), "run", TOY, "--out", str(out), "--checkpoint-every", "1"]
    log = tmp_path / "stderr.txt"  # a file, not a pipe: a full pipe would stall the child
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        ckpt = out / TOY / "checkpoints" / "toy.pt"
        deadline = time.monotonic() + 120
        while not ckpt.exists():
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
        time.sleep(0.15)  # into the next epoch
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    assert not (out / TOY / "metrics.json").exists()
    epoch = toy_checkpoint_epoch(ckpt)
    assert 1 <= epoch < toy.EPOCHS  # killed mid-run, and the file under the final name is complete

    capsys.readouterr()
    assert _run(out, "--resume") == 0
    assert f"toy: resumed from {ckpt} at epoch {epoch}/{toy.EPOCHS}" in capsys.readouterr().err
    assert _metrics(out) == ref  # losses, accuracies, parameter hash, RNG stream after training: all equal


def toy_checkpoint_epoch(path: Path) -> int:
    return int(torch.load(path, weights_only=True)["state"]["progress"])


def test_resume_skips_finished_experiments_and_reloads_them(tmp_path, toy, monkeypatch, capsys):
    assert _run(tmp_path) == 0
    before = (tmp_path / TOY / "metrics.json").read_bytes()
    monkeypatch.setitem(EXPERIMENTS, TOY, Experiment(TOY, "toy", lambda cfg: pytest.fail("ran again")))
    capsys.readouterr()
    assert _run(tmp_path, "--resume") == 0
    assert (tmp_path / TOY / "metrics.json").read_bytes() == before
    loss = json.loads(before)["metrics"]["history"]["loss"][-1]
    assert f"toy-resume: toy final loss = {loss}" in capsys.readouterr().out
    assert f"| toy final loss | {loss:.4g} |" in (tmp_path / "summary.md").read_text()


def _one_line_error(capsys, rc: int) -> str:
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_resume_refuses_metrics_of_other_settings(tmp_path, toy, capsys):
    assert _run(tmp_path) == 0
    capsys.readouterr()
    err = _one_line_error(capsys, _run(tmp_path, "--resume", "--seed", "1"))
    assert "metrics.json" in err and "seed: 0 there, 1 now" in err and "run without --resume" in err


@pytest.mark.parametrize("kind", ["garbage", "other-settings"])
def test_resume_refuses_a_bad_checkpoint_with_one_line(tmp_path, toy, capsys, kind):
    path = tmp_path / TOY / "checkpoints" / "toy.pt"
    if kind == "garbage":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"PK\x03\x04 not really a zip")
        expected = "cannot be read"
    else:
        Checkpointer(path, meta={"experiment": "digits-classifiers", "tag": "toy"}).save({"epoch": 1})
        expected = "another experiment or other settings"
    err = _one_line_error(capsys, _run(tmp_path, "--resume"))
    assert expected in err and "delete it or run without --resume" in err and str(path) in err
    # without --resume the stale checkpoint is discarded and the run succeeds
    assert _run(tmp_path) == 0 and not path.exists()


def test_checkpoint_every_must_be_non_negative(tmp_path, capsys):
    argv = ["run", "digits-classifiers", "--out", str(tmp_path), "--checkpoint-every", "-1"]
    err = _one_line_error(capsys, main(argv))
    assert "--checkpoint-every must be >= 0" in err


def test_an_output_write_that_fails_midway_leaves_the_previous_file(tmp_path):
    from tnml.io import atomic_write, write_json

    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})

    def half_then_crash(tmp: str) -> None:
        Path(tmp).write_text('{"a": 2, "b"', encoding="utf-8")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_crash)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_training_state_of_another_model_is_refused_clearly():
    from tnml.checkpoint import restore_training_state, training_state

    state = training_state(3, model=_model(0), generators=[torch.Generator()], history=[1.0])
    with pytest.raises(CheckpointError, match="'c.pt' does not fit this training loop .*size mismatch"):
        restore_training_state(state, model=MPS(6, 2, 4, out_dim=2), generators=[torch.Generator()], source="'c.pt'")
    with pytest.raises(CheckpointError, match="1 generator states saved, 0 generators given"):
        restore_training_state(state, model=_model(0))
    model, g = _model(5), torch.Generator()
    assert restore_training_state(state, model=model, generators=[g]) == (3, {"history": [1.0]})
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), _model(0).parameters()))
