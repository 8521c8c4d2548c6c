"""tnml.testing: the public checks pass on every registered architecture and catch what they promise to."""

from __future__ import annotations

import pytest
import torch

from tests.registry import build, names
from tnml import TNModel
from tnml.networks import CP, MPS, TTN
from tnml.testing import (
    assert_gradcheck,
    assert_matches_dense,
    assert_norm_neutral,
    dense_forward,
    sample_input,
)


def _build(name, **kw):
    return build(name, 0, **kw)


@pytest.mark.parametrize("name", names("tnmodel"))
def test_assert_matches_dense_passes_on_the_registry(name):
    m = _build(name)  # mostly float32: the check works on a float64 copy and leaves the model alone
    dtype = next(m.parameters()).dtype
    before = {k: v.clone() for k, v in m.state_dict().items()}
    assert_matches_dense(m)
    assert next(m.parameters()).dtype == dtype
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize("name", ["mps-out-mid", "ttn-ternary-ragged", "cp-out", "peps-2x2-loop", "htf"])
def test_assert_gradcheck_passes_on_the_registry(name):
    assert_gradcheck(_build(name))


class _Off(MPS):
    """Forward off by 1e-6 relative: the plan result is scaled (a bug a user might write in a subclass)."""

    def contract(self, phi):
        values, exp = super().contract(phi)
        return values * (1 + 1e-6), exp


class _WrongGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return 2 * g


class _BadBackward(MPS):
    def contract(self, phi):
        values, exp = super().contract(phi)
        return _WrongGrad.apply(values), exp


class _DeadCore(TNModel):
    """Per-tensor storage where the contraction uses a detached copy of the first core: no gradient reaches it."""

    stack_cores = False

    def contract(self, phi):
        cores = self.core_dict()
        first = self.structure.tensors[0].name
        cores[first] = cores[first].detach()
        return self.plan()(cores, phi)


def test_checks_catch_wrong_models():
    with pytest.raises(AssertionError, match="dense einsum reference"):
        assert_matches_dense(_Off(5, 2, 3, out_dim=2))
    assert_matches_dense(_Off(5, 2, 3, out_dim=2), rtol=1e-5)  # within a looser tolerance
    with pytest.raises(AssertionError, match="finite differences"):
        assert_gradcheck(_BadBackward(4, 2, 2, out_dim=2))
    dead = _DeadCore(MPS(4, 2, 2, out_dim=2).structure, "trig")
    with pytest.raises(AssertionError, match="core 'site0' gets no gradient"):
        assert_gradcheck(dead)


def test_norm_neutral_check():
    m = MPS(200, 2, 6, out_dim=3)
    value = assert_norm_neutral(m)
    assert abs(value) <= 5.0
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)  # every core x3: ln ||f|| grows by 200 ln 3
    with pytest.raises(AssertionError, match="beyond tol=5.0"):
        assert_norm_neutral(m)


def test_dense_forward_and_sample_input():
    m = TTN(n_sites=4, bond_dim=2, out_dim=3, dtype=torch.float64)
    x = sample_input(m, batch=3, seed=1)
    assert x.shape == (3, 4) and torch.equal(x, sample_input(m, batch=3, seed=1))
    w = m.to_dense()
    phi = m.embed(x)
    ref = torch.einsum("abcdz,na,nb,nc,nd->nz", w, *phi.unbind(1))
    torch.testing.assert_close(dense_forward(m, x), ref)
    onehot = CP(3, 3, 2, feature_map="onehot")
    xo = sample_input(onehot, batch=50)
    assert set(xo.unique().tolist()) <= {0.0, 1.0, 2.0}
    with pytest.raises(TypeError, match="must be a tnml.TNModel"):
        dense_forward(torch.nn.Linear(2, 2), x)
