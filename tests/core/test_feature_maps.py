"""Feature maps against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tnml
from tnml.feature_maps import LinearMap, OneHotMap, PolynomialMap, TrigMap, get_feature_map


@given(st.floats(-5, 5), st.floats(0.01, 2))
@settings(max_examples=50, deadline=None)
def test_trig_formula_and_unit_norm(x, theta):
    out = TrigMap(theta)(torch.tensor([[x]], dtype=torch.float64))[0, 0]
    assert out.tolist() == pytest.approx([math.cos(math.pi * theta * x), math.sin(math.pi * theta * x)], abs=1e-12)
    assert float(out.norm()) == pytest.approx(1.0)


def test_polynomial_and_onehot():
    x = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    assert PolynomialMap(3)(x)[0, 1].tolist() == [1.0, 2.0, 4.0, 8.0]
    assert OneHotMap(3)(torch.tensor([[2.0, 0.0]]))[0].tolist() == [[0, 0, 1], [1, 0, 0]]


def test_linear_map_is_affine_and_learnable():
    f = LinearMap(dim=3)
    x = torch.rand(4, 5)
    y = f(x)
    assert y.shape == (4, 5, 3)
    torch.testing.assert_close(y, x.unsqueeze(-1) * f.linear.weight[:, 0] + f.linear.bias)
    y.sum().backward()
    assert f.linear.weight.grad is not None


def test_registry_resolution():
    assert set(tnml.available_feature_maps()) >= {"trig", "polynomial", "onehot", "identity", "linear"}
    assert isinstance(get_feature_map(("trig", {"theta": 0.085})), TrigMap)
    assert get_feature_map("trig", theta=0.085).theta == 0.085
    m = TrigMap(0.2)
    assert get_feature_map(m) is m


def test_custom_map_registration():
    @tnml.register_feature_map("square-test")
    class Square(tnml.FeatureMap):
        dim = 2

        def forward(self, x):
            return torch.stack([x, x * x], -1)

    from tnml.networks import MPS

    m = MPS(3, 2, 2, feature_map="square-test", dtype=torch.float64)
    x = torch.rand(2, 3, dtype=torch.float64)
    torch.testing.assert_close(m.embed(x)[..., 1], x * x)


def test_learned_feature_map_trains_with_model():
    from tnml.networks import MPS

    m = MPS(4, 2, 2, out_dim=2, feature_map=LinearMap(dim=2))
    m(torch.rand(3, 4)).sum().backward()
    assert m.feature_map.linear.weight.grad.abs().sum() > 0


def test_polynomial_and_onehot_maps_take_complex_inputs():
    """A complex model embeds its (cast) inputs: powers with integer exponents, categories from the real parts."""
    from tnml.feature_maps import OneHotMap, PolynomialMap

    z = torch.tensor([[0.5 + 0.25j, -2.0 + 0.0j]], dtype=torch.complex128)
    got = PolynomialMap(3)(z)
    assert got.dtype == torch.complex128
    torch.testing.assert_close(got, torch.stack([z**0, z, z * z, z * z * z], dim=-1))
    cat = torch.tensor([[2.0, 0.0]], dtype=torch.complex128)
    one = OneHotMap(3)(cat)
    assert one.dtype == torch.complex128 and one.real.tolist() == [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]
    with pytest.raises(ValueError, match="nonzero imaginary part"):
        OneHotMap(3)(cat + 1j)
