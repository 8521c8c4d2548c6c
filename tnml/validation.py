"""Argument validation shared by every layer (models, entanglement, dynamics, preprocessing, data, commands).

One place for the checks that public functions repeat, so that every refusal has the same shape: the parameter,
what it must be, the value received, and the fix — ``"bond_dim must be an integer >= 1, got 0"``. Integers accept
Python ints, numpy integers and 0-d integer tensors (``MPS(np.int64(8))``), never bools; a value of the wrong type
raises :class:`ArgumentTypeError`, which is both a ``TypeError`` and a ``ValueError``. Site lists accept integer
tensors and arrays. Size guards work from the hyperparameters alone, in O(1), *before* anything is built
(:func:`check_model_size`).

Examples
--------
>>> from tnml.validation import as_int, as_float
>>> as_int("n_sites", __import__("numpy").int64(8))
8
>>> as_int("bond_dim", 0, 1, fix="the bond dimension D")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
ValueError: bond_dim must be an integer >= 1, got 0; the bond dimension D
>>> as_float("tol", float("nan"), minimum=0.0)  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
ValueError: tol=nan must be a finite number >= 0.0
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import torch

from tnml import settings
from tnml.io import format_bytes
from tnml.options import choices as option_values
from tnml.settings import MemoryLimitError

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = [
    "ArgumentTypeError",
    "as_float",
    "as_int",
    "check_dense_bytes",
    "check_device",
    "check_finite_cores",
    "check_model_size",
    "check_option",
    "grid_shape",
    "id_list",
    "is_int",
    "optional_positive_int",
    "optional_tol",
    "positive_int",
]


def is_int(value: object) -> TypeIs[int | np.integer | torch.Tensor]:
    """Whether ``value`` is a Python / numpy integer or a 0-d integer tensor (never a bool).

    Parameters
    ----------
    value : object
        Anything.

    Returns
    -------
    bool
        For a type checker, ``False`` also removes ``int`` from the value's type (``int | Sequence[int]`` becomes
        ``Sequence[int]``).
    """
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return False
    if isinstance(value, torch.Tensor):
        integral = not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)
        return value.ndim == 0 and integral
    return isinstance(value, numbers.Integral)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a float or a string where an integer count belongs, ...).

    A ``TypeError`` that is also a ``ValueError``: code written against either keeps catching tnml's refusals
    (the library's checks raised one or the other before they were gathered here)."""


def _int_range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    return "an integer" if maximum is None else f"an integer <= {maximum}"


def as_int(name: str, value, minimum: int | None = None, maximum: int | None = None, fix: str = "") -> int:
    """``value`` as a Python int, or an error naming ``name``, the accepted range, the value and ``fix``.

    Accepted: Python ints, numpy integers, 0-d integer tensors (never bools). Messages read
    ``"{name} must be an integer >= {minimum}, got {value!r}; {fix}"`` (``in [minimum, maximum]`` with both bounds).

    Raises
    ------
    ArgumentTypeError
        ``value`` is not an integer (also a ``TypeError`` and a ``ValueError``).
    ValueError
        Out of range.
    """
    want = _int_range(minimum, maximum)
    if not is_int(value):
        raise ArgumentTypeError(f"{name} must be {want}, got {value!r} (a {type(value).__name__}){_fix(fix)}")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be {want}, got {value!r}{_fix(fix)}")
    return v


def positive_int(name: str, value, minimum: int = 1, fix: str = "") -> int:
    """A count: :func:`as_int` with a lower bound (default 1)."""
    return as_int(name, value, minimum, fix=fix)


def grid_shape(value, n_features: int, name: str = "shape") -> tuple[int, int]:
    """A 2-D grid ``(h, w)`` of positive ints with ``h * w = n_features`` (row-major sites ``r * w + c``)."""
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two positive ints (h, w), got {value!r}") from None
    if h < 1 or w < 1 or h * w != n_features:
        raise ValueError(f"{name}={(h, w)} must be (h, w) with positive h, w and h * w = n_features = {n_features}")
    return h, w


def optional_positive_int(name: str, value, minimum: int = 1, fix: str = "") -> int | None:
    """None, or a count as in :func:`positive_int`."""
    return None if value is None else positive_int(name, value, minimum, fix)


def as_float(
    name: str,
    value,
    *,
    minimum: float | None = None,
    positive: bool = False,
    finite: bool = True,
    fix: str = "",
) -> float:
    """``value`` as a real float (NaN always refused; inf refused when ``finite``); ``minimum`` inclusive,
    ``positive`` strict. Strings, complex numbers and bools are ``TypeError``."""
    ok_type = isinstance(value, (numbers.Real, np.floating, np.integer)) or (
        isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_complex() and value.dtype != torch.bool
    )
    if isinstance(value, (bool, np.bool_)) or not ok_type:
        raise ArgumentTypeError(f"{name}={value!r} must be a real number, got a {type(value).__name__}{_fix(fix)}")
    v = float(value)
    want = "a finite number" if finite else "a number (not NaN)"
    if positive:
        want += " > 0"
    elif minimum is not None:
        want += f" >= {minimum}"
    bad = math.isnan(v) or (finite and math.isinf(v)) or (positive and not v > 0)
    bad = bad or (minimum is not None and not v >= minimum)
    if bad:
        raise ValueError(f"{name}={value!r} must be {want}{_fix(fix)}")
    return v


def optional_tol(tol, name: str = "tol") -> float | None:
    """A relative tolerance: None (the routine's default) or a finite real number >= 0."""
    if tol is None:
        return None
    return as_float(name, tol, minimum=0.0, fix="a relative threshold such as 1e-10, or None for the default")


