"""Loaders for tabular data in CSV files, validated strictly, and an atomic CSV writer.

A CSV file here has a header line of unique column names, then one sample per line; every feature cell is a finite
number. Every problem is a ``ValueError`` that names the file, the line and the column where there is one, what was
expected and what was found, so a command line can print it as one line.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tnml.io import atomic_write, read_input_bytes
from tnml.options import ConstantColumns
from tnml.validation import check_option

__all__ = ["CsvTable", "MAX_ABS", "MISSING", "load_csv", "read_csv_table", "table_arrays", "write_csv"]

#: cells read as a missing value (compared after stripping blanks, case-insensitively)
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})

#: largest feature magnitude accepted: squares of sums of up to ~1e7 such values stay finite in float64
MAX_ABS = 1e150


@dataclass(frozen=True)
class CsvTable:
    """The raw cells of a CSV file.

    Attributes
    ----------
    path : Path
    header : list of str
        Column names, stripped of surrounding blanks.
    rows : list of list of str
        Data rows (blank lines skipped), each as long as :attr:`header`.
    lines : list of int
        The 1-based line of the file each row starts on (the header is line 1 unless blank lines precede it).
    """

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]

    def column(self, name: str) -> int:
        """Index of column ``name``; a ValueError naming the columns there are when it is missing."""
        if name not in self.header:
            shown = ", ".join(repr(c) for c in self.header[:12]) + (", ..." if len(self.header) > 12 else "")
            raise ValueError(f"{self.path}: no column {name!r}; the header has {shown}{self.delimiter_hint()}")
        return self.header.index(name)

    def delimiter_hint(self) -> str:
        """A hint when the header is one column holding another common separator (else an empty string)."""
        if len(self.header) == 1:
            for sep, word in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
                if sep in self.header[0]:
                    return f" (one column only: are the cells separated by {word} instead of ','?)"
        return ""


def read_csv_table(path: str | os.PathLike, delimiter: str = ",") -> CsvTable:
    """Read a CSV file's header and rows as strings, refusing anything malformed.

    Refused: a missing or unreadable file, a file that is not UTF-8 (a leading byte-order mark is allowed), an
    empty file, a file holding NUL bytes (binary data), a header with an empty or repeated column name, a file with
    no data rows, and a row whose number of cells differs from the header's (reported with its line).

    Parameters
    ----------
    path : str or PathLike
    delimiter : str
        Cell separator (default ``,``).

    Returns
    -------
    CsvTable

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = p.write_text("a,b\\n1,2\\n\\n3,4\\n")
    >>> t = read_csv_table(p)
    >>> t.header, t.rows, t.lines
    (['a', 'b'], [['1', '2'], ['3', '4']], [2, 4])
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ValueError(f"{path}: no such file; give the path of a CSV file with a header line")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give the path of a CSV file")
    raw = read_input_bytes(path, "a CSV file with a header line")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}); save the CSV file as UTF-8") from None
    if not text.strip():
        raise ValueError(f"{path}: the file is empty; expected a header line of column names, then one row per sample")
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ValueError(f"{path}:{line}: holds a NUL byte (a binary file?); expected CSV text")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            if not row or all(not c.strip() for c in row):
                continue  # blank line
            if header is None:
                header = [c.strip() for c in row]
                for k, name in enumerate(header):
                    if not name:
                        raise ValueError(f"{path}:{start}: column {k + 1} of the header has no name; name every column")
                    if header.index(name) != k:
                        raise ValueError(
                            f"{path}:{start}: column name {name!r} appears twice in the header; make names unique"
                        )
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}:{start}: expected {len(header)} cells as in the header, got {len(row)} (ragged row)"
                )
            rows.append(row)
            lines.append(start)
    except csv.Error as e:
        raise ValueError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    if header is None:  # e.g. ",,": non-blank text, but every cell is blank
        raise ValueError(f"{path}: no header line: every line is blank or holds only empty cells; expected names")
    if not rows:
        raise ValueError(f"{path}: no data rows after the header; expected one row per sample")
    return CsvTable(path, header, rows, lines)


def _parse_float(cell: str) -> float:
    return float(cell.strip())


