"""The trig map's eager float32 / float64 path (a cached 0-d factor, cos and sin interleaved through a complex
view) computes exactly the plain formula, keeps gradients, and the plain path still serves the other dtypes."""

from __future__ import annotations

import math

import pytest
import torch

from tnml.feature_maps import TrigMap


def _plain(x: torch.Tensor, theta: float) -> torch.Tensor:
    a = math.pi * theta * x
    return torch.stack((torch.cos(a), torch.sin(a)), dim=-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("theta", [0.5, 0.085, 1.7])
def test_trig_fast_path_bitwise_equal_to_formula(dtype, theta):
    x = torch.rand(64, 33, dtype=dtype, generator=torch.Generator().manual_seed(0)) * 4 - 2
    got = TrigMap(theta)(x)
    assert got.dtype == dtype and got.shape == (64, 33, 2) and got.is_contiguous()
    assert torch.equal(got, _plain(x, theta))


def test_trig_fast_path_gradient_and_other_dtypes():
    x = torch.rand(3, 5, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(TrigMap(0.3), (x,))
    for dtype in (torch.bfloat16, torch.float16):
        xh = torch.rand(4, 6).to(dtype)
        assert torch.equal(TrigMap(0.5)(xh), _plain(xh, 0.5))
    xi = torch.tensor([[0, 1, 2]])
    torch.testing.assert_close(TrigMap(0.5)(xi), _plain(xi, 0.5))


def test_trig_factor_cached_per_dtype_and_device():
    m = TrigMap(0.25)
    m(torch.rand(2, 3))
    m(torch.rand(2, 3, dtype=torch.float64))
    m(torch.rand(2, 3))
    assert sorted(str(k[0]) for k in m._factors) == ["torch.float32", "torch.float64"]
    assert float(m._factors[(torch.float64, torch.device("cpu"), math.pi * 0.25)]) == math.pi * 0.25


def test_trig_factor_follows_a_new_theta_and_is_not_an_inference_tensor():
    m = TrigMap(0.25)
    x = torch.rand(2, 3, dtype=torch.float64)
    with torch.inference_mode():
        m(x)
    assert not any(t.is_inference() for t in m._factors.values())
    m.theta = 0.5
    a = math.pi * 0.5 * x
    assert torch.equal(m(x), torch.stack((torch.cos(a), torch.sin(a)), dim=-1))
