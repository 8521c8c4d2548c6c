"""Checkpoints that survive SIGKILL: atomic writes, safe loads, and the RNG states a bit-identical resume needs.

A :class:`Checkpointer` owns one file. :meth:`Checkpointer.save` writes the state with ``torch.save`` to a temporary
file in the same folder, flushes and ``fsync``\\ s it, then moves it onto the final name with ``os.replace`` (atomic
on POSIX and Windows): a reader only ever sees the previous complete checkpoint or the new complete one, never a
half-written file, even if the process is killed mid-save. :meth:`Checkpointer.load` uses
``torch.load(..., weights_only=True)``, which refuses pickled code: a checkpoint holds only tensors, numbers,
strings, lists, tuples and dicts.

A state is a plain dict; :func:`training_state` and :func:`restore_training_state` build and restore the usual one
(a loop becomes resumable in a few lines, as :func:`tnml.experiments.training.train_classifier` shows). Training
loops store ``model``/``optimizer``/``scheduler`` state dicts, the RNG states
from :func:`rng_state` (torch CPU and CUDA, numpy's legacy global generator, Python's ``random``) and those of any
``torch.Generator`` they draw from, progress counters and the partial history; ``meta`` holds whatever identifies
the run (experiment, seed, sizes), checked on load so that a checkpoint from other settings is refused rather than
silently continued.

Examples
--------
>>> import tempfile, torch
>>> from tnml.checkpoint import Checkpointer
>>> ck = Checkpointer(tempfile.mkdtemp() + "/run.pt", meta={"seed": 0})
>>> ck.load() is None                     # nothing saved yet
True
>>> ck.save({"epoch": 3, "weights": torch.ones(2)})
>>> ck.load()["epoch"]
3
>>> Checkpointer(ck.path, meta={"seed": 1}).load()  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
CheckpointError: checkpoint ... was written by another experiment or other settings ...
"""

from __future__ import annotations

import glob
import os
import random
import re
import socket
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from tnml.io import check_replaceable, default_file_mode

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "restore_training_state",
    "rng_state",
    "set_rng_state",
    "training_state",
]

#: bumped when the layout of the saved dict changes incompatibly
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, truncated, or written by another run or other settings."""


class Checkpointer:
    """One checkpoint file: atomic :meth:`save`, safe :meth:`load`, and an interval :meth:`due`.

    Parameters
    ----------
    path : str or PathLike
        The checkpoint file (its folder is created on the first save).
    every : int, default 1
        Save interval in the caller's progress unit (:func:`tnml.experiments.training.train_classifier`: epochs).
        :meth:`due` says whether progress ``k`` is a save point: every ``every``-th one, and the last one.
    meta : dict, optional
        What identifies the run (experiment name, seed, sizes, ...): stored with every save; :meth:`load` refuses
        a file whose ``meta`` differs. Numbers, strings, bools, None, and lists/tuples/dicts of those.
    resume : bool, default True
        ``False``: ignore an existing file (:meth:`load` returns None; the next save overwrites it).
    """

    def __init__(
        self, path: str | os.PathLike, *, every: int = 1, meta: dict | None = None, resume: bool = True
    ) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be an int >= 1 (save each `every` epochs/steps), got {every!r}")
        self.path = Path(path)
        self.every = every
        self.meta = dict(meta or {})
        self.resume = resume

    def __repr__(self) -> str:
        return f"Checkpointer({str(self.path)!r}, every={self.every}, resume={self.resume})"

    def due(self, done: int, total: int | None = None) -> bool:
        """Whether to save after ``done`` units of progress (each ``every``-th, and at ``total``)."""
        return done % self.every == 0 or (total is not None and done >= total)

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (plus ``meta`` and the format version) atomically: temp file, fsync, ``os.replace``."""
        payload = _storable({"format": FORMAT_VERSION, "meta": self.meta, "state": state}, "checkpoint")
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        check_replaceable(self.path)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.{_owner_tag()}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
                f.flush()
                if hasattr(os, "fchmod"):  # POSIX: the umask's mode, not mkstemp's 0600
                    os.fchmod(f.fileno(), default_file_mode())
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_dir(folder)
        self._drop_stale_temps()

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none (or ``resume=False``).

        Raises
        ------
        CheckpointError
            The file is not a readable checkpoint (truncated, garbage, or holds pickled objects), was written by
            an incompatible version, or its ``meta`` differs from this checkpointer's.
        """
        if not self.resume or not self.exists():
            return None
        fix = "delete it or run without --resume"
        try:
            with zipfile.ZipFile(self.path) as z:  # CRC-32 of every record: torch's loader misses flipped bits
                bad = z.testzip()
            if bad is not None:
                raise CheckpointError(f"checkpoint {str(self.path)!r} is damaged (record {bad!r} fails its CRC "
                                      f"check); {fix}")
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except CheckpointError:
            raise
        except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
            reason = _one_line(e, 120) or type(e).__name__
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} cannot be read ({type(e).__name__}: {reason}); {fix}"
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION or "state" not in payload:
            version = payload.get("format") if isinstance(payload, dict) else None
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} is not a tnml checkpoint of format {FORMAT_VERSION} "
                f"(found format {version!r}); {fix}"
            )
        saved = payload.get("meta")
        if _plain(saved) != _plain(self.meta):
            diff = sorted(
                k
                for k in set(saved or {}) | set(self.meta)
                if _plain((saved or {}).get(k)) != _plain(self.meta.get(k))
            )
            shown = ", ".join(f"{k}: {(saved or {}).get(k)!r} there, {self.meta.get(k)!r} now" for k in diff[:3])
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} was written by another experiment or other settings ({shown}); {fix}"
            )
        return payload["state"]

    def remove(self) -> None:
        """Delete the checkpoint file (and stale temp files) if present."""
        self.path.unlink(missing_ok=True)
        if self.path.parent.is_dir():
            self._drop_stale_temps()

    def _drop_stale_temps(self) -> None:
        """Remove temp files of saves killed by SIGKILL (no ``except`` ran) -- only those this process wrote or
        whose writer (pid on this host, recorded in the name) is gone: another live process's save in progress
        is never touched."""
        for stale in self.path.parent.glob(f".{glob.escape(self.path.name)}.*.tmp"):
            if _temp_is_orphan(stale.name[len(self.path.name) + 2 :]):
                stale.unlink(missing_ok=True)


def _owner_tag() -> str:
    """``HOST-PID`` of this process, put in temp-file names so that cleanup knows whose they are."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"


