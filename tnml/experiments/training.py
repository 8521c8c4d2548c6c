"""A plain supervised training loop with a progress bar, shared by the experiments (resumable from a checkpoint)."""

from __future__ import annotations

import sys

import torch
from torch import nn
from tqdm.auto import tqdm

from tnml.checkpoint import Checkpointer, restore_training_state, training_state


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += (model(x[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum().item()
    model.train()
    return correct / len(x)


def train_classifier(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float = 0.0,
    seed: int = 0,
    desc: str = "train",
    checkpointer: Checkpointer | None = None,
) -> dict[str, list[float]]:
    """Adam + cross-entropy with a cosine learning-rate schedule; returns per-epoch ``loss``, ``train_acc``,
    ``test_acc``.

    Parameters
    ----------
    checkpointer : Checkpointer, optional
        Saves the model, optimizer and scheduler states, the shuffling generator's and the global RNG states, the
        epoch and the partial history after every ``checkpointer.every``-th epoch and after the last one; if it
        holds a checkpoint of this run, training continues from it. On CPU the continuation is bit-identical to
        an uninterrupted run (same losses, accuracies and parameters). A finished run's checkpoint makes a second
        call return at once with the final model loaded. Its ``meta["loop"]`` records this loop's settings (``desc``,
        sizes, epochs, lr, batch size, seed, parameter shapes), so a checkpoint of another loop is refused.
    """
    # fused Adam: one kernel for all parameters (models with one parameter per tensor can have hundreds)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    g = torch.Generator().manual_seed(seed)
    hist: dict[str, list[float]] = {"loss": [], "train_acc": [], "test_acc": []}
    start = 0
    if checkpointer is not None:
        checkpointer.meta["loop"] = {
            "desc": desc,
            "n_train": len(x_train),
            "n_test": len(x_test),
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            "seed": seed,
            "params": {k: list(v.shape) for k, v in model.state_dict().items()},
        }
        state = checkpointer.load()
        if state is not None:
            start, extra = restore_training_state(
                state, model=model, optimizer=opt, scheduler=sched, generators=[g], source=repr(str(checkpointer.path))
            )
            for k in hist:
                hist[k].extend(float(v) for v in extra["history"][k])
            if start < epochs:
                tqdm.write(f"{desc}: resumed from {checkpointer.path} at epoch {start}/{epochs}", file=sys.stderr)
    bar = tqdm(range(start, epochs), initial=start, total=epochs, desc=desc, leave=False, dynamic_ncols=True)
    for epoch in bar:
        perm = torch.randperm(len(x_train), generator=g)
        total = 0.0
        for i in range(0, len(x_train), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()}; lower the learning rate")
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        hist["loss"].append(total / len(x_train))
        hist["train_acc"].append(accuracy(model, x_train, y_train))
        hist["test_acc"].append(accuracy(model, x_test, y_test))
        bar.set_postfix(loss=f"{hist['loss'][-1]:.3f}", test_acc=f"{hist['test_acc'][-1]:.3f}")
        if checkpointer is not None and checkpointer.due(epoch + 1, epochs):
            checkpointer.save(
                training_state(epoch + 1, model=model, optimizer=opt, scheduler=sched, generators=[g], history=hist)
            )
    return hist

