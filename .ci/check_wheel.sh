#!/usr/bin/env bash
# Build the sdist and the wheel from this tree, fail on any deprecation warning of the build, install the wheel
# into a fresh venv (torch pinned by constraints.txt) and run `tnml list` and the shipped-data loader there,
# outside the source tree so the installed package (not ./tnml) is what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

"$PY" -m venv "$WORK/buildenv"
"$WORK/buildenv/bin/python" -m pip install --quiet --upgrade pip build
"$WORK/buildenv/bin/python" -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
if grep -iE "deprecat" "$WORK/build.log"; then
  echo "check_wheel: the build printed deprecation warnings (above)" >&2
  exit 1
fi
ls "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/tnml-*.whl)
"$WORK/buildenv/bin/python" - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["tnml/py.typed", "tnml/datasets/data/dna.npz"]
missing = [n for n in need if n not in names]
lic = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
text = zipfile.ZipFile(sys.argv[1]).read(meta).decode()
assert not missing, f"wheel lacks {missing}"
assert lic, "wheel lacks the licence file"
assert "License-Expression: MIT" in text, "no PEP 639 License-Expression in METADATA"
print("check_wheel: wheel holds py.typed, the shipped data and the licence; License-Expression: MIT")
PY

"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" "$WHEEL"
cd "$WORK"
"$WORK/venv/bin/tnml" list
"$WORK/venv/bin/python" - <<'PY'
import tnml
from tnml.datasets import load_dna

assert "site-packages" in tnml.__file__, tnml.__file__
X, y = load_dna(verify=True)
assert X.shape == (3186, 180) and y.shape == (3186,), (X.shape, y.shape)
print(f"check_wheel: installed tnml {tnml.__version__}; load_dna -> X {X.shape}, y {y.shape}, class counts",
      [int((y == k).sum()) for k in range(3)])
PY
