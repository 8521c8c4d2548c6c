"""Generate the README's experiment table from a run's ``metrics.json`` files.

    python scripts/readme_table.py RUNS                 # print the table (RUNS: e.g. runs/, the main job's output)
    python scripts/readme_table.py RUNS --out FILE      # write it to FILE
    python scripts/readme_table.py RUNS --store         # keep RUNS as the reference run (metrics only) in
                                                        # benchmarks/results/reference_run/
    python scripts/readme_table.py RUNS --write-readme  # replace the table between the README's markers

The test ``tests/test_readme.py`` checks that the README's table is the one generated from the stored reference
run, so after a new main run: ``--store`` then ``--write-readme`` (with the same RUNS) and commit both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tnml.experiments.tables import load_run, readme_table  # noqa: E402

REFERENCE_RUN = ROOT / "benchmarks" / "results" / "reference_run"
README = ROOT / "README.md"
START, END = "<!-- experiment-table:start -->", "<!-- experiment-table:end -->"
#: what the reference copy keeps of each metrics.json (everything a table or page shows; not the raw metrics)
KEEP = (
    "experiment",
    "quick",
    "seed",
    "device",
    "seconds",
    "cpu_count",
    "load_average",
    "torch",
    "python",
    "description",
    "about",
    "comparisons",
    "claims",
    "notes",
    "plots",
)


def store(runs: Path, dest: Path | None = None) -> list[Path]:
    """Copy ``runs/*/metrics.json`` (the keys in :data:`KEEP`) to ``dest/NAME/metrics.json`` (default
    :data:`REFERENCE_RUN`); returns the files."""
    dest = REFERENCE_RUN if dest is None else Path(dest)
    files = sorted(Path(runs).glob("*/metrics.json"))
    if not files:
        raise SystemExit(f"readme_table: no */metrics.json in {str(runs)!r}; run `tnml run all --quick` first")
    if dest.exists():
        shutil.rmtree(dest)
    out = []
    for f in files:
        meta = json.loads(f.read_text(encoding="utf-8"))
        target = dest / f.parent.name / "metrics.json"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps({k: meta[k] for k in KEEP if k in meta}, indent=1, ensure_ascii=False) + "\n")
        out.append(target)
    return out


def replace_block(text: str, table: str) -> str:
    """``text`` with the part between the experiment-table markers replaced by ``table``."""
    if START not in text or END not in text:
        raise SystemExit(f"readme_table: the README lacks the markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table.rstrip()}\n{END}{tail}"


def readme_block(text: str) -> str:
    """The README's current table (between the markers), stripped."""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, help="a run folder holding NAME/metrics.json (e.g. runs)")
    ap.add_argument("--out", type=Path, help="write the table to this file instead of printing it")
    ap.add_argument("--store", action="store_true", help=f"keep RUNS as the reference run in {REFERENCE_RUN}")
    ap.add_argument("--write-readme", action="store_true", help="replace the README's table (between its markers)")
    args = ap.parse_args(argv)
    run = load_run(args.runs)
    if not run:
        print(f"readme_table: no */metrics.json in {str(args.runs)!r}", file=sys.stderr)
        return 2
    table = readme_table(run)
    if args.store:
        print(f"stored {len(store(args.runs))} experiments in {REFERENCE_RUN}")
    if args.write_readme:
        README.write_text(replace_block(README.read_text(encoding="utf-8"), table), encoding="utf-8")
        print(f"wrote the table into {README}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
        print(f"wrote {args.out}")
    elif not (args.store or args.write_readme):
        print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
