"""``tnml bounds ARCH --sites N --bond D [--phys-dim d] [--shape H W] [--partitions P] [--json] [--seed S]``.

Builds one architecture with random cores (seeded, float64) and prints, per partition, the min-cut bound of its
geometry next to the rank and entropy of that random instance (:func:`tnml.entanglement.entanglement_report`).
"""

from __future__ import annotations

import argparse
import json

from tnml.commands import fail

NAME = "bounds"
HELP = "min-cut bounds vs. ranks of a random instance of an architecture, per partition"

ARCHS = ("mps", "ttn", "cp", "peps", "ring")
PARTITIONS = ("canonical", "contiguous", "interleaved")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tnml.commands import seed_arg

    parser.add_argument(
        "arch",
        help="architecture: mps (open chain), ttn (binary tree; 2x2 windows with --shape), cp (one hyper-index), "
        "peps (grid, needs --shape), ring (periodic MPS)",
    )
    parser.add_argument("--sites", type=int, default=None, help="number of input sites (default: H*W of --shape)")
    parser.add_argument("--bond", type=int, required=True, help="bond dimension (the rank R for cp)")
    parser.add_argument("--phys-dim", type=int, default=2, help="dimension of each input leg (default: 2)")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="2-D grid of the sites (row-major): required for peps; gives 2-D canonical partitions for any arch",
    )
    parser.add_argument(
        "--partitions",
        default="canonical",
        help=f"which splits to report: one of {', '.join(PARTITIONS)} (default: canonical)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (one record per partition) instead of a table")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="seed of the random cores, in [0, 2**32 - 1] (default 0)")


def _check(args: argparse.Namespace) -> str | None:
    """The first problem with the arguments, as a one-line message, or None."""
    if args.arch not in ARCHS:
        return f"unknown architecture {args.arch!r}; choose one of {', '.join(ARCHS)}"
    if args.partitions not in PARTITIONS:
        return f"--partitions {args.partitions!r} is unknown; choose one of {', '.join(PARTITIONS)}"
    if args.bond < 1:
        return f"--bond must be a positive integer, got {args.bond}"
    if args.phys_dim < 1:
        return f"--phys-dim must be a positive integer, got {args.phys_dim}"
    if args.shape is not None:
        h, w = args.shape
        if h < 1 or w < 1:
            return f"--shape must be two positive integers H W, got {h} {w}"
        if args.sites is not None and args.sites != h * w:
            return f"--shape {h} {w} holds {h * w} sites but --sites is {args.sites}; make them agree (or drop --sites)"
    elif args.arch == "peps":
        return "peps needs the grid: pass --shape H W (e.g. --shape 3 3)"
    if args.sites is None and args.shape is None:
        return "--sites N is required (or --shape H W for a 2-D grid)"
    n = args.sites if args.sites is not None else args.shape[0] * args.shape[1]
    if n < 1:
        return f"--sites must be a positive integer, got {n}"
    if n < 2:
        return f"--sites {n} leaves nothing to split; a partition needs at least 2 sites"
    return None


def _build(args: argparse.Namespace, n: int, shape):
    import torch

    from tnml.networks import CP, MPS, PEPS, TTN, PeriodicMPS

    kw = {"phys_dim": args.phys_dim, "feature_map": "identity", "dtype": torch.float64}
    torch.manual_seed(args.seed)
    if args.arch == "mps":
        return MPS(n_sites=n, bond_dim=args.bond, init="normal", init_std=1.0, **kw)
    if args.arch == "ttn":
        if shape is not None:
            return TTN(shape=shape, bond_dim=args.bond, init="normal", **kw)  # a random instance
        return TTN(n_sites=n, bond_dim=args.bond, init="normal", **kw)
    if args.arch == "cp":
        return CP(n_sites=n, rank=args.bond, init_std=1.0, **kw)
    if args.arch == "peps":
        return PEPS(shape=shape, bond_dim=args.bond, **kw)
    return PeriodicMPS(n_sites=n, bond_dim=args.bond, **kw)


def run(args: argparse.Namespace) -> int:
    from tnml.entanglement import entanglement_report
    from tnml.settings import MemoryLimitError

    problem = _check(args)
    if problem is not None:
        return fail(problem)
    shape = tuple(args.shape) if args.shape is not None else None
    if args.sites is not None:
        n = args.sites
    else:
        assert shape is not None  # _check asks for --sites or --shape
        n = shape[0] * shape[1]
    try:
        model = _build(args, n, shape)
    except MemoryLimitError as e:  # MemoryLimitError is a ValueError: name the options, not the Python arguments
        from tnml.io import format_bytes

        need = getattr(e, "need_bytes", None)
        over = (f"need {format_bytes(need)} of parameters, over tnml.settings.max_param_bytes" if need is not None
                else "have more tensors than tnml.settings.max_tensors")
        return fail(f"cannot build {args.arch}: {n} sites with --bond {args.bond} and --phys-dim {args.phys_dim} "
                    f"{over}; use fewer --sites (a smaller --shape), a smaller --bond or --phys-dim")
    except ValueError as e:
        return fail(f"cannot build {args.arch}: {' '.join(str(e).split())}")
    try:
        report = entanglement_report(model, partitions=args.partitions, shape=shape)
    except MemoryLimitError as e:
        return fail(
            f"{args.arch} with {n} sites and bond {args.bond} is too large for exact spectra: "
            f"{' '.join(str(e).split())} — try fewer --sites (a smaller --shape) or a smaller --bond"
        )
    if args.json:
        payload = {
            "arch": args.arch,
            "n_sites": n,
            "bond": args.bond,
            "phys_dim": args.phys_dim,
            "shape": list(shape) if shape is not None else None,
            "partitions": args.partitions,
            "seed": args.seed,
            "rows": report.to_dicts(),
        }
        print(json.dumps(payload, indent=2))
        return 0
    where = f"{shape[0]}x{shape[1]} grid" if shape is not None else f"{n} sites"
    print(
        f"{args.arch}: {where}, bond {args.bond}, phys_dim {args.phys_dim}, {args.partitions} partitions, "
        f"random cores (seed {args.seed})\n"
    )
    print(report.to_markdown(), end="")
    return 0
