"""Loader (and writer) for the IDX format of the MNIST files, validated strictly.

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim`` sizes as big-endian unsigned
32-bit integers, then the values in C order, big-endian. Dtype codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B``
int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64. Files compressed with gzip (``train-images-idx3-ubyte.gz``)
are read directly. Every problem is a ``ValueError`` naming the file, the byte offset where there is one, what was
expected and what was found; a file larger than ``tnml.settings.max_dense_bytes`` is refused with
:class:`tnml.MemoryLimitError` before anything is allocated.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from tnml import settings
from tnml.io import atomic_write, check_input_file, format_bytes

__all__ = ["IDX_DTYPES", "load_idx", "write_idx"]

#: dtype code -> big-endian numpy dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_exact(f, n: int, path: Path, what: str, offset: int) -> bytes:
    try:
        data = f.read(n)
    except (OSError, EOFError, zlib.error) as e:  # gzip: corrupt or truncated stream
        raise ValueError(f"{path}: corrupt gzip data while reading the {what} at byte {offset} ({e})") from None
    if len(data) != n:
        raise ValueError(
            f"{path}: truncated file: expected {n} bytes for the {what} at byte {offset}, found {len(data)}; "
            "download or write the file again"
        )
    return data


def load_idx(path: str | os.PathLike, *, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) as a numpy array in native byte order.

    Refused, each with a ``ValueError`` naming the file: a missing or unreadable file, a magic number that does not
    start with two zero bytes (not an IDX file), an unknown dtype code, zero dimensions, a size of zero, a header or
    data section shorter than the header announces (truncated), bytes after the data (a wrong header or
    concatenated files), non-finite values in a float file, and a corrupt gzip stream. Never reads more than the
    header announces plus one byte.

    Parameters
    ----------
    path : str or PathLike
    max_bytes : int, optional
        Largest data section accepted (default ``tnml.settings.max_dense_bytes``).

    Returns
    -------
    ndarray, shape given by the header
        Native byte order; dtype from the dtype code (uint8 for the MNIST images and labels).

    Raises
    ------
    ValueError
        For a malformed file (see above).
    tnml.MemoryLimitError
        If the header announces more than ``max_bytes`` of data.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_idx(pathlib.Path(tempfile.mkdtemp()) / "x.idx", np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> load_idx(p).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    path = Path(path)
    limit = settings.max_dense_bytes if max_bytes is None else int(max_bytes)
    if not path.exists():
        raise ValueError(f"{path}: no such file; give the path of an IDX file (e.g. train-images-idx3-ubyte)")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give the path of an IDX file")
    check_input_file(path, "an IDX file")  # a regular file (a FIFO would block), within max_input_bytes
    try:
        with open(path, "rb") as raw:
            head = raw.read(2)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the file ({e.strerror or e})") from None
    compressed = head == _GZIP_MAGIC
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as f:
            return _read(f, path, limit)
    except OSError as e:  # pragma: no cover - opening succeeded above; a race or a vanished mount
        raise ValueError(f"{path}: cannot read the file ({e.strerror or e})") from None


def _read(f, path: Path, limit: int) -> np.ndarray:
    magic = _read_exact(f, 4, path, "magic number", 0)
    if magic[:2] != b"\x00\x00":
        raise ValueError(
            f"{path}: not an IDX file: the magic number starts with bytes {magic[:2].hex(' ')}, expected 00 00 "
            "(then a dtype code and the number of dimensions)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX dtype code 0x{code:02X} at byte 2; expected one of {known}")
    if ndim == 0:
        raise ValueError(f"{path}: the IDX header gives 0 dimensions (byte 3); expected at least 1")
    dims = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, path, f"{ndim} dimension sizes", 4))
    dtype = IDX_DTYPES[code]
    count = 1
    for d in dims:
        count *= d
    if count == 0:
        raise ValueError(f"{path}: the IDX header gives the shape {dims}, which holds no values")
    need = count * dtype.itemsize
    if need > limit:
        raise settings.MemoryLimitError(
            f"{path}: the IDX header announces {format_bytes(need)} of data (shape {dims}, {dtype.name}) but the "
            f"limit tnml.settings.max_dense_bytes is {format_bytes(limit)}; raise it (or pass max_bytes=...) if the "
            "file is genuine, or load a smaller file"
        )
    start = 4 + 4 * ndim
    data = _read_exact(f, need, path, f"data of shape {dims} ({dtype.name})", start)
    try:
        extra = f.read(1)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt gzip data after byte {start + need} ({e})") from None
    if extra:
        raise ValueError(
            f"{path}: bytes after the data (byte {start + need} onwards): the header's shape {dims} does not cover "
            "the file; the header is wrong or files were concatenated"
        )
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    if dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
        if bad.size:
            pos = tuple(int(i) for i in np.unravel_index(int(bad[0]), dims))
            raise ValueError(f"{path}: value at index {pos} is {arr[pos]}; IDX data here must be finite")
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array) -> Path:
    """Write ``array`` as an (uncompressed) IDX file, atomically; the dtype must be one of :data:`IDX_DTYPES`.

    Parameters
    ----------
    path : str or PathLike
    array : array-like, 1 to 255 dimensions, each below 2**32

    Returns
    -------
    pathlib.Path
        The path written.
    """
    arr = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_DTYPES.items()}
    native = arr.dtype.newbyteorder("=")
    if native not in codes:
        names = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise ValueError(f"array has dtype {arr.dtype}; IDX stores {names}; convert it with .astype(...)")
    if not 1 <= arr.ndim <= 255 or any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"array has shape {arr.shape}; IDX needs 1 to 255 dimensions, each below 2**32")
    code = codes[native]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()

    def w(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(header + body)

    return atomic_write(path, w)
