"""Data-parallel training of tnml models with ``torch.distributed`` (DDP), launched by ``torchrun``.

A :class:`~tnml.TNModel` is an ordinary ``nn.Module``: its tensors are registered parameters (one per
shape class with stacked storage, one per tensor otherwise), forward mutates no buffer, and every parameter
receives a gradient, so
``torch.nn.parallel.DistributedDataParallel`` wraps it unchanged. Each process takes an equal slice of each global
batch (:func:`shard`); DDP averages the gradients, so with a mean loss every step equals a single-process step on
the whole global batch (tested to 1e-12 in float64 with 2 gloo processes on CPU).

The ``torchrun`` recipe (CPU, gloo; NCCL and one GPU per process on CUDA)::

    torchrun --standalone --nproc_per_node 2 examples/ddp_train.py --epochs 5

which amounts to::

    rank, world = tnml.distributed.setup()                     # reads RANK, WORLD_SIZE, MASTER_* from torchrun
    model = DistributedDataParallel(MPS(64, 2, 10, out_dim=10, dtype=torch.float64))
    for xb, yb in global_batches:                              # the same global batches in every process
        xs, ys = shard(xb, rank, world), shard(yb, rank, world)
        opt.zero_grad(); cross_entropy(model(xs), ys).backward(); opt.step()
    tnml.distributed.cleanup()

:func:`launch_local` starts such a worker in ``world_size`` local processes without ``torchrun`` (tests,
notebooks).
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from tnml.validation import positive_int

__all__ = ["all_reduce_sum", "cleanup", "free_port", "launch_local", "process_group", "row_range", "setup", "shard"]


def setup(backend: str | None = None, timeout_s: float = 120.0) -> tuple[int, int]:
    """Join the process group described by the environment (``torchrun`` sets ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``); returns ``(rank, world_size)``.

    Parameters
    ----------
    backend : str, optional
        ``"gloo"`` (CPU) or ``"nccl"`` (CUDA); default: nccl where CUDA is available, else gloo.
    timeout_s : float
        How long collective operations wait for the other processes before failing.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"environment variables {missing} are not set; launch with `torchrun --nproc_per_node N script.py` "
            "or use tnml.distributed.launch_local"
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()


def cleanup(sync: bool = False) -> None:
    """Leave the process group (if joined).

    Parameters
    ----------
    sync : bool
        First wait at a barrier until every process is here (after a normal finish): a process that tears down its
        gloo connections while a peer still completes the last collective can make that peer abort in C++
        ("terminate called without an active exception"). Never after an error: the peers may never arrive.
    """
    if dist.is_initialized():
        if sync:
            try:
                dist.barrier()
            except RuntimeError:  # a peer is gone: leave anyway
                pass
        dist.destroy_process_group()


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This process's contiguous slice of a global batch.

    Parameters
    ----------
    batch : Tensor, shape (global_batch, ...)
        The same global batch in every process.
    rank, world_size : int

    Returns
    -------
    Tensor, shape (global_batch // world_size, ...)
        Rows ``rank * b : (rank + 1) * b``. Slices must be equal for DDP's gradient average to equal the
        full-batch mean, so ``global_batch`` must be divisible by ``world_size``.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    n = batch.shape[0]
    if n % world_size:
        raise ValueError(
            f"global batch size {n} is not divisible by world_size {world_size}; use a global batch size that is "
            f"(e.g. {n - n % world_size or world_size}), or drop the last incomplete batch"
        )
    b = n // world_size
    return batch[rank * b : (rank + 1) * b]


def process_group() -> tuple[int, int]:
    """``(rank, world_size)`` of the joined process group, ``(0, 1)`` when none is joined (a single process)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def row_range(n_rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """This process's contiguous block ``[start, stop)`` of ``n_rows`` rows (``numpy.array_split`` sizes: the first
    ``n_rows % world_size`` blocks hold one row more), for streaming reductions that need no equal shards.

    Examples
    --------
    >>> [row_range(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    base, extra = divmod(int(n_rows), world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over the processes of the joined group (the tensor itself when there is none).

    Under NCCL the tensor travels through the process's current CUDA device and comes back on its own device.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        t = tensor.to(f"cuda:{torch.cuda.current_device()}")
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.to(tensor.device)
    tensor = tensor.clone()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (for ``MASTER_PORT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, fn: Callable, world_size: int, port: int, args: tuple) -> None:
    os.environ.update(
        {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1",
         "MASTER_PORT": str(port)}
    )
    if os.path.exists("/sys/class/net/lo"):  # local processes: gloo over loopback, whatever the hostname resolves to
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    try:
        fn(rank, world_size, *args)
    except BaseException:
        cleanup()
        raise
    cleanup(sync=True)


def launch_local(fn: Callable[..., Any], world_size: int, *args: Any, timeout_s: float = 120.0) -> None:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` fresh local processes with the ``torchrun``
    environment set (call :func:`setup` inside ``fn``); raise if one fails or they take longer than ``timeout_s``.

    ``fn`` must be importable by the child processes (a module-level function), as with
    ``torch.multiprocessing.spawn``.
    """
    world_size = positive_int("world_size", world_size)
    ctx = torch.multiprocessing.start_processes(
        _entry, args=(fn, world_size, free_port(), args), nprocs=world_size, join=False, start_method="spawn"
    )
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout_s)
    try:
        while not ctx.join(timeout=1.0):
            if datetime.datetime.now() > deadline:
                raise TimeoutError(f"{world_size} processes did not finish within timeout_s={timeout_s} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
                p.join(5)
