"""Resumable experiments: digits-classifiers, anti-locality, wis-sparsification, gnn-interactions and
data-suitability, run at tiny settings, interrupted after a checkpoint inside a training loop and resumed, end with
the same metrics and the same final checkpoints (model, optimizer, RNG states) as uninterrupted runs; with
checkpointing off they give the numbers of the loops as they were before checkpointing was added (copied below as
references)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import tnml.experiments.anti_locality as al
import tnml.experiments.data_suitability as ds
import tnml.experiments.digits_classifiers as dc
import tnml.experiments.gnn_interactions as gi
import tnml.experiments.wis_sparsification as wis
from tests.resume_helpers import checkpoints, count_saves, same, strip
from tnml.baselines import GraphGCN
from tnml.checkpoint import Checkpointer, CheckpointError
from tnml.experiments.registry import CHECKPOINT_DIR, RunConfig
from tnml.networks.gcn import GCN


# --------------------------------------------------------------------------- the loops before checkpointing
def _old_train_gcn(x, y, adj, split, *, hidden=64, depth=3, epochs=200, lr=0.01, weight_decay=5e-4, dropout=0.5,
                   seed=0, checkpointer=None):  # fmt: skip
    """``wis_sparsification.train_gcn`` before checkpointing (commit 649eabe)."""
    assert checkpointer is None
    tr, va, te = (torch.as_tensor(s, dtype=torch.long) for s in split)
    torch.manual_seed(seed)
    model = GCN(x.shape[1], hidden, int(y.max()) + 1, depth=depth, dropout=dropout)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best_val, best_test = -1.0, 0.0
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x, adj)[tr], y[tr])
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, adj).argmax(1)
        val = (pred[va] == y[va]).float().mean().item()
        if val > best_val:
            best_val, best_test = val, (pred[te] == y[te]).float().mean().item()
    final = (pred[te] == y[te]).float().mean().item()
    return {"test_acc": best_test, "val_acc": best_val, "final_test_acc": final, "final_loss": loss.item()}


def _old_train_graph_gcn(layout, train, test, *, hidden, depth, epochs, lr, seed, batch_size=None, log_every=10,
                         checkpointer=None, templates=None, features="in-place"):  # fmt: skip
    """``gnn_interactions.train_graph_gcn`` before checkpointing (commit 649eabe), plus the separation rank of the
    trained model that issue 15 added at the end (``gi.layout_separation_rank``)."""
    assert checkpointer is None
    (xtr, ytr), (xte, yte) = train, test
    torch.manual_seed(seed)
    model = GraphGCN(layout.edges, layout.n_vertices, xtr.shape[2], hidden, 2, depth)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = {"epoch": [], "loss": [], "train_acc": [], "test_acc": []}

    def acc(x, y):
        with torch.no_grad():
            return (model(x).argmax(1) == y).float().mean().item()

    gen = torch.Generator().manual_seed(seed)
    bs = len(xtr) if batch_size is None else int(batch_size)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen) if bs < len(xtr) else torch.arange(len(xtr))
        for i in range(0, len(xtr), bs):
            idx = perm[i : i + bs]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        if (ep + 1) % log_every == 0 or ep + 1 == epochs:
            model.eval()
            hist["epoch"].append(ep + 1)
            hist["loss"].append(loss.item())
            hist["train_acc"].append(acc(xtr, ytr))
            hist["test_acc"].append(acc(xte, yte))
    out = {"train_acc": hist["train_acc"][-1], "test_acc": hist["test_acc"][-1],
           "best_train_acc": max(hist["train_acc"]), "final_loss": hist["loss"][-1], "history": hist}  # fmt: skip
    if templates is not None:
        out["separation_rank"] = gi.layout_separation_rank(model, layout, templates, features)
    return out


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
OLD = {"train_gcn": _old_train_gcn, "train_graph_gcn": _old_train_graph_gcn}


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
        tiny = dict(gi.SETTINGS[True], n_seeds=2, n_train=64, n_test=32, epochs=EPOCHS, batch_size=32, log_every=2)
        monkeypatch.setitem(gi.SETTINGS, True, tiny)










@pytest.mark.parametrize("name", list(CASES))
def test_interrupted_and_resumed_run_equals_uninterrupted(name, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    _tiny(name, monkeypatch)
    mod, loop, n_loops = CASES[name]
    cfg = lambda d, **kw: RunConfig(tmp_path / d, quick=True, seed=1, name=name, **kw)  # noqa: E731

    off = mod.run(cfg("off"))
    assert not (tmp_path / "off" / CHECKPOINT_DIR).exists()
    if loop is not None:  # checkpointing off: the numbers of the loop as it was before checkpointing
        with monkeypatch.context() as m:
            m.setattr(mod, loop, OLD[loop])
            assert strip(mod.run(cfg("old")).metrics) == strip(off.metrics)

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
    assert ref == _old_train_gcn(x, y, adj, split, **kw)
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
    with monkeypatch.context() as m:
        count_saves(m, crash_at=1)
        with pytest.raises(KeyboardInterrupt):
            mod.run(cfg)
    if mod is al:
        monkeypatch.setitem(al.SETTINGS, True, al.SETTINGS[True][:3] + (EPOCHS + 1,))
    else:
        monkeypatch.setitem(gi.SETTINGS, True, dict(gi.SETTINGS[True], batch_size=16))
    with pytest.raises(CheckpointError, match="other settings"):
        mod.run(dataclasses.replace(cfg, resume=True))
    assert mod.run(cfg).metrics  # without --resume the old file is ignored (and overwritten)
