#!/usr/bin/env bash
# GPU check: the CUDA-marked tests, then GPU/CPU time ratios of the W1 (MPS) and W2 (TTN) models.
#
#   bash benchmarks/gpu_check.sh          # from anywhere; uses .venv/bin/python (or $PYTHON)
#
# 1. pytest -m gpu: the same models on CUDA match the CPU in float64 (forward and gradients), a 784-site float32
#    chain stays finite on CUDA (tests/plans/test_gpu.py; those tests skip cleanly on machines without CUDA).
# 2. python -m benchmarks.gpu_ratio: median training-step time of each W1/W2 configuration on cpu and cuda and the
#    ratio GPU/CPU. benchmarks/mps.py and ttn.py have no --device option (their tensorkrowch and hand-written
#    baselines are CPU-only), so this script times the tnml models of their configurations itself.
#
# Exit codes: 0 all passed; 1 tests or timing failed; 3 no CUDA (one line on stderr). Under 8 minutes: the steps
# are capped at 5 + 2.5 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then
    echo "gpu_check: no Python at $PY; run scripts/test.sh first (or set PYTHON=/path/to/python)" >&2
    exit 1
fi
if ! "$PY" - <<'PYEOF'
import sys
try:
    import torch
except Exception as e:  # noqa: BLE001
    sys.stderr.write(f"gpu_check: cannot import torch ({e}); install the project first\n")
    sys.exit(3)
if not torch.cuda.is_available():
    sys.stderr.write(
        f"gpu_check: CUDA is not available (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
        "run this on a machine with an NVIDIA GPU and a CUDA build of torch\n"
    )
    sys.exit(3)
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PYEOF
then
    exit 3
fi
start=$(date +%s)
echo "== 1/2: pytest -m gpu (CUDA vs CPU, float64)"
timeout 300 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/
tests_rc=$?
echo "== 2/2: GPU/CPU step-time ratios (W1 MPS, W2 TTN; tnml models, float32, forward + loss + backward)"
timeout 150 "$PY" -m benchmarks.gpu_ratio
timing_rc=$?
echo "gpu_check: $(( $(date +%s) - start )) s; tests exit $tests_rc, timing exit $timing_rc"
if [ "$tests_rc" -ne 0 ] || [ "$timing_rc" -ne 0 ]; then
    exit 1
fi
