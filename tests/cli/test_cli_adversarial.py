"""Adversarial tests of `tnml rearrange`, `tnml sparsify`, `tnml list`, `tnml bounds` and the experiment tables:
bad option values end in one stderr line naming the option and write nothing; outputs equal the Python API;
writes are atomic under a failure in the middle; the tables' cell limits and verdict rule at their edges.

Known bugs are ``xfail(strict=True)``: they turn into failures once fixed, so the marker is removed then."""

from __future__ import annotations

import json
import os

import networkx as nx
import numpy as np
import pytest

from tnml.cli import main
from tnml.datasets.graph_io import load_edge_list
from tnml.datasets.tabular_io import load_csv, read_csv_table
from tnml.experiments import EXPERIMENTS
from tnml.experiments.registry import MAX_CELL, VERDICTS, Claim, Comparison, ExperimentResult, cell_problems
from tnml.experiments.tables import claims_table, comparison_table, load_run, readme_table, verdict_counts
from tnml.preprocessing import FeatureRearrangement, RandomRearrangement, walk_index_sparsification

from .conftest import write_planted_csv


def cli(argv: list[str]) -> int:
    """``tnml ARGV`` in-process; argparse's own refusals (SystemExit) give their exit code."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as e:
        return int(e.code)


def files(folder) -> set[str]:
    """Every entry under ``folder`` (temporary files included), relative."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def refused(code: int, capsys, *words: str) -> str:
    """Exit code 2, nothing on stdout, exactly one stderr line ``tnml: error: ...`` containing every word."""
    cap = capsys.readouterr()
    assert code == 2, (code, cap.err)
    assert cap.out == ""
    assert cap.err.startswith("tnml: error: ") and cap.err.count("\n") == 1, cap.err
    for w in words:
        assert w in cap.err, (w, cap.err)
    return cap.err


GRAPH = "# a comment\n\n0 1\n1 2  # trailing comment\n2 3\n3 0\n0 2\n3 4\n4 5\n5 3\n1 0\n2 2\n6 7\n2 3\n"
#: the distinct non-loop edges of GRAPH in file order (``1 0`` and the last ``2 3`` repeat, ``2 2`` is a loop)
GRAPH_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (3, 4), (4, 5), (5, 3), (6, 7)]


