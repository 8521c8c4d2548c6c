"""A plain supervised training loop with a progress bar, shared by the experiments."""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm


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
) -> dict[str, list[float]]:
    """Adam + cross-entropy; returns per-epoch ``loss``, ``train_acc`` and ``test_acc``."""
    # fused Adam: one kernel for all parameters (tensor networks have one parameter per tensor)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    g = torch.Generator().manual_seed(seed)
    hist: dict[str, list[float]] = {"loss": [], "train_acc": [], "test_acc": []}
    bar = tqdm(range(epochs), desc=desc, leave=False, dynamic_ncols=True)
    for _ in bar:
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
    return hist
