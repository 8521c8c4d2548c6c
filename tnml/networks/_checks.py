"""Validation of architecture hyperparameters (one place, clear messages)."""

from __future__ import annotations


def positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def optional_positive_int(name: str, value) -> int | None:
    return None if value is None else positive_int(name, value)


def sized_feature_map(feature_map, phys_dim: int):
    """Give name-only feature maps whose size is free (polynomial, onehot, linear, identity) the model's
    ``phys_dim``; anything else passes through unchanged."""
    sizes = {
        "polynomial": {"degree": phys_dim - 1},
        "onehot": {"k": phys_dim},
        "linear": {"dim": phys_dim},
        "identity": {"dim": phys_dim},
    }
    if isinstance(feature_map, str) and feature_map in sizes:
        return (feature_map, sizes[feature_map])
    return feature_map
