"""benchmarks/_common.py: the JSON record every benchmark writes, the shared end of ``main`` and the equality-check
loop that stops a run before any timing."""

from __future__ import annotations

import json

import numpy as np
import torch

from benchmarks import _common as C


def _args(*argv: str):
    return C.parse_args("test", list(argv))


def test_record_has_the_shared_header_then_the_fields_in_order():
    args = _args("--quick", "--seed", "7", "--threads", "1")
    rec = C.record("ttn", args, env_key="env", workload="W2", checks=[], configs=[])
    assert list(rec) == ["benchmark", "timestamp", "quick", "seed", "env", "workload", "checks", "configs"]
    assert rec["benchmark"] == "ttn" and rec["quick"] is True and rec["seed"] == 7
    assert rec["env"]["threads_requested"] == 1 and rec["env"]["torch"] == torch.__version__
    assert "environment" in C.record("W4", args) and "env" not in C.record("W4", args)


def test_report_prints_the_table_and_writes_the_json_unless_no_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(C, "RESULTS_DIR", tmp_path)
    payload = {"x": np.float64(1.5), "arr": np.arange(3), "dtype": torch.float32, "t": torch.tensor(2.0)}

    assert C.report(_args("--quick", "--no-json"), "demo", payload, ["a", "b"], [["r", 1.25]], "T") == 0
    out = capsys.readouterr().out
    assert "\nT\n" in out and "| r | 1.25 |" in out and "wrote" not in out
    assert list(tmp_path.iterdir()) == []

    assert C.report(_args("--quick"), "demo", payload) == 0
    path = tmp_path / "demo_quick.json"
    assert capsys.readouterr().out == f"wrote {path}\n"
    assert json.loads(path.read_text()) == {"x": 1.5, "arr": [0, 1, 2], "dtype": "torch.float32", "t": 2.0}

    C.report(_args(), "demo", {"k": 1})
    assert json.loads((tmp_path / "demo.json").read_text()) == {"k": 1}


def test_run_checks_records_every_result_and_stops_at_the_first_failure(capsys):
    checked, checks = [], []

    def check(cfg):
        checked.append(cfg["n"])
        return {"err": cfg["n"] / 10, "ok": cfg["n"] < 2}

    configs = [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]
    assert not C.run_checks(configs, check, lambda cfg, res: f"n={cfg['n']} err {res['err']}", checks)
    assert checked == [0, 1, 2]  # config 3 is never checked
    assert checks == [{"config": {"n": k}, "err": k / 10, "ok": k < 2} for k in (0, 1, 2)]
    cap = capsys.readouterr()
    assert cap.out == "  n=0 err 0.0\n  n=1 err 0.1\n  n=2 err 0.2\n"
    assert cap.err == "equality check failed; not timing\n"

    checks.clear()
    assert C.run_checks(configs[:2], check, lambda cfg, res: "", checks) and len(checks) == 2
