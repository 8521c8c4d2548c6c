"""`tnml bounds`: the table and JSON of min-cut bounds vs. ranks of a random instance, and one-line errors."""

import json

import pytest

import tnml.settings
from tnml.cli import main


def _json(capsys, argv):
    assert main(["bounds", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "argv",
    [
        ["mps", "--sites", "8", "--bond", "3"],
        ["ttn", "--sites", "8", "--bond", "2", "--partitions", "interleaved"],
        ["ttn", "--shape", "4", "4", "--bond", "3"],
        ["cp", "--sites", "6", "--bond", "3", "--phys-dim", "3"],
        ["peps", "--shape", "2", "3", "--bond", "2"],
        ["ring", "--sites", "6", "--bond", "2", "--partitions", "contiguous"],
    ],
)
def test_bound_holds_on_every_row(capsys, argv):
    out = _json(capsys, argv)
    assert out["arch"] == argv[0] and out["rows"]
    for row in out["rows"]:
        assert 1 <= row["rank"] <= row["bound_rank"]
        assert row["entropy"] <= row["bound_log"] + 1e-9
        assert row["reached"] == (row["rank"] == row["bound_rank"])


def test_mps_rows_reach_the_bound(capsys):
    out = _json(capsys, ["mps", "--sites", "10", "--bond", "4", "--seed", "3"])
    assert out["n_sites"] == 10 and out["bond"] == 4 and out["seed"] == 3
    assert len(out["rows"]) == 2 * 10 - 3
    assert all(r["reached"] for r in out["rows"])
    for r in out["rows"]:  # contiguous blocks: the cheaper of the block's legs and its one or two bonds
        lo, hi, k = r["sites"][0], r["sites"][-1], len(r["sites"])
        assert r["bound_rank"] == min(2**k, 4 ** ((lo > 0) + (hi < 9)), 2 ** (10 - k))


def test_contiguous_mps_bounds(capsys):
    out = _json(capsys, ["mps", "--sites", "6", "--bond", "3", "--partitions", "contiguous"])
    assert [r["sites"] for r in out["rows"]] == [list(range(k)) for k in range(1, 6)]
    assert [r["bound_rank"] for r in out["rows"]] == [2, 3, 3, 3, 2]
    assert all(r["reached"] for r in out["rows"])


def test_seeded(capsys):
    a = _json(capsys, ["ring", "--sites", "5", "--bond", "2", "--seed", "7"])
    b = _json(capsys, ["ring", "--sites", "5", "--bond", "2", "--seed", "7"])
    assert a == b


def test_table(capsys):
    assert main(["bounds", "ttn", "--sites", "4", "--bond", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ttn: 4 sites, bond 2")
    assert "| partition | level | size | bound rank | bound ln | rank | entropy | reached |" in out
    assert out.count("\n| ") == 1 + 5  # header + 2N-3 rows


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mlp", "--sites", "4", "--bond", "2"], "unknown architecture 'mlp'"),
        (["mps", "--sites", "0", "--bond", "2"], "--sites must be a positive integer, got 0"),
        (["mps", "--sites", "-3", "--bond", "2"], "--sites must be a positive integer"),
        (["mps", "--sites", "4", "--bond", "0"], "--bond must be a positive integer, got 0"),
        (["mps", "--sites", "4", "--bond", "2", "--phys-dim", "0"], "--phys-dim must be a positive integer"),
        (["mps", "--bond", "2"], "--sites N is required"),
        (["mps", "--sites", "1", "--bond", "2"], "nothing to split"),
        (["peps", "--sites", "9", "--bond", "2"], "peps needs the grid: pass --shape H W"),
        (["peps", "--shape", "3", "3", "--sites", "8", "--bond", "2"], "holds 9 sites but --sites is 8"),
        (["peps", "--shape", "0", "3", "--bond", "2"], "--shape must be two positive integers"),
        (["mps", "--sites", "4", "--bond", "2", "--partitions", "tree"], "--partitions 'tree' is unknown"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, message):
    assert main(["bounds", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("tnml: error: ") and captured.err.count("\n") == 1
    assert message in captured.err


def test_too_large_loopy_network(capsys, monkeypatch):
    # 64 KiB: enough for the model's init (reference inputs, a few KiB), far too little for the Gram route (8 MiB)
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 2**16)
    assert main(["bounds", "peps", "--shape", "4", "4", "--bond", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too large" in err and "try fewer --sites" in err and "smaller --bond" in err
