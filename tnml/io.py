"""Safe file output.

- Atomic writes: write to a temporary file (unique per process) in the same folder, fsync it, then rename (no
  half-written files, even after SIGKILL or a power cut). Checkpoints use the same scheme: :mod:`tnml.checkpoint`.
  Only regular files are ever replaced (:func:`check_replaceable`: never a device such as ``/dev/null``, a FIFO
  or a link), and new files get the umask's mode (:func:`default_file_mode`), like ``open(path, "w")``.
- :class:`FolderLock`: one run at a time per experiment folder (an OS lock, released by the kernel even on
  SIGKILL); a second run is refused with a :class:`FolderLockedError` naming the holder.
- :func:`check_no_symlinks`: run folders are never entered through a symbolic link.
- :func:`check_output_file`: a command's output never replaces one of its inputs (same inode, also through hard
  or symbolic links) nor an existing file that tnml did not write, unless the caller forces it.
- :func:`format_bytes`: sizes in messages (memory guards of the contraction code, file loaders), below both.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def format_bytes(n: float) -> str:
    """Human-readable size in binary units, three significant digits.

    Parameters
    ----------
    n : float
        A number of bytes.

    Returns
    -------
    str

    Examples
    --------
    >>> format_bytes(3 * 2**30)
    '3 GiB'
    >>> format_bytes(1500)
    '1.46 KiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = "") -> Path:
    """Call ``write(tmp_path)``, flush it to disk, then move the temporary file onto ``path`` atomically.

    The file gets the mode a plain ``open(path, "w")`` would give (``0o666`` less the umask), not the temporary
    file's ``0o600``. Only a regular file (or nothing) at ``path`` is replaced: a device, FIFO, socket, folder or
    symbolic link there is refused (:class:`OutputPathError`) before anything is written.
    """
    path = Path(path)
    check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, default_file_mode())
        _fsync(tmp)
        check_replaceable(path)  # again: something may have appeared there while we wrote
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def default_file_mode() -> int:
    """``0o666`` less the process's umask: the mode ``open(path, "w")`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_replaceable(path: str | os.PathLike, option: str | None = None) -> None:
    """Refuse ``path`` when something other than a regular file is there (a device such as ``/dev/null``, a FIFO,
    a socket, a folder, a symbolic link): tnml's atomic writes rename a new file over the target, which would
    turn such an entry into a plain file.

    Raises
    ------
    OutputPathError
        One line naming the path, what it is and the fix.
    """
    try:
        st = os.lstat(path)
    except OSError:  # nothing there, or a parent that is no folder: the write itself reports that
        return
    if stat.S_ISREG(st.st_mode):
        return
    raise OutputPathError(
        f"{_named(path, option)} is {_kind(st.st_mode)}, not a regular file; tnml writes output files by replacing "
        "them and replaces only regular files (--force included); give a file path"
    )


def _named(path, option: str | None) -> str:
    return f"{option} {str(path)!r}" if option else repr(str(path))


#: what a non-regular file is, for messages: the first test that holds names it
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def read_input_bytes(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> bytes:
    """The bytes of an input file, read only if it is a regular file no larger than ``max_bytes``
    (default ``tnml.settings.max_input_bytes``), judged from ``stat`` before reading: a FIFO would block forever
    and ``/dev/zero`` never ends.

    Parameters
    ----------
    path : path
    what : str
        What the file should be, for the messages (``"an edge list"``, ``"a CSV file"``).
    max_bytes : int, optional

    Raises
    ------
    ValueError
        Missing, a folder or special file, unreadable; ``tnml.MemoryLimitError`` (a ``ValueError``) when too large.
    """
    size = check_input_file(path, what, max_bytes)
    try:
        with open(path, "rb") as f:
            data = f.read(size + 1)
    except OSError as e:
        raise ValueError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if len(data) > size:  # grew while we read: judge it again rather than read without bound
        check_input_file(path, what, max_bytes)
        raise ValueError(f"{path}: the file changed while being read; try again")
    return data


def check_input_file(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> int:
    """The size of ``path`` after checking that it is a regular file (symbolic links followed) of at most
    ``max_bytes`` (default ``tnml.settings.max_input_bytes``); see :func:`read_input_bytes`."""
    from tnml import settings

    limit = settings.max_input_bytes if max_bytes is None else int(max_bytes)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; give the path of {what}") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: is {_kind(st.st_mode)}, not a regular file; give the path of {what}")
    if st.st_size > limit:
        raise settings.MemoryLimitError(
            f"{path}: {format_bytes(st.st_size)}, more than tnml.settings.max_input_bytes = {format_bytes(limit)} "
            f"for {what}; use a smaller file, or raise tnml.settings.max_input_bytes"
        )
    return int(st.st_size)


def write_text(path: str | os.PathLike, text: str) -> Path:
    def w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, w)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def save_figure(fig, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format from the final suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs))


def _fsync(file: str) -> None:
    fd = os.open(file, os.O_RDWR)  # write access: Windows refuses to flush a read-only handle
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _jsonable(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot serialize {type(o).__name__} to JSON")


# ---------------------------------------------------------------------------------------------- output safety
class OutputPathError(ValueError):
    """An output path that tnml refuses to write: a symlink inside a run folder, an input file, a foreign file."""


class FolderLockedError(OutputPathError):
    """Another process holds the run lock of a folder."""


#: name of the lock file :class:`FolderLock` keeps in a folder while it holds it (removed on release)
LOCK_NAME = ".tnml.lock"


class FolderLock:
    """An exclusive, non-blocking lock on ``folder`` for one process (``flock`` on POSIX, ``msvcrt.locking`` on
    Windows), released on :meth:`release`, on exit, or by the kernel when the process dies (SIGKILL included).

    The lock file records the holder (pid, host, start time, command line) so that a refused run can say who
    holds it. Use as a context manager.

    Raises
    ------
    FolderLockedError
        On entry, when another process holds the lock: one line naming the holder and how to proceed.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        check_no_symlinks(self.path, self.folder)
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            if not _try_lock(fd):
                try:
                    holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "a process starting up"
                finally:
                    os.close(fd)
                raise FolderLockedError(
                    f"{str(self.folder)!r} is in use by another tnml run ({holder}); wait for it to finish, or "
                    "give another --out"
                )
            # the holder removes the file on release: a lock on a file that is no longer at `path` guards nothing
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            _unlock(fd)
            os.close(fd)
        else:  # pragma: no cover - a hundred releases in a row between our open and lock
            raise FolderLockedError(f"{str(self.folder)!r}: could not take the run lock; try again")
        os.ftruncate(fd, 0)
        now = datetime.datetime.now().isoformat(timespec="seconds")
        argv = " ".join(sys.argv[:6])[:200]
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {now}: {argv}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                self.path.unlink(missing_ok=True)  # while still locked: see acquire's inode check
            finally:
                _unlock(self._fd)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:  # BlockingIOError: held by another open file description
        return False