def _temp_is_orphan(rest: str) -> bool:
    """Whether a temp file named ``.NAME.HOST-PID.XXXX.tmp`` (``rest`` = ``HOST-PID.XXXX.tmp``) belongs to this
    process or to a process of this host that no longer runs. Files of other hosts or older formats are kept."""
    tag = rest.split(".", 1)[0]
    host, _, pid = tag.rpartition("-")
    if not pid.isdigit() or host != _owner_tag().rpartition("-")[0]:
        return False
    pid_i = int(pid)
    if pid_i == os.getpid():
        return True
    try:
        os.kill(pid_i, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):  # alive (another user's) or unknowable: keep it
        return False
    return False


def _one_line(e: BaseException, limit: int) -> str:
    """An exception's message on one line (torch's state-dict errors span several), without terminal escapes
    (torch's load errors carry ANSI bold) or other control characters, cut to ``limit`` chars."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(e))
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _storable(obj: Any, where: str) -> Any:
    """``obj`` with numpy numbers / arrays as Python numbers / tensors and paths as strings, so that a
    ``weights_only`` load reads it back; anything else that is not a torch object, a number, a string, bytes, None
    or a dict / list / tuple of those is refused here, at the save, naming its key (it would make the checkpoint
    unreadable only at the resume)."""
    if isinstance(obj, np.generic):  # first: np.float64 is a float, np.bool_ is not a bool
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return obj
    if isinstance(obj, torch.Tensor) or type(obj).__module__.split(".")[0] == "torch":
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj))
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, dict):
        items = {k: _storable(v, f"{where}[{k!r}]") for k, v in obj.items()}
        return OrderedDict(items) if isinstance(obj, OrderedDict) else items
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(_storable(v, f"{where}[{i}]") for i, v in enumerate(obj))
    raise TypeError(f"{where} holds a {type(obj).__module__}.{type(obj).__qualname__}, which a checkpoint cannot "
                    "store; convert it to numbers, strings, tensors or dicts / lists of those")


def _plain(obj: Any) -> Any:
    """Tuples and lists compare equal after a save/load round trip (torch keeps both, JSON-like meta may not)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """The global RNG states (torch CPU, CUDA if initialized, numpy's legacy global, Python ``random``) as
    tensors, numbers and tuples only, so that ``torch.load(weights_only=True)`` reads them back.

    ``torch.Generator`` objects a loop owns are not global: store ``gen.get_state()`` next to this.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": (version, torch.tensor(internal, dtype=torch.int64), gauss_next),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states returned by :func:`rng_state` (the CUDA ones only where CUDA is available)."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------- training loops
def training_state(
    progress: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    generators: tuple[torch.Generator, ...] | list[torch.Generator] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The state a loop saves after ``progress`` epochs/steps: model, optimizer and scheduler state dicts, the
    states of the ``generators`` it draws from, the global RNG states (:func:`rng_state`), and ``extra`` (partial
    history, best-so-far values, ...: tensors, numbers, strings and containers of those)."""
    return {
        "progress": int(progress),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "generators": [g.get_state() for g in generators],
        "rng": rng_state(),
        "extra": extra,
    }


def restore_training_state(
    state: dict[str, Any],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    generators: tuple[torch.Generator, ...] | list[torch.Generator] = (),
    source: str = "checkpoint",
) -> tuple[int, dict[str, Any]]:
    """Load a :func:`training_state` into the loop's objects (in place) and restore the global RNG states.

    Returns
    -------
    progress : int
        Epochs/steps done: continue from there.
    extra : dict
        The ``extra`` values saved with it.

    Raises
    ------
    CheckpointError
        The state does not fit these objects (other shapes, other optimizer, other number of generators);
        ``source`` (e.g. the file name) is named in the message.
    """
    try:
        gens = list(generators)
        if len(state["generators"]) != len(gens):
            raise ValueError(f"{len(state['generators'])} generator states saved, {len(gens)} generators given")
        model.load_state_dict(state["model"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        for g, gs in zip(gens, state["generators"]):
            g.set_state(gs)
        set_rng_state(state["rng"])
        return int(state["progress"]), dict(state["extra"])
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        why = _one_line(e, 200)
        raise CheckpointError(
            f"{source} does not fit this training loop ({type(e).__name__}: {why}); "
            "delete it or run without --resume"
        ) from None
