"""Shared test configuration: `gpu` tests skip cleanly without CUDA."""

from __future__ import annotations

import pytest
import torch

# The models under test are small: one thread avoids OpenMP oversubscription on shared 2-core machines.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
