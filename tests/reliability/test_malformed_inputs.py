"""Malformed input everywhere a user hands tnml a file : property tests with hypothesis.

Each test builds a valid file, corrupts it in one way drawn by hypothesis (wrong delimiter, ragged row, NaN/inf,
empty file, non-numeric cell, huge number or id, binary garbage, missing label column, non-UTF-8 bytes, NUL
bytes, duplicate column, unbalanced quote, truncation, ...), and feeds it to every loader and every command that
reads it. Loaders must raise ``ValueError`` (``MemoryLimitError`` is one) naming the file and, where the problem
has one, the line and column; commands must exit with code 2, print exactly one ``tnml: error:`` line naming the
file on stderr, nothing on stdout, no traceback and no RuntimeWarning, and leave no output or temporary file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tnml.cli import main
from tnml.datasets.graph_io import load_edge_list, load_npz_graph
from tnml.datasets.idx_io import IDX_DTYPES, load_idx, write_idx
from tnml.datasets.tabular_io import load_csv
from tnml.settings import MemoryLimitError

#: examples per kind of corruption (derandomized: the same files on every run)
EXAMPLES = 8


# ---------------------------------------------------------------------------------------------- helpers
def run_cli(argv: list[str], folder: Path, bad_file: Path) -> str:
    """Run ``tnml argv``; check the failure contract and return the one error line."""
    before = sorted(os.listdir(folder))
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as e:  # argparse errors exit this way
            code = e.code
    text = err.getvalue()
    assert code == 2, (argv, code, text, out.getvalue())
    assert text.startswith("tnml: error: ") and text.count("\n") == 1, text
    assert "Traceback" not in text and out.getvalue() == "", (text, out.getvalue())
    assert bad_file.name in text, text
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not runtime, [str(w.message) for w in runtime]
    assert sorted(os.listdir(folder)) == before, "an output or temporary file was left behind"
    return text


def loader_error(load, path: Path, *args, **kwargs) -> str:
    """Call a loader on a malformed file: it must raise ValueError naming the file (no other exception type)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError) as info:
            load(path, *args, **kwargs)
    msg = str(info.value)
    assert path.name in msg and "\n" not in msg.strip(), msg
    return msg


def garbage(min_size: int = 1, max_size: int = 200) -> st.SearchStrategy[bytes]:
    """Binary data: at least one byte that no text file holds (NUL, other controls, or a byte >= 0x80)."""
    return st.binary(min_size=min_size, max_size=max_size).filter(
        lambda b: any(c < 9 or 13 < c < 32 or c >= 0x80 for c in b)
    )


@contextlib.contextmanager
def malformed_file(name: str, data: bytes):
    """A fresh folder holding one file ``name`` with ``data``; yields ``(folder, path)``. (hypothesis's ``@given``
    cannot take the function-scoped ``tmp_path``: every example gets its own folder.)"""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        yield Path(d), path


def check_messages(msgs: list[str], expect: str | None, kind: str) -> None:
    """Every message names the problem (``expect``), when the corruption has one to name."""
    if expect is not None:
        for m in msgs:
            assert expect in m, (kind, m)


# ---------------------------------------------------------------------------------------------- CSV
NON_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e400", "NA", "?", ""]
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xe2\x82", b"\xe9", b"\x80abc"]
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=',"\r\n\x00', exclude_categories=("Cs",)),
               min_size=1, max_size=12)


def _not_a_number(s: str) -> bool:
    try:
        float(s.strip())
    except ValueError:
        return bool(s.strip()) and s.strip().lower() not in {"na", "n/a", "nan", "null", "none", "?", "-"}
    return False


CSV_KINDS = ["delimiter", "ragged", "non_finite", "empty", "blank_cells", "non_numeric", "huge", "garbage",
             "missing_label", "non_utf8", "nul", "header_only", "duplicate", "quote", "label_inf", "huge_cell"]


