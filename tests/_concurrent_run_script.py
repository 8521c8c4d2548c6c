"""Helper for tests/reliability/test_output_safety.py: registers a small experiment ``tiny-sleep``
(a few checkpointed steps, each waiting ``TNML_TEST_STEP_S`` seconds) and runs ``tnml`` with the given arguments."""

from __future__ import annotations

import os
import sys
import time

import torch

from tnml.cli import main
from tnml.experiments.registry import Comparison, ExperimentResult, RunConfig, register_experiment


@register_experiment("tiny-sleep", "test helper: a few slow checkpointed steps")
def _tiny(cfg: RunConfig) -> ExperimentResult:
    ck = cfg.checkpointer("loop")
    total = 0.0
    for step in range(4):
        time.sleep(float(os.environ.get("TNML_TEST_STEP_S", "0.3")))
        total += step
        if ck is not None:
            ck.save({"step": step, "w": torch.full((3,), float(step))})
    return ExperimentResult({"total": total, "pid": os.getpid()}, [Comparison("total", total, 6.0)])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
