"""Graph file loaders and ``tnml sparsify``: strict validation, one-line errors (exit 2), atomic output."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from tnml.cli import main
from tnml.datasets.graph_io import GraphCleanupWarning, clean_edges, load_edge_list, load_npz_graph
from tnml.preprocessing import one_wis, walk_index_sparsification

#: a small connected graph (6 vertices, 9 edges)
EXAMPLE_EDGES = [(0, 1), (0, 3), (1, 2), (1, 3), (1, 4), (2, 3), (2, 5), (3, 4), (3, 5)]


def write_edges(path, edges, extra=""):
    path.write_text("# test graph\n" + "".join(f"{u} {v}\n" for u, v in edges) + extra, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ loaders
def test_edge_list_round_trip(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("# header\n\n3 1   # trailing comment\n1\t2\n  7 3\n", encoding="utf-8")
    assert load_edge_list(p).tolist() == [[3, 1], [1, 2], [7, 3]]


@pytest.mark.parametrize(
    "content, strict, match",
    [
        ("0 1\n1 2 3\n", False, r"g.txt:2: expected two vertex ids"),
        ("0 1\n\n1\n", False, r"g.txt:3: expected two vertex ids"),
        ("0 1\na b\n", False, r"g.txt:2: vertex ids must be integers"),
        ("0 1.5\n", False, r"g.txt:1: vertex ids must be integers"),
        ("# only a comment\n\n", False, r"no edges found"),
        ("3 3\n", False, r"self-loop\(s\) only"),
        ("", False, r"no edges found"),
        # strict=True also refuses what the default merges (self-loops, repeats in either direction)
        ("0 1\n2 2\n", True, r"g.txt:2: self-loop 2 2; remove it \(strict=True\)"),
        ("0 1\n1 2\n1 0\n", True, r"g.txt:3: duplicate edge 1 0, first given on line 1"),
        ("0 1\n1 2\n0 1\n", True, r"g.txt:3: duplicate edge 0 1, first given on line 1"),
    ],
)
def test_edge_list_errors(tmp_path, content, strict, match):
    p = tmp_path / "g.txt"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        load_edge_list(p, strict=strict)


def _naive_clean(rows):
    """Reference: keep the first occurrence of each unordered pair, drop u == v."""
    out = []
    for u, v in rows:
        if u != v and {u, v} not in [set(e) for e in out]:
            out.append((u, v))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_edge_list_both_directions_merged_with_one_warning(tmp_path, seed):
    """An edge list written by a graph library (every edge in both directions, a few exact repeats and
    self-loops) loads as the simple graph, with one warning giving the counts."""
    rng = np.random.default_rng(seed)
    g = nx.gnm_random_graph(12, 20, seed=seed)
    rows = [e for u, v in g.edges for e in ((u, v), (v, u))]
    rows += [rows[k] for k in rng.integers(0, len(rows), 3)] + [(4, 4), (7, 7)]
    order = rng.permutation(len(rows))
    rows = [tuple(map(int, rows[k])) for k in order]
    p = tmp_path / "g.txt"
    p.write_text("".join(f"{u} {v}\n" for u, v in rows), encoding="utf-8")
    with pytest.warns(GraphCleanupWarning) as rec:
        edges = load_edge_list(p)
    assert len(rec) == 1
    assert [tuple(e) for e in edges.tolist()] == _naive_clean(rows)
    _, c, _ = clean_edges(rows)
    assert c.self_loops == 2 and c.reverse + c.exact == len(rows) - 2 - 20
    assert f"dropped {c.self_loops} self-loop(s)" in str(rec[0].message)


def test_edge_list_without_repeats_does_not_warn(tmp_path, recwarn):
    load_edge_list(write_edges(tmp_path / "g.txt", EXAMPLE_EDGES))
    assert not [w for w in recwarn if issubclass(w.category, GraphCleanupWarning)]


def test_npz_self_loops_and_repeated_columns_dropped(tmp_path):
    ei = np.array([[0, 1, 1, 2, 0, 2], [1, 0, 1, 1, 1, 2]])  # (1,1), (2,2) loops; (0,1) repeated
    p = tmp_path / "g.npz"
    np.savez(p, edge_index=ei)
    with pytest.warns(GraphCleanupWarning, match=r"merged 0 reverse duplicate\(s\) and 1 exact duplicate\(s\), "
                                                 r"dropped 2 self-loop\(s\)"):
        d = load_npz_graph(p)
    assert d["edge_index"].tolist() == [[0, 1, 2], [1, 0, 1]]
    with pytest.raises(ValueError, match="self-loop"):
        load_npz_graph(p, strict=True)


def test_edge_list_not_utf8(tmp_path):
    p = tmp_path / "g.txt"
    p.write_bytes(b"0 1\n\xff\xfe 2\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_edge_list(p)


def test_npz_round_trip(tmp_path):
    ei = np.array([[0, 1, 1, 2], [1, 0, 2, 1]])
    p = tmp_path / "g.npz"
    np.savez(p, edge_index=ei, x=np.ones((4, 3)), y=np.array([0, 1, 0, 1]))
    d = load_npz_graph(p)
    assert d["n_vertices"] == 4 and d["edge_index"].tolist() == ei.tolist() and d["x"].shape == (4, 3)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x": np.ones((2, 2))}, "key 'edge_index'"),
        ({"edge_index": np.array([[0, 1, 2]])}, r"shape \(2, E\)"),
        ({"edge_index": np.array([[0.0], [1.0]])}, "must hold integers"),
        ({"edge_index": np.array([[1, 2], [1, 2]])}, "only self-loops"),
        ({"edge_index": np.array([[0], [-1]])}, "negative vertex id"),
        ({"edge_index": np.array([[0], [5]]), "y": np.array([0, 1])}, "uses vertex 5"),
        ({"edge_index": np.array([[0], [1]]), "x": np.ones((2, 1)), "y": np.array([0, 1, 2])}, "x has 2 rows"),
        ({"edge_index": np.array([[0], [1]]), "y": np.array([0.5, 1.0])}, "integer class labels"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    p = tmp_path / "g.npz"
    np.savez(p, **arrays)
    with pytest.raises(ValueError, match=match):
        load_npz_graph(p)


def test_npz_not_an_archive(tmp_path):
    p = tmp_path / "g.npz"
    p.write_text("hello")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz_graph(p)


# ------------------------------------------------------------------------------------------ CLI
def removed_from_header(path):
    return [
        tuple(int(x) for x in line.split()[2:4])
        for line in path.read_text().splitlines()
        if line.startswith("# removed ")
    ]


@pytest.mark.parametrize("method, depth", [("wis", 3), ("wis", 2), ("1-wis", 3)])
def test_cli_matches_library(tmp_path, capsys, method, depth):
    src = write_edges(tmp_path / "g.txt", EXAMPLE_EDGES)
    out = tmp_path / "kept.txt"
    assert main(["sparsify", str(src), "--remove", "0.5", "--depth", str(depth), "--method", method,
                 "--out", str(out)]) == 0
    expected = walk_index_sparsification(EXAMPLE_EDGES, 4, depth) if method == "wis" else one_wis(EXAMPLE_EDGES, 4)
    assert removed_from_header(out) == expected
    kept = {tuple(e) for e in load_edge_list(out).tolist()}
    assert kept == set(EXAMPLE_EDGES) - set(expected)
    assert "removed 4 of 9 edges" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["random", "spectral", "degree"])
def test_cli_baselines(tmp_path, method):
    edges = sorted(nx.karate_club_graph().edges())
    src = write_edges(tmp_path / "g.txt", edges)
    out = tmp_path / "kept.txt"
    assert main(["sparsify", str(src), "--remove", "0.8", "--method", method, "--out", str(out)]) == 0
    removed = removed_from_header(out)
    assert len(removed) == int(0.8 * len(edges)) and len(load_edge_list(out)) == len(edges) - len(removed)


def test_cli_npz_input(tmp_path):
    ei = np.array(EXAMPLE_EDGES + [(v, u) for u, v in EXAMPLE_EDGES]).T
    np.savez(tmp_path / "g.npz", edge_index=ei)
    out = tmp_path / "kept.txt"
    assert main(["sparsify", str(tmp_path / "g.npz"), "--remove", "0.2", "--out", str(out)]) == 0
    assert removed_from_header(out) == walk_index_sparsification(EXAMPLE_EDGES, 1, 3)


def test_cli_edge_list_with_both_directions(tmp_path, capsys):
    """An edge list written in both directions, plus an exact repeat and a self-loop: accepted, the
    same removals as the simple graph, one stderr line with the counts."""
    rows = [e for u, v in EXAMPLE_EDGES for e in ((u, v), (v, u))] + [(2, 5), (4, 4)]
    src = write_edges(tmp_path / "g.txt", rows)
    out = tmp_path / "kept.txt"
    assert main(["sparsify", str(src), "--remove", "0.3", "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip()
    assert err == ("tnml: note: g.txt: merged 9 reverse duplicate(s) and 1 exact duplicate(s), "
                   "dropped 1 self-loop(s)")
    assert removed_from_header(out) == walk_index_sparsification(EXAMPLE_EDGES, 2, 3)
    kept = {tuple(e) for e in load_edge_list(out).tolist()}
    assert len(kept) == len(EXAMPLE_EDGES) - 2


def test_cli_npz_counts_both_directions(tmp_path, capsys):
    ei = np.array(EXAMPLE_EDGES + [(v, u) for u, v in EXAMPLE_EDGES] + [(3, 3)]).T
    np.savez(tmp_path / "g.npz", edge_index=ei)
    assert main(["sparsify", str(tmp_path / "g.npz"), "--remove", "0.2", "--out", str(tmp_path / "k.txt")]) == 0
    assert "merged 9 reverse duplicate(s) and 0 exact duplicate(s), dropped 1 self-loop(s)" in capsys.readouterr().err


def test_cli_disconnected_warns(tmp_path, capsys):
    src = write_edges(tmp_path / "g.txt", [(0, 1), (1, 2), (5, 6)])
    out = tmp_path / "kept.txt"
    assert main(["sparsify", str(src), "--remove", "0.4", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: the graph has 2 connected components" in err and len(err.splitlines()) == 1
    assert out.exists()


@pytest.mark.parametrize(
    "content, argv, message",
    [
        ("0 1\nx 2\n", [], "g.txt:2: vertex ids must be integers"),
        ("0 1 2\n", [], "g.txt:1: expected two vertex ids"),
        ("", [], "no edges found"),
        ("0 1\n", ["--remove", "1.5"], "--remove must be a fraction in [0, 1]"),
        ("0 1\n", ["--depth", "1"], "--depth must be >= 2"),
        ("0 1\n", ["--method", "ugs"], "invalid choice"),
        ("0 1\n", ["--remove", "half"], "invalid float value"),
    ],
)
def test_cli_errors(tmp_path, capsys, content, argv, message):
    src = tmp_path / "g.txt"
    src.write_text(content, encoding="utf-8")
    out = tmp_path / "kept.txt"
    full = ["sparsify", str(src), "--out", str(out)] + (argv if "--remove" in argv else ["--remove", "0.5"] + argv)
    try:
        rc = main(full)
    except SystemExit as e:
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["g.txt"]


def test_cli_missing_file_and_folder_out(tmp_path, capsys):
    assert main(["sparsify", str(tmp_path / "nope.txt"), "--remove", "0.5", "--out", str(tmp_path / "o")]) == 2
    assert "is not a file" in capsys.readouterr().err
    src = write_edges(tmp_path / "g.txt", EXAMPLE_EDGES)
    assert main(["sparsify", str(src), "--remove", "0.5", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_cli_non_utf8(tmp_path, capsys):
    src = tmp_path / "g.txt"
    src.write_bytes(b"0 1\n\xff 2\n")
    assert main(["sparsify", str(src), "--remove", "0.5", "--out", str(tmp_path / "o.txt")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize("method, lib", [
    ("wis", lambda e, k, tb: walk_index_sparsification(e, k, 3, tie_break=tb)),
    ("1-wis", lambda e, k, tb: one_wis(e, k, tie_break=tb)),
])
def test_cli_tie_break_follows_the_file_order(tmp_path, method, lib):
    rows = [e for u, v in nx.cycle_graph(8).edges for e in ((u, v), (v, u))]  # every step is a tie
    src = write_edges(tmp_path / "g.txt", rows)
    out = tmp_path / "kept.txt"
    assert main(["sparsify", str(src), "--remove", "0.5", "--method", method, "--tie-break", "last",
                 "--out", str(out)]) == 0
    assert removed_from_header(out) == lib(rows, 4, "last")
    assert removed_from_header(out) != lib(rows, 4, "vertex")  # the default differs on this graph
