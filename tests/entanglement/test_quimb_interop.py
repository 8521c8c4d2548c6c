"""quimb interop: from_quimb keeps the network's dtype; MPS.to_quimb is quimb's MatrixProductState."""

from __future__ import annotations

import numpy as np
import pytest
import quimb.tensor as qtn
import torch

import tnml.entanglement as ent
from tnml import TNModel
from tnml.networks import MPS
from tnml.quimb_interop import torch_dtype_of


def _chain(dtype, n=4, d=2, bond=3, seed=0):
    return qtn.MPS_rand_state(n, bond, phys_dim=d, dtype=dtype, seed=seed)


@pytest.mark.parametrize("dtype, expect", [
    ("float64", torch.float64), ("float32", torch.float32), ("complex128", torch.complex128),
])
def test_from_quimb_keeps_the_network_dtype(dtype, expect):
    tn = _chain(dtype)
    inds = [f"k{i}" for i in range(4)]
    m = TNModel.from_quimb(tn, inds)
    assert all(p.dtype == expect for p in m.parameters())
    dense = tn.contract(output_inds=inds).data
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(m.to_dense().detach().numpy(), dense, rtol=0, atol=tol * np.abs(dense).max())
    # explicit dtype still wins
    m32 = TNModel.from_quimb(tn, inds, dtype=torch.complex64 if "complex" in dtype else torch.float32)
    assert all(p.dtype in (torch.float32, torch.complex64) for p in m32.parameters())


def test_torch_dtype_of_mixed_and_integer():
    assert torch_dtype_of([np.zeros(1, np.float32), np.zeros(1, np.float64)]) == torch.float64
    assert torch_dtype_of([np.zeros(1, np.float64), np.zeros(1, np.complex64)]) == torch.complex128
    assert torch_dtype_of([np.zeros(1, np.int64)]) == torch.get_default_dtype()


def test_mps_to_quimb_is_a_matrix_product_state_with_tnml_names():
    torch.manual_seed(0)
    m = MPS(n_sites=6, phys_dim=2, bond_dim=3, init="normal", dtype=torch.float64)
    q = m.to_quimb()
    assert isinstance(q, qtn.MatrixProductState)
    assert q.L == 6 and q.site_ind_id == "x{}" and set(q.outer_inds()) == {f"x{i}" for i in range(6)}
    assert all(f"b{i}" in q.ind_map for i in range(5)) and "site0" in q.tags
    np.testing.assert_allclose(q.to_dense().reshape((2,) * 6), m.to_dense().detach().numpy(), rtol=1e-12)
    # quimb's own MPS methods on it agree with tnml (quimb: normalized states, log2)
    unit = q.copy()
    unit.normalize()
    for b in range(1, 6):
        qe = unit.entropy(b) * np.log(2)
        assert qe == pytest.approx(float(ent.entanglement_entropy(m, range(b)).detach()), abs=1e-10)
    c = q.copy()
    c.canonize(3)
    np.testing.assert_allclose(c.to_dense(), q.to_dense(), atol=1e-12)
    comp = q.copy()
    comp.compress(max_bond=2)
    assert comp.max_bond() == 2


def test_mps_round_trip_through_quimb():
    torch.manual_seed(1)
    m = MPS(n_sites=5, phys_dim=3, bond_dim=4, init="normal", feature_map="identity", dtype=torch.float64)
    back = TNModel.from_quimb(m.to_quimb(), [f"x{i}" for i in range(5)])
    assert all(p.dtype == torch.float64 for p in back.parameters())
    torch.testing.assert_close(back.to_dense(), m.to_dense().detach(), rtol=1e-13, atol=1e-15)
    x = torch.rand(7, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(back(x), m(x).detach(), rtol=1e-12, atol=1e-14)


def test_mps_with_output_leg_is_a_plain_network():
    torch.manual_seed(2)
    m = MPS(n_sites=4, phys_dim=2, bond_dim=3, out_dim=3, init="normal", dtype=torch.float64)
    q = m.to_quimb()
    assert isinstance(q, qtn.TensorNetwork) and not isinstance(q, qtn.MatrixProductState)
    dense = q.contract(output_inds=[f"x{i}" for i in range(4)] + ["y"]).data
    np.testing.assert_allclose(dense, m.to_dense().detach().numpy(), rtol=1e-12)
    back = TNModel.from_quimb(q, [f"x{i}" for i in range(4)], "y")
    torch.testing.assert_close(back.to_dense(), m.to_dense().detach(), rtol=1e-13, atol=1e-15)
