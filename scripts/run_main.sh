#!/usr/bin/env bash
# Set up, then run the main job: the quick version of every registered experiment on embedded data.
# Results: runs/summary.md (measured numbers beside the thesis's), runs/NAME/metrics.json and plots.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/tnml run all --quick --out "${OUT:-runs}" "$@"