# ------------------------------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", ["list", "run", "sparsify", "bounds", "suitability", "rearrange", "design"])
def test_every_subcommand_has_help(command, capsys):
    assert cli([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tnml {command}")
    assert cli(["--help"]) == 0 and command in capsys.readouterr().out


def test_list_prints_every_registered_experiment_once(capsys):
    assert cli(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(EXPERIMENTS)
    for ln, name in zip(lines, sorted(EXPERIMENTS)):
        assert ln.endswith(EXPERIMENTS[name].description)
    refused(cli(["list", "--quick"]), capsys, "--quick")


# ------------------------------------------------------------------------------------------------- sparsify
@pytest.fixture
def graph(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text(GRAPH, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--remove", "nan"], ["--remove", "nan"]),
        (["--remove", "-0.1"], ["--remove", "-0.1"]),
        (["--remove", "1.0000001"], ["--remove"]),
        (["--remove", "inf"], ["--remove", "inf"]),
        (["--remove", "1e400"], ["--remove"]),
        (["--remove", "half"], ["--remove", "half"]),
        (["--remove", "0.5", "--depth", "1"], ["--depth", "1"]),
        (["--remove", "0.5", "--depth", "0"], ["--depth", "0"]),
        (["--remove", "0.5", "--depth", "-3"], ["--depth", "-3"]),
        (["--remove", "0.5", "--depth", "2.5"], ["--depth", "2.5"]),
        (["--remove", "0.5", "--seed", "-1"], ["--seed", "-1"]),
        (["--remove", "0.5", "--seed", str(2**32)], ["--seed", str(2**32)]),
        (["--remove", "0.5", "--seed", "1.5"], ["--seed", "1.5"]),
        (["--remove", "0.5", "--method", "WIS"], ["--method", "WIS"]),
        (["--remove", "0.5", "--tie-break", "random"], ["--tie-break", "random"]),
        (["--remove", "0.5", "--depth", "100000"], ["depth"]),  # walk counts overflow int64: refused, not wrapped
    ],
)
def test_sparsify_bad_options_one_line_nothing_written(graph, tmp_path, capsys, extra, words):
    before = files(tmp_path)
    refused(cli(["sparsify", graph, "--out", tmp_path / "o.txt", *extra]), capsys, *words)
    assert files(tmp_path) == before


def test_sparsify_missing_required_options(graph, tmp_path, capsys):
    refused(cli(["sparsify", graph, "--out", tmp_path / "o.txt"]), capsys, "--remove")
    refused(cli(["sparsify", graph, "--remove", "0.5"]), capsys, "--out")
    assert files(tmp_path) == {"g.txt"}


@pytest.mark.parametrize("method", ["wis", "1-wis", "random", "spectral", "degree"])
@pytest.mark.parametrize("fraction", [0.0, 0.34, 0.5, 0.99])
def test_sparsify_output_is_the_input_minus_exactly_the_removed_edges(graph, tmp_path, capsys, method, fraction):
    out = tmp_path / "o.txt"
    assert cli(["sparsify", graph, "--remove", fraction, "--method", method, "--out", out, "--seed", 3]) == 0
    n = len(GRAPH_EDGES)
    k = int(np.floor(fraction * n + 1e-9))
    text = out.read_text(encoding="utf-8")
    removed = [tuple(int(t) for t in ln.split()[2:]) for ln in text.splitlines() if ln.startswith("# removed ")]
    assert len(removed) == k
    assert f"{n} edges, removed {k}, kept {n - k}" in text
    canon = {frozenset(e) for e in GRAPH_EDGES}
    assert {frozenset(e) for e in removed} <= canon and len({frozenset(e) for e in removed}) == k
    if k < n:
        kept = [tuple(e) for e in load_edge_list(out).tolist()]
        # kept edges in input order, and (kept + removed) is the input graph exactly
        assert kept == [e for e in GRAPH_EDGES if frozenset(e) not in {frozenset(r) for r in removed}]
        g = nx.Graph(GRAPH_EDGES)
        g.remove_edges_from(removed)
        assert {frozenset(e) for e in kept} == {frozenset(e) for e in g.edges}
    err = capsys.readouterr().err
    assert "merged 1 reverse duplicate(s) and 1 exact duplicate(s), dropped 1 self-loop(s)" in err


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_sparsify_wis_equals_the_library_on_the_cleaned_edges(graph, tmp_path, capsys, depth):
    out = tmp_path / "o.txt"
    assert cli(["sparsify", graph, "--remove", "0.5", "--depth", depth, "--out", out]) == 0
    removed = [tuple(int(t) for t in ln.split()[2:]) for ln in out.read_text().splitlines() if "# removed" in ln]
    lib = walk_index_sparsification(GRAPH_EDGES, len(GRAPH_EDGES) // 2, depth, tie_break="vertex")
    assert [tuple(e) for e in lib] == removed


def test_sparsify_string_vertex_labels_refused_by_line(tmp_path, capsys):
    src = tmp_path / "s.txt"
    src.write_text("# names\nalice bob\nbob carol\n", encoding="utf-8")
    refused(cli(["sparsify", src, "--remove", "0.5", "--out", tmp_path / "o.txt"]), capsys, ":2:", "integers")
    assert files(tmp_path) == {"s.txt"}


def test_sparsify_unicode_and_spaces_in_paths(tmp_path, capsys):
    folder = tmp_path / "Graphen ünd Kanten"
    folder.mkdir()
    src = folder / "my graph ✓.txt"
    src.write_text(GRAPH, encoding="utf-8")
    out = folder / "kept edges é.txt"
    assert cli(["sparsify", src, "--remove", "0.5", "--out", out]) == 0
    assert "my graph ✓.txt" in out.read_text(encoding="utf-8").splitlines()[0]
    assert len(load_edge_list(out)) == len(GRAPH_EDGES) - len(GRAPH_EDGES) // 2


def test_sparsify_write_failure_keeps_the_previous_output_and_leaves_no_temp_file(tmp_path, capsys, monkeypatch):
    graph = tmp_path / "clean.txt"
    graph.write_text("0 1\n1 2\n2 3\n3 0\n0 2\n", encoding="utf-8")  # connected, no repeats: no note lines
    out = tmp_path / "o.txt"
    assert cli(["sparsify", graph, "--remove", "0.2", "--out", out]) == 0
    previous = out.read_bytes()
    before = files(tmp_path)
    capsys.readouterr()

    def broken_replace(src, dst):
        assert os.path.exists(src) and os.path.getsize(src) > 0  # the whole new file was written first
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tnml.io.os.replace", broken_replace)
    refused(cli(["sparsify", graph, "--remove", "0.5", "--out", out]), capsys, "--out", "No space left")
    assert out.read_bytes() == previous
    assert files(tmp_path) == before  # no .o.txt.* temporary file left behind


def test_sparsify_out_equal_to_input_refused(graph, tmp_path, capsys):
    before = graph.read_bytes()
    refused(cli(["sparsify", graph, "--remove", "0.5", "--out", graph, "--force"]), capsys, "--out", "input")
    assert graph.read_bytes() == before


def test_sparsify_write_failure_prints_one_line(graph, tmp_path, capsys, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tnml.io.os.replace", broken_replace)
    refused(cli(["sparsify", graph, "--remove", "0.5", "--out", tmp_path / "o.txt"]), capsys, "No space left")


def test_sparsify_remove_everything_output_is_documented_as_empty(graph, tmp_path, capsys):
    out = tmp_path / "o.txt"
    assert cli(["sparsify", graph, "--remove", "1", "--out", out]) == 0
    assert "removed 9, kept 0" in out.read_text()
    # documented: load_edge_list refuses the file with no edge line that --remove 1 writes
    with pytest.raises(ValueError, match="no edges found"):
        load_edge_list(out)


def test_sparsify_depth_overflow_hint_given_once(graph, tmp_path, capsys):
    err = refused(cli(["sparsify", graph, "--remove", "0.5", "--depth", "100000", "--out", tmp_path / "o"]), capsys)
    assert err.count("smaller") == 1, err


# ------------------------------------------------------------------------------------------------- rearrange
@pytest.fixture
def data(tmp_path):
    return write_planted_csv(tmp_path / "d.csv", m=60, half=4, seed=1, shuffle=True)


def _fit(tmp_path, data, *extra) -> tuple[int, object, object]:
    out, perm = tmp_path / "o.csv", tmp_path / "p.json"
    code = cli(["rearrange", data, "--label", "target", "--out", out, "--permutation", perm, *extra])
    return code, out, perm


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--dims", "0"], ["--dims", "0"]),
        (["--dims", "3"], ["--dims", "3"]),
        (["--dims", "-1"], ["--dims", "-1"]),
        (["--dims", "1.0"], ["--dims", "1.0"]),
        (["--shape", "0", "8"], ["--shape", "0 8"]),
        (["--shape", "-2", "-4"], ["--shape"]),
        (["--shape", "3", "3"], ["--shape 3 3", "8"]),
        (["--shape", "2", "4", "--dims", "1"], ["--shape", "--dims 2"]),
        (["--dims", "2"], ["--dims 2", "--shape"]),  # 8 features are no square
        (["--shape", "2"], ["--shape"]),
        (["--method", "spectral"], ["--method", "spectral"]),
        (["--seed", "-1"], ["--seed", "-1"]),
        (["--seed", "nan"], ["--seed", "nan"]),
        (["--label", "nope"], ["nope"]),
    ],
)
def test_rearrange_bad_options_one_line_nothing_written(tmp_path, data, capsys, extra, words):
    before = files(tmp_path)
    refused(_fit(tmp_path, data, *extra)[0], capsys, *words)
    assert files(tmp_path) == before


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--label", "target", "--out", "o.csv"], ["--permutation"]),
        (["--out", "o.csv", "--permutation", "p.json"], ["--label"]),
        (["--label", "target", "--out", "same.csv", "--permutation", "same.csv"], ["--out", "--permutation"]),
        (["--label", "target", "--out", "d.csv", "--permutation", "p.json", "--force"], ["--out", "input"]),
        (["--label", "target", "--out", "o.csv", "--permutation", "d.csv", "--force"], ["--permutation", "input"]),
    ],
)
def test_rearrange_conflicting_outputs_refused(tmp_path, data, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    before = {p: (tmp_path / p).read_bytes() for p in files(tmp_path)}
    refused(cli(["rearrange", "d.csv", *argv]), capsys, *words)
    assert {p: (tmp_path / p).read_bytes() for p in files(tmp_path)} == before


@pytest.mark.parametrize(("method", "cls"), [("mincut", FeatureRearrangement), ("random", RandomRearrangement)])
@pytest.mark.parametrize("seed", [0, 7])
def test_rearrange_fit_equals_the_python_api(tmp_path, data, capsys, method, cls, seed):
    code, out, perm_path = _fit(tmp_path, data, "--method", method, "--seed", seed)
    assert code == 0
    perm = json.loads(perm_path.read_text())
    X, _, names = load_csv(data, label="target")
    est = cls(dims=1, shape=None, random_state=seed).fit(X)
    p = perm["permutation"]
    assert sorted(p) == list(range(len(names)))  # a permutation
    assert p == [int(i) for i in est.permutation_]
    assert perm["features"] == names and perm["order"] == [names[i] for i in p]
    assert perm["objective_after"] == pytest.approx(float(est.objective_after_), rel=1e-12)
    # OUT.csv: label stays in its column, feature slot k holds input feature order[k], cells verbatim
    src, dst = read_csv_table(data), read_csv_table(out)
    li = src.header.index("target")
    assert dst.header.index("target") == li
    feat_cols = [c for c in dst.header if c != "target"]
    assert feat_cols == perm["order"]
    for r_in, r_out in zip(src.rows, dst.rows, strict=True):
        assert r_out[li] == r_in[li]
        assert [r_out[dst.header.index(c)] for c in feat_cols] == [r_in[src.header.index(c)] for c in feat_cols]
    Xo, _, names_o = load_csv(out, label="target")
    np.testing.assert_array_equal(Xo, X[:, p])


def test_rearrange_two_d_equals_the_python_api(tmp_path, capsys):
    data = write_planted_csv(tmp_path / "d.csv", m=50, half=3, seed=2, shuffle=True)  # 6 features: a 2 x 3 grid
    code, _, perm_path = _fit(tmp_path, data, "--shape", "2", "3", "--seed", "5")
    assert code == 0
    X, _, _ = load_csv(data, label="target")
    est = FeatureRearrangement(dims=2, shape=(2, 3), random_state=5).fit(X)
    perm = json.loads(perm_path.read_text())
    assert perm["permutation"] == [int(i) for i in est.permutation_]
    assert perm["dims"] == 2 and perm["shape"] == [2, 3]


def test_rearrange_apply_with_shuffled_columns_reproduces_the_fit(tmp_path, data, capsys):
    code, out, perm_path = _fit(tmp_path, data)
    assert code == 0
    table = read_csv_table(data)
    rng = np.random.default_rng(4)
    cols = list(rng.permutation(len(table.header)))
    shuffled = tmp_path / "new data ü.csv"  # unicode and a space in the path
    shuffled.write_text(
        ",".join(table.header[k] for k in cols)
        + "\n"
        + "".join(",".join(r[k] for k in cols) + "\n" for r in table.rows),
        encoding="utf-8",
    )
    applied = tmp_path / "applied out ✓.csv"
    assert cli(["rearrange", shuffled, "--apply", perm_path, "--out", applied]) == 0
    perm = json.loads(perm_path.read_text())
    got = read_csv_table(applied)
    assert [c for c in got.header if c != "target"] == perm["order"]
    fitted = read_csv_table(out)
    for r_fit, r_app in zip(fitted.rows, got.rows, strict=True):
        assert {c: r_fit[fitted.header.index(c)] for c in fitted.header} == {
            c: r_app[got.header.index(c)] for c in got.header
        }


def test_rearrange_write_failure_keeps_previous_outputs_and_no_temp_files(tmp_path, data, capsys, monkeypatch):
    code, out, perm_path = _fit(tmp_path, data, "--seed", "1")
    assert code == 0
    previous = (out.read_bytes(), perm_path.read_bytes())
    before = files(tmp_path)
    capsys.readouterr()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tnml.io.os.replace", broken_replace)
    refused(_fit(tmp_path, data, "--method", "random", "--seed", "2", "--force")[0], capsys, "No space left")
    assert (out.read_bytes(), perm_path.read_bytes()) == previous
    assert files(tmp_path) == before


def test_rearrange_failure_between_the_two_renames_keeps_the_pair_consistent(tmp_path, data, capsys, monkeypatch):
    code, out, perm_path = _fit(tmp_path, data, "--seed", "1")
    assert code == 0
    previous = (out.read_bytes(), perm_path.read_bytes())
    capsys.readouterr()
    real = os.replace

    def fail_on_perm(src, dst):
        if str(dst).endswith("p.json"):
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr("tnml.io.os.replace", fail_on_perm)
    refused(_fit(tmp_path, data, "--method", "random", "--seed", "2", "--force")[0], capsys, "Input/output error")
    assert (out.read_bytes(), perm_path.read_bytes()) == previous  # got: OUT.csv of the new (random) order


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda p: {**p, "permutation": p["permutation"][:-1]}, ['"permutation"']),
        (lambda p: {**p, "permutation": [0] * len(p["permutation"])}, ['"permutation"']),
        (lambda p: {**p, "permutation": [float(i) for i in p["permutation"]]}, ['"permutation"']),
        (lambda p: {**p, "features": p["features"][:1] * len(p["features"])}, ['"features"']),
        (lambda p: {**p, "format": "other"}, ["format"]),
        (lambda p: {**p, "label": 3}, ['"label"']),
        (lambda p: {**p, "dropped": "flat"}, ['"dropped"']),
    ],
)
def test_rearrange_apply_malformed_permutation_files(tmp_path, data, capsys, edit, words):
    assert _fit(tmp_path, data)[0] == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(edit(json.loads((tmp_path / "p.json").read_text()))))
    capsys.readouterr()
    refused(cli(["rearrange", data, "--apply", bad, "--out", tmp_path / "new.csv"]), capsys, "--apply", *words)
    assert not (tmp_path / "new.csv").exists()


