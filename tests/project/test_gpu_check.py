"""benchmarks/gpu_check.sh and benchmarks/gpu_ratio.py on a machine without CUDA: a clean refusal, a CPU smoke run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message printed without CUDA")
def test_gpu_check_refuses_without_cuda():
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=120)
    assert res.returncode == 3, res
    assert res.stderr.startswith("gpu_check: CUDA is not available") and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_gpu_ratio_cpu_smoke(capsys):
    from benchmarks import gpu_ratio

    if not torch.cuda.is_available():
        assert gpu_ratio.main(["--quick", "--reps", "1", "--no-json"]) == 3
        assert "CUDA is not available" in capsys.readouterr().err
    threads = torch.get_num_threads()
    try:
        assert gpu_ratio.main(["--quick", "--reps", "1", "--cpu-only", "--no-json"]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("W1", "W2"))]
    # W1 configurations are timed on the three chain routes (sequential, blocked, log-depth), W2 once
    cfgs = gpu_ratio.configs(quick=True)
    assert len(cfgs) == 4
    assert len(rows) == sum(3 if w.startswith("W1") else 1 for w, _ in cfgs)
    assert sum("log-depth" in r for r in rows) == sum(w.startswith("W1") for w, _ in cfgs)
    assert all(float(r.split()[-3]) > 0 for r in rows)  # a positive CPU time per configuration
