"""Resumable factorization dynamics: :func:`tnml.dynamics.tasks.fit` (model, optimizer, tracker histories, step)
and the experiments tf-incremental-rank, htf-dynamics, natural-data-rank and dmf-norms, run at tiny settings,
interrupted after a checkpoint inside a loop and resumed, end with the same metrics and the same final checkpoints
as uninterrupted runs; with checkpointing off they give the numbers of the loops as they were before checkpointing
was added (stored in tests/data/resume_reference.json); a checkpoint of other settings is refused; a real SIGKILL
through the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import tnml.dynamics.tasks as tasks
import tnml.experiments.dmf_norms as dmf
import tnml.experiments.htf_dynamics as htf
import tnml.experiments.natural_data_rank as ndr
import tnml.experiments.tf_incremental_rank as tfr
from tests.resume_helpers import (
    REFERENCE,
    assert_matches_stored,
    checkpoints,
    count_saves,
    crash_after_first_save,
    progress,
    same,
    strip,
)
from tnml.checkpoint import Checkpointer, CheckpointError
from tnml.cli import main
from tnml.dynamics.group_rmsprop import GroupRMSprop
from tnml.dynamics.trackers import ComponentNormTracker, LocalComponentNormTracker, SingularValueTracker, Tracker
from tnml.experiments.registry import CHECKPOINT_DIR, RunConfig
from tnml.networks import HierarchicalTensorFactorization, TensorFactorization

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers










# --------------------------------------------------------------------------- fit and the trackers
def _tf_problem():
    target = tasks.random_cp_tensor((5, 5, 5), 2, seed=0, dtype=torch.float64)
    task = tasks.random_completion_task(target, 60, seed=1)
    torch.manual_seed(2)
    model = TensorFactorization((5, 5, 5), 8, init_scale=0.1, dtype=torch.float64)
    trackers = [ComponentNormTracker(every=7), SingularValueTracker(every=10, rows=(0,))]
    return model, task, GroupRMSprop(model.parameters(), lr=1e-2), trackers


def _tracker_state(trackers) -> list:
    return [(tr.steps, tr.losses, [v.tolist() for v in tr.values]) for tr in trackers]


@pytest.mark.parametrize("stop_loss", [None, 1e-6])
def test_fit_interrupted_and_resumed_equals_uninterrupted(tmp_path, monkeypatch, stop_loss):
    """1 200 steps saved every 2 × 250: killed after the save at step 500, resumed: the same result, parameters,
    optimizer state and tracker histories; without a checkpointer, the numbers stored from the loop before
    checkpointing."""
    torch.set_num_threads(1)
    assert tasks.CHECKPOINT_STEPS == 500
    monkeypatch.setattr(tasks, "CHECKPOINT_STEPS", 250)
    model, task, opt, trackers = _tf_problem()
    ref = tasks.fit(model, task, opt, 1200, stop_loss, trackers)
    assert ref["stopped"] == (stop_loss is not None) and ref["steps"] > 500  # stop_loss: stops at ~step 650
    stored = REFERENCE["fit"][str(stop_loss)]  # the loop before checkpointing: result, histories, parameters
    assert_matches_stored(ref, stored["result"], where="fit")
    assert_matches_stored(_tracker_state(trackers), stored["trackers"], where="trackers")
    assert_matches_stored([p.detach().flatten().tolist() for p in model.parameters()], stored["parameters"])

    ck = lambda: Checkpointer(tmp_path / "c.pt", every=2, meta={"run": "tf"})  # noqa: E731
    saves = count_saves(monkeypatch, crash_at=1)
    model2, _, opt2, trackers2 = _tf_problem()
    with pytest.raises(KeyboardInterrupt):
        tasks.fit(model2, task, opt2, 1200, stop_loss, trackers2, checkpointer=ck())
    assert saves == [500]
    saves = count_saves(monkeypatch)
    torch.manual_seed(99)
    model3, _, opt3, trackers3 = _tf_problem()  # fresh objects: everything comes from the file
    assert tasks.fit(model3, task, opt3, 1200, stop_loss, trackers3, checkpointer=ck()) == ref
    assert saves == ([1000] if stop_loss is None else []) + [ref["steps"]]
    assert _tracker_state(trackers3) == _tracker_state(trackers)
    assert all(torch.equal(a, b) for a, b in zip(model3.parameters(), model.parameters()))
    assert same(opt3.state_dict(), opt.state_dict())

    # a finished (or stopped) checkpoint returns at once: no step, no save, model and histories as at the end
    model4, _, opt4, trackers4 = _tf_problem()
    assert tasks.fit(model4, task, opt4, 1200, stop_loss, trackers4, checkpointer=ck()) == ref
    assert saves == ([1000] if stop_loss is None else []) + [ref["steps"]]
    assert _tracker_state(trackers4) == _tracker_state(trackers)
    assert all(torch.equal(a, b) for a, b in zip(model4.parameters(), model.parameters()))


def test_fit_refuses_a_checkpoint_of_another_loop(tmp_path):
    torch.set_num_threads(1)
    model, task, opt, trackers = _tf_problem()
    tasks.fit(model, task, opt, 20, None, trackers, checkpointer=Checkpointer(tmp_path / "c.pt"))
    for change in ("max_steps", "lr", "tracker every"):
        model, task, opt, trackers = _tf_problem()
        steps = 30 if change == "max_steps" else 20
        if change == "lr":
            opt = GroupRMSprop(model.parameters(), lr=2e-2)
        if change == "tracker every":
            trackers[0] = ComponentNormTracker(every=3)
        with pytest.raises(CheckpointError, match="other settings" if change != "tracker every" else "every=7"):
            tasks.fit(model, task, opt, steps, None, trackers, checkpointer=Checkpointer(tmp_path / "c.pt"))


def test_tracker_histories_round_trip_through_a_safe_load(tmp_path):
    """state_dict → torch.save → weights_only load → load_state_dict gives the same history, bit for bit, for
    each tracker kind (LocalComponentNormTracker: every node's norms)."""
    torch.manual_seed(0)
    ht = HierarchicalTensorFactorization((4, 4, 4), ((0, 1), 2), 3, dtype=torch.float64)
    tf = TensorFactorization((4, 4, 4), 3, dtype=torch.float64)
    cases = [(LocalComponentNormTracker(every=2), ht), (ComponentNormTracker(every=2), tf),
             (SingularValueTracker(every=2, rows=(1,)), tf)]  # fmt: skip
    for tr, m in cases:
        for step in range(5):
            with torch.no_grad():
                for p in m.parameters():
                    p.mul_(1.1)
            tr(step, m, 1.0 / (step + 1))
        Checkpointer(tmp_path / "t.pt").save({"tr": tr.state_dict()})
        fresh = type(tr)(every=2, **({"rows": (1,)} if isinstance(tr, SingularValueTracker) else {}))
        fresh.load_state_dict(Checkpointer(tmp_path / "t.pt").load()["tr"])
        assert fresh.steps == tr.steps == [0, 2, 4] and fresh.losses == tr.losses
        assert np.array_equal(fresh.as_array(), tr.as_array())
        if isinstance(tr, LocalComponentNormTracker):
            for b in tr.records[0]:
                assert np.array_equal(fresh.node(b), tr.node(b))
    with pytest.raises(ValueError, match="rows"):
        SingularValueTracker(every=2).load_state_dict(cases[2][0].state_dict())
    # records of varying shapes (no stacking): a list of tensors
    ragged = Tracker(lambda m: torch.arange(float(len(ragged.steps) + 1)))
    for step in range(3):
        ragged(step, tf, float(step))
    Checkpointer(tmp_path / "t.pt").save({"tr": ragged.state_dict()})
    fresh = Tracker(ragged.fn)
    fresh.load_state_dict(Checkpointer(tmp_path / "t.pt").load()["tr"])
    assert [v.tolist() for v in fresh.values] == [[0.0], [0.0, 1.0], [0.0, 1.0, 2.0]] and fresh.losses == [0, 1, 2]


# --------------------------------------------------------------------------- the experiments
#: experiment -> (module, loop function name in the module, number of loops, saves of one loop at the tiny settings)
CASES = {
    "tf-incremental-rank": (tfr, "fit", 2, [200, 300]),
    "htf-dynamics": (htf, "fit", 3, [200, 300]),
    "natural-data-rank": (ndr, "fit_rank", 6, [40, 60]),  # datasets x ranks
    "dmf-norms": (dmf, "run_gd", 2, None),  # saves at 20 000 and at the step the stop loss is reached
}


def _tiny(name: str, monkeypatch) -> None:
    mod = CASES[name][0]
    monkeypatch.setattr(mod, "_plot", lambda *a, **k: None)  # plots are checked by each experiment's smoke test
    if name == "tf-incremental-rank":
        monkeypatch.setitem(tfr.SETTINGS, True, (20, (5e-2, 1e-2), 300, 50))
        monkeypatch.setattr(tasks, "CHECKPOINT_STEPS", 100)  # with checkpoint_every=2: saves at 200 and 300
    elif name == "htf-dynamics":
        monkeypatch.setitem(htf.SETTINGS, True, (6, 300, 50))
        monkeypatch.setattr(tasks, "CHECKPOINT_STEPS", 100)
    elif name == "natural-data-rank":
        monkeypatch.setitem(ndr.SETTINGS, True, ((1, 2), 1, 60))
        monkeypatch.setattr(ndr, "CHECKPOINT_STEPS", 20)
    else:
        monkeypatch.setitem(dmf.SETTINGS, True, (1e-1, (0, 1)))  # ~35 000 steps per seed
        monkeypatch.setattr(dmf, "CHECKPOINT_STEPS", 10_000)


def _loop_saves(name: str, off) -> list[int]:
    if name == "dmf-norms":
        return [s for r in off.metrics["runs"].values() for s in (20_000, r["steps"])]
    return CASES[name][3] * CASES[name][2]


@pytest.mark.parametrize("name", list(CASES))
def test_interrupted_and_resumed_run_equals_uninterrupted(name, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    _tiny(name, monkeypatch)
    mod, _, n_loops, _ = CASES[name]
    cfg = lambda d, **kw: RunConfig(tmp_path / d, quick=True, seed=1, name=name, **kw)  # noqa: E731

    off = mod.run(cfg("off"))
    assert not (tmp_path / "off" / CHECKPOINT_DIR).exists()
    stored = REFERENCE["experiments"][name]  # checkpointing off: the numbers the loop gave before checkpointing
    assert_matches_stored({k: strip(off.metrics)[k] for k in stored}, stored, where=name)

    saves = count_saves(monkeypatch)
    on = mod.run(cfg("on", checkpoint_every=2))  # saving changes no number
    assert strip(on.metrics) == strip(off.metrics)
    assert saves == _loop_saves(name, off)
    final = checkpoints(tmp_path / "on")
    assert len(final) == n_loops

    saves = count_saves(monkeypatch, crash_at=3)  # loop 1 finished, loop 2 saved mid-way, then "killed"
    with pytest.raises(KeyboardInterrupt):
        mod.run(cfg("crash", checkpoint_every=2))
    expected = _loop_saves(name, off)
    assert sorted(progress(s["state"]) for s in checkpoints(tmp_path / "crash").values()) == sorted(expected[1:3])
    assert len(checkpoints(tmp_path / "crash")) == 2

    torch.manual_seed(12345), np.random.seed(12345)  # whatever the global RNGs hold now, the checkpoints restore them
    saves = count_saves(monkeypatch)
    resumed = mod.run(dataclasses.replace(cfg("crash", checkpoint_every=2), resume=True))
    # loop 1 is loaded finished (no save), loop 2 continues mid-way (one save), the others run from scratch
    assert saves == expected[3:]
    assert strip(resumed.metrics) == strip(off.metrics)
    got = checkpoints(tmp_path / "crash")
    assert got.keys() == final.keys()
    for tag in final:  # model, optimizer, tracker histories, global RNG states: all bit-identical
        assert same(strip(got[tag]), strip(final[tag])), tag


@pytest.mark.parametrize("name", list(CASES))
def test_resume_refuses_a_checkpoint_of_other_settings(name, tmp_path, monkeypatch):
    """A checkpoint left by other settings (more steps, a narrower model, another learning rate) gives a
    CheckpointError on resume, not a silent mix of two runs; without --resume the old file is overwritten."""
    torch.set_num_threads(1)
    _tiny(name, monkeypatch)
    mod = CASES[name][0]
    cfg = RunConfig(tmp_path, quick=True, seed=1, name=name, checkpoint_every=2)
    crash_after_first_save(monkeypatch, lambda: mod.run(cfg))
    settings = mod.SETTINGS[True]
    if name == "dmf-norms":
        monkeypatch.setattr(dmf, "LR", 2.5e-3)  # learning rate
    else:
        other = {
            "tf-incremental-rank": settings[:2] + (400,) + settings[3:],  # max_steps
            "htf-dynamics": (5,) + settings[1:],  # width
            "natural-data-rank": settings[:2] + (80,),  # Adam steps
        }[name]
        monkeypatch.setitem(mod.SETTINGS, True, other)
    with pytest.raises(CheckpointError, match="other settings"):
        mod.run(dataclasses.replace(cfg, resume=True))
    assert mod.run(cfg).metrics


# --------------------------------------------------------------------------- a real SIGKILL through the CLI
def test_htf_dynamics_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch, capsys):
    """``tnml run htf-dynamics --quick --checkpoint-every 1`` at tiny settings (tests/_resume_dynamics_script.py),
    killed with SIGKILL once the first model's checkpoint exists, then ``--resume``: metrics.json equals an
    uninterrupted run's (rise steps, tracker histories, losses, ranks), wall-clock times aside."""
    import tests._resume_dynamics_script as script

    torch.set_num_threads(1)
    script.tiny(monkeypatch.setitem, monkeypatch.setattr)
    args = ["run", "htf-dynamics", "--quick", "--checkpoint-every", "1"]
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    assert main([*args, "--out", str(ref_out)]) == 0
    ref = json.loads((ref_out / "htf-dynamics" / "metrics.json").read_text())["metrics"]

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "stderr.txt"  # a file, not a pipe: a full pipe would stall the child
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests._resume_dynamics_script", *args, "--out", str(out)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        ckpt = out / "htf-dynamics" / CHECKPOINT_DIR / "MF.pt"
        deadline = time.monotonic() + 120
        while not ckpt.exists():
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    assert not (out / "htf-dynamics" / "metrics.json").exists()
    step = int(torch.load(ckpt, weights_only=True)["state"]["progress"])
    assert 1 <= step < script.MAX_STEPS  # killed mid-run (MF), the file under the final name is complete

    capsys.readouterr()
    assert main([*args, "--out", str(out), "--resume"]) == 0
    assert f"fit: resumed from {ckpt} at step {step}/{script.MAX_STEPS}" in capsys.readouterr().err
    got = json.loads((out / "htf-dynamics" / "metrics.json").read_text())["metrics"]
    assert strip(got) == strip(ref)
