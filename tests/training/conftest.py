"""Fixtures shared by the training tests."""

from __future__ import annotations

import importlib

import pytest

from tnml.experiments import EXPERIMENTS
from tnml.experiments.registry import Experiment

#: name of the toy experiment of ``tests/_resume_script.py``
TOY = "toy-resume"


@pytest.fixture
def toy(monkeypatch):
    """Register the script's toy experiment in this process (and unregister it afterwards)."""
    monkeypatch.delenv("TNML_TOY_SLEEP", raising=False)
    mod = importlib.import_module("tests._resume_script")
    EXPERIMENTS.setdefault(TOY, Experiment(TOY, "toy", mod.run))
    yield mod
    EXPERIMENTS.pop(TOY, None)
