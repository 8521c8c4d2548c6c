"""CSV loader (tnml.datasets.tabular_io) and the `tnml suitability` / `tnml rearrange` commands: strict
validation, one-line errors with exit code 2, no partial output files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tnml.cli import main
from tnml.datasets.tabular_io import load_csv, read_csv_table, write_csv


# ------------------------------------------------------------------------------------------ loader
def test_load_csv(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("\ufeffa, label ,b\n1.5,x,2\n\n3,y,-4e0\n", encoding="utf-8")
    X, y, names = load_csv(p, label="label")
    assert X.dtype == np.float64 and X.tolist() == [[1.5, 2.0], [3.0, -4.0]]
    assert y.tolist() == ["x", "y"] and names == ["a", "b"]
    assert read_csv_table(p).lines == [2, 4]
    with pytest.raises(ValueError, match=r"d.csv:2: column 'label' holds the non-numeric value 'x'"):
        load_csv(p)  # no label: every column is a feature


def test_load_csv_numeric_labels(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,0\n3,5,1\n", encoding="utf-8")
    assert load_csv(p, label="y")[1].dtype.kind == "i"


@pytest.mark.parametrize(
    "content, label, match",
    [
        ("", "y", "the file is empty"),
        ("  \n\n", "y", "the file is empty"),
        ("a,b,y\n", "y", "no data rows"),
        ("a,b,y\n1,2,0\n3,4\n", "y", r"d.csv:3: expected 3 cells as in the header, got 2 \(ragged row\)"),
        ("a,b,y\n1,2,0\n3,4,1,5\n", "y", r"d.csv:3: expected 3 cells"),
        ("a,b,y\n1,2,0\n3,abc,1\n", "y", r"d.csv:3: column 'b' holds the non-numeric value 'abc'"),
        ("a,b,y\n1,,0\n3,4,1\n", "y", r"d.csv:2: missing value in column 'b'"),
        ("a,b,y\n1,NA,0\n3,4,1\n", "y", r"d.csv:2: missing value in column 'b' \('NA'\)"),
        ("a,b,y\n1,inf,0\n3,4,1\n", "y", r"d.csv:2: column 'b' holds 'inf'; features must be finite"),
        ("a,b,y\n1,2,\n3,4,1\n", "y", r"d.csv:2: missing label in column 'y'"),
        ("a,b,y\n1,2,0\n3,4,1\n", "class", r"no column 'class'; the header has 'a', 'b', 'y'"),
        ("a,b,y\n1,2,0\n1,4,1\n", "y", r"1 constant feature column\(s\) \('a'\)"),
        ("a,a,y\n1,2,0\n3,4,1\n", "y", r"column name 'a' appears twice"),
        ("a,,y\n1,2,0\n3,4,1\n", "y", r"column 2 of the header has no name"),
        ("a,b,y\n1,2,0\n", "y", r"1 data row\(s\); need at least 2"),
        ("y\n0\n1\n", "y", r"no feature columns"),
    ],
)
def test_load_csv_errors(tmp_path, content, label, match):
    p = tmp_path / "d.csv"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        load_csv(p, label=label)


def test_load_csv_missing_file_and_encoding(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_csv(tmp_path / "nope.csv", label="y")
    with pytest.raises(ValueError, match="is a folder"):
        load_csv(tmp_path, label="y")
    p = tmp_path / "d.csv"
    p.write_bytes("a,b,y\n1,2,0\n3,\xe9,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8 text \(byte 14\)"):
        load_csv(p, label="y")


def test_load_csv_constant_modes(tmp_path, planted_csv):
    p = planted_csv(tmp_path / "d.csv", m=10, constant=True)
    X, _, names = load_csv(p, label="target", constant="drop")
    assert "flat" not in names and X.shape == (10, 8)
    X, _, names = load_csv(p, label="target", constant="keep")
    assert names[-1] == "flat" and X.shape == (10, 9)
    with pytest.raises(ValueError, match=r"^constant='ignore' is unknown; choose one of \['error', 'drop', 'keep'\]"):
        load_csv(p, label="target", constant="ignore")


def test_write_csv_round_trip(tmp_path):
    p = write_csv(tmp_path / "o.csv", ["a", "b,c"], [[1, "x"], [2.5, "y"]])
    t = read_csv_table(p)
    assert t.header == ["a", "b,c"] and t.rows == [["1", "x"], ["2.5", "y"]]


# ------------------------------------------------------------------------------------------ suitability
def test_suitability_cli_markdown(tmp_path, capsys, planted_csv):
    data = planted_csv(tmp_path / "d.csv")
    assert main(["suitability", str(data), "--label", "target", "--width", "4", "--theta", "0.3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("**Verdict: exceeds capacity at 1 partition**")
    assert "After feature rearrangement: **within capacity**" in out


def test_suitability_cli_json(tmp_path, capsys, planted_csv):
    data = planted_csv(tmp_path / "d.csv")
    assert main(["suitability", str(data), "--label", "target", "--width", "16", "--json", "--gain",
                 "surrogate"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["summary"]["verdict"] == "within capacity" and payload["summary"]["gain_kind"] == "surrogate"
    assert payload["summary"]["features"] == [f"f{j}" for j in range(8)]
    assert len(payload["records"]) == 13


def test_suitability_cli_two_d(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8))
    y = (X[:, 0] > 0).astype(int)
    p = tmp_path / "g.csv"
    write_csv(p, [*(f"p{j}" for j in range(8)), "y"], [[*map(str, r), str(t)] for r, t in zip(X, y)])
    assert main(["suitability", str(p), "--label", "y", "--width", "4", "--shape", "2", "4", "--json",
                 "--gain", "none"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["dims"] == 2 and s["shape"] == [2, 4]


def test_option_choices_are_the_literal_aliases():
    import argparse

    from tnml.commands import design_cmd, suitability_cmd
    from tnml.options import QEMethod, SuitabilityGain, TreeMethod, choices

    def opts(module):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        return {a.dest: tuple(a.choices) for a in parser._actions if a.choices is not None}

    assert opts(suitability_cmd) == {"method": choices(QEMethod), "gain": (*choices(SuitabilityGain), "none")}
    assert opts(design_cmd)["method"] == choices(TreeMethod)


def test_suitability_cli_states_the_sketch_route_and_its_error_estimate(tmp_path, capsys, planted_csv):
    data = planted_csv(tmp_path / "d.csv")
    args = ["suitability", str(data), "--label", "target", "--width", "4", "--gain", "none", "--method", "sketch",
            "--sketch-size", "16"]
    assert main([*args, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["qe_method"] == "sketch" and s["qe_sketch_size"] == 16 and s["qe_error_estimate_max"] > 0
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "QE route: streaming Nyström sketch" in out and "with 16 landmarks" in out
    assert f"error estimate up to {s['qe_error_estimate_max']:.3g} nats per partition" in out


@pytest.mark.parametrize(
    "extra, content, match",
    [
        (["--width", "0"], None, "--width must be a positive integer"),
        (["--width", "4", "--dims", "3"], None, "--dims must be 1"),
        (["--width", "4", "--dims", "2"], None, "not a square"),
        (["--width", "4", "--shape", "3", "3"], None, "--shape 3 3 holds 9 features"),
        (["--width", "4", "--dims", "1", "--shape", "2", "4"], None, "describes a grid"),
        (["--width", "4", "--theta", "0"], None, "--theta must be"),
        (["--width", "4"], "f0,f1,target\n1,2,0\n3,4,0\n", "single value"),
        (["--width", "4"], "f0,f1,target\n1,2,0\n3,x,1\n", "non-numeric value 'x'"),
        (["--width", "4"], "f0,f1,label\n1,2,0\n3,4,1\n", "no column 'target'"),
        (["--width", "4"], "f0,f1,f2,target\n1,2,7,0\n3,4,7,1\n", "constant feature"),
    ],
)
def test_suitability_cli_errors(tmp_path, capsys, extra, content, match, planted_csv, one_line_error):
    data = tmp_path / "d.csv"
    if content is None:
        planted_csv(data, m=20)
    else:
        data.write_text(content, encoding="utf-8")
    err = one_line_error(main(["suitability", str(data), "--label", "target", *extra]))
    assert match in err


def test_suitability_cli_missing_file(tmp_path, capsys, one_line_error):
    err = one_line_error(main(["suitability", str(tmp_path / "no.csv"), "--label", "y", "--width", "2"]))
    assert "no such file" in err


# ------------------------------------------------------------------------------------------ rearrange
def fit(tmp_path, data, *extra):
    out, perm = tmp_path / "out.csv", tmp_path / "perm.json"
    code = main(["rearrange", str(data), "--label", "target", "--out", str(out), "--permutation", str(perm),
                 *extra])
    return code, out, perm


def test_rearrange_fit(tmp_path, capsys, planted_csv):
    data = planted_csv(tmp_path / "d.csv", label_at=2)
    code, out, perm = fit(tmp_path, data)
    assert code == 0 and "wrote" in capsys.readouterr().out
    p = json.loads(perm.read_text())
    assert p["format"] == "tnml-rearrangement" and p["label"] == "target" and p["dropped"] == []
    assert sorted(p["permutation"]) == list(range(8)) and p["objective_after"] < p["objective_before"]
    order = p["order"]
    assert {frozenset(order[i:i + 2]) for i in range(0, 8, 2)} == {frozenset((f"f{j}", f"f{j + 4}"))
                                                                  for j in range(4)}
    src, dst = read_csv_table(data), read_csv_table(out)
    assert dst.header[2] == "target" and dst.header[:2] + dst.header[3:] == order  # label kept in place
    for name in dst.header:  # cells copied verbatim, per column
        assert [r[dst.header.index(name)] for r in dst.rows] == [r[src.header.index(name)] for r in src.rows]


def test_rearrange_apply_matches_fit(tmp_path, capsys, planted_csv):
    data = planted_csv(tmp_path / "d.csv")
    code, out, perm = fit(tmp_path, data)
    assert code == 0
    again = tmp_path / "again.csv"
    assert main(["rearrange", str(data), "--apply", str(perm), "--out", str(again)]) == 0
    assert again.read_text() == out.read_text()


def test_rearrange_apply_new_data(tmp_path, capsys, planted_csv):
    data = planted_csv(tmp_path / "d.csv", constant=True)
    code, out, perm = fit(tmp_path, data, "--drop-constant")
    assert code == 0 and json.loads(perm.read_text())["dropped"] == ["flat"]
    order = json.loads(perm.read_text())["order"]
    # new data: unlabeled, columns in another order, the dropped column still there
    new = tmp_path / "new.csv"
    names = ["flat", *reversed([f"f{j}" for j in range(8)])]
    write_csv(new, names, [["1", *(str(10 * k + j) for j in reversed(range(8)))] for k in range(3)])
    res = tmp_path / "res.csv"
    assert main(["rearrange", str(new), "--apply", str(perm), "--out", str(res)]) == 0
    t = read_csv_table(res)
    assert t.header == order
    assert t.rows[1] == [str(10 + int(n[1:])) for n in order]


def test_rearrange_two_d(tmp_path, capsys, planted_csv):
    data = planted_csv(tmp_path / "d.csv")
    code, out, perm = fit(tmp_path, data, "--dims", "2", "--shape", "2", "4", "--method", "random", "--seed", "3")
    p = json.loads(perm.read_text())
    assert code == 0 and p["dims"] == 2 and p["shape"] == [2, 4] and p["method"] == "random"


@pytest.mark.parametrize(
    "content, extra, match",
    [
        ("f0,f1,target\n1,,0\n3,4,1\n", [], "missing value in column 'f1'"),
        ("f0,f1,target\n1,a,0\n3,4,1\n", [], "non-numeric value 'a'"),
        ("f0,f1,label\n1,2,0\n3,4,1\n", [], "no column 'target'"),
        ("f0,f1,f2,target\n1,2,5,0\n3,4,5,1\n", [], "constant feature column(s) ('f2')"),
        ("f0,f1,target\n1,2,0\n3,4\n", [], "ragged row"),
        ("", [], "the file is empty"),
        (None, ["--dims", "2"], "not a square"),
        (None, ["--shape", "3", "3"], "--shape 3 3 holds 9 features"),
    ],
)
def test_rearrange_fit_errors(tmp_path, capsys, content, extra, match, planted_csv, one_line_error):
    data = tmp_path / "d.csv"
    if content is None:
        planted_csv(data, m=20)
    else:
        data.write_text(content, encoding="utf-8")
    code, out, perm = fit(tmp_path, data, *extra)
    assert match in one_line_error(code)
    assert not out.exists() and not perm.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["d.csv"]  # no temporary leftovers


def test_rearrange_option_errors(tmp_path, capsys, planted_csv, one_line_error):
    data = planted_csv(tmp_path / "d.csv", m=20)
    out = tmp_path / "o.csv"
    err = one_line_error(main(["rearrange", str(data), "--out", str(out), "--permutation", "p.json"]))
    assert "--label COLUMN is required" in err
    err = one_line_error(main(["rearrange", str(data), "--label", "target", "--out", str(out)]))
    assert "--permutation PERM.json is required" in err
    err = one_line_error(main(["rearrange", str(data), "--label", "target", "--out", str(out),
                               "--permutation", str(out)]))
    assert "name the same file" in err
    err = one_line_error(main(["rearrange", str(data), "--label", "target", "--out", str(tmp_path),
                               "--permutation", str(tmp_path / "p.json")]))
    assert "is a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_unwritable_output_leaves_nothing(tmp_path, capsys, planted_csv, one_line_error):
    data = planted_csv(tmp_path / "d.csv", m=20)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    perm = tmp_path / "p.json"
    code = main(["rearrange", str(data), "--label", "target", "--out", str(blocker / "o.csv"),
                 "--permutation", str(perm)])
    assert "cannot write the outputs" in one_line_error(code)
    assert not perm.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "d.csv"]


@pytest.fixture()
def fitted(tmp_path, planted_csv):
    data = planted_csv(tmp_path / "d.csv", m=20)
    code, out, perm = fit(tmp_path, data)
    assert code == 0
    out.unlink()
    return tmp_path, perm


@pytest.mark.parametrize(
    "content, perm_text, extra, match",
    [
        ("f0,f1,target\n1,2,0\n", None, [], "feature column(s) 'f2', 'f3'"),
        ("f0,f1,f2,f3,f4,f5,f6,f7,zz\n" + "1,2,3,4,5,6,7,8,9\n", None, [], "column(s) 'zz' are not features"),
        ("f0,f1,f2,f3,f4,f5,f6,f7\n" + "1,2,3,4,5,,7,8\n", None, [], "missing value in column 'f5'"),
        ("f0,f1,f2,f3,f4,f5,f6,f7\n" + "1,2,3,4,5,six,7,8\n", None, [], "non-numeric value 'six'"),
        ("f0,f1,f2,f3,f4,f5,f6,f7\n" + "1,2,3,4,5,6,7,8\n", "{not json", [], "not a JSON file"),
        ("f0,f1,f2,f3,f4,f5,f6,f7\n" + "1,2,3,4,5,6,7,8\n", '{"a": 1}', [], "not a permutation written by"),
        ("f0,f1,f2,f3,f4,f5,f6,f7\n" + "1,2,3,4,5,6,7,8\n",
         '{"format": "tnml-rearrangement", "features": ["f0", "f1"], "permutation": [0, 0]}', [],
         "must be a permutation of 0..1"),
        ("f0,f1,f2,f3,f4,f5,f6,f7\n" + "1,2,3,4,5,6,7,8\n", None, ["--label", "other"], "disagrees with"),
        ("f0,f1,f2,f3,f4,f5,f6,f7\n" + "1,2,3,4,5,6,7,8\n", None, ["--dims", "2"], "--dims is for fitting"),
        ("f0,f1,f2,f3,f4,f5,f6,f7\n" + "1,2,3,4,5,6,7,8\n", None, ["--drop-constant"], "is for fitting"),
    ],
)
def test_rearrange_apply_errors(fitted, capsys, content, perm_text, extra, match, one_line_error):
    tmp_path, perm = fitted
    if perm_text is not None:
        perm.write_text(perm_text)
    new = tmp_path / "new.csv"
    new.write_text(content, encoding="utf-8")
    res = tmp_path / "res.csv"
    err = one_line_error(main(["rearrange", str(new), "--apply", str(perm), "--out", str(res), *extra]))
    assert match in err
    assert not res.exists()


def test_rearrange_apply_missing_perm(tmp_path, capsys, planted_csv, one_line_error):
    data = planted_csv(tmp_path / "d.csv", m=20)
    res = tmp_path / "res.csv"
    err = one_line_error(main(["rearrange", str(data), "--apply", str(tmp_path / "p.json"), "--out", str(res)]))
    assert "no such file" in err and not res.exists()


@pytest.mark.parametrize(
    "argv, needs",
    [
        (["suitability", "{f}", "--label", "y", "--width", "2"], "a partition needs at least 2"),
        (["design", "{f}", "--label", "y", "--out", "{o}"], "a tree network needs at least 2"),
        (["rearrange", "{f}", "--label", "y", "--out", "{o}", "--permutation", "{p}"], "rearranging needs at least 2"),
    ],
)
def test_one_feature_column_is_refused_by_every_tabular_command(tmp_path, capsys, argv, needs, one_line_error):
    f = tmp_path / "one.csv"
    f.write_text("a,y\n" + "".join(f"{i % 7},{i % 2}\n" for i in range(20)))
    o, p = tmp_path / "out.csv", tmp_path / "perm.json"
    code = main([a.format(f=f, o=o, p=p) for a in argv])
    err = one_line_error(code)
    assert "1 feature column(s)" in err and needs in err
    assert not o.exists() and not p.exists()
