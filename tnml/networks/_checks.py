"""Validation of architecture hyperparameters (one place, clear messages)."""

from __future__ import annotations


def positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def optional_positive_int(name: str, value) -> int | None:
    return None if value is None else positive_int(name, value)
