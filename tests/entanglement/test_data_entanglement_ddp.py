"""The sketch route over two gloo processes (each streams its block of rows, one all-reduce per partition) equals
the single-process sketch with the same seed, through the Python API and through ``tnml suitability``."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from tnml.distributed import launch_local, setup
from tnml.entanglement.data_entanglement import data_entanglement

M, N, K = 90, 16, 24
ARGS = ["--label", "label", "--width", "2", "--gain", "none", "--method", "sketch", "--sketch-size", str(K),
        "--batch-size", "16", "--json"]


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(M, N))
    x[:, 1::2] = x[:, ::2] + 0.3 * rng.normal(size=(M, N // 2))  # some structure: neighbours correlate
    return x, rng.integers(0, 3, size=M)


def _write_csv(path: str) -> None:
    x, y = _data()
    rows = [",".join([f"f{j}" for j in range(N)] + ["label"])]
    rows += [",".join([repr(float(v)) for v in r] + [str(c)]) for r, c in zip(x, y)]
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


def _api(x, y):
    return data_entanglement(x, y, theta=0.5, method="sketch", sketch_size=K, batch_size=16, random_state=3)


def _worker(rank: int, world: int, out: str) -> None:
    setup("gloo")
    x, y = _data()
    res = _api(x, y)
    np.save(f"{out}.api.{rank}.npy", np.concatenate([res.qe, res.residual]))
    from tnml.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["suitability", f"{out}.csv", *ARGS])
    with open(f"{out}.cli.{rank}.txt", "w") as f:
        f.write(f"{code}\n{buf.getvalue()}")


def test_two_ranks_equal_one_process(tmp_path):
    out = str(tmp_path / "de")
    _write_csv(f"{out}.csv")
    launch_local(_worker, 2, out, timeout_s=300)
    x, y = _data()
    ref = _api(x, y)
    for rank in (0, 1):
        got = np.load(f"{out}.api.{rank}.npy")
        np.testing.assert_allclose(got[:len(ref.qe)], ref.qe, atol=1e-10, rtol=0)
        np.testing.assert_allclose(got[len(ref.qe):], ref.residual, atol=1e-12, rtol=0)
    assert ref.residual.max() > 1e-3  # k < M: a real sketch, not the exact route
    from tnml.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["suitability", f"{out}.csv", *ARGS]) == 0
    single = json.loads(buf.getvalue())
    code0, text0 = open(f"{out}.cli.0.txt").read().split("\n", 1)
    code1, text1 = open(f"{out}.cli.1.txt").read().split("\n", 1)
    assert code0 == code1 == "0" and text1 == ""  # rank 0 prints the report, rank 1 nothing
    multi = json.loads(text0)
    assert multi["summary"]["qe_method"] == single["summary"]["qe_method"] == "sketch"
    np.testing.assert_allclose([r["qe"] for r in multi["records"]], [r["qe"] for r in single["records"]],
                               atol=1e-10, rtol=0)
