"""Output safety (issue 17, rows 1-3): one run per experiment folder (a second exits 2 with one line), temp files
unique per process and cleanup that spares other processes' files, no symlink followed inside a run folder, and no
command overwriting its input or a foreign file without --force (real symbolic and hard links)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tnml.checkpoint import Checkpointer, _owner_tag
from tnml.cli import main
from tnml.io import FolderLock, FolderLockedError, OutputPathError, check_output_file

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "_concurrent_run_script.py"


def _launch(out: Path, step_s: float = 0.3) -> subprocess.Popen:
    env = {**os.environ, "TNML_TEST_STEP_S": str(step_s), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "run", "tiny-sleep", "--quick", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )


def test_two_concurrent_runs_into_one_folder_one_completes_one_refused(tmp_path):
    out = tmp_path / "runs"
    procs = [_launch(out), _launch(out)]
    done = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in done)
    assert codes == [0, 2], done
    _, _, err = next(d for d in done if d[0] == 2)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "in use by another tnml run" in lines[0] and "pid" in lines[0] and "another --out" in lines[0]
    metrics = json.loads((out / "tiny-sleep" / "metrics.json").read_text())
    assert metrics["metrics"]["total"] == 6.0  # the winner's results are intact
    assert not (out / "tiny-sleep" / "checkpoints").exists()
    assert "tiny-sleep" in (out / "summary.md").read_text()


def test_lock_is_refused_while_held_and_free_after_release(tmp_path):
    with FolderLock(tmp_path / "x"):
        # a second open file description of the same lock file: what another process gets
        with pytest.raises(FolderLockedError, match=rf"pid {os.getpid()} .*wait for it to finish"):
            FolderLock(tmp_path / "x").acquire()
    with FolderLock(tmp_path / "x"):  # released: free again
        pass


def test_lock_held_by_a_killed_process_is_released(tmp_path):
    """flock dies with its holder: a SIGKILLed run never blocks the next one."""
    code = f"from tnml.io import FolderLock; FolderLock({str(tmp_path / 'x')!r}).acquire(); print('held', flush=True)"
    code += "; import time; time.sleep(60)"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline().strip() == "held"
    with pytest.raises(FolderLockedError, match=rf"pid {p.pid}"):
        FolderLock(tmp_path / "x").acquire()
    p.kill()
    p.wait()
    with FolderLock(tmp_path / "x"):
        pass


def test_checkpoint_cleanup_spares_a_live_process_temp_file_and_drops_orphans(tmp_path):
    ck = Checkpointer(tmp_path / "c" / "run.pt")
    ck.save({"a": torch.ones(1)})
    host = _owner_tag().rpartition("-")[0]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        live_tmp = tmp_path / "c" / f".run.pt.{host}-{sleeper.pid}.abc123.tmp"
        dead_tmp = tmp_path / "c" / f".run.pt.{host}-{dead.pid}.def456.tmp"
        other_host = tmp_path / "c" / f".run.pt.otherhost-{dead.pid}.ghi789.tmp"
        for f in (live_tmp, dead_tmp, other_host):
            f.write_bytes(b"partial")
        ck.save({"a": torch.zeros(1)})
        assert live_tmp.exists() and other_host.exists()  # another process's save in progress: untouched
        assert not dead_tmp.exists()  # its writer is gone: an orphan of a SIGKILLed save
        assert ck.load()["a"].item() == 0.0
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("link", ["name", "checkpoints"])
def test_symlink_inside_the_run_folder_is_refused_and_its_target_untouched(tmp_path, capsys, link):
    from tnml.experiments import EXPERIMENTS
    from tnml.experiments.runner import run_experiments

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "seed0.pt").write_bytes(b"user data")
    out = tmp_path / "runs"
    name = sorted(EXPERIMENTS)[0]
    if link == "name":
        out.mkdir()
        path = out / name
    else:
        (out / name).mkdir(parents=True)
        path = out / name / "checkpoints"
    path.symlink_to(victim, target_is_directory=True)
    with pytest.raises(OutputPathError, match="symbolic link"):
        run_experiments([name], out, quick=True, seed=0)
    assert main(["run", name, "--quick", "--out", str(out)]) == 2  # the CLI: exit 2, one line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "symbolic link" in err[0] and "remove the link" in err[0]
    assert path.is_symlink()
    assert sorted(os.listdir(victim)) == ["seed0.pt"] and (victim / "seed0.pt").read_bytes() == b"user data"


def test_check_output_file_same_inode_via_hard_and_symbolic_links(tmp_path):
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    hard = tmp_path / "hard.csv"
    os.link(src, hard)
    soft = tmp_path / "soft.csv"
    soft.symlink_to(src)
    for out in (src, hard, soft):
        with pytest.raises(OutputPathError, match="is the input DATA"):
            check_output_file(out, inputs={"DATA": src}, force=True)  # --force never allows destroying the input
    other = tmp_path / "other.csv"
    other.write_text("x")
    with pytest.raises(OutputPathError, match="not written by tnml.*--force"):
        check_output_file(other, inputs={"DATA": src})
    check_output_file(other, inputs={"DATA": src}, force=True)
    check_output_file(tmp_path / "new.csv", inputs={"DATA": src})  # a new file is fine


def _edges(path: Path) -> None:
    path.write_text("0 1\n1 2\n2 3\n3 0\n0 2\n")


@pytest.mark.parametrize("via", ["same", "hard", "soft"])
def test_sparsify_refuses_to_overwrite_its_input(tmp_path, capsys, via):
    src = tmp_path / "e.txt"
    _edges(src)
    before = src.read_bytes()
    out = src
    if via == "hard":
        out = tmp_path / "h.txt"
        os.link(src, out)
    elif via == "soft":
        out = tmp_path / "s.txt"
        out.symlink_to(src)
    assert main(["sparsify", str(src), "--remove", "0.4", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the input EDGES" in err[0]
    assert src.read_bytes() == before


def test_sparsify_replaces_its_own_output_but_not_a_foreign_file(tmp_path, capsys):
    src = tmp_path / "e.txt"
    _edges(src)
    out = tmp_path / "kept.txt"
    assert main(["sparsify", str(src), "--remove", "0.4", "--out", str(out)]) == 0
    assert main(["sparsify", str(src), "--remove", "0.2", "--out", str(out)]) == 0  # tnml's own file: replaced
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes\n")
    capsys.readouterr()
    assert main(["sparsify", str(src), "--remove", "0.4", "--out", str(foreign)]) == 2
    assert "--force" in capsys.readouterr().err and foreign.read_text() == "my notes\n"
    assert main(["sparsify", str(src), "--remove", "0.4", "--out", str(foreign), "--force"]) == 0
    assert foreign.read_text().startswith("# tnml sparsify")


def _csv(path: Path, n=30, seed=0) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[:, 2] = X[:, 0] + 0.1 * rng.normal(size=n)
    rows = ["f0,f1,f2,f3,label"] + [",".join(f"{v:.6f}" for v in x) + f",{int(x[0] > 0)}" for x in X]
    path.write_text("\n".join(rows) + "\n")


def test_rearrange_refuses_to_overwrite_data_or_a_foreign_permutation_file(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _csv(data)
    before = data.read_bytes()
    perm = tmp_path / "perm.json"
    assert main(["rearrange", str(data), "--label", "label", "--out", str(data), "--permutation", str(perm)]) == 2
    assert "is the input DATA" in capsys.readouterr().err and data.read_bytes() == before and not perm.exists()
    link = tmp_path / "link.csv"
    os.link(data, link)
    assert main(["rearrange", str(data), "--label", "label", "--out", str(link), "--permutation", str(perm)]) == 2
    assert data.read_bytes() == before
    foreign = tmp_path / "mine.json"
    foreign.write_text('{"my": "settings"}\n')
    out = tmp_path / "o.csv"
    capsys.readouterr()
    assert main(["rearrange", str(data), "--label", "label", "--out", str(out), "--permutation", str(foreign)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--permutation" in err[0] and "--force" in err[0]
    assert foreign.read_text() == '{"my": "settings"}\n' and not out.exists()
    # a fresh fit, then a refit over tnml's own PERM.json: fine; over the CSV it wrote: needs --force
    assert main(["rearrange", str(data), "--label", "label", "--out", str(out), "--permutation", str(perm)]) == 0
    assert main(["rearrange", str(data), "--label", "label", "--out", str(out), "--permutation", str(perm),
                 "--force"]) == 0
    # apply mode: --out may not be the new data file
    assert main(["rearrange", str(data), "--apply", str(perm), "--out", str(data)]) == 2
    assert data.read_bytes() == before
    time.sleep(0)  # keep the file times apart on coarse filesystems
