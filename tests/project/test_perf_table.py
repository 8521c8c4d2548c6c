"""scripts/perf_table.py: the README's performance section is generated from the stored benchmark JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("perf_table", ROOT / "scripts" / "perf_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_section_matches_the_stored_results():
    pt = _module()
    current = pt.readme_section()
    if current is None:
        pytest.skip("README.md has no perf-table markers yet")
    assert current == pt.render(), "README performance section is stale: run scripts/perf_table.py --write-readme"


def _stats(ms):
    return {"median_ms": ms, "min_ms": ms, "max_ms": ms, "reps": 5}


def test_render_reads_every_result_file(tmp_path):
    pt = _module()
    env = {"cpu_count": 2, "torch": "x", "torch_threads": 1, "loadavg": [0.5, 0.4, 0.3]}
    mps = {"timestamp": "T1", "env": env, "configs": [{
        "config": {"n": 784, "d": 2, "D": 10, "b": 100}, "tk_best": "tk[a]", "route": "blocked",
        "stats": {"tnml": _stats(40.0), "tk[a]": _stats(160.0), "tnml log-depth": _stats(55.0)},
        "ratios": {"tnml/tk_best": 0.25, "tnml/flop_limit": 9.5},
        "aten_ops": {"tnml": {"total": 12000, "compute": 3000}, "tnml log-depth": {"total": 480, "compute": 150}},
    }]}
    ttn = {"timestamp": "T2", "env": env, "configs": [{
        "config": {"n": 64, "d": 2, "B": 16, "b": 256}, "tk_best": "tk[b]",
        "stats": {"tnml": _stats(8.0), "tk[b]": _stats(20.0)},
        "ratios": {"tnml/tk_best": 0.4, "tnml/flop_limit": 3.0}, "aten_ops": {"tnml": {"total": 800, "compute": 200}},
    }]}
    run = {"samples": 60000, "steps_timed": 60, "extrapolated": True, "samples_per_s": 1000.0, "epoch_s": 60.0,
           "peak_rss_growth_mib": 25.0}
    epoch = {"timestamp": "T3", "env": env, "runs": [
        {**run, "impl": "tnml", "batch": 512}, {**run, "impl": "tensorkrowch", "batch": 512, "samples_per_s": 250.0},
    ]}
    for name, rec in (("mps", mps), ("ttn", ttn), ("mps_epoch", epoch)):
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    out = pt.render(tmp_path)
    assert out.startswith(pt.START) and out.endswith(pt.END)
    assert "| W1 MPS n=784, d=2, D=10, b=100 | 40.0 (blocked) | 160 | 0.25 | 9.5 | 12000 (3000) | — / — | 55.0 / " \
        "480 (150) |" in out
    assert "| W2 TTN 64 leaves, bond 16, b=256 | 8.0 (tree) | 20.0 | 0.40 | 3.0 | 800 (200) | — | — |" in out
    assert "batch 512: tnml 1000 samples/s, 60 s per epoch (extrapolated from 60 steps)" in out
    assert "tensorkrowch 250 samples/s" in out and "load average 0.5 at start" in out
    assert "cp_onehot" not in out  # absent files are left out, not invented


def test_write_readme_replaces_only_the_marked_section(tmp_path):
    pt = _module()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{pt.START}\nold\n{pt.END}\noutro\n")
    pt.write_readme(f"{pt.START}\nnew\n{pt.END}", readme)
    assert readme.read_text() == f"intro\n{pt.START}\nnew\n{pt.END}\noutro\n"
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no <!-- perf-table:start -->"):
        pt.write_readme("x", bare)