@st.composite
def csv_cases(draw, kind: str):
    """(file bytes, kind, expected message fragment or None, whether ``--apply`` must refuse it too)."""
    n_rows = draw(st.integers(4, 9))
    n_feat = draw(st.integers(2, 4))
    at = draw(st.integers(0, n_feat))  # where the label column sits
    names = [f"f{j}" for j in range(n_feat)]
    header = names[:at] + ["label"] + names[at:]
    vals = draw(st.lists(st.lists(st.floats(-50, 50), min_size=n_feat, max_size=n_feat),
                         min_size=n_rows, max_size=n_rows))
    rows = []
    for i, r in enumerate(vals):
        cells = [f"{v + i + 0.25 * j:.6g}" for j, v in enumerate(r)]  # non-constant columns
        rows.append(cells[:at] + [str(i % 2)] + cells[at:])
    i = draw(st.integers(0, n_rows - 1))  # the data row corrupted (file line i + 2)
    j = draw(st.sampled_from([k for k in range(n_feat + 1) if k != at]))  # a feature column
    line, col = i + 2, header[j]
    expect, apply_too = None, True

    def text(sep=","):
        return "".join(sep.join(r) + "\n" for r in [header, *rows])

    if kind == "delimiter":
        data = text(draw(st.sampled_from([";", "\t", "|"]))).encode()
        expect = "one column only"
    elif kind == "ragged":
        rows[i] = rows[i][:-1] if draw(st.booleans()) else [*rows[i], "1"]
        data, expect = text().encode(), f":{line}: expected {len(header)} cells"
    elif kind == "non_finite":
        rows[i][j] = draw(st.sampled_from(NON_FINITE))
        data, expect = text().encode(), f":{line}: "
    elif kind == "empty":
        data, expect = draw(st.sampled_from([b"", b"\n", b"  \n\n", b"\xef\xbb\xbf", b"\r\n\t"])), "empty"
    elif kind == "blank_cells":
        data, expect = draw(st.sampled_from([b",,\n", b" , \n\n,\n", b'"",""\n'])), "no header line"
    elif kind == "non_numeric":
        rows[i][j] = draw(TEXT.filter(_not_a_number))
        data, expect = text().encode(), f":{line}: column {col!r} holds the non-numeric value"
    elif kind == "huge":
        rows[i][j] = draw(st.sampled_from(["9" * 160, "-" + "9" * 400, "1e151", "-3e200", "1.7e308"]))
        data, expect = text().encode(), f":{line}: column {col!r} holds"
    elif kind == "garbage":
        data = draw(garbage())
    elif kind == "missing_label":
        header[at] = draw(st.sampled_from(["Label", "target", "y", "labels"]))
        data, expect = text().encode(), "no column 'label'"
    elif kind == "non_utf8":
        raw = text().encode()
        pos = draw(st.integers(0, len(raw)))
        data, expect = raw[:pos] + draw(st.sampled_from(BAD_UTF8)) + raw[pos:], "not UTF-8"
    elif kind == "nul":
        raw = text().encode()
        pos = draw(st.integers(0, len(raw)))
        data, expect = raw[:pos] + b"\x00" + raw[pos:], "NUL byte"
    elif kind == "header_only":
        data, expect = (",".join(header) + "\n").encode(), "no data rows"
    elif kind == "duplicate":
        header[j] = header[draw(st.sampled_from([k for k in range(n_feat + 1) if k != j]))]
        data, expect = text().encode(), "appears twice"
    elif kind == "quote":
        r = draw(st.integers(-1, n_rows - 1))  # -1: the header
        if r < 0:
            header[0] = '"' + header[0]
        else:
            rows[r][0] = '"' + rows[r][0]
        data = text().encode()
    elif kind == "huge_cell":  # beyond the csv module's field size limit (131072 characters)
        rows[i][j] = draw(st.sampled_from(["1", "x", " "])) * draw(st.integers(131073, 300000))
        data, expect = text().encode(), "malformed CSV (field larger than field limit"
    else:  # label_inf: apply mode copies the label column verbatim, so only fitting refuses it
        rows[i][at] = draw(st.sampled_from(["inf", "-inf", "1e999"]))
        data, expect, apply_too = text().encode(), f":{line}: label", False
    return data, kind, expect, apply_too, header, at


