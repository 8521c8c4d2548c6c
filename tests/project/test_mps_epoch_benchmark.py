"""benchmarks/mps_epoch.py: one run's record — the whole epoch, the extrapolation from its first steps (``--full``)
and the per-tenth times that show whether load or the run itself changed speed."""

from __future__ import annotations

import pytest
import torch

from benchmarks import mps_epoch as E


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_a_full_run_records_the_extrapolation_from_its_first_steps():
    r = E.run_one("tnml", 16, 80, None, 0, 1, early_steps=2)  # 5 steps of 16 samples
    assert r["steps_timed"] == r["steps_per_epoch"] == 5 and not r["extrapolated"]
    assert r["early_steps"] == 2 and 0 < r["seconds_early"] < r["seconds_timed"]
    assert r["epoch_s_from_early"] == pytest.approx(r["seconds_early"] * 80 / 32)
    assert r["epoch_s"] == pytest.approx(r["seconds_timed"])
    assert len(r["seconds_by_tenth"]) == 5  # fewer steps than tenths: one entry per step
    assert sum(r["seconds_by_tenth"]) == pytest.approx(r["seconds_timed"], abs=1e-3)
    assert len(r["loadavg_1min"]) == 2


def test_an_extrapolated_run_has_no_early_record():
    r = E.run_one("tnml", 16, 160, 3, 0, 1)
    assert r["extrapolated"] and r["steps_timed"] == 3 and "epoch_s_from_early" not in r
    assert r["epoch_s"] == pytest.approx(r["seconds_timed"] * 160 / 48)
    assert len(r["seconds_by_tenth"]) == 3
