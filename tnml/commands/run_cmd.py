"""``tnml run NAME|all [--quick] [--out DIR] [--device D] [--seed S] [--threads T] [--checkpoint-every N]
[--resume]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tnml.commands import fail

NAME = "run"
HELP = "run an experiment (or `all`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="experiment name from `tnml list`, or `all`")
    parser.add_argument("--quick", action="store_true", help="the quick version (minutes on 2 CPU cores)")
    parser.add_argument("--out", default="runs", help="output folder (default: runs)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
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


def run(args: argparse.Namespace) -> int:
    import torch

    from tnml.checkpoint import CheckpointError
    from tnml.experiments import EXPERIMENTS, run_experiments
    from tnml.io import OutputPathError

    names = sorted(EXPERIMENTS) if args.name == "all" else [args.name]
    if args.name != "all" and args.name not in EXPERIMENTS:
        return fail(f"unknown experiment {args.name!r}; choose one of {sorted(EXPERIMENTS)} or `all`")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        return fail(f"--device {args.device!r} is not a torch device; use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        return fail(f"--device {args.device!r} requested but CUDA is not available here; use --device cpu")
    if args.threads < 1:
        return fail(f"--threads must be >= 1, got {args.threads}")
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
        )
    except (CheckpointError, OutputPathError) as e:
        return fail(str(e))
    for name, res in results.items():
        for c in res.comparisons:
            thesis = f" (thesis: {c.thesis})" if c.thesis is not None else ""
            print(f"{name}: {c.quantity} = {c.measured}{thesis}")
    print(f"wrote {out / 'summary.md'}")
    return 0
