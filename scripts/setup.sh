#!/usr/bin/env bash
# Create .venv (if missing) and install tnml with its test extras. torch is pinned to the CPU build 2.13.0
# through constraints.txt so pip never pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
.venv/bin/python -c "import torch, tnml; print('tnml', tnml.__version__, '| torch', torch.__version__)"
