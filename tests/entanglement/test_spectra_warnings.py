"""The spectra routes read host scalars from detached tensors: computing Schmidt values, ranks and entropies of a
network whose tensors require gradients raises no "Converting a tensor with requires_grad=True to a scalar"
warning, on any route, and gradients still flow."""

from __future__ import annotations

import warnings

import pytest
import torch

import tnml.entanglement as ent
from tnml.networks import MPS, PEPS

MESSAGE = "Converting a tensor with requires_grad"


@pytest.mark.parametrize("method", ["gram", "factor", "auto"])
@pytest.mark.parametrize("make", [lambda: MPS(8, 2, 3, dtype=torch.float64),
                                  lambda: PEPS(shape=(3, 3), phys_dim=2, bond_dim=2, dtype=torch.float64)],
                         ids=["mps", "peps"])
def test_no_scalar_conversion_warning_with_gradients(make, method):
    torch.manual_seed(0)
    m = make()
    tn = m.to_quimb()
    tn.apply_to_arrays(lambda a: torch.as_tensor(a).clone().requires_grad_(True))
    inds = sorted(tn.outer_inds())[:3]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=MESSAGE, category=UserWarning)
        e = ent.entanglement_entropy(m, [0, 1, 2], method=method)
        ent.cut_rank(m, [0, 1, 2], method=method)
        ent.schmidt_values(tn, inds, method=method)
        e.backward()
    assert e.requires_grad and all(p.grad is not None for p in m.parameters())
