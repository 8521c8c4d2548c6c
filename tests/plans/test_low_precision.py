"""bfloat16 / float16 parameters and inputs: exponents carried in float32, a 784-site chain stays finite and close
to float64; torch.autocast regions run."""

from __future__ import annotations

import pytest
import torch

from tnml.networks import MPS

#: largest |ln f - ln f_float64| measured per dtype on the 784-site chain below (seed 0, 16 samples): bfloat16 0.20
#: (sequential) / 0.15 (log-depth) / 0.21 (blocked), float16 0.022 / 0.020 / 0.025; the bounds leave 2x room
LN_TOL = {torch.bfloat16: 0.5, torch.float16: 0.05, torch.float32: 1e-4}


def _ref_and_input(seed=0, **kw):
    torch.manual_seed(seed)
    ref = MPS(784, 2, 10, 10, dtype=torch.float64, **kw)
    return ref, torch.rand(16, 784, dtype=torch.float64)


def _cast(ref, dtype, plan):
    m = MPS(784, 2, 10, 10, dtype=dtype, plan=plan, init=ref.init, init_std=ref.init_std)
    m.load_state_dict({k: v.to(dtype) for k, v in ref.state_dict().items()})
    return m


@pytest.mark.parametrize("plan", ["sequential", "log-depth", "blocked"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_784_site_chain_low_precision_close_to_float64(dtype, plan):
    ref, x = _ref_and_input()
    m = _cast(ref, dtype, plan)
    with torch.no_grad():
        l64, s64 = ref.log_forward(x)
        lp, sp = m.log_forward(x.to(dtype))
        y = m(x.to(dtype))
    assert y.dtype == dtype and torch.isfinite(y).all() and torch.isfinite(lp).all()
    assert float((lp.double() - l64).abs().max()) < LN_TOL[dtype]


@pytest.mark.parametrize("plan", ["sequential", "log-depth", "blocked"])
def test_exponent_carried_in_float32(plan):
    """Large exponents (|f| ~ 2**-3000) need float32: bfloat16 holds integers exactly only up to 256."""
    ref, x = _ref_and_input(init="normal", init_std=0.05)
    m = _cast(ref, torch.bfloat16, plan)
    with torch.no_grad():
        _, exp = m.contract_input(x.to(torch.bfloat16))
        l64, _ = ref.log_forward(x)
        lp, _ = m.log_forward(x.to(torch.bfloat16))
    assert exp.dtype == torch.float32 and float(exp.abs().min()) > 1000
    # relative: bfloat16 mantissas over 784 random cores (measured 5.9 nats of ~1490, seed 0)
    assert float(((lp.double() - l64) / l64).abs().max()) < 0.01


def test_exponent_in_bfloat16_loses_the_value(monkeypatch):
    """Mutation check: carrying the exponent in bfloat16 itself rounds it to multiples of 8-16 at these sizes."""
    import tnml.plans.chain as chain

    monkeypatch.setattr(chain, "exponent_dtype", lambda dtype: dtype)
    ref, x = _ref_and_input(init="normal", init_std=0.05)
    m = _cast(ref, torch.bfloat16, "log-depth")
    with torch.no_grad():
        l64, _ = ref.log_forward(x)
        lp, _ = m.log_forward(x.to(torch.bfloat16))
    assert float(((lp.double() - l64) / l64).abs().max()) > 0.01


@pytest.mark.parametrize("plan", ["sequential", "log-depth", "blocked"])
def test_autocast_region(plan):
    """A float32 model inside torch.autocast(bfloat16): finite outputs near float32's, finite float32 gradients."""
    torch.manual_seed(0)
    m = MPS(200, 2, 8, 4, plan=plan)
    x = torch.rand(8, 200)
    y32 = m(x).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert torch.isfinite(y).all()
    assert float((y.detach().float() - y32).abs().max() / y32.abs().max()) < 0.2
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in m.parameters())
