"""Shared test configuration: `gpu` tests skip cleanly without CUDA."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

# Reproducible property tests: the same examples on every run (CI included); no per-example deadline on a
# shared 2-core machine.
settings.register_profile("tnml", derandomize=True, deadline=None)
settings.load_profile("tnml")

# The models under test are small: one thread avoids OpenMP oversubscription on shared 2-core machines.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