def test_rearrange_apply_dropped_overlapping_features_is_refused(tmp_path, data, capsys):
    assert _fit(tmp_path, data)[0] == 0
    perm = json.loads((tmp_path / "p.json").read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**perm, "dropped": [perm["features"][0]]}))
    capsys.readouterr()
    refused(cli(["rearrange", data, "--apply", bad, "--out", tmp_path / "new.csv"]), capsys, "--apply", "dropped")


def test_rearrange_apply_refuses_fit_options_and_same_file(tmp_path, data, capsys):
    assert _fit(tmp_path, data)[0] == 0
    perm = tmp_path / "p.json"
    capsys.readouterr()
    for extra, word in (
        (["--dims", "1"], "--dims"),
        (["--shape", "2", "4"], "--shape"),
        (["--permutation", tmp_path / "x.json"], "--permutation"),
        (["--drop-constant"], "--drop-constant"),
        (["--label", "f0"], "--label"),
    ):
        refused(cli(["rearrange", data, "--apply", perm, "--out", tmp_path / "n.csv", *extra]), capsys, word)
    before = perm.read_bytes()
    refused(cli(["rearrange", data, "--apply", perm, "--out", perm, "--force"]), capsys, "--apply")
    assert perm.read_bytes() == before and not (tmp_path / "n.csv").exists()


