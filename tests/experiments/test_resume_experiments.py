"""Resumable experiments: digits-classifiers, anti-locality, wis-sparsification, gnn-interactions and
data-suitability, run at tiny settings, interrupted after a checkpoint inside a training loop and resumed, end with
the same metrics and the same final checkpoints (model, optimizer, RNG states) as uninterrupted runs; with
checkpointing off they give the numbers of the loops as they were before checkpointing was added (stored in
tests/data/resume_reference.json)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import tnml.experiments.anti_locality as al
import tnml.experiments.data_suitability as ds
import tnml.experiments.digits_classifiers as dc
import tnml.experiments.gnn_interactions as gi
import tnml.experiments.wis_sparsification as wis
from tests.resume_helpers import (
    REFERENCE,
    assert_matches_stored,
    checkpoints,
    count_saves,
    crash_after_first_save,
    same,
    strip,
)
from tnml.checkpoint import Checkpointer, CheckpointError
from tnml.experiments.registry import CHECKPOINT_DIR, RunConfig

# --------------------------------------------------------------------------- tiny settings
EPOCHS = 3  # with checkpoint_every=2 every loop saves after epoch 2 (mid-loop) and after epoch 3 (finished)
TINY_GRAPH = dict(n=40, n_classes=2, p_in=0.25, p_out=0.03, feature_dim=4, signal=1.0)
#: experiment -> (module, loop function name or None, number of training loops at the tiny settings)
CASES = {
    "digits-classifiers": (dc, None, 2),
    "anti-locality": (al, None, 2 * 2 * len(al.LAMBDAS)),  # gaps x seeds x lambdas (loop rewritten: issues 6, 15)
    "wis-sparsification": (wis, "train_gcn", 2 * (1 + len(wis.METHODS))),  # seeds x (fraction 0 + methods at 0.5)
    "gnn-interactions": (gi, "train_graph_gcn", 2 * len(gi.LAYOUTS)),  # seeds x layouts
    # 3 tasks x 4 orders CNN + planted x 4 orders TTN + 1 swap-curve CNN (train_cnn/train_ttn use train_classifier)
    "data-suitability": (ds, None, 3 * len(ds.ORDERS) + len(ds.ORDERS) + 1),
}


def _tiny(name: str, monkeypatch) -> None:
    mod = CASES[name][0]
    if hasattr(mod, "_plot"):
        monkeypatch.setattr(mod, "_plot", lambda *a, **k: None)  # plots are checked by each experiment's smoke test
    if name == "digits-classifiers":
        from tnml.networks import MPS, TTN, NormalizedLogits

        monkeypatch.setattr(dc, "MODEL_NAMES", ("mps", "ttn"))  # the 8x8 models, tiny
        tiny_make = {
            "mps": lambda quick, dev: MPS(64, 2, 3, out_dim=10, feature_map="polynomial", device=dev),
            "ttn": lambda quick, dev: NormalizedLogits(TTN(shape=(8, 8), bond_dim=2, out_dim=10, device=dev)),
        }
        for key, make in tiny_make.items():
            monkeypatch.setitem(dc.SPECS, key, dataclasses.replace(dc.SPECS[key], make=make, epochs=(EPOCHS, EPOCHS)))
    elif name == "anti-locality":
        monkeypatch.setitem(al.SETTINGS, True, ((0, 4), 2, 96, EPOCHS))
        monkeypatch.setitem(al.WARMUP, True, 1)  # R on from epoch 2: the checkpoint at epoch 2 falls after it
        monkeypatch.setattr(al, "N_TEST", 64)
        monkeypatch.setattr(al, "TEMPLATES_PER_CLASS", 1)
    elif name == "wis-sparsification":
        monkeypatch.setattr(wis, "GRAPHS", {"tiny": TINY_GRAPH})
        monkeypatch.setattr(wis, "CHECKPOINT_STEPS", 1)  # saves after steps 2 and 3 (the unit is tested below)
        monkeypatch.setitem(wis.SETTINGS, True, dict(fractions=(0.0, 0.5), n_seeds=2, epochs=EPOCHS, hidden=4,
                                                     graphs=("tiny",)))  # fmt: skip
    elif name == "data-suitability":
        monkeypatch.setattr(ds, "_plot_orders", lambda *a, **k: None)
        monkeypatch.setattr(ds, "_plot_swap", lambda *a, **k: None)
        tiny = ds.Settings(seeds=1, epochs=EPOCHS, channels=(4,), qe_batch=32, qe_batches=1, qe_all_seeds=True,
                           swap_ks=(2,), swap_seeds=1, tabular=False, ttn_tasks=("planted",), ttn_epochs=EPOCHS,
                           ttn_bond=2, planted_samples=150, planted_features=8)
        monkeypatch.setitem(ds.SETTINGS, True, tiny)
    else:
        tiny = dict(gi.SETTINGS[True], n_seeds=2, n_train=64, n_test=32, epochs=EPOCHS, batch_size=32, log_every=2,
                    bare_pixels=())  # the bare-pixel arms run the same loop (covered by the experiment's tests)
        monkeypatch.setitem(gi.SETTINGS, True, tiny)










@pytest.mark.parametrize("name", list(CASES))
def test_interrupted_and_resumed_run_equals_uninterrupted(name, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    _tiny(name, monkeypatch)
    mod, loop, n_loops = CASES[name]
    cfg = lambda d, **kw: RunConfig(tmp_path / d, quick=True, seed=1, name=name, **kw)  # noqa: E731

    off = mod.run(cfg("off"))
    assert not (tmp_path / "off" / CHECKPOINT_DIR).exists()
    if loop is not None:  # checkpointing off: the numbers the loop gave before checkpointing (stored)
        assert_matches_stored(strip(off.metrics), REFERENCE["experiments"][name], where=name)

    saves = count_saves(monkeypatch)
    on = mod.run(cfg("on", checkpoint_every=2))  # saving consumes no randomness: same numbers as off
    assert strip(on.metrics) == strip(off.metrics)
    assert saves == [2, EPOCHS] * n_loops
    final = checkpoints(tmp_path / "on")
    assert len(final) == n_loops and all(s["state"]["progress"] == EPOCHS for s in final.values())

    saves = count_saves(monkeypatch, crash_at=3)  # loop 1 finished, loop 2 saved after epoch 2, then "killed"
    with pytest.raises(KeyboardInterrupt):
        mod.run(cfg("crash", checkpoint_every=2))
    partial = checkpoints(tmp_path / "crash")
    assert sorted(s["state"]["progress"] for s in partial.values()) == [2, EPOCHS]

    torch.manual_seed(12345), np.random.seed(12345)  # whatever the global RNGs hold now, the checkpoints restore them
    saves = count_saves(monkeypatch)
    resumed = mod.run(dataclasses.replace(cfg("crash", checkpoint_every=2), resume=True))
    # loop 1 is loaded finished (no save), loop 2 continues at epoch 2 (one save), the others run from scratch
    assert saves == [EPOCHS] + [2, EPOCHS] * (n_loops - 2)
    assert strip(resumed.metrics) == strip(off.metrics)
    got = checkpoints(tmp_path / "crash")
    assert got.keys() == final.keys()
    for tag in final:  # model, optimizer, generator and global RNG states, history: all bit-identical
        assert same(got[tag], final[tag]), tag


def _gcn_data():
    g, x, y = wis.contextual_sbm(**TINY_GRAPH, seed=0)
    ei = torch.tensor(sorted(tuple(sorted(e)) for e in g.edges()), dtype=torch.long).T
    adj = wis.normalized_adjacency(ei, g.number_of_nodes())
    return torch.from_numpy(x), torch.from_numpy(y), adj, wis.split_indices(len(y), seed=1)


def test_train_gcn_resumes_inside_the_loop_with_its_best_validation_values(tmp_path, monkeypatch):
    """The loop level: saves every ``every * CHECKPOINT_STEPS`` full-batch steps; killed after step 20 of 25 and
    continued, the best-validation test accuracy found before the interrupt and the final loss (a continuous number)
    come out as without the interrupt."""
    torch.set_num_threads(1)
    assert wis.CHECKPOINT_STEPS == 10
    x, y, adj, split = _gcn_data()
    kw = dict(hidden=8, depth=2, epochs=25, seed=3)
    ref = wis.train_gcn(x, y, adj, split, **kw)
    assert_matches_stored(ref, REFERENCE["train_gcn"], where="train_gcn")  # the loop before checkpointing
    ck = lambda: Checkpointer(tmp_path / "c.pt", every=2)  # noqa: E731
    saves = count_saves(monkeypatch, crash_at=1)
    with pytest.raises(KeyboardInterrupt):
        wis.train_gcn(x, y, adj, split, checkpointer=ck(), **kw)
    assert saves == [20]
    extra = torch.load(tmp_path / "c.pt", weights_only=True)["state"]["extra"]
    assert 0 <= extra["best_val"] <= 1 and set(extra["last"]) == {"final_test_acc", "final_loss"}
    saves = count_saves(monkeypatch)
    torch.manual_seed(7)
    assert wis.train_gcn(x, y, adj, split, checkpointer=ck(), **kw) == ref
    assert saves == [25]
    # a finished checkpoint: returned at once, same numbers
    assert wis.train_gcn(x, y, adj, split, checkpointer=ck(), **kw) == ref
    assert saves == [25]
    with pytest.raises(CheckpointError, match="other settings"):  # another loop's settings are refused
        wis.train_gcn(x, y, adj, split, checkpointer=ck(), **{**kw, "hidden": 4})


@pytest.mark.parametrize("name", ["anti-locality", "gnn-interactions"])
def test_resume_refuses_a_checkpoint_of_other_settings(name, tmp_path, monkeypatch):
    """A checkpoint left by other settings (anti-locality: more epochs; gnn-interactions: another batch size) gives
    a CheckpointError on resume, not a silent mix of two runs."""
    torch.set_num_threads(1)
    _tiny(name, monkeypatch)
    mod = CASES[name][0]
    cfg = RunConfig(tmp_path, quick=True, seed=1, name=name, checkpoint_every=2)
    crash_after_first_save(monkeypatch, lambda: mod.run(cfg))
    if mod is al:
        monkeypatch.setitem(al.SETTINGS, True, al.SETTINGS[True][:3] + (EPOCHS + 1,))
    else:
        monkeypatch.setitem(gi.SETTINGS, True, dict(gi.SETTINGS[True], batch_size=16))
    with pytest.raises(CheckpointError, match="other settings"):
        mod.run(dataclasses.replace(cfg, resume=True))
    assert mod.run(cfg).metrics  # without --resume the old file is ignored (and overwritten)
