"""``tnml rearrange DATA.csv --label COLUMN --out OUT.csv --permutation PERM.json [--dims 1|2 --shape H W]`` and
``tnml rearrange NEW.csv --apply PERM.json --out OUT.csv``.

Fit mode learns a feature order with :class:`tnml.preprocessing.FeatureRearrangement` (P5, Algorithm 1: recursive
balanced min-cut of the ``|Pearson|`` feature graph) on a numeric CSV data set (see
:func:`tnml.datasets.tabular_io.load_csv`) and writes

- OUT.csv: the same rows with the feature columns reordered; the label column stays where it was, and the cells are
  copied verbatim (no reformatting of numbers);
- PERM.json: the permutation (``{"format": "tnml-rearrangement", "label", "features", "permutation", "order",
  "dropped", "dims", "shape", "method", "seed", "objective_before", "objective_after", ...}``), where output feature
  slot ``p`` holds input feature ``features[permutation[p]]`` (= ``order[p]``).

Apply mode reorders new data the same way: the new file's feature columns are matched to PERM.json's by name (in
any order), columns dropped at fit time are dropped again, the label column (if present) stays where it is.

Any problem with the inputs or options: one line on stderr, exit code 2, and neither output file is written (both
are written atomically, PERM.json only once OUT.csv is in place). An output is never an input file (same file, also
through a hard or symbolic link); an existing output that tnml did not write (a PERM.json without tnml's "format",
any existing OUT.csv) is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from tnml.commands import fail

NAME = "rearrange"
HELP = "reorder the feature columns of a CSV data set so a locally connected network fits it (P5 Algorithm 1)"
FORMAT = "tnml-rearrangement"
METHODS = ("mincut", "random")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tnml.commands import seed_arg

    parser.add_argument("data", help="CSV file: a header line of column names, one numeric sample per row")
    parser.add_argument("--label", default=None,
                        help="name of the label column (required to fit; kept in place in the output)")
    parser.add_argument("--out", required=True, help="output CSV with the feature columns reordered")
    parser.add_argument("--permutation", default=None, help="fit mode: where to write the learned permutation (JSON)")
    parser.add_argument("--apply", default=None, metavar="PERM.json",
                        help="apply a permutation written by an earlier fit to DATA instead of learning one")
    parser.add_argument("--dims", type=int, default=None,
                        help="1: features form a sequence (default); 2: a grid, see --shape")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="grid of the features for --dims 2 (row-major; default: a square); implies --dims 2")
    parser.add_argument("--method", choices=METHODS, default="mincut",
                        help="mincut (P5 Algorithm 1, default) or random (a seeded random order, a baseline)")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="seed of the partitioner / random order, in [0, 2**32 - 1] (default 0)")
    parser.add_argument("--force", action="store_true",
                        help="replace existing output files that tnml did not write (never an input file)")
    parser.add_argument("--drop-constant", action="store_true",
                        help="drop constant feature columns (recorded in PERM.json) instead of refusing the file")


def _layout(header: list[str], label: str | None, dropped: set[str], order: list[str]) -> list[int]:
    """Input column index of each output column: the label column stays at its place, dropped columns go, and the
    remaining (feature) slots are filled with the columns of ``order``."""
    slots = [k for k, name in enumerate(header) if name != label and name not in dropped]
    if len(slots) != len(order):  # pragma: no cover - callers check the names first
        raise RuntimeError(f"expected {len(order)} feature columns, found {len(slots)}")
    index = {name: k for k, name in enumerate(header)}
    fill = iter(order)
    return [k if (header[k] == label) else index[next(fill)] for k in range(len(header))
            if header[k] not in dropped]


def _write_both(out: Path, header, rows, perm_path: Path, payload: dict) -> None:
    from tnml.datasets.tabular_io import write_csv
    from tnml.io import atomic_write

    text = json.dumps(payload, indent=2) + "\n"

    landed = []

    def write_perm(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        write_csv(out, header, rows)  # OUT.csv lands first; PERM.json follows when this returns
        landed.append(True)

    # the pair changes together: if PERM.json does not land after OUT.csv did, the previous OUT.csv comes back
    backup = None
    if out.is_file():
        fd, backup = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".bak")
        os.close(fd)
        shutil.copy2(out, backup)
    try:
        atomic_write(perm_path, write_perm)
    except BaseException:
        if landed:
            if backup is not None:
                os.replace(backup, out)
                backup = None
            else:
                out.unlink(missing_ok=True)
        raise
    finally:
        if backup is not None:
            os.unlink(backup)


def _check_out(path: str, option: str) -> str | None:
    p = Path(path)
    if p.is_dir():
        return f"{option} {path!r} is a folder; give a file name"
    return None


def _is_perm_json(path: Path) -> bool:
    """A PERM.json written by `tnml rearrange` (its "format" key), which a new fit may replace."""
    from tnml.io import read_input_bytes

    obj = json.loads(read_input_bytes(path, "a PERM.json").decode("utf-8"))
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _check_outputs(args: argparse.Namespace, outputs: dict[str, str]) -> str | None:
    """Each output is neither an input (same inode, links included) nor an existing file tnml did not write
    (PERM.json files are recognized by their "format"; a CSV is replaced only with --force)."""
    from tnml.io import OutputPathError, check_output_file

    inputs = {"DATA": args.data, **({"--apply": args.apply} if args.apply else {})}
    for option, path in outputs.items():
        ours = _is_perm_json if option == "--permutation" else None
        try:
            check_output_file(path, option=option, inputs=inputs, force=args.force, ours=ours)
        except OutputPathError as e:
            return str(e)
    return None


def _load_perm(path: str) -> dict | str:
    from tnml.io import read_input_bytes

    p = Path(path)
    if not p.is_file():
        return f"--apply {path!r}: no such file; give the PERM.json written by `tnml rearrange ... --permutation`"
    try:
        obj = json.loads(read_input_bytes(p, "a PERM.json").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"--apply {path!r}: not a JSON file ({e}); give the PERM.json written by `tnml rearrange`"
    except ValueError as e:  # not a regular file, too large
        return f"--apply {e}"
    except RecursionError:
        return f"--apply {path!r}: JSON nested too deeply to be a PERM.json; give the file written by `tnml rearrange`"
    except OSError as e:
        return f"--apply {path!r}: cannot read it ({e.strerror or e})"
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        return f"--apply {path!r}: not a permutation written by `tnml rearrange` (no \"format\": \"{FORMAT}\")"
    for key in ("features", "permutation"):
        if key not in obj:
            return f"--apply {path!r}: the key {key!r} is missing; write the file again with `tnml rearrange`"
    feats, perm = obj["features"], obj["permutation"]
    if (not isinstance(feats, list) or not feats or not all(isinstance(f, str) for f in feats)
            or len(set(feats)) != len(feats)):
        return f"--apply {path!r}: \"features\" must be a non-empty list of distinct column names"
    if (not isinstance(perm, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in perm)
            or sorted(perm) != list(range(len(feats)))):
        return f"--apply {path!r}: \"permutation\" must be a permutation of 0..{len(feats) - 1}, got {perm!r}"[:300]
    label = obj.get("label")
    dropped = obj.get("dropped", [])
    if label is not None and not isinstance(label, str):
        return f"--apply {path!r}: \"label\" must be a column name or null, got {label!r}"
    if not isinstance(dropped, list) or not all(isinstance(d, str) for d in dropped):
        return f"--apply {path!r}: \"dropped\" must be a list of column names"
    clash = sorted(set(dropped) & set(feats)) + ([label] if label in feats else [])
    if clash:
        return (f"--apply {path!r}: the columns {clash[:5]} are listed as features and also as dropped or the label; "
                "write the file again with `tnml rearrange`")
    return {"features": feats, "permutation": perm, "label": label, "dropped": dropped}


def _run_apply(args: argparse.Namespace) -> int:
    from tnml.datasets.tabular_io import CsvTable, read_csv_table, table_arrays, write_csv

    for opt, val in (("--permutation", args.permutation), ("--dims", args.dims), ("--shape", args.shape)):
        if val is not None:
            return fail(f"{opt} is for fitting; with --apply the order comes from {args.apply!r} (drop {opt})")
    if args.drop_constant:
        return fail(f"--drop-constant is for fitting; with --apply the dropped columns come from {args.apply!r}")
    if Path(args.apply).resolve() == Path(args.out).resolve():
        return fail("--out and --apply name the same file; give a different --out")
    msg = _check_outputs(args, {"--out": args.out})
    if msg:
        return fail(msg)
    perm = _load_perm(args.apply)
    if isinstance(perm, str):
        return fail(perm)
    label = perm["label"]
    if args.label is not None and args.label != label:
        return fail(f"--label {args.label!r} disagrees with {args.apply!r}, fitted with label {label!r}; drop --label")
    try:
        table = read_csv_table(args.data)
    except ValueError as e:
        return fail(str(e))
    feats, dropped = perm["features"], set(perm["dropped"])
    have = set(table.header)
    missing = [f for f in feats if f not in have]
    if missing:
        return fail(f"{args.data}: feature column(s) {', '.join(repr(m) for m in missing[:8])} of {args.apply!r} "
                    "are missing; the new data needs every feature the permutation was fitted on")
    extra = [c for c in table.header if c not in set(feats) and c != label and c not in dropped]
    if extra:
        return fail(f"{args.data}: column(s) {', '.join(repr(c) for c in extra[:8])} are not features of "
                    f"{args.apply!r} (fitted with label {label!r}); remove them")
    keep = [k for k, c in enumerate(table.header) if c in set(feats)]
    sub = CsvTable(table.path, [table.header[k] for k in keep], [[r[k] for k in keep] for r in table.rows],
                   table.lines)
    try:
        table_arrays(sub, None, constant="keep", min_samples=1)
    except ValueError as e:
        return fail(str(e))
    order = [feats[i] for i in perm["permutation"]]
    cols = _layout(table.header, label, dropped, order)
    header = [table.header[k] for k in cols]
    rows = [[r[k] for k in cols] for r in table.rows]
    try:
        write_csv(args.out, header, rows)
    except OSError as e:
        return fail(f"cannot write --out {args.out!r}: {e.strerror or e}")
    print(f"reordered {len(feats)} features of {len(rows)} rows with {args.apply}; wrote {args.out}")
    return 0


def _run_fit(args: argparse.Namespace) -> int:
    from tnml.commands._tabular import check_shape, resolve_dims
    from tnml.datasets.tabular_io import read_csv_table, table_arrays
    from tnml.preprocessing import FeatureRearrangement, RandomRearrangement

    if args.label is None:
        return fail("--label COLUMN is required to fit a rearrangement (or pass --apply PERM.json to reuse one)")
    if args.permutation is None:
        return fail("--permutation PERM.json is required to fit: it records the order for `--apply` on new data")
    msg = _check_out(args.permutation, "--permutation")
    if msg:
        return fail(msg)
    if Path(args.permutation).resolve() == Path(args.out).resolve():
        return fail("--out and --permutation name the same file; give two different files")
    msg = _check_outputs(args, {"--out": args.out, "--permutation": args.permutation})
    if msg:
        return fail(msg)
    grid_opts = resolve_dims(args.dims, args.shape)
    if isinstance(grid_opts, str):
        return fail(grid_opts)
    dims, shape = grid_opts
    try:
        table = read_csv_table(args.data)
        X, _, names = table_arrays(table, args.label, constant="drop" if args.drop_constant else "error")
    except ValueError as e:
        return fail(str(e))
    grid = check_shape(dims, shape, X.shape[1], args.data, needs="rearranging needs")
    if isinstance(grid, str):
        return fail(grid)
    shape = grid
    est = (FeatureRearrangement(dims=dims, shape=shape, random_state=args.seed) if args.method == "mincut"
           else RandomRearrangement(dims=dims, shape=shape, random_state=args.seed))
    try:
        est.fit(X)
    except (ValueError, TypeError) as e:
        return fail(f"{args.data}: {e}")
    perm = [int(i) for i in est.permutation_]
    order = [names[i] for i in perm]
    dropped = [c for c in table.header if c != args.label and c not in set(names)]
    cols = _layout(table.header, args.label, set(dropped), order)
    header = [table.header[k] for k in cols]
    rows = [[r[k] for k in cols] for r in table.rows]
    payload = {
        "format": FORMAT, "version": 1, "source": Path(args.data).name, "label": args.label,
        "columns": table.header, "features": names, "permutation": perm, "order": order, "dropped": dropped,
        "dims": dims, "shape": list(shape) if shape is not None else None, "method": args.method,
        "seed": args.seed, "objective_before": float(est.objective_before_),
        "objective_after": float(est.objective_after_),
    }
    if not all(math.isfinite(payload[k]) for k in ("objective_before", "objective_after")):  # pragma: no cover
        return fail("the rearrangement objective is not finite; check the data")
    try:
        _write_both(Path(args.out), header, rows, Path(args.permutation), payload)
    except OSError as e:
        return fail(f"cannot write the outputs {args.out!r} / {args.permutation!r}: {e.strerror or e}")
    print(f"rearranged {len(names)} features ({args.method}, {dims}-D): Σ SE {est.objective_before_:.4g} -> "
          f"{est.objective_after_:.4g}; wrote {args.out} and {args.permutation}")
    return 0


def run(args: argparse.Namespace) -> int:
    msg = _check_out(args.out, "--out")
    if msg:
        return fail(msg)
    if args.apply is not None:
        return _run_apply(args)
    return _run_fit(args)
