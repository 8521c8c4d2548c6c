"""Shared helpers of the resume tests: exact comparison of checkpoints and metrics, save counting with a simulated
crash, and reading an experiment's checkpoint folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tnml.checkpoint import Checkpointer
from tnml.experiments.registry import CHECKPOINT_DIR


def same(a, b) -> bool:
    """Exact equality of nested checkpoint contents (tensors bit for bit; NaN equals NaN)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def strip(obj):
    """Metrics without wall-clock times (``seconds``, ``removal_seconds``, ``seconds_per_epoch``); NaN comparable."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in ("seconds", "removal_seconds", "seconds_per_epoch")}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return "nan"  # NaN != NaN: compare it as a marker
    return obj


def progress(state: dict) -> int:
    """The progress counter of a saved state (``training_state``'s ``progress``, or a loop's own ``step``)."""
    return int(state["progress"] if "progress" in state else state["step"])


def count_saves(monkeypatch, crash_at: int | None = None) -> list[int]:
    """Count Checkpointer.save calls; with ``crash_at``, the process "dies" right after that save lands."""
    real = Checkpointer.save
    saves: list[int] = []

    def save(self, state):
        real(self, state)
        saves.append(progress(state))
        if len(saves) == crash_at:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save)
    return saves


def crash_after_first_save(monkeypatch, run) -> None:
    """Call ``run()`` and "kill" it right after its first checkpoint lands (KeyboardInterrupt, then caught)."""
    with monkeypatch.context() as m:
        count_saves(m, crash_at=1)
        with pytest.raises(KeyboardInterrupt):
            run()


def checkpoints(out) -> dict:
    """Every checkpoint under ``out/checkpoints``, loaded safely, by tag."""
    folder = out / CHECKPOINT_DIR
    return {p.stem: torch.load(p, weights_only=True) for p in sorted(folder.glob("*.pt"))} if folder.is_dir() else {}


#: outcomes of the training loops as they were before checkpointing, recorded once from frozen copies of them
#: (see its ``_about``): the loops now run on :func:`tnml.training.fit` and must still give these numbers
REFERENCE = json.loads((Path(__file__).parent / "data" / "resume_reference.json").read_text())


def assert_matches_stored(actual, stored, rel: float = 1e-7, where: str = "") -> None:
    """``actual`` (made JSON-like: tuples become lists, keys strings) equals the stored outcome ``stored``: strings,
    bools, ints and None exactly, floats to ``rel`` (the recorded run and this one may differ in the last bits of
    platform floating point, nothing more)."""
    actual = json.loads(json.dumps(actual))
    _compare(actual, stored, rel, where or "outcome")


def _compare(a, b, rel: float, where: str) -> None:
    if isinstance(b, dict):
        assert isinstance(a, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} != stored {sorted(b)}"
        for k in b:
            _compare(a[k], b[k], rel, f"{where}[{k!r}]")
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), f"{where}: {a!r} != stored {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            _compare(x, y, rel, f"{where}[{i}]")
    elif isinstance(b, float) and not isinstance(a, bool) and isinstance(a, (int, float)):
        assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-12), f"{where}: {a!r} != stored {b!r}"
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != stored {b!r}"
