"""Data-parallel training of an MPS classifier on the embedded digits, launched by ``torchrun``.

    torchrun --standalone --nproc_per_node 2 examples/ddp_train.py --epochs 3
    torchrun --standalone --nproc_per_node 2 examples/ddp_train.py --epochs 1 --check   # compare to 1 process

Every process draws the same shuffled global batches (one seeded generator) and trains on its own equal slice
(:func:`tnml.distributed.shard`); ``DistributedDataParallel`` averages the gradients, so the run is the
single-process run on the global batches. On CPU the backend is gloo; with CUDA, NCCL and one GPU per process
(``LOCAL_RANK``). ``--check`` retrains in one process on rank 0 and prints the largest parameter difference.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch import nn

from tnml.datasets import digits
from tnml.distributed import cleanup, setup, shard
from tnml.networks import MPS


def train(model: nn.Module, x, y, *, epochs: int, batch_size: int, lr: float, rank: int = 0, world: int = 1):
    """Adam on global batches of ``batch_size`` (the last incomplete one dropped); returns per-epoch mean loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        total = torch.zeros((), dtype=torch.float64)
        n_batches = len(x) // batch_size
        for b in range(n_batches):
            idx = shard(perm[b * batch_size : (b + 1) * batch_size], rank, world)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.detach().double()
        if world > 1:
            dist.all_reduce(total)
        losses.append(total.item() / (n_batches * world))
    return losses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64, help="global batch size (divisible by the process count)")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--bond", type=int, default=8)
    p.add_argument("--check", action="store_true", help="compare with single-process training on rank 0")
    args = p.parse_args()

    torch.set_num_threads(1)
    rank, world = setup()
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu")
    xtr, xte, ytr, yte = (t.to(device) for t in digits(dtype=torch.float64))

    def make() -> MPS:
        torch.manual_seed(0)
        return MPS(64, 2, args.bond, out_dim=10, dtype=torch.float64, device=device)

    model = make()
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    losses = train(ddp, xtr, ytr, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, rank=rank, world=world)
    if rank == 0:
        with torch.no_grad():
            acc = (model(xte).argmax(-1) == yte).double().mean().item()
        print(f"{world} processes: loss per epoch {[round(v, 4) for v in losses]}, test accuracy {acc:.4f}")
        if args.check:
            ref = make()
            ref_losses = train(ref, xtr, ytr, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
            diff = max((a - b).abs().max().item() for a, b in zip(model.parameters(), ref.parameters()))
            print(f"1 process: loss per epoch {[round(v, 4) for v in ref_losses]}; max |parameter difference| "
                  f"{diff:.3g}")
    cleanup()


if __name__ == "__main__":
    main()