# ------------------------------------------------------------------------------------------------- bounds
@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["mps", "--sites", "4", "--bond", "0"], ["--bond", "0"]),
        (["mps", "--sites", "4", "--bond", "-2"], ["--bond", "-2"]),
        (["mps", "--sites", "4", "--bond", "nan"], ["--bond", "nan"]),
        (["mps", "--sites", "0", "--bond", "2"], ["--sites", "0"]),
        (["mps", "--sites", "-4", "--bond", "2"], ["--sites", "-4"]),
        (["mps", "--sites", "4", "--bond", "2", "--phys-dim", "0"], ["--phys-dim", "0"]),
        (["mps", "--sites", "4", "--bond", "2", "--partitions", "all"], ["--partitions", "all"]),
        (["mps", "--sites", "5", "--bond", "2", "--shape", "2", "2"], ["--shape 2 2", "--sites"]),
        (["peps", "--sites", "4", "--bond", "2"], ["--shape"]),
        (["mera", "--sites", "4", "--bond", "2"], ["mera"]),
        (["mps", "--sites", "4", "--bond", "2", "--seed", str(2**40)], ["--seed"]),
    ],
)
def test_bounds_bad_options(capsys, extra, words):
    refused(cli(["bounds", *extra]), capsys, *words)


def test_bounds_huge_model_refused_before_allocation(capsys):
    refused(cli(["bounds", "mps", "--sites", "4000", "--bond", "4000"]), capsys, "954 GiB")