@pytest.mark.parametrize("kind", CSV_KINDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_malformed_csv(kind, data):
    data, kind, expect, apply_too, header, at = data.draw(csv_cases(kind))
    names = [f"f{j}" for j in range(len(header) - 1)]
    with malformed_file("data.csv", data) as (folder, p):
        perm = folder / "perm.json"
        perm.write_text(json.dumps({"format": "tnml-rearrangement", "label": "label", "features": names,
                                    "permutation": list(range(len(names)))[::-1], "dropped": []}))
        msgs = [loader_error(load_csv, p, label="label")]
        msgs.append(run_cli(["suitability", str(p), "--label", "label", "--width", "2", "--gain", "none",
                             "--batch-size", "4", "--n-batches", "1"], folder, p))
        msgs.append(run_cli(["rearrange", str(p), "--label", "label", "--out", str(folder / "out.csv"),
                             "--permutation", str(folder / "p.json")], folder, p))
        if apply_too:
            msgs.append(run_cli(["rearrange", str(p), "--apply", str(perm), "--out", str(folder / "out.csv")],
                                folder, p))
        check_messages(msgs[:3], expect, kind)  # fitting reads through load_csv / table_arrays: the same message


def test_wrong_delimiter_hint(tmp_path):
    p = tmp_path / "semi.csv"
    p.write_text("a;b;label\n1;2;0\n3;4;1\n")
    assert "separated by ';'" in loader_error(load_csv, p, label="label")
    assert "separated by ';'" in loader_error(load_csv, p)  # no label: the one column is non-numeric


def test_large_integer_labels_stay_exact(tmp_path):
    """Integers beyond 2**53 are not silently cast to int64 garbage: they stay floats (distinct classes)."""
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,1e20\n3,5,2e20\n4,1,7\n")
    _, y, _ = load_csv(p, label="label")
    assert y.dtype == np.float64 and y.tolist() == [1e20, 2e20, 7.0]


# ---------------------------------------------------------------------------------------------- edge lists
EDGE_KINDS = ["delimiter", "ragged", "non_finite", "empty", "non_numeric", "huge", "garbage", "non_utf8", "nul",
              "float_id", "comments_only"]  # self-loops and repeated edges are merged: tests/cli/test_sparsify_cli.py


@st.composite
def edge_list_cases(draw, kind: str):
    n = draw(st.integers(3, 8))
    edges = [(k, k + 1) for k in range(n - 1)]
    lines = [f"{u} {v}" for u, v in edges]
    i = draw(st.integers(0, len(lines) - 1))
    line = i + 1
    expect = f":{line}: "
    u, v = edges[i]
    if kind == "delimiter":
        lines[i] = f"{u}{draw(st.sampled_from([',', ';', '|']))}{v}"
    elif kind == "ragged":
        lines[i] = draw(st.sampled_from([f"{u}", f"{u} {v} {v + 1}", f"{u} {v} 1.0"]))
    elif kind == "non_finite":
        lines[i] = f"{u} {draw(st.sampled_from(['nan', 'inf', '-inf', 'NaN']))}"
    elif kind == "empty":
        lines, expect = [draw(st.sampled_from(["", " ", "\t"]))], "no edges"
    elif kind == "non_numeric":
        lines[i] = f"{u} {draw(TEXT.filter(lambda s: ' ' not in s and '#' not in s and _not_a_number(s)))}"
    elif kind == "huge":
        lines[i] = f"{u} {draw(st.sampled_from([2**63, 2**64 + 5, -(2**63) - 1, 10**30, 10**400]))}"
        expect = f":{line}: vertex id"
    elif kind == "garbage":
        return draw(garbage()), kind, None
    elif kind == "non_utf8":
        raw = ("\n".join(lines) + "\n").encode()
        pos = draw(st.integers(0, len(raw)))
        return raw[:pos] + draw(st.sampled_from(BAD_UTF8)) + raw[pos:], kind, "not UTF-8"
    elif kind == "nul":
        raw = ("\n".join(lines) + "\n").encode()
        pos = draw(st.integers(0, len(raw)))
        return raw[:pos] + b"\x00" + raw[pos:], kind, "NUL byte"
    elif kind == "float_id":
        lines[i] = f"{u}.5 {v}"
        expect = f":{line}: vertex ids must be integers"
    else:
        lines, expect = ["# only a comment", "", "#0 1"], "no edges"
    return ("\n".join(lines) + "\n").encode(), kind, expect


@pytest.mark.parametrize("kind", EDGE_KINDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_malformed_edge_list(kind, data):
    data, kind, expect = data.draw(edge_list_cases(kind))
    with malformed_file("edges.txt", data) as (folder, p):
        msgs = [loader_error(load_edge_list, p)]
        for method in ("wis", "random"):
            msgs.append(run_cli(["sparsify", str(p), "--remove", "0.5", "--method", method,
                                 "--out", str(folder / "kept.txt")], folder, p))
        check_messages(msgs, expect, kind)


# ---------------------------------------------------------------------------------------------- npz
def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


NPZ_KINDS = ["garbage", "text", "empty", "truncated", "no_edge_index", "shape", "float", "negative", "huge_uint",
             "x_nan", "x_text", "y_float", "y_length", "not_npy", "object", "empty_edges"]  # loops/repeats: merged


@st.composite
def npz_cases(draw, kind: str):
    n = draw(st.integers(3, 6))
    ei = np.array([[k, k + 1] for k in range(n - 1)]).T
    good = {"edge_index": ei, "x": np.ones((n, 2)), "y": np.arange(n) % 2}
    a = dict(good)
    if kind == "garbage":
        return draw(garbage()), kind, None
    if kind == "text":
        return b"0 1\n1 2\n", kind, "no zip header"
    if kind == "empty":
        return b"", kind, "no zip header"
    if kind == "truncated":
        raw = _npz_bytes(**good)
        return raw[: draw(st.integers(4, len(raw) - 1))], kind, "not a readable .npz"
    if kind == "not_npy":
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("edge_index.npy", draw(st.binary(max_size=40)))
        return buf.getvalue(), kind, None
    if kind == "object":
        a["edge_index"] = np.array([[0, "a"], [1, None]], dtype=object)
        return _npz_bytes(**a), kind, "object arrays are refused"
    i = draw(st.integers(0, ei.shape[1] - 1))
    if kind == "no_edge_index":
        del a["edge_index"]
        expect = "'edge_index'"
    elif kind == "shape":
        a["edge_index"] = draw(st.sampled_from([ei[0], ei[None], np.zeros((3, 2), int), np.zeros((1, n), int)]))
        expect = "shape (2, E)"
    elif kind == "float":
        a["edge_index"] = ei.astype(np.float64)
        expect = "must hold integers"
    elif kind == "negative":
        e = ei.copy()
        e[0, i] = draw(st.integers(-(2**63), -1))
        a["edge_index"], expect = e, "negative vertex id"
    elif kind == "huge_uint":
        e = ei.astype(np.uint64)
        e[1, i] = draw(st.integers(2**63, 2**64 - 1))
        a["edge_index"], expect = e, "beyond int64"
    elif kind == "x_nan":
        x = np.ones((n, 2))
        x[draw(st.integers(0, n - 1)), draw(st.integers(0, 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        a["x"], expect = x, "must be finite"
    elif kind == "x_text":
        a["x"], expect = np.array([["a", "b"]] * n), "x must hold numbers"
    elif kind == "y_float":
        a["y"], expect = np.full(n, 0.5), "integer class labels"
    elif kind == "y_length":
        a["y"], expect = np.zeros(n + draw(st.integers(1, 3)), int), "rows but y has"
    else:  # empty_edges
        a["edge_index"], expect = np.zeros((2, 0), int), "no edges"
    return _npz_bytes(**a), kind, expect


@pytest.mark.parametrize("kind", NPZ_KINDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_malformed_npz(kind, data):
    data, kind, expect = data.draw(npz_cases(kind))
    with malformed_file("graph.npz", data) as (folder, p):
        msgs = [loader_error(load_npz_graph, p)]
        msgs.append(run_cli(["sparsify", str(p), "--remove", "0.3", "--out", str(folder / "kept.txt")], folder, p))
        check_messages(msgs, expect, kind)


# ---------------------------------------------------------------------------------------------- PERM.json
PERM_KINDS = ["garbage", "non_utf8", "deep", "not_object", "format", "missing_key", "not_perm", "huge_index",
              "bool_index", "features", "label", "empty"]


@st.composite
def perm_cases(draw, kind: str):
    feats = ["f0", "f1", "f2"]
    good = {"format": "tnml-rearrangement", "label": "label", "features": feats, "permutation": [2, 0, 1],
            "dropped": []}
    if kind == "garbage":
        return draw(garbage())
    if kind == "non_utf8":
        return json.dumps(good).encode() + draw(st.sampled_from(BAD_UTF8))
    if kind == "deep":
        k = draw(st.integers(2000, 200000))
        return b"[" * k + b"]" * draw(st.sampled_from([0, k]))
    if kind == "empty":
        return b""
    if kind == "not_object":
        return json.dumps(draw(st.sampled_from([[1, 2], "x", 3, None]))).encode()
    obj = dict(good)
    if kind == "format":
        obj["format"] = draw(st.sampled_from(["tnml", None, 1]))
    elif kind == "missing_key":
        del obj[draw(st.sampled_from(["features", "permutation"]))]
    elif kind == "not_perm":
        obj["permutation"] = draw(st.sampled_from([[0, 0, 1], [0, 1], [1, 2, 3], "012", [0.0, 1.0, 2.0]]))
    elif kind == "huge_index":
        obj["permutation"] = [0, 1, draw(st.integers(3, 10**30))]
    elif kind == "bool_index":
        obj["permutation"] = [True, False, 2]
    elif kind == "features":
        obj["features"] = draw(st.sampled_from([[], ["f0", "f0", "f1"], [1, 2, 3], "f0"]))
    else:
        obj["label"] = draw(st.sampled_from([1, ["label"]]))
    return json.dumps(obj).encode()


@pytest.mark.parametrize("kind", PERM_KINDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_malformed_permutation_file(kind, data):
    data = data.draw(perm_cases(kind))
    with malformed_file("perm.json", data) as (folder, perm):
        p = folder / "data.csv"
        p.write_text("f0,label,f1,f2\n1,0,2,3\n2,1,5,1\n")
        run_cli(["rearrange", str(p), "--apply", str(perm), "--out", str(folder / "out.csv")], folder, perm)


# ---------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("code", sorted(IDX_DTYPES))
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, code, compress):
    """Every dtype code, written by hand (big-endian header and data as the format says) and read back."""
    dt = IDX_DTYPES[code]
    rng = np.random.default_rng(code)
    a = (rng.integers(0, 100, size=(3, 4, 2)) - (0 if dt.kind == "u" else 50)).astype(dt)
    raw = bytes([0, 0, code, 3]) + struct.pack(">3I", 3, 4, 2) + a.tobytes()
    p = tmp_path / ("x.idx.gz" if compress else "x.idx")
    p.write_bytes(gzip.compress(raw) if compress else raw)
    b = load_idx(p)
    assert b.dtype.isnative and b.dtype == dt.newbyteorder("=") and b.shape == (3, 4, 2)
    np.testing.assert_array_equal(b, a)
    q = write_idx(tmp_path / "y.idx", b)
    assert q.read_bytes() == raw  # the writer produces the same bytes


def test_idx_mnist_like_labels(tmp_path):
    raw = bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes([7, 2, 1, 0, 4])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)
    assert load_idx(tmp_path / "t10k-labels-idx1-ubyte").tolist() == [7, 2, 1, 0, 4]


def test_idx_memory_guard(tmp_path, monkeypatch):
    import tnml.settings

    p = write_idx(tmp_path / "x.idx", np.zeros((10, 10), np.float64))
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 799)
    with pytest.raises(MemoryLimitError, match=r"announces 800 B .*max_dense_bytes is 799 B; raise it"):
        load_idx(p)
    assert load_idx(p, max_bytes=800).shape == (10, 10)
    # a header announcing 2**32-1 squared bytes: refused before reading (or allocating) anything
    (tmp_path / "bomb.idx").write_bytes(bytes([0, 0, 8, 2]) + struct.pack(">2I", 2**32 - 1, 2**32 - 1))
    with pytest.raises(MemoryLimitError, match="16 EiB"):
        load_idx(tmp_path / "bomb.idx")


IDX_KINDS = ["truncated", "extra", "magic", "code", "ndim0", "zero_dim", "garbage", "empty", "gzip_truncated",
             "gzip_garbage_tail", "non_finite"]


@st.composite
def idx_cases(draw, kind: str):
    codes = sorted(c for c, dt in IDX_DTYPES.items() if kind != "non_finite" or dt.kind == "f")
    code = draw(st.sampled_from(codes))
    dt = IDX_DTYPES[code]
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    a = np.arange(int(np.prod(shape))).reshape(shape).astype(dt)
    raw = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + a.tobytes()
    hdr = 4 + 4 * len(shape)
    if kind == "truncated":
        return raw[: draw(st.integers(0, len(raw) - 1))], kind, "truncated"
    if kind == "extra":
        return raw + draw(st.binary(min_size=1, max_size=20)), kind, "bytes after the data"
    if kind == "magic":
        return bytes([draw(st.integers(1, 255))]) + raw[1:], kind, "not an IDX file"
    if kind == "code":
        bad = draw(st.integers(0, 255).filter(lambda c: c not in IDX_DTYPES))
        return raw[:2] + bytes([bad]) + raw[3:], kind, "unknown IDX dtype code"
    if kind == "ndim0":
        return raw[:3] + b"\x00" + raw[4:], kind, "0 dimensions"
    if kind == "zero_dim":
        return raw[:4] + struct.pack(">I", 0) + raw[8:], kind, "holds no values"
    if kind == "garbage":
        return draw(garbage()).lstrip(b"\x00") or b"\xff", kind, None
    if kind == "empty":
        return b"", kind, "truncated"
    if kind == "gzip_truncated":
        z = gzip.compress(raw)
        return z[: draw(st.integers(2, len(z) - 1))], kind, None
    if kind == "gzip_garbage_tail":
        # (gzip itself ignores trailing zero bytes: padding, not garbage)
        return gzip.compress(raw) + draw(garbage(min_size=2).filter(any)), kind, None
    vals = a.copy()
    vals.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return raw[:hdr] + vals.tobytes(), kind, "must be finite"


@pytest.mark.parametrize("kind", IDX_KINDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_malformed_idx(kind, data):
    data, kind, expect = data.draw(idx_cases(kind))
    with malformed_file("images-idx3-ubyte", data) as (_, p):
        check_messages([loader_error(load_idx, p)], expect, kind)


# ---------------------------------------------------------------------------------------------- odd but valid
def run_cli_any(argv: list[str]) -> tuple[int, str]:
    """Run a command on input that may be valid: exit 0, or 2 with one error line; never a traceback/warning."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        code = main(argv)
    text = err.getvalue()
    assert code in (0, 2), (argv, code, text)
    if code == 2:
        assert text.startswith("tnml: error: ") and text.count("\n") == 1, text
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    return code, text


IDS = st.sampled_from([0, 1, 2, 3, 4, -5, 7, 10**12, 2**62, 2**63 - 1, -(2**63)])


@settings(max_examples=15)
@given(edges=st.lists(st.tuples(IDS, IDS), min_size=1, max_size=8), data=st.data())
def test_odd_valid_graphs_never_traceback(edges, data):
    """Negative, huge (int64-edge) ids, disconnected graphs, depths that overflow walk counts: 0 or one line."""
    seen, lines = set(), []
    for u, v in edges:
        if u != v and (min(u, v), max(u, v)) not in seen:
            seen.add((min(u, v), max(u, v)))
            lines.append(f"{u} {v}")
    if not lines:
        return
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "g.txt"
        p.write_text("\n".join(lines) + "\n")
        for method in ("wis", "1-wis", "random", "spectral", "degree"):
            run_cli_any(["sparsify", str(p), "--remove", str(data.draw(st.sampled_from([0, 0.3, 1.0]))),
                         "--method", method, "--depth", str(data.draw(st.sampled_from([2, 3, 40]))),
                         "--out", str(Path(d) / "kept.txt")])


def test_failing_sparsify_prints_only_its_error(tmp_path):
    """A disconnected graph's warning is printed only when the run succeeds, so a failure stays one line."""
    p = tmp_path / "g.txt"
    p.write_text("0 2\n0 3\n1 4\n")
    code, text = run_cli_any(["sparsify", str(p), "--remove", "0.5", "--depth", "40", "--out",
                              str(tmp_path / "k.txt")])
    assert code == 2 and "overflows" in text and "smaller --depth" in text and "g.txt" in text
    assert not (tmp_path / "k.txt").exists()


CELLS = st.sampled_from(["0", "1", "-1", "0.5", "1e-300", "1e149", "-1e149", "3", "1e-12", "1.0000000000000002"])


@settings(max_examples=15)
@given(m=st.integers(2, 7), n=st.integers(2, 5), data=st.data())
def test_odd_valid_tables_never_traceback(m, n, data):
    """Tiny, near-constant, extreme-but-accepted values, one class: each command succeeds or says why in one line."""
    rows = [[data.draw(CELLS) for _ in range(n)] + [data.draw(st.sampled_from(["a", "b", "0", "1"]))]
            for _ in range(m)]
    text = ",".join([f"f{j}" for j in range(n)] + ["label"]) + "\n" + "".join(",".join(r) + "\n" for r in rows)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "d.csv"
        p.write_text(text)
        out, perm = str(Path(d) / "o.csv"), str(Path(d) / "p.json")
        run_cli_any(["suitability", str(p), "--label", "label", "--width", "2", "--batch-size", "2",
                     "--n-batches", "1", "--gain", data.draw(st.sampled_from(["none", "qe", "surrogate"])),
                     "--drop-constant"])
        run_cli_any(["suitability", str(p), "--label", "label", "--width", "2", "--no-standardize", "--gain", "none"])
        for method in ("mincut", "random"):
            code, _ = run_cli_any(["rearrange", str(p), "--label", "label", "--out", out, "--permutation", perm,
                                   "--method", method, "--drop-constant"])
            assert os.path.exists(out) == os.path.exists(perm) == (code == 0)  # both outputs or neither
            if code == 0:
                os.unlink(out)
                os.unlink(perm)
