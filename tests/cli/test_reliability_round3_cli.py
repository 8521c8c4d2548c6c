"""Reliability round three, command line: the hostile-input categories through the real ``tnml`` binary.

Special files are made inside a temporary folder (``os.mkfifo``, a symbolic link to ``/dev/null`` or
``/dev/zero`` *inside* it, never the real ``/dev`` entries as targets of a write). Every case ends with exit code
2 and one line on stderr (or succeeds), fast, and leaves special files as they were. The in-process cases
(disk full, the umask's mode, SIGINT/SIGTERM) use ``tnml.cli.main`` or a child process.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import tnml.settings
from tnml.cli import main
from tnml.io import OutputPathError, atomic_write, check_replaceable, write_text

TNML = str(Path(sys.executable).with_name("tnml"))
POSIX = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")


def run_tnml(*args, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([TNML, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd)


def one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tnml: error:"), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    return lines[0]


def _edges(path: Path, edges=((0, 1), (1, 2), (2, 3), (3, 0), (0, 2))) -> Path:
    path.write_text("".join(f"{u} {v}\n" for u, v in edges))
    return path


def _csv(path: Path, n: int = 30, m: int = 4) -> Path:
    rng = np.random.default_rng(0)
    rows = [",".join(f"{v:.3f}" for v in rng.normal(size=m)) + f",{i % 2}" for i in range(n)]
    path.write_text(",".join(f"f{j}" for j in range(m)) + ",target\n" + "\n".join(rows) + "\n")
    return path


# ------------------------------------------------------------------ finding 1: --force never replaces special files
@POSIX
@pytest.mark.parametrize("kind", ["fifo", "link-to-dev-null", "link-to-file"])
def test_force_refuses_to_replace_anything_but_a_regular_file(tmp_path, kind):
    src = _edges(tmp_path / "g.txt")
    out = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "link-to-dev-null":
        out.symlink_to("/dev/null")
    else:
        (tmp_path / "target.txt").write_text("keep me\n")
        out.symlink_to(tmp_path / "target.txt")
    before = os.lstat(out)
    err = one_line_error(run_tnml("sparsify", src, "--remove", "0.5", "--out", out, "--force"))
    assert "not a regular file" in err and str(out) in err
    after = os.lstat(out)
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino
    if kind == "link-to-file":
        assert (tmp_path / "target.txt").read_text() == "keep me\n"


@POSIX
def test_atomic_write_refuses_special_files_in_the_api(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    for path in (fifo, link, tmp_path):
        with pytest.raises(OutputPathError, match="not a regular file"):
            write_text(path, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.path.islink(link)
    check_replaceable(tmp_path / "new.txt")  # a new path is fine


@POSIX
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_keep_the_umask_mode_not_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        p = tmp_path / "f.txt"
        p.write_text("first")  # a plain open(..., "w") file: the reference mode
        os.chmod(p, 0o666 & ~umask)
        write_text(p, "replaced")
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~umask
        q = atomic_write(tmp_path / "new.bin", lambda tmp: Path(tmp).write_bytes(b"x"))
        assert stat.S_IMODE(os.stat(q).st_mode) == 0o666 & ~umask
    finally:
        os.umask(old)


@POSIX
def test_sparsify_force_replaces_a_0644_file_and_it_stays_0644(tmp_path):
    src = _edges(tmp_path / "g.txt")
    out = tmp_path / "notes.txt"
    out.write_text("foreign\n")
    os.chmod(out, 0o644)
    old = os.umask(0o022)
    try:
        assert main(["sparsify", str(src), "--remove", "0.4", "--out", str(out), "--force"]) == 0
    finally:
        os.umask(old)
    assert out.read_text().startswith("# tnml sparsify") and stat.S_IMODE(os.stat(out).st_mode) == 0o644


def test_checkpoints_get_the_umask_mode(tmp_path):
    from tnml.checkpoint import Checkpointer

    old = os.umask(0o022)
    try:
        ck = Checkpointer(tmp_path / "c.pt", every=1)
        ck.save({"step": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "c.pt").st_mode) == 0o644


# ------------------------------------------------------------------ finding 2: readers accept regular files only
@POSIX
@pytest.mark.parametrize("special", ["fifo", "dev-zero-link", "folder"])
@pytest.mark.parametrize("command", ["sparsify", "suitability", "rearrange"])
def test_readers_refuse_special_files_without_blocking(tmp_path, special, command):
    data = tmp_path / ("data.csv" if command != "sparsify" else "g.txt")
    if special == "fifo":
        os.mkfifo(data)
    elif special == "dev-zero-link":
        data.symlink_to("/dev/zero")
    else:
        data.mkdir()
    args = {
        "sparsify": ["sparsify", data, "--remove", "0.5", "--out", tmp_path / "o.txt"],
        "suitability": ["suitability", data, "--label", "target", "--width", "2"],
        "rearrange": ["rearrange", data, "--label", "target", "--out", tmp_path / "o.csv", "--permutation",
                      tmp_path / "p.json"],
    }[command]
    t0 = time.perf_counter()
    err = one_line_error(run_tnml(*args, timeout=60))
    assert time.perf_counter() - t0 < 45
    assert str(data) in err
    assert not (tmp_path / "o.txt").exists() and not (tmp_path / "o.csv").exists()


@POSIX
def test_load_csv_and_edge_list_refuse_fifos_in_the_api(tmp_path):
    from tnml.datasets.graph_io import load_edge_list, load_npz_graph
    from tnml.datasets.tabular_io import load_csv

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for load in (lambda p: load_csv(p, label="y"), load_edge_list, load_npz_graph):
        with pytest.raises(ValueError, match="not a regular file"):
            load(fifo)


def test_readers_judge_the_file_size_before_reading(tmp_path, monkeypatch):
    from tnml.datasets.graph_io import load_edge_list

    p = _edges(tmp_path / "g.txt")
    monkeypatch.setattr(tnml.settings, "max_input_bytes", 8)
    with pytest.raises(tnml.settings.MemoryLimitError, match="max_input_bytes"):
        load_edge_list(p)


def _npz_with_huge_member(path: Path, name: str, shape, edge_index=True) -> Path:
    """A small zip whose member ``name`` declares ``shape`` float64 (its data compresses to almost nothing)."""
    import zipfile

    from numpy.lib import format as npy

    n = int(np.prod(shape))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        if edge_index:
            with z.open("edge_index.npy", "w") as f:
                npy.write_array(f, np.array([[0, 1, 2], [1, 2, 0]]))
        with z.open(f"{name}.npy", "w", force_zip64=True) as f:
            npy.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": tuple(shape)})
            chunk = bytes(2**22)
            left = 8 * n
            while left > 0:
                f.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    return path


def test_npz_reads_only_the_members_it_uses(tmp_path, monkeypatch):
    from tnml.datasets.graph_io import load_npz_graph

    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 2**20)  # so that a 1.6 MB-declared member is "huge"
    p = _npz_with_huge_member(tmp_path / "g.npz", "unused_blob", (2**18,))
    t0 = time.perf_counter()
    assert load_npz_graph(p)["edge_index"].shape == (2, 3)
    assert time.perf_counter() - t0 < 2


def test_npz_refuses_declared_sizes_past_the_limit_before_allocating(tmp_path, monkeypatch):
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 2**20)
    p = _npz_with_huge_member(tmp_path / "g.npz", "x", (2**17, 2))  # 2 MiB declared
    from tnml.datasets.graph_io import load_npz_graph

    with pytest.raises(tnml.settings.MemoryLimitError, match="member 'x' declares shape"):
        load_npz_graph(p)


# ------------------------------------------------------------------ finding 3: hubs, sizes refused up front
def _star_file(path: Path, n: int) -> Path:
    path.write_text("".join(f"0 {k}\n" for k in range(1, n + 1)))
    return path


@pytest.mark.parametrize("method, limit_s", [("1-wis", 40), ("degree", 40)])
def test_hub_star_is_fast_for_degree_rules(tmp_path, method, limit_s):
    src = _star_file(tmp_path / "star.txt", 20000)
    t0 = time.perf_counter()
    res = run_tnml("sparsify", src, "--remove", "0.5", "--method", method, "--out", tmp_path / "o.txt", timeout=120)
    assert res.returncode == 0, res.stderr
    assert time.perf_counter() - t0 < limit_s  # was 42 s (1-WIS, 20k star) and > 120 s (degree, 40k star)
    assert "removed 10000 of 20000" in res.stdout


def test_hub_star_wis_is_refused_before_work(tmp_path):
    src = _star_file(tmp_path / "star.txt", 20000)
    t0 = time.perf_counter()
    err = one_line_error(run_tnml("sparsify", src, "--remove", "0.5", "--out", tmp_path / "o.txt", timeout=120))
    assert time.perf_counter() - t0 < 40
    assert "max_wis_work" in err and "20000" in err and not (tmp_path / "o.txt").exists()


def test_wis_work_estimate_and_setting(monkeypatch):
    from tnml.preprocessing import walk_index_sparsification
    from tnml.preprocessing.wis import wis_work

    degs = np.bincount(np.array([[0, k] for k in range(1, 101)]).ravel())
    assert wis_work(100, 50, degs) == 100 + 50 * 101  # a star: |E| + k (|E| + 1)
    monkeypatch.setattr(tnml.settings, "max_wis_work", 100)
    with pytest.raises(tnml.settings.MemoryLimitError, match="max_wis_work"):
        walk_index_sparsification(nx.star_graph(100), 50, 3)
    assert len(walk_index_sparsification(nx.star_graph(100), 50, 2)) == 50  # depth 2: 1-WIS, not limited


@pytest.mark.parametrize("n", [300, 3000])
def test_two_wis_closed_walks_on_a_star_need_no_dense_product(n, monkeypatch):
    from tnml.entanglement.walk_index import as_indexed_graph
    from tnml.preprocessing.wis import closed_walks

    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 2**16)  # an N x N product would be refused
    g = as_indexed_graph(nx.star_graph(n))
    s = closed_walks(g, 3)
    # star: hub 3n + 1, leaves 3 + 1 (no triangles)
    assert s[g.index_of(0) if hasattr(g, "index_of") else 0] == 3 * n + 1 and sorted(s)[0] == 4


def test_closed_walks_match_dense_powers_on_random_graphs():
    from tnml.entanglement.walk_index import as_indexed_graph
    from tnml.preprocessing.wis import closed_walks

    for seed in range(5):
        g = as_indexed_graph(nx.gnm_random_graph(25, 60, seed=seed))
        a = np.zeros((g.n_vertices, g.n_vertices), dtype=np.int64)
        a[g.edges[:, 0], g.edges[:, 1]] = 1
        a = a + a.T + np.eye(g.n_vertices, dtype=np.int64)
        deg = a.sum(1) - 1
        for depth in (2, 3, 4, 5):
            ref = np.diag(np.linalg.matrix_power(a, depth)).copy()
            ref[deg == 0] = 0
            assert closed_walks(g, depth) == ref.tolist()


def test_grouped_degree_greedy_equals_the_lazy_heap():
    """Both phases of greedy_by_degrees pick the same edges (forced grouped phase vs. the plain lazy heap)."""
    import sys as _sys

    from tnml.entanglement.walk_index import as_indexed_graph
    from tnml.preprocessing import degree_sparsification, one_wis

    ow = _sys.modules["tnml.preprocessing.one_wis"]
    for seed in range(12):
        graphs = [nx.gnm_random_graph(30, 90, seed=seed), nx.barabasi_albert_graph(40, 2, seed=seed),
                  nx.star_graph(15 + seed)]
        for graph in graphs:
            ig = as_indexed_graph(graph)
            k = ig.n_edges // 2 + seed % 3
            deg = np.bincount(ig.edges.ravel(), minlength=ig.n_vertices).tolist()
            for by_sum, ref in ((False, one_wis), (True, degree_sparsification)):
                rank = list(range(ig.n_edges))
                left = [(u, v, r) for (u, v), r in zip(ig.edges.tolist(), rank)]
                key = ow._sum_key if by_sum else ow._one_wis_key
                grouped = [ig.edge_label(u, v) for u, v in ow._grouped(list(deg), left, k, key)]
                assert grouped == ref(graph, k)


# ------------------------------------------------------------------ finding 4: late refusals judged up front
@pytest.mark.parametrize(
    "args",
    [["mps", "--sites", "1000", "--bond", "2"], ["peps", "--shape", "30", "30", "--bond", "4"]],
    ids=["mps-1000", "peps-30x30"],
)
def test_bounds_refuses_huge_reports_before_work(args):
    res = run_tnml("bounds", *args, timeout=120)
    err = one_line_error(res)
    assert "max_report_work" in err


def test_report_work_guard_in_the_api(monkeypatch):
    from tnml.entanglement import entanglement_report
    from tnml.networks import MPS

    m = MPS(8, 2, 2)
    assert len(entanglement_report(m)) == 13
    monkeypatch.setattr(tnml.settings, "max_report_work", 13 * 8 - 1)
    with pytest.raises(tnml.settings.MemoryLimitError, match="max_report_work"):
        entanglement_report(m)


# ------------------------------------------------------------------ finding 7: one line, never a traceback
@pytest.mark.parametrize(
    "args, text",
    [
        (["run", "dmf-norms", "--quick", "--seed", "100000000000000000000000"], "--seed"),
        (["run", "dmf-norms", "--quick", "--seed", "1e23"], "--seed"),
        (["run", "dmf-norms", "--quick", "--seed", "-1"], "--seed"),
        (["run", "dmf-norms", "--quick", "--threads", "100000"], "--threads"),
        (["run", "dmf-norms", "--quick", "--device", "meta"], "--device"),
        (["run", "dmf-norms", "--quick", "--device", "nonsense"], "--device"),
        (["rearrange", "DATA", "--method", "random", "--seed", "-1", "--label", "target", "--out", "o.csv",
          "--permutation", "p.json"], "--seed"),
        (["sparsify", "EDGES", "--remove", "0.5", "--seed", "-5", "--out", "o.txt"], "--seed"),
        (["bounds", "mps", "--sites", "4", "--bond", "2", "--seed", "99999999999999999999"], "--seed"),
    ],
    ids=["seed-huge", "seed-float", "seed-negative", "threads-huge", "device-meta", "device-bad",
         "rearrange-seed-negative", "sparsify-seed-negative", "bounds-seed-huge"],
)
def test_cli_refuses_bad_options_with_one_line(tmp_path, args, text):
    data = _csv(tmp_path / "d.csv")
    edges = _edges(tmp_path / "g.txt")
    args = [str(data) if a == "DATA" else str(edges) if a == "EDGES" else a for a in args]
    err = one_line_error(run_tnml(*args, cwd=tmp_path))
    assert text in err
    assert str(data) not in err  # the data file is not blamed for a bad option
    assert not (tmp_path / "runs").exists()


def test_run_out_name_is_a_file_is_one_line(tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    (out / "dmf-norms").write_text("a file where the experiment folder belongs")
    err = one_line_error(run_tnml("run", "dmf-norms", "--quick", "--out", out, timeout=120))
    assert "dmf-norms" in err


@pytest.fixture
def toy_experiment():
    from tnml.experiments import EXPERIMENTS
    from tnml.experiments.registry import Comparison, ExperimentResult, register_experiment

    @register_experiment("toy-round3", "a toy")
    def run(cfg):
        return ExperimentResult({"value": 1.5}, [Comparison("value", 1.5, 2.0, "toy")], [])

    yield "toy-round3"
    del EXPERIMENTS["toy-round3"]


def test_disk_full_while_writing_metrics_is_one_line(tmp_path, monkeypatch, capsys, toy_experiment):
    import tnml.io

    real = os.replace

    def full(src, dst, *a, **k):
        if str(dst).endswith("metrics.json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(tnml.io.os, "replace", full)
    rc = main(["run", toy_experiment, "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "No space left on device" in err[0] and "--resume" in err[0]
    assert not list((tmp_path / "runs").rglob("metrics.json"))  # no partial file either
    assert not [p for p in (tmp_path / "runs").rglob(".metrics.json*")]


_SLOW_SCRIPT = """
import sys, time
from tnml.experiments.registry import register_experiment
from tnml.cli import main

@register_experiment("toy-slow", "a toy that waits")
def slow(cfg):
    print("started", flush=True)
    time.sleep(60)

sys.exit(main(["run", "toy-slow", "--out", sys.argv[1]]))
"""


@POSIX
@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143,
                                                                                   "terminated")])
def test_sigint_and_sigterm_end_with_one_line_and_release_the_lock(tmp_path, sig, code, word):
    from tnml.io import LOCK_NAME

    script = tmp_path / "slow.py"
    script.write_text(_SLOW_SCRIPT)
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert proc.stdout.readline().strip() == "started"
        assert (out / "toy-slow" / LOCK_NAME).exists()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and "--resume" in lines[0] and "Traceback" not in err
    assert not (out / "toy-slow" / LOCK_NAME).exists()
