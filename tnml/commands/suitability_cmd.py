"""``tnml suitability DATA.csv --label COLUMN --width R [--dims 2 --shape H W] [--json]``.

Reads a numeric CSV data set (:func:`tnml.datasets.tabular_io.load_csv`: header line, one sample per row, the
``--label`` column holds the labels, every other column is a feature) and prints the suitability report of
:func:`tnml.workflows.suitability.suitability`: per canonical partition of the feature order (1-D binary tree, or
2-D quad-tree over an ``H x W`` grid of row-major features), the data's QE against the capacity ``ln R`` of a locally
connected network of width ``R``, a verdict, and what feature rearrangement would gain. Markdown by default,
JSON (``{"summary": ..., "records": [...]}``) with ``--json``.

``--method`` picks the QE route (default ``auto``: exact on all samples up to 2 000 of them, a streaming Nyström
sketch beyond; ``batches`` is P5's average over sample batches). Under ``torchrun --nproc-per-node P -m tnml
suitability ...`` every process reads the file, streams its block of rows through the sketch, and the sums are
all-reduced; rank 0 prints the report.

Any problem with the input or options: one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os

from tnml.commands import fail, seed_arg
from tnml.commands._tabular import load_table, resolve_dims
from tnml.options import QEMethod, SuitabilityGain, choices

NAME = "suitability"
HELP = "will a locally connected network of width R fit this CSV data set? (QE per canonical partition vs ln R)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="CSV file: a header line of column names, one numeric sample per row")
    parser.add_argument("--label", required=True, help="name of the label column (at least two distinct values)")
    parser.add_argument("--width", type=int, required=True, help="inner width (bond dimension) R of the network")
    parser.add_argument("--dims", type=int, default=None,
                        help="1: features form a sequence (default); 2: a grid, see --shape")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="grid of the features for --dims 2 (row-major; default: a square); implies --dims 2")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--theta", type=float, default=0.085, help="trig feature map parameter (default 0.085)")
    parser.add_argument("--gain", choices=(*choices(SuitabilityGain), "none"), default="qe",
                        help="measure the rearrangement gain by recomputed QE (default), the surrogate objective "
                             "only (fast), or not at all")
    parser.add_argument("--method", choices=choices(QEMethod), default="auto",
                        help="QE route: exact up to 2000 samples then a streaming sketch (auto, default), exact, "
                             "sketch, or P5's batch average (batches)")
    parser.add_argument("--sketch-size", type=int, default=None,
                        help="landmark samples k of the sketch route (default 512)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="samples per QE batch of --method batches (default 500); rows per streamed batch of "
                             "the sketch")
    parser.add_argument("--n-batches", type=int, default=2, help="QE batches averaged by --method batches (default 2)")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="seed of the sample shuffle, the landmarks and the partitioner (default 0)")
    parser.add_argument("--drop-constant", action="store_true",
                        help="drop constant feature columns instead of refusing the file")
    parser.add_argument("--no-standardize", action="store_true", help="use raw feature values (default: z-scores)")


def run(args: argparse.Namespace) -> int:
    from tnml.workflows.suitability import suitability

    if args.width < 1:
        return fail(f"--width must be a positive integer (the network's bond dimension R), got {args.width}")
    if not (math.isfinite(args.theta) and args.theta > 0):
        return fail(f"--theta must be a finite number > 0 (P5 uses 0.085), got {args.theta}")
    least = 2 if args.method == "batches" else 1  # a batch's data tensor needs two samples; a streamed batch one row
    if args.batch_size is not None and args.batch_size < least:
        return fail(f"--batch-size must be an integer >= {least} with --method {args.method}, got {args.batch_size}")
    if args.sketch_size is not None and args.sketch_size < 2:
        return fail(f"--sketch-size must be an integer >= 2 (landmark samples), got {args.sketch_size}")
    if args.n_batches < 1:
        return fail(f"--n-batches must be an integer >= 1, got {args.n_batches}")
    grid_opts = resolve_dims(args.dims, args.shape)
    if isinstance(grid_opts, str):
        return fail(grid_opts)
    dims, shape = grid_opts
    table = load_table(args, dims, shape, needs="a partition needs")
    if isinstance(table, str):
        return fail(table)
    X, y, names, shape = table
    from tnml import distributed

    joined = int(os.environ.get("WORLD_SIZE", "1")) > 1
    try:
        if joined:
            distributed.setup()
        rep = suitability(X, y, args.width, dims=dims, shape=shape, theta=args.theta,
                          standardize=not args.no_standardize, gain=None if args.gain == "none" else args.gain,
                          batch_size=args.batch_size, n_batches=args.n_batches, seed=args.seed,
                          random_state=args.seed, method=args.method, sketch_size=args.sketch_size)
    except (ValueError, TypeError) as e:
        if joined:
            distributed.cleanup()
        return fail(f"{args.data}: {e}")
    rank = distributed.process_group()[0]
    if joined:
        distributed.cleanup(sync=True)
    if rank != 0:
        return 0
    if args.json:
        summary = rep.summary()
        summary["features"] = names
        print(json.dumps({"summary": summary, "records": rep.to_dicts()}, indent=2))
    else:
        print(rep.to_markdown(), end="")
    return 0