def test_bounds_huge_model_message_names_the_cli_options(capsys):
    err = refused(cli(["bounds", "mps", "--sites", "4000", "--bond", "4000"]), capsys)
    assert "--bond" in err and "--sites" in err and "n_sites" not in err and "bond_dim" not in err


def test_bounds_json_rank_never_exceeds_the_bound(capsys):
    assert cli(["bounds", "mps", "--sites", "6", "--bond", "2", "--partitions", "contiguous", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["n_sites"] == 6 and payload["rows"]
    for row in payload["rows"]:
        bound = next(v for k, v in row.items() if "bound" in k)
        rank = row["rank"]
        assert 1 <= rank <= bound, row


# ------------------------------------------------------------------------------------------------- tables / verdicts
def test_claim_verdict_rule_exact_strings_only():
    for v in VERDICTS:
        assert Claim("c", v).verdict == v
    for bad in ("Reproduced", "reproduced ", "", "not  reproduced", None, float("nan")):
        with pytest.raises(ValueError, match="verdict"):
            Claim("c", bad)


def test_verdict_counts_and_claims_table_follow_the_recorded_verdicts():
    claims = [Claim("a", "not reproduced"), Claim("b", "reproduced"), Claim("c", "not reproduced")]
    assert verdict_counts(claims) == "2 not reproduced, 1 reproduced"
    assert verdict_counts([]) == ""
    rows = claims_table({"e": ExperimentResult({}, claims=claims)}, link="{name}.md")
    assert len(rows) == 5 and rows[2] == "| [e](e.md) | a | — | not reproduced |"


@pytest.mark.parametrize("col", ["quantity", "measured", "thesis"])
def test_cell_limits_exactly_on_the_boundary(col):
    limit = MAX_CELL[col]
    base = {"quantity": "q", "measured": "m", "thesis": "t"}
    at = ExperimentResult({}, [Comparison(**{**base, col: "x" * limit})])
    past = ExperimentResult({}, [Comparison(**{**base, col: "x" * (limit + 1)})])
    assert cell_problems(at) == []
    assert len(cell_problems(past, "exp")) == 1 and f"{col} has {limit + 1} characters" in cell_problems(past)[0]


def test_claim_cell_limits_exactly_on_the_boundary():
    for col in ("text", "evidence"):
        limit = MAX_CELL[col]
        kw = {"text": "t", "evidence": "e", col: "y" * limit}
        assert cell_problems(ExperimentResult({}, claims=[Claim(verdict="reproduced", **kw)])) == []
        kw[col] += "y"
        assert len(cell_problems(ExperimentResult({}, claims=[Claim(verdict="reproduced", **kw)]))) == 1


def test_float_cells_are_judged_as_rendered():
    # a long float renders with 4 significant digits: it is short in the table, so no problem
    res = ExperimentResult({}, [Comparison("q", 0.123456789012345678, -1.0e-300)])
    assert cell_problems(res) == []
    assert comparison_table(res)[2] == "| q | 0.1235 | -1e-300 |"


def test_nan_measured_and_missing_thesis_render_and_readme_omits_absent_thesis():
    res = ExperimentResult(
        {},
        [
            Comparison("a|b", float("nan"), None, key=True),
            Comparison("zero", 1.0, 0.0, key=True),
            Comparison("hidden", 2.0, 3.0),
        ],
        claims=[Claim("c", "reproduced")],
    )
    assert comparison_table(res)[2] == "| a\\|b | nan | — |"
    table = readme_table({"exp": (res, {"seconds": 12.4, "quick": True, "seed": 0, "device": "cpu"})})
    row = table.splitlines()[2]
    assert "a\\|b: nan;" in row and "(—)" not in row  # no thesis value: no parenthesis
    assert "zero: 1 (0)" in row  # a thesis of 0 is a value, not a missing one
    assert "hidden" not in row  # only key rows when some are marked
    assert row.endswith("| 1 reproduced | 12 s |")
    assert "quick run, seed 0, cpu" in table


def test_load_run_skips_folders_without_metrics(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "metrics.json").write_text(
        json.dumps(
            {
                "metrics": {"x": 1},
                "comparisons": [{"quantity": "q", "measured": 1.5}],
                "claims": [{"text": "t", "verdict": "reproduced"}],
                "seconds": 3.0,
            }
        )
    )
    run = load_run(tmp_path)
    assert list(run) == ["b"]
    res, meta = run["b"]
    assert res.comparisons[0].measured == 1.5 and res.claims[0].verdict == "reproduced" and meta["seconds"] == 3.0


@pytest.mark.parametrize(
    "content",
    ["{bad json", "[1, 2]", json.dumps({"metrics": {}, "comparisons": [{"quantity": "q", "measured": 1, "x": 2}]})],
    ids=["not-json", "not-an-object", "unknown-key"],
)
def test_load_run_malformed_metrics_names_the_file(tmp_path, content):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.json").write_text(content)
    with pytest.raises(ValueError, match="metrics.json"):
        load_run(tmp_path)


def test_rearrange_unicode_column_names_survive(tmp_path, capsys):
    rng = np.random.default_rng(6)
    base = rng.normal(size=(40, 2))
    X = np.concatenate([base, base + 0.05 * rng.normal(size=(40, 2))], axis=1)
    names = ["Größe α", "温度", "größe β", "温度 2"]
    data = tmp_path / "daten ü.csv"
    lines = [",".join(["Klasse ✓", *names])] + [",".join(["1", *(f"{v:.5f}" for v in row)]) for row in X]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, perm_path = tmp_path / "aus ü.csv", tmp_path / "perm ✓.json"
    argv = ["rearrange", data, "--label", "Klasse ✓", "--out", out, "--permutation", perm_path]
    assert cli(argv) == 0
    perm = json.loads(perm_path.read_text(encoding="utf-8"))
    assert perm["features"] == names and perm["label"] == "Klasse ✓"
    assert read_csv_table(out).header == ["Klasse ✓", *perm["order"]]
    est = FeatureRearrangement(dims=1, random_state=0).fit(X)
    assert perm["permutation"] == [int(i) for i in est.permutation_]


def test_sparsify_vertex_ids_are_written_as_read(tmp_path, capsys):
    src = tmp_path / "g.txt"
    src.write_text("1_0 2\n2 3\n3 10\n", encoding="utf-8")  # not a decimal integer literal as a file format
    code = cli(["sparsify", src, "--remove", "0", "--out", tmp_path / "o.txt"])
    if code == 0:  # accepted: the kept edges must name the vertices as the file did
        assert "1_0 2" in (tmp_path / "o.txt").read_text()
    else:
        refused(code, capsys, ":1:")


# ------------------------------------------------------------------------------------------ an experiment's verdict
def test_paired_difference_equals_scipys_paired_t_interval():
    from scipy import stats

    from tnml.experiments.wis_sparsification import paired_difference

    rng = np.random.default_rng(11)
    a, b = rng.uniform(0.6, 0.9, size=7), rng.uniform(0.6, 0.9, size=7)
    d = paired_difference(a, b)
    ci = stats.ttest_rel(100 * a, 100 * b).confidence_interval(0.95)
    assert d["mean"] == pytest.approx(100 * float(np.mean(a - b)), rel=1e-12)
    assert (d["low"], d["high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    one = paired_difference([0.9], [0.5])
    assert one["mean"] == pytest.approx(40.0) and np.isnan(one["low"]) and np.isnan(one["high"])


def _paired(lows: dict) -> dict:
    return {str(f): {"1-wis - random": {"mean": lo + 1.0, "low": lo, "high": lo + 2.0}} for f, lo in lows.items()}


@pytest.mark.parametrize(
    ("lows", "verdict"),
    [
        ({0.5: 0.1, 0.8: 1e-12}, "reproduced"),  # every interval strictly above 0
        ({0.5: 0.1, 0.8: 0.0}, "reproduced with differences"),  # touching 0 is not above it
        ({0.5: 0.1, 0.8: float("nan")}, "reproduced with differences"),  # one seed: no interval, not above 0
        ({0.5: 0.0, 0.8: -3.0}, "not reproduced"),
        ({0.5: float("nan"), 0.8: float("nan")}, "not reproduced"),
    ],
)
def test_wis_verdict_rule_at_its_edges(lows, verdict):
    from tnml.experiments.wis_sparsification import _verdict

    got, evidence = _verdict(_paired(lows), "random", list(lows))
    assert got == verdict
    assert evidence.startswith("50%: ") and "; 80%: " in evidence
    Claim("1-WIS beats random", got, evidence)  # a verdict the overview accepts


def test_wis_verdict_without_fractions_is_not_reproduced():
    from tnml.experiments.wis_sparsification import _verdict

    with pytest.raises(ValueError, match="at least one removal fraction"):
        _verdict({}, "random", [])


@pytest.mark.parametrize(("arch", "seed"), [("mps", 0), ("cp", 3), ("ring", 5)])
def test_bounds_json_equals_the_python_api(capsys, arch, seed):
    import torch

    from tnml.entanglement import entanglement_report
    from tnml.networks import CP, MPS, PeriodicMPS

    argv = ["bounds", arch, "--sites", "5", "--bond", "2", "--phys-dim", "3", "--partitions", "contiguous"]
    assert cli([*argv, "--seed", seed, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    kw = {"n_sites": 5, "phys_dim": 3, "feature_map": "identity", "dtype": torch.float64}
    torch.manual_seed(seed)
    model = {
        "mps": lambda: MPS(bond_dim=2, init="normal", init_std=1.0, **kw),
        "cp": lambda: CP(rank=2, init_std=1.0, **kw),
        "ring": lambda: PeriodicMPS(bond_dim=2, **kw),
    }[arch]()
    expected = entanglement_report(model, partitions="contiguous").to_dicts()
    assert len(rows) == len(expected) > 0
    for got, ref in zip(rows, expected, strict=True):
        assert got.keys() == ref.keys()
        for k in ref:
            assert got[k] == (pytest.approx(ref[k], rel=1e-9, abs=1e-12) if isinstance(ref[k], float) else ref[k])


@pytest.mark.parametrize("blocked", ["--out", "--permutation"])
def test_rearrange_unwritable_folder_leaves_neither_output(tmp_path, data, capsys, blocked):
    (tmp_path / "file").write_text("a file, not a folder")
    out = tmp_path / ("file/o.csv" if blocked == "--out" else "o.csv")
    perm = tmp_path / ("file/p.json" if blocked == "--permutation" else "p.json")
    before = files(tmp_path)
    code = cli(["rearrange", data, "--label", "target", "--out", out, "--permutation", perm])
    refused(code, capsys, "cannot write")
    assert files(tmp_path) == before


@pytest.mark.parametrize("text", ["two\r\nlines", "old mac\rline"])
def test_table_cells_flatten_every_line_ending(text):
    row = comparison_table(ExperimentResult({}, [Comparison(text, 1.0, "x")]))[2]
    assert len(row.splitlines()) == 1, row
