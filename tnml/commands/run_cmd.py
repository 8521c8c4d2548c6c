"""``tnml run NAME|all [--quick] [--out DIR] [--device D] [--seed S] [--threads T] [--checkpoint-every N]
[--resume] [--progress|--no-progress]``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tnml.commands import fail

NAME = "run"
HELP = "run an experiment (or `all`)"

#: most torch CPU threads per core accepted by --threads (beyond, OpenMP fails to create them or thrashes)
THREADS_PER_CORE = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tnml.commands import seed_arg

    parser.add_argument("name", help="experiment name from `tnml list`, or `all`")
    parser.add_argument("--quick", action="store_true", help="the quick version (minutes on 2 CPU cores)")
    parser.add_argument("--out", default="runs", help="output folder (default: runs)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="random seed in [0, 2**32 - 1] (default: 0)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for these small models on shared machines)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=1,
        metavar="N",
        help="save training checkpoints every N epochs, in OUT/NAME/checkpoints/ (default 1; 0: off); "
        "they are deleted once the experiment finishes",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in --out: skip experiments whose metrics.json exists, continue the "
        "interrupted one from its checkpoint (use the same --quick and --seed)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars of the training loops (default: shown only when stderr is a terminal)",
    )


def _device(text: str):
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        return None, f"--device {text!r} is not a torch device; use cpu, cuda or cuda:N"
    if device.type not in ("cpu", "cuda"):
        return None, f"--device {text!r}: the experiments run on cpu or cuda only; use cpu, cuda or cuda:N"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return None, f"--device {text!r} requested but CUDA is not available here; use --device cpu"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return None, f"--device {text!r}: only {torch.cuda.device_count()} CUDA device(s) here"
    return device, None


def run(args: argparse.Namespace) -> int:
    import torch

    from tnml.checkpoint import CheckpointError
    from tnml.experiments import EXPERIMENTS, run_experiments
    from tnml.io import OutputPathError

    names = sorted(EXPERIMENTS) if args.name == "all" else [args.name]
    if args.name != "all" and args.name not in EXPERIMENTS:
        return fail(f"unknown experiment {args.name!r}; choose one of {sorted(EXPERIMENTS)} or `all`")
    device, problem = _device(args.device)
    if problem is not None:
        return fail(problem)
    max_threads = THREADS_PER_CORE * (os.cpu_count() or 1)
    if not 1 <= args.threads <= max_threads:
        return fail(f"--threads must be in [1, {max_threads}] ({THREADS_PER_CORE} per CPU core here), got "
                    f"{args.threads}")
    if args.checkpoint_every < 0:
        return fail(f"--checkpoint-every must be >= 0 (0 turns checkpoints off), got {args.checkpoint_every}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return fail(f"--out {str(out)!r} exists and is not a folder; choose another path")
    torch.set_num_threads(args.threads)
    try:
        results = run_experiments(
            names,
            out,
            quick=args.quick,
            device=str(device),
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            progress=args.progress,
        )
    except (CheckpointError, OutputPathError) as e:
        return fail(str(e))
    except OSError as e:  # not writable, a file where a folder belongs, disk full, ...
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        return fail(f"cannot write under --out {str(out)!r}{where}: {e.strerror or e}; free space or fix "
                    "permissions, then rerun with --resume")
    for name, res in results.items():
        for c in res.comparisons:
            thesis = f" (thesis: {c.thesis})" if c.thesis is not None else ""
            print(f"{name}: {c.quantity} = {c.measured}{thesis}")
    print(f"wrote {out / 'summary.md'}")
    return 0
