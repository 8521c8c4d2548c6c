"""A plain supervised classifier fit (Adam, cross-entropy, cosine schedule) on :func:`tnml.training.fit`, shared by
the experiments (resumable from a checkpoint)."""

from __future__ import annotations

import torch
from torch import nn

from tnml.checkpoint import Checkpointer
from tnml.training import fit, minibatch_epoch


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
    loop = {
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

    def train_epoch(epoch: int) -> dict[str, float]:
        ce = nn.functional.cross_entropy
        loss = minibatch_epoch(model, opt, ce, x_train, y_train, batch_size=batch_size, generator=g, desc=desc)
        return {"loss": loss.mean}

    def metrics(epoch: int) -> dict[str, float]:
        return {"train_acc": accuracy(model, x_train, y_train), "test_acc": accuracy(model, x_test, y_test)}

    return fit(
        model,
        opt,
        train_epoch,
        epochs=epochs,
        metrics=metrics,
        scheduler=sched,
        generators=[g],
        history={"loss": [], "train_acc": [], "test_acc": []},
        checkpointer=checkpointer,
        loop=loop,
        desc=desc,
        progress=True,
        postfix=lambda h: {"loss": f"{h['loss'][-1]:.3f}", "test_acc": f"{h['test_acc'][-1]:.3f}"},
    )
