"""htf-dynamics at tiny settings for the SIGKILL test of tests/experiments/test_resume_dynamics.py, run as
``python -m tests._resume_dynamics_script run htf-dynamics --quick ...``: applies :func:`tiny` and hands its
arguments to ``tnml.cli.main``."""

from __future__ import annotations

import sys

import tnml.dynamics.tasks as tasks
import tnml.experiments.htf_dynamics as htf
from tnml.cli import main

#: width 6, MAX_STEPS steps per model (~1 s each), records every 50; saves every CHECKPOINT_STEPS steps
MAX_STEPS, CHECKPOINT_STEPS = 1200, 100


def tiny(setitem, setattr_) -> None:
    """Apply the tiny settings with ``setitem(dict, key, value)`` and ``setattr_(obj, name, value)`` (plain
    assignment in the script, pytest's monkeypatch in the test)."""
    setitem(htf.SETTINGS, True, (6, MAX_STEPS, 50))
    setattr_(tasks, "CHECKPOINT_STEPS", CHECKPOINT_STEPS)
    setattr_(htf, "_plot", lambda *a, **k: None)


if __name__ == "__main__":
    tiny(lambda d, k, v: d.__setitem__(k, v), setattr)
    raise SystemExit(main(sys.argv[1:]))
