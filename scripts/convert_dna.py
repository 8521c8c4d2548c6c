"""Convert Statlog DNA from mlbench's ``DNA.rda`` into the array file shipped as ``tnml/datasets/data/dna.npz``.

Run once by a maintainer (never at install or test time); numpy alone loads the result. Inputs:

1. ``DNA.rda`` from Debian's ``r-cran-mlbench`` (version 2.1-3-1 was used)::

       apt-get download r-cran-mlbench
       dpkg-deb -x r-cran-mlbench_*.deb mlbench
       # -> mlbench/usr/lib/R/site-library/mlbench/data/DNA.rda

2. the PyPI package ``rdata`` (reads ``.rda`` files; not a dependency of tnml)::

       .venv/bin/pip install -c constraints.txt rdata

Then ``python scripts/convert_dna.py PATH/TO/DNA.rda [-o tnml/datasets/data/dna.npz]``.

The output is byte-reproducible: the arrays are written into the zip archive with a fixed timestamp (``np.savez``
stamps the current time), so the same input gives the same SHA-256 (``tests/datasets/test_dna.py`` checks this when the
inputs are present).

Contents of the file:

* ``X`` uint8 ``(3186, 180)``: columns ``V1 .. V180`` in sequence order; nucleotide ``i`` (0-based, of 60) is the
  indicator triple at columns ``3i, 3i+1, 3i+2`` (A = 100, C = 010, G = 001, T = 000);
* ``y`` uint8 ``(3186,)``: class ids, the index into ``classes``;
* ``classes`` ``<U2`` ``(3,)``: ``("ei", "ie", "n")`` (the R factor's levels, in order).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tnml" / "datasets" / "data" / "dna.npz"
#: mlbench's factor levels, in order; class id k is CLASSES[k]
CLASSES = ("ei", "ie", "n")


def read_dna_rda(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, classes)`` from mlbench's ``DNA.rda`` (needs the ``rdata`` package)."""
    try:
        import rdata
    except ImportError as err:
        raise SystemExit("convert_dna.py needs the package 'rdata': pip install rdata") from err
    frames = rdata.read_rda(str(path))
    if "DNA" not in frames:
        raise SystemExit(f"{path} holds {sorted(frames)} but no object named 'DNA'")
    df = frames["DNA"]
    cols = [f"V{i}" for i in range(1, 181)]
    if list(df.columns) != cols + ["Class"]:
        raise SystemExit(f"{path}: expected columns V1..V180, Class; got {list(df.columns)[:3]}...")
    x = np.stack([df[c].astype(str).astype(np.int64).to_numpy() for c in cols], axis=1)
    if not np.isin(x, (0, 1)).all():
        raise SystemExit(f"{path}: indicator columns hold values other than 0/1")
    levels = tuple(str(c) for c in df["Class"].cat.categories)
    if levels != CLASSES:
        raise SystemExit(f"{path}: class levels {levels}, expected {CLASSES}")
    y = df["Class"].cat.codes.to_numpy()
    if (y < 0).any():
        raise SystemExit(f"{path}: missing class labels")
    return x.astype(np.uint8), y.astype(np.uint8), np.array(CLASSES)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` (deflate) that ``np.load`` reads, with a fixed timestamp per member: byte-reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def convert(rda: Path, out: Path = DEFAULT_OUT) -> str:
    """Write ``out`` from ``rda``; returns the SHA-256 of the written file."""
    x, y, classes = read_dna_rda(rda)
    write_npz(out, {"X": x, "y": y, "classes": classes})
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rda", type=Path, help="path to mlbench's DNA.rda")
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = ap.parse_args(argv)
    if not args.rda.is_file():
        print(f"error: {args.rda} is not a file; see this script's docstring for where DNA.rda comes from",
              file=sys.stderr)
        return 2
    digest = convert(args.rda, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