def table_arrays(
    table: CsvTable,
    label: str | None = None,
    *,
    constant: ConstantColumns = "error",
    min_samples: int = 2,
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Features and labels of a :class:`CsvTable` (see :func:`load_csv` for the rules)."""
    check_option("constant", constant, ConstantColumns, fix="'drop' removes constant feature columns, 'keep' keeps all")
    path = table.path
    label_col = table.column(label) if label is not None else None
    feat_cols = [k for k in range(len(table.header)) if k != label_col]
    if not feat_cols:
        raise ValueError(f"{path}: no feature columns besides the label column {label!r}")
    if len(table.rows) < min_samples:
        raise ValueError(f"{path}: {len(table.rows)} data row(s); need at least {min_samples} samples")
    X = np.empty((len(table.rows), len(feat_cols)))
    y_cells: list[str] = []
    for i, (row, line) in enumerate(zip(table.rows, table.lines)):
        for j, k in enumerate(feat_cols):
            cell = row[k]
            if cell.strip().lower() in MISSING:
                raise ValueError(
                    f"{path}:{line}: missing value in column {table.header[k]!r} ({cell.strip()!r}); "
                    "impute it or drop the row first"
                )
            try:
                v = _parse_float(cell)
            except ValueError:
                raise ValueError(
                    f"{path}:{line}: column {table.header[k]!r} holds the non-numeric value {cell.strip()!r}; "
                    f"every feature must be a number (encode categorical columns first){table.delimiter_hint()}"
                ) from None
            if not math.isfinite(v):
                raise ValueError(
                    f"{path}:{line}: column {table.header[k]!r} holds {cell.strip()!r}; features must be finite"
                )
            if abs(v) > MAX_ABS:
                raise ValueError(
                    f"{path}:{line}: column {table.header[k]!r} holds {cell.strip()!r}, beyond ±{MAX_ABS:g} (its "
                    "square overflows float64 in standardization); rescale the column first"
                )
            X[i, j] = v
        if label_col is not None:
            cell = row[label_col].strip()
            if cell.lower() in MISSING:
                raise ValueError(f"{path}:{line}: missing label in column {label!r}; drop unlabeled rows first")
            y_cells.append(cell)
    names = [table.header[k] for k in feat_cols]
    if constant != "keep":
        const = np.all(X == X[:1], axis=0)
        if const.any():
            bad = [n for n, c in zip(names, const) if c]
            shown = ", ".join(repr(b) for b in bad[:8]) + (", ..." if len(bad) > 8 else "")
            if constant == "error":
                raise ValueError(
                    f"{path}: {len(bad)} constant feature column(s) ({shown}) carry no information; "
                    "remove them or ask for them to be dropped (--drop-constant / constant='drop')"
                )
            X = X[:, ~const]
            names = [n for n, c in zip(names, const) if not c]
            if not names:
                raise ValueError(f"{path}: every feature column is constant; nothing is left")
    y = None
    if label_col is not None:
        try:
            nums = np.array([float(c) for c in y_cells])
        except ValueError:
            y = np.array(y_cells)
        else:
            bad_rows = np.flatnonzero(~np.isfinite(nums))
            if bad_rows.size:
                i = int(bad_rows[0])
                raise ValueError(
                    f"{path}:{table.lines[i]}: label {y_cells[i]!r} in column {label!r} is not a finite number; "
                    "use class names or finite numbers as labels"
                )
            integral = np.all(nums == np.round(nums)) and np.all(np.abs(nums) < 2.0**53)
            y = nums.astype(np.int64) if integral else nums
    return X, y, names


def load_csv(
    path: str | os.PathLike,
    label: str | None = None,
    *,
    constant: ConstantColumns = "error",
    delimiter: str = ",",
    min_samples: int = 2,
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Read a numeric CSV data set: features ``X``, labels ``y`` (the ``label`` column) and feature names.

    Every column but ``label`` is a feature. Refused, each with a ``ValueError`` naming file, line and column: all
    the problems of :func:`read_csv_table` (missing file, not UTF-8, empty, ragged rows), a ``label`` column that is
    not in the header, a missing value (an empty cell or one of :data:`MISSING` such as ``NA``, ``NaN``, ``?``) in
    a feature or the label, a non-numeric or non-finite feature cell, a feature beyond ``±MAX_ABS`` (1e150), a
    label that is a non-finite number (``inf``), fewer than ``min_samples`` rows, and constant
    feature columns (unless ``constant`` says otherwise).

    Parameters
    ----------
    path : str or PathLike
    label : str, optional
        Name of the label column; None: every column is a feature and ``y`` is None.
    constant : {"error", "drop", "keep"}
        What to do with feature columns that hold one value in every row: refuse them (default; they carry no
        information and have no defined correlation), drop them (their names leave ``names``), or keep them.
    delimiter : str
    min_samples : int
        Fewest data rows accepted.

    Returns
    -------
    X : ndarray of float64, shape (n_samples, n_features)
    y : ndarray (n_samples,) or None
        Integers when every label is an integer, floats when every label is a number, else strings.
    names : list of str
        Feature names, in column order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = p.write_text("a,label,b\\n1.5,0,2\\n3,1,-4\\n")
    >>> X, y, names = load_csv(p, label="label")
    >>> X.tolist(), y.tolist(), names
    ([[1.5, 2.0], [3.0, -4.0]], [0, 1], ['a', 'b'])
    """
    return table_arrays(read_csv_table(path, delimiter), label, constant=constant, min_samples=min_samples)


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a header and rows as a UTF-8 CSV file, atomically (no partial file on failure)."""

    def w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(list(header))
            writer.writerows(rows)

    return atomic_write(path, w)
