"""``tnml design DATA.csv --label COLUMN --out SPEC.json [--budget P] [--bond auto|R] [--dims 2 --shape H W]
[--qe-method batches|auto|exact|sketch]``.

Reads a numeric CSV data set (:func:`tnml.datasets.tabular_io.load_csv`: header line, one sample per row, the
``--label`` column holds the labels, every other column is a feature), designs a tree tensor network for it with
:func:`tnml.workflows.design_ttn` — the mode tree learned from the data's entanglement, one width per edge from the
QE across its cut (``--bond auto``, under ``--budget`` parameters) — and writes SPEC.json, which
``tnml.networks.TTN.from_spec("SPEC.json")`` rebuilds (untrained). SPEC.json also holds the feature names (leaf
``k`` of the tree is feature column ``features[k]``) and the per-edge report (cut, QE, SE, width, min-cut capacity).
A summary is printed (``--json``: the whole report as JSON).

Any problem with the input or options: one line on stderr, exit code 2, and SPEC.json is not written (it is written
atomically). SPEC.json is never an input file; an existing file that is not a TTN spec is replaced only with
``--force``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from tnml.commands import fail
from tnml.commands._tabular import load_table, resolve_dims
from tnml.options import QEMethod, TreeMethod, choices

NAME = "design"
HELP = "design a tree tensor network for a CSV data set: mode tree and bond widths from the data's entanglement"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tnml.commands import seed_arg

    parser.add_argument("data", help="CSV file: a header line of column names, one numeric sample per row")
    parser.add_argument("--label", required=True, help="name of the label column (at least two distinct values)")
    parser.add_argument("--out", required=True, help="where to write the network spec (JSON; TTN.from_spec reads it)")
    parser.add_argument("--bond", default="auto",
                        help="'auto' (default): one width per edge from the measured QE; or one width R for all")
    parser.add_argument("--budget", type=int, default=None,
                        help="parameter budget of the network for --bond auto (default: no budget)")
    parser.add_argument("--cap", type=int, default=8, help="largest width for --bond auto (default 8)")
    parser.add_argument("--margin", type=float, default=math.log(2.0),
                        help="nats added to each edge's QE before exp for --bond auto (default ln 2)")
    parser.add_argument("--dims", type=int, default=None,
                        help="1: binary splits of the features (default); 2: quad-tree block sizes, see --shape")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="grid of the features for --dims 2 (row-major; default: a square); implies --dims 2")
    parser.add_argument("--method", choices=choices(TreeMethod), default="surrogate",
                        help="score of a split: the cut of absolute Pearson correlations (default, fast) "
                        "or QE from samples")
    parser.add_argument("--qe-method", choices=choices(QEMethod), default="batches",
                        help="QE route of the widths: P5's batch average (batches, default: fast), or the whole "
                             "data's QE: exact, a streaming sketch, or auto (exact up to 2000 samples)")
    parser.add_argument("--sketch-size", type=int, default=None,
                        help="landmark samples k of --qe-method sketch/auto (default 512)")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="seed of the partitioner and the QE batch / landmarks (default 0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of markdown")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --out file that is not a TTN spec (never an input file)")
    parser.add_argument("--drop-constant", action="store_true",
                        help="drop constant feature columns instead of refusing the file")


def _is_spec(path: Path) -> bool:
    from tnml.networks.ttn import SPEC_FORMAT

    obj = json.loads(path.read_bytes().decode("utf-8"))
    return isinstance(obj, dict) and obj.get("format") == SPEC_FORMAT


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tnml.io import OutputPathError, check_output_file, write_text
    from tnml.workflows.design import design_ttn

    bond: int | str = args.bond
    if bond != "auto":
        try:
            bond = int(bond)
        except ValueError:
            return fail(f"--bond must be 'auto' or a positive integer width, got {args.bond!r}")
        if bond < 1:
            return fail(f"--bond must be 'auto' or a positive integer width, got {bond}")
    if args.budget is not None and args.budget < 1:
        return fail(f"--budget must be a positive number of parameters, got {args.budget}")
    if args.budget is not None and bond != "auto":
        return fail("--budget applies to --bond auto; drop --budget or the fixed --bond width")
    if args.cap < 1:
        return fail(f"--cap must be a positive integer width, got {args.cap}")
    if args.sketch_size is not None and args.sketch_size < 2:
        return fail(f"--sketch-size must be an integer >= 2 (landmark samples), got {args.sketch_size}")
    if not (math.isfinite(args.margin) and args.margin >= 0):
        return fail(f"--margin must be a finite number >= 0 (nats), got {args.margin}")
    grid_opts = resolve_dims(args.dims, args.shape)
    if isinstance(grid_opts, str):
        return fail(grid_opts)
    dims, shape = grid_opts
    if Path(args.out).is_dir():
        return fail(f"--out {args.out!r} is a folder; give a file name")
    try:
        check_output_file(args.out, option="--out", inputs={"DATA": args.data}, force=args.force, ours=_is_spec)
    except OutputPathError as e:
        return fail(str(e))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        if not args.force:
            return fail(f"--out {args.out!r} exists and is not a TTN spec; pass --force to replace it")
    table = load_table(args, dims, shape, needs="a tree network needs")
    if isinstance(table, str):
        return fail(table)
    X, y, names, shape = table
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    if classes.size < 2:
        return fail(f"{args.data}: the label column {args.label!r} holds one value; it needs at least two classes")
    try:
        model, rep = design_ttn(X, codes, bond_dim=bond, max_params=args.budget, dims=dims, shape=shape,
                                method=args.method, margin=args.margin, cap=args.cap, random_state=args.seed,
                                qe_method=args.qe_method, sketch_size=args.sketch_size)
    except (ValueError, TypeError) as e:
        msg = str(e).replace("max_params=", "--budget ").replace("raise max_params", "raise --budget")
        return fail(f"{args.data}: {msg}")
    spec = model.to_spec()
    spec.update({"features": names, "label": args.label, "classes": [c.item() if hasattr(c, "item") else c
                                                                      for c in classes],
                 "design": {"summary": rep.summary(), "edges": rep.to_dicts()}})
    try:
        write_text(args.out, json.dumps(spec, indent=2) + "\n")
    except OSError as e:
        return fail(f"cannot write --out {args.out!r}: {e.strerror or e}")
    if args.json:
        print(json.dumps({"summary": rep.summary(), "edges": rep.to_dicts()}, indent=2))
    else:
        print(rep.to_markdown(), end="")
        print(f"\nwrote {args.out}: TTN.from_spec({args.out!r}) rebuilds the network")
    return 0
