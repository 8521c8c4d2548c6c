"""Loaders for real graph files: whitespace edge lists and Planetoid-style ``.npz`` archives, validated strictly.

Every problem is a ``ValueError`` that names the file, the line (edge lists) or key (npz), what was expected and
what was found, so a command line can print it as one line.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np

from tnml.io import check_input_file, read_input_bytes, write_text
from tnml.settings import MemoryLimitError


class _NpzGraphRequired(TypedDict):
    edge_index: np.ndarray
    n_vertices: int


class NpzGraph(_NpzGraphRequired, total=False):
    """The dict :func:`load_npz_graph` and :func:`read_npz_graph` return: ``edge_index`` int64 ``(2, E)``,
    ``n_vertices`` and, when the file has them, ``x`` ``(N, F)`` and ``y`` ``(N,)``."""

    x: np.ndarray
    y: np.ndarray

__all__ = [
    "EdgeCleanup",
    "GraphCleanupWarning",
    "NpzGraph",
    "clean_edges",
    "load_edge_list",
    "load_npz_graph",
    "read_edge_list",
    "read_npz_graph",
    "write_edge_list",
]

_ID_MIN, _ID_MAX = -(2**63), 2**63 - 1
_INT_ID = re.compile(r"[+-]?[0-9]+")  # ASCII decimal vertex ids only


class GraphCleanupWarning(UserWarning):
    """A graph file listed edges twice (in either direction) or held self-loops; they were merged / dropped."""


@dataclass(frozen=True)
class EdgeCleanup:
    """What :func:`clean_edges` merged or dropped.

    Attributes
    ----------
    reverse : int
        Edges listed again in the opposite direction (``v u`` after ``u v``), merged into the first.
    exact : int
        Edges listed again in the same direction, merged into the first.
    self_loops : int
        Self-loops ``v v`` dropped (GNNs here add self-loops themselves).
    """

    reverse: int = 0
    exact: int = 0
    self_loops: int = 0

    def __bool__(self) -> bool:
        return bool(self.reverse or self.exact or self.self_loops)

    def describe(self) -> str:
        """One phrase, e.g. ``"merged 312 reverse duplicate(s) and 0 exact duplicate(s), dropped 2 self-loop(s)"``."""
        return (
            f"merged {self.reverse} reverse duplicate(s) and {self.exact} exact duplicate(s), "
            f"dropped {self.self_loops} self-loop(s)"
        )


def clean_edges(pairs) -> tuple[np.ndarray, EdgeCleanup, list[int]]:
    """Undirected simple edges from directed pairs: each edge kept once (its first occurrence, as written),
    later repeats in either direction merged, self-loops dropped.

    Parameters
    ----------
    pairs : array-like of int, shape (n, 2)
        E.g. an edge list's rows, or ``edge_index.T`` of a torch_geometric graph (both directions).

    Returns
    -------
    edges : ndarray of int64, shape (n_edges, 2)
    cleanup : EdgeCleanup
        The counts.
    kept : list of int
        Positions in ``pairs`` of the rows kept.

    Examples
    --------
    >>> e, c, _ = clean_edges([(0, 1), (1, 0), (1, 2), (2, 2), (1, 2)])
    >>> e.tolist(), (c.reverse, c.exact, c.self_loops)
    ([[0, 1], [1, 2]], (1, 1, 1))
    """
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    kept: list[int] = []
    reverse = exact = loops = 0
    for k, (u, v) in enumerate(arr.tolist()):
        if u == v:
            loops += 1
            continue
        key = (u, v) if u < v else (v, u)
        first = seen.get(key)
        if first is None:
            seen[key] = (u, v)
            kept.append(k)
        elif first == (u, v):
            exact += 1
        else:
            reverse += 1
    return arr[kept], EdgeCleanup(reverse, exact, loops), kept


def _warn_cleanup(path, cleanup: EdgeCleanup) -> None:
    if cleanup:
        warnings.warn(f"{path}: {cleanup.describe()}", GraphCleanupWarning, stacklevel=3)


def read_edge_list(path: str | os.PathLike, *, strict: bool = False) -> tuple[np.ndarray, EdgeCleanup]:
    """:func:`load_edge_list` returning the cleanup counts instead of warning (for the command line)."""
    path = Path(path)
    try:
        text = read_input_bytes(path, "an edge list").decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {e.start}); an edge list is plain text, 'u v' per line"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise ValueError(f"{path}:{text.count(chr(10), 0, nul) + 1}: holds a NUL byte (a binary file?); expected text")
    rows: list[tuple[int, int]] = []
    linenos: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"{path}:{lineno}: expected two vertex ids 'u v', got {raw.strip()!r}")
        if not all(_INT_ID.fullmatch(f) for f in fields):  # int() also takes "1_0" and non-ASCII digits
            raise ValueError(f"{path}:{lineno}: vertex ids must be integers, got {raw.strip()!r}")
        u, v = int(fields[0]), int(fields[1])
        if not (_ID_MIN <= u <= _ID_MAX and _ID_MIN <= v <= _ID_MAX):
            raise ValueError(
                f"{path}:{lineno}: vertex id {u if not _ID_MIN <= u <= _ID_MAX else v} is outside the 64-bit integer "
                "range; renumber the vertices 0 .. N-1"
            )
        rows.append((u, v))
        linenos.append(lineno)
    if not rows:
        raise ValueError(f"{path}: no edges found; expected lines 'u v' (two integer vertex ids)")
    edges, cleanup, kept = clean_edges(rows)
    if strict and cleanup:
        kept_set = set(kept)
        bad = next(k for k in range(len(rows)) if k not in kept_set)
        u, v = rows[bad]
        if u == v:
            raise ValueError(f"{path}:{linenos[bad]}: self-loop {u} {v}; remove it (strict=True)")
        first = next(k for k in kept if {rows[k][0], rows[k][1]} == {u, v})
        raise ValueError(
            f"{path}:{linenos[bad]}: duplicate edge {u} {v}, first given on line {linenos[first]}; list it once "
            "(strict=True)"
        )
    if not len(edges):
        raise ValueError(
            f"{path}: no edges found ({cleanup.self_loops} self-loop(s) only, dropped); expected lines 'u v', u != v"
        )
    return edges, cleanup


def load_edge_list(path: str | os.PathLike, *, strict: bool = False) -> np.ndarray:
    """Read an undirected edge list: one edge per line, two integer vertex ids separated by whitespace.

    ``#`` starts a comment (to the end of the line); blank lines are skipped. As graph libraries write them, an
    edge may be listed in both directions (``u v`` and ``v u``, the layout of a torch ``edge_index``) or more
    than once: later repeats are merged into the first occurrence, and self-loops ``v v`` are dropped, with one
    :class:`GraphCleanupWarning` giving the counts (``strict=True`` refuses them instead, naming the line).
    Refused, with the line number: a line without exactly two fields, ids that are not integers, ids outside the
    int64 range. Also refused: a file that is not UTF-8 or holds NUL bytes, and one with no edges.

    Parameters
    ----------
    path : str or PathLike
    strict : bool
        Refuse duplicates and self-loops (``ValueError`` naming the line) instead of merging / dropping them.

    Returns
    -------
    ndarray of int64, shape (n_edges, 2)
        Each undirected edge once, in file order, as first written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.txt"
    >>> _ = p.write_text("# a triangle\\n0 1\\n1 2  # comment\\n\\n2 0\\n")
    >>> load_edge_list(p).tolist()
    [[0, 1], [1, 2], [2, 0]]
    """
    edges, cleanup = read_edge_list(path, strict=strict)
    _warn_cleanup(path, cleanup)
    return edges


def load_npz_graph(path: str | os.PathLike, *, strict: bool = False) -> NpzGraph:
    """Read a Planetoid-style graph saved with ``numpy.savez``.

    Keys: ``edge_index`` (required), integer array of shape ``(2, E)``, each undirected edge once or in both
    directions (torch_geometric stores both); ``x`` (optional), node features ``(N, F)``; ``y`` (optional), integer
    labels ``(N,)``. Other keys are ignored. Self-loop columns are dropped and a column repeated exactly is kept
    once, with one :class:`GraphCleanupWarning` giving the counts (``strict=True`` refuses them); both directions
    of an edge stay as stored (:func:`clean_edges` on ``edge_index.T`` merges them). Refused: a file numpy cannot
    open (not a zip, corrupt or truncated members, members that are not ``.npy``), pickled objects, a missing or
    malformed ``edge_index``, negative or out-of-range ids, ``x``/``y`` of inconsistent length, non-numeric or
    non-finite ``x``.

    Parameters
    ----------
    path : str or PathLike
    strict : bool
        Refuse self-loops and repeated columns instead of dropping / merging them.

    Returns
    -------
    dict
        ``edge_index`` int64 ``(2, E)`` as stored (less self-loops and exact repeats); ``n_vertices`` (rows of
        ``x`` or ``y`` if given, else ``max id + 1``); ``x`` and ``y`` when present.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.npz"
    >>> np.savez(p, edge_index=np.array([[0, 1], [1, 0]]), y=np.array([0, 1, 1]))
    >>> d = load_npz_graph(p)
    >>> d["n_vertices"], d["edge_index"].tolist()
    (3, [[0, 1], [1, 0]])
    """
    out = read_npz_graph(path, strict=strict)
    ei = out["edge_index"]
    loops = ei[0] == ei[1]
    _, first = np.unique(ei.T, axis=0, return_index=True)
    keep = np.zeros(ei.shape[1], dtype=bool)
    keep[first] = True  # the first of each distinct column
    keep &= ~loops
    n_loops = int(loops.sum())
    if not keep.any():
        raise ValueError(f"{path}: edge_index holds only self-loops ({n_loops}); no edges are left")
    _warn_cleanup(path, EdgeCleanup(0, int((~keep).sum()) - n_loops, n_loops))
    out["edge_index"] = ei[:, keep]
    return out


def _check_members(path: Path, z, keys: list[str]) -> None:
    """Refuse, from the ``.npy`` headers alone, members whose arrays would exceed ``tnml.settings.max_dense_bytes``
    (a few-MB archive can declare gigabytes: compression of zeros)."""
    from numpy.lib import format as npy_format

    from tnml import settings
    from tnml.io import format_bytes

    for key in keys:
        try:
            with z.zip.open(f"{key}.npy") as f:
                version = npy_format.read_magic(f)
                read = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
                if version not in read:
                    continue
                shape, _, dtype = read[version](f)
        except (KeyError, ValueError, OSError, zipfile.BadZipFile, zlib.error, EOFError):
            continue  # unreadable headers are reported by the full read below, with numpy's reason
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if need > settings.max_dense_bytes:
            raise settings.MemoryLimitError(
                f"{path}: member {key!r} declares shape {tuple(shape)} of {dtype} ({format_bytes(need)}), more than "
                f"tnml.settings.max_dense_bytes = {format_bytes(settings.max_dense_bytes)}; use a smaller graph, or "
                "raise tnml.settings.max_dense_bytes"
            )


def read_npz_graph(path: str | os.PathLike, *, strict: bool = False) -> NpzGraph:
    """:func:`load_npz_graph` with ``edge_index`` exactly as stored (self-loops and repeats left for the caller,
    e.g. :func:`clean_edges`; refused with ``strict=True``)."""
    path = Path(path)
    check_input_file(path, "a .npz archive")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the archive ({e.strerror or e})") from None
    if magic != b"PK\x03\x04":
        raise ValueError(f"{path}: not a readable .npz archive (no zip header); save it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as z:
            used = [k for k in ("edge_index", "x", "y") if k in z.files]  # other members are never read
            _check_members(path, z, used)
            data = {k: z[k] for k in used}
            files = list(z.files)
    except MemoryLimitError:
        raise
    except ValueError as e:
        raise ValueError(f"{path}: {e} (object arrays are refused; save plain numeric arrays)") from None
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: not a readable .npz archive ({e})") from None
    except Exception as e:  # numpy's readers raise assorted types on corrupt members (struct.error, KeyError, ...)
        raise ValueError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    for key, arr in data.items():
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"{path}: member {key!r} is not a .npy array; save the arrays with numpy.savez")
    if "edge_index" not in data:
        raise ValueError(f"{path}: key 'edge_index' (integer array (2, E)) missing; found keys {sorted(files)}")
    ei = data["edge_index"]
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ValueError(f"{path}: edge_index must have shape (2, E), got {ei.shape}; transpose an (E, 2) array")
    if not np.issubdtype(ei.dtype, np.integer):
        raise ValueError(f"{path}: edge_index must hold integers, got dtype {ei.dtype}")
    if ei.size and ei.dtype.kind == "u" and int(ei.max()) > _ID_MAX:
        raise ValueError(f"{path}: edge_index holds the vertex id {int(ei.max())}, beyond int64; ids are 0 .. N-1")
    ei = ei.astype(np.int64)
    if ei.shape[1] == 0:
        raise ValueError(f"{path}: edge_index has no edges")
    if ei.min() < 0:
        raise ValueError(f"{path}: edge_index holds a negative vertex id {int(ei.min())}; ids are 0 .. N-1")
    loops = np.flatnonzero(ei[0] == ei[1])
    if strict and loops.size:
        c = int(loops[0])
        raise ValueError(
            f"{path}: edge_index column {c} is a self-loop ({int(ei[0, c])}, {int(ei[0, c])}); remove it (strict=True)"
        )
    _, first, counts = np.unique(ei.T, axis=0, return_index=True, return_counts=True)
    if strict and (counts > 1).any():
        col = int(first[np.argmax(counts > 1)])
        raise ValueError(
            f"{path}: edge_index repeats the column ({int(ei[0, col])}, {int(ei[1, col])}); list it once (strict=True)"
        )
    out: NpzGraph = {"edge_index": ei, "n_vertices": 0}  # n_vertices set below
    n = None
    for key in ("x", "y"):
        if key in data:
            arr = data[key]
            if arr.ndim != (2 if key == "x" else 1):
                want = "(N, F)" if key == "x" else "(N,)"
                raise ValueError(f"{path}: {key} must have shape {want}, got {arr.shape}")
            if n is not None and arr.shape[0] != n:
                raise ValueError(f"{path}: x has {n} rows but y has {arr.shape[0]}; both must cover the same vertices")
            n = arr.shape[0]
            if key == "x":
                out["x"] = arr
            else:
                out["y"] = arr
    if "x" in out:
        x = out["x"]
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise ValueError(f"{path}: x must hold numbers, got dtype {x.dtype}")
        if np.issubdtype(x.dtype, np.inexact) and not np.isfinite(x).all():
            r, c = (int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise ValueError(f"{path}: x[{r}, {c}] is {x[r, c]}; node features must be finite (impute them first)")
    if "y" in out and not np.issubdtype(out["y"].dtype, np.integer):
        raise ValueError(f"{path}: y must hold integer class labels, got dtype {out['y'].dtype}")
    top = int(ei.max())
    if n is not None and top >= n:
        raise ValueError(f"{path}: edge_index uses vertex {top} but x/y describe only {n} vertices (ids 0 .. {n - 1})")
    out["n_vertices"] = n if n is not None else top + 1
    return out


def write_edge_list(path: str | os.PathLike, edges: Iterable, header: Iterable[str] = ()) -> Path:
    """Write edges as ``u v`` lines, after ``# ``-prefixed header lines, atomically (no half-written file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_edge_list(pathlib.Path(tempfile.mkdtemp()) / "out.txt", [(0, 1), (1, 2)], ["kept edges"])
    >>> p.read_text()
    '# kept edges\\n0 1\\n1 2\\n'
    """
    lines = [f"# {h}" for h in header] + [f"{u} {v}" for u, v in edges]
    return write_text(path, "\n".join(lines) + "\n")