def _unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def check_no_symlinks(path: str | os.PathLike, root: str | os.PathLike) -> None:
    """Refuse ``path`` when it, or any folder between ``root`` (exclusive, the user's choice) and it, is a
    symbolic link: tnml writes inside run folders only through real folders.

    Raises
    ------
    OutputPathError
    """
    path, root = Path(path), Path(root)
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
        root = path.parent
    cur = root
    for part in rel.parts:
        cur = cur / part
        if cur.is_symlink():
            raise OutputPathError(
                f"{str(cur)!r} is a symbolic link (to {os.readlink(cur)!r}); tnml does not write through links "
                "inside a run folder; remove the link or give another --out"
            )


def check_output_file(
    out: str | os.PathLike,
    *,
    option: str = "--out",
    inputs: dict[str, str | os.PathLike] | None = None,
    force: bool = False,
    ours=None,
) -> None:
    """Refuse to write ``out`` when it is one of ``inputs`` (the same file: same inode, so hard and symbolic
    links count), when it is anything but a regular file (a device, FIFO, socket or symbolic link: never
    replaced), or when it exists and is not a file tnml wrote (``ours(path) -> bool`` recognizes tnml's own
    outputs), unless ``force``.

    Parameters
    ----------
    out : path
        The output file.
    option : str
        How the user named it (``"--out"``, ``"--permutation"``), for the message.
    inputs : dict, optional
        ``{option or role: path}`` of the files the command reads.
    force : bool
        Replace an existing foreign regular file (never an input, never a special file).
    ours : callable, optional
        Recognizes a file tnml wrote (e.g. by its header); such files are replaced without ``force``.

    Raises
    ------
    OutputPathError
        One line naming the option, the file and the fix.
    """
    out = Path(out)
    if out.is_dir():
        raise OutputPathError(f"{option} {str(out)!r} is a folder; give a file name")
    if not (out.exists() or out.is_symlink()):
        return
    for role, src in (inputs or {}).items():
        try:
            same = os.path.samefile(out, src)
        except OSError:
            same = False
        if same:
            raise OutputPathError(
                f"{option} {str(out)!r} is the input {role} {str(src)!r} (the same file); writing it would destroy "
                f"the input; give a different {option}"
            )
    check_replaceable(out, option)  # a device, FIFO or link is never replaced, --force or not
    if force:
        return
    if ours is not None:
        try:
            if ours(out):
                return
        except (OSError, ValueError, UnicodeDecodeError):
            pass
    raise OutputPathError(
        f"{option} {str(out)!r} already exists and was not written by tnml; give another {option}, or pass "
        "--force to replace it"
    )


def starts_with(prefix: bytes) -> Callable[[Path], bool]:
    """A recognizer for :func:`check_output_file`: the file's first bytes are ``prefix``."""

    def check(path: Path) -> bool:
        with open(path, "rb") as f:
            return f.read(len(prefix)) == prefix

    return check
