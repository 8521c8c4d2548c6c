"""The ``tnml`` command line: ``tnml list``, ``tnml run NAME|all [--quick] [--out DIR] [--device D] [--seed S]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        sys.stderr.write(f"tnml: error: {message} (see `tnml --help`)\n")
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tnml", description="Neural networks as tensor networks: run the thesis's experiments.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the registered experiments")
    r = sub.add_parser("run", help="run an experiment (or `all`)")
    r.add_argument("name", help="experiment name from `tnml list`, or `all`")
    r.add_argument("--quick", action="store_true", help="the quick version (minutes on 2 CPU cores)")
    r.add_argument("--out", default="runs", help="output folder (default: runs)")
    r.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    r.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    r.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for these small models on shared machines)",
    )
    return p


def _fail(message: str) -> int:
    sys.stderr.write(f"tnml: error: {message}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from tnml.experiments import EXPERIMENTS, run_experiments

    if args.command == "list":
        width = max(len(n) for n in EXPERIMENTS)
        for name in sorted(EXPERIMENTS):
            print(f"{name:<{width}}  {EXPERIMENTS[name].description}")
        return 0
    import torch

    names = sorted(EXPERIMENTS) if args.name == "all" else [args.name]
    if args.name != "all" and args.name not in EXPERIMENTS:
        return _fail(f"unknown experiment {args.name!r}; choose one of {sorted(EXPERIMENTS)} or `all`")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        return _fail(f"--device {args.device!r} is not a torch device; use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        return _fail(f"--device {args.device!r} requested but CUDA is not available here; use --device cpu")
    if args.threads < 1:
        return _fail(f"--threads must be >= 1, got {args.threads}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out {str(out)!r} exists and is not a folder; choose another path")
    torch.set_num_threads(args.threads)
    results = run_experiments(names, out, quick=args.quick, device=str(device), seed=args.seed)
    for name, res in results.items():
        for c in res.comparisons:
            print(f"{name}: {c.quantity} = {c.measured}" + (f" (thesis: {c.thesis})" if c.thesis is not None else ""))
    print(f"wrote {out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