def id_list(value):
    """A torch tensor of ids (site ids, vertex ids) becomes a numpy array (the form the callers check quickly);
    anything else passes through unchanged for the caller's own checks. A float tensor stays float and is refused
    by the caller's integer check, with the offending value."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().reshape(-1).numpy()
    return value


def check_device(device, name: str = "device"):
    """``device`` unchanged, after checking that it names a torch device this install can use (a CUDA request on
    a machine without CUDA is refused in tnml's words, not torch's ``AssertionError``)."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name}={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{name}={device!r} asks for CUDA, but this torch install has no usable CUDA device "
                f"(torch {torch.__version__}, cuda {torch.version.cuda}); use device='cpu' or install a CUDA build"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{name}={device!r}: only {torch.cuda.device_count()} CUDA device(s) here; use cuda:0.."
                f"{torch.cuda.device_count() - 1}"
            )
    return device


def _element_size(dtype) -> int:
    if dtype is None:
        dtype = torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float32, got {dtype!r}")
    return torch.empty((), dtype=dtype).element_size()


def check_model_size(
    what: str, *, n_params: int, n_tensors: int, dtype=None, device=None, fix: str = "smaller sizes"
) -> None:
    """Refuse, before building anything, a model whose parameters need more than
    ``tnml.settings.max_param_bytes`` or that has more than ``tnml.settings.max_tensors`` tensors; also checks
    ``device`` and ``dtype``. ``n_params`` and ``n_tensors`` are Python ints computed from the hyperparameters
    (O(1), exact or an upper estimate).

    Raises
    ------
    MemoryLimitError
        With the size needed, the setting and the fix.
    ValueError, TypeError
        An unusable ``device`` or ``dtype``.
    """
    check_device(device)
    need = int(n_params) * _element_size(dtype)
    if need > settings.max_param_bytes:
        err = MemoryLimitError(
            f"{what} needs {format_bytes(need)} of parameters ({n_params:.3g} numbers), more than "
            f"tnml.settings.max_param_bytes = {format_bytes(settings.max_param_bytes)}; use {fix}, or raise "
            "tnml.settings.max_param_bytes if the machine really has the memory"
        )
        err.need_bytes = need  # type: ignore[attr-defined]  # for callers that word their own message
        raise err
    if n_tensors > settings.max_tensors:
        raise MemoryLimitError(
            f"{what} has {n_tensors:.3g} tensors, more than tnml.settings.max_tensors = {settings.max_tensors} "
            f"(building each costs Python-level work; this would not finish in reasonable time); use {fix}, or "
            "raise tnml.settings.max_tensors"
        )


def check_dense_bytes(need: int, what: str, fix: str) -> None:
    """Refuse, before allocating, work that needs ``need`` bytes beyond ``tnml.settings.max_dense_bytes``.

    Raises
    ------
    MemoryLimitError
        Naming ``what``, the size, the setting and ``fix``.
    """
    if need > settings.max_dense_bytes:
        raise MemoryLimitError(
            f"{what} needs about {format_bytes(need)}, more than tnml.settings.max_dense_bytes = "
            f"{format_bytes(settings.max_dense_bytes)}; {fix}, or raise tnml.settings.max_dense_bytes"
        )


def check_finite_cores(cores: dict, what: str = "obj") -> None:
    """Refuse tensors with NaN or infinite entries (a diverged model) before any decomposition fails on them.

    Raises
    ------
    ValueError
        Naming ``what``, the tensors affected and the fix.
    """
    bad = [name for name, t in cores.items() if not bool(torch.isfinite(torch.as_tensor(t)).all())]
    if bad:
        raise ValueError(
            f"{what} has NaN or infinite entries in tensor(s) {bad[:4]}{' ...' if len(bad) > 4 else ''}; its "
            "spectra are undefined; check the training run (e.g. lower the learning rate) or reinitialize"
        )


def check_option(name: str, value, choices, fix: str = ""):
    """``value`` unchanged if it is one of ``choices``, else an error naming ``name``, the value and the choices.

    Parameters
    ----------
    name : str
        The parameter, as the caller spells it (``"init"``, ``"method"``).
    value :
        What was passed.
    choices : Literal type or collection
        The accepted values: a ``Literal[...]`` alias of :mod:`tnml.options` (the one the signature is annotated
        with; ``Optional[Literal[...]]`` accepts None too), or any collection of values.
    fix : str
        Appended after a semicolon: what each choice means, or another way to get what was wanted.

    Returns
    -------
    object
        ``value``, unchanged.

    Raises
    ------
    ValueError
        ``"{name}={value!r} is unknown; choose one of [...]; {fix}"``.

    Examples
    --------
    >>> from tnml.options import NetworkInit
    >>> check_option("init", "normal", NetworkInit)
    'normal'
    >>> check_option("init", "zeros", NetworkInit)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: init='zeros' is unknown; choose one of ['identity', 'normal']
    """
    allowed = option_values(choices)
    try:
        ok = value in allowed
    except (TypeError, ValueError, RuntimeError):  # e.g. a multi-element tensor has no truth value
        ok = False
    if ok and isinstance(value, (bool, np.bool_)):  # True == 1: a bool matches only a bool choice
        ok = any(v is value for v in allowed)
    if not ok:
        raise ValueError(f"{name}={value!r} is unknown; choose one of {list(allowed)!r}{_fix(fix)}")
    return value


def _fix(fix: str) -> str:
    return f"; {fix}" if fix else ""
