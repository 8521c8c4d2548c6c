"""The log-depth chain route: dense float64 reference, sequential-route agreement, gradients, rescaling, choice."""

from __future__ import annotations

import math

import pytest
import torch

from tests.registry import ARCHITECTURES, dense_forward, sample_input
from tnml.networks import MPS, TTN
from tnml.plans.chain import ChainRoute, chain_costs, choose_route


def _pair(n, bond, out_dim, output_site=None, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    seq = MPS(n, 2, bond, out_dim, output_site=output_site, init="normal", plan="sequential", dtype=dtype, **kw)
    log = MPS(n, 2, bond, out_dim, output_site=output_site, init="normal", plan="log-depth", dtype=dtype, **kw)
    log.load_state_dict(seq.state_dict())
    return seq, log


@pytest.mark.parametrize(
    ("n", "bond", "out_dim", "output_site"),
    [(4, 3, 5, None), (5, 2, None, None), (9, 3, 2, 1), (12, 4, 3, 10), (13, 2, None, None), (14, 3, 2, 6)],
)
def test_logdepth_equals_dense_float64(n, bond, out_dim, output_site):
    _, log = _pair(n, bond, out_dim, output_site)
    x = sample_input(log, 6, seed=1)
    ref = dense_forward(log, x)
    got = log(x)
    assert torch.allclose(got, ref, rtol=1e-10, atol=1e-12 * float(ref.detach().abs().max()))


@pytest.mark.parametrize(("n", "bond"), [(33, 3), (100, 5), (257, 4)])
def test_logdepth_equals_sequential_long_chains(n, bond):
    seq, log = _pair(n, bond, 3)
    x = torch.rand(5, n, dtype=torch.float64)
    a, ea = seq.contract_input(x)
    b, eb = log.contract_input(x)
    # the same value: mantissas times 2**exponent agree (compared in log space: the products reach 2**-100s)
    la = torch.log(a.abs()) + ea.unsqueeze(-1) * math.log(2)
    lb = torch.log(b.abs()) + eb.unsqueeze(-1) * math.log(2)
    assert torch.allclose(la, lb, atol=1e-9)
    assert torch.equal(torch.sign(a), torch.sign(b))


def test_logdepth_gradients_match_sequential():
    seq, log = _pair(40, 3, 4, seed=3)
    x = torch.rand(6, 40, dtype=torch.float64)
    for m in (seq, log):
        m.log_forward(x)[0].sum().backward()
    for (na, pa), (nb, pb) in zip(seq.named_parameters(), log.named_parameters()):
        assert na == nb
        assert torch.allclose(pa.grad, pb.grad, rtol=1e-8, atol=1e-12), na


@pytest.mark.parametrize("every", [1, 2])
def test_logdepth_gradients_through_level_rescales(monkeypatch, every):
    """The hand-written backward of the pairwise levels with a rescale after every (second) level: the gradient of
    the model output (forward: the scales enter the backward) equals the sequential route's in float64."""
    import tnml.plans.chain as chain

    monkeypatch.setattr(chain, "_levels_between_rescales", lambda bond, dtype: every)
    seq, log = _pair(60, 3, 4, seed=4)
    assert log.plan().chain.q_pad >= 8  # at least three levels: rescales between them
    x = torch.rand(5, 60, dtype=torch.float64)
    w = torch.linspace(-1, 1, 20, dtype=torch.float64).view(5, 4)
    for m in (seq, log):
        (m(x) * w).sum().backward()
    for (na, pa), (_, pb) in zip(seq.named_parameters(), log.named_parameters()):
        assert torch.allclose(pa.grad, pb.grad, rtol=1e-9, atol=1e-13 * float(pa.grad.abs().max())), na


def test_logdepth_per_tensor_storage():
    seq, log = _pair(21, 3, 2, stack_cores=False)
    x = torch.rand(4, 21, dtype=torch.float64)
    assert torch.allclose(seq(x), log(x), rtol=1e-10)


@pytest.mark.parametrize("name", ["mps-out-mid", "mps-scalar"])
def test_registry_mps_on_logdepth_route(name):
    m = ARCHITECTURES[name](plan="log-depth", dtype=torch.float64)
    assert m.plan().route_for(3) == "log-depth"
    x = sample_input(m, 3, seed=2)
    assert torch.allclose(m(x), dense_forward(m, x), rtol=1e-10, atol=1e-14)


def test_logdepth_refuses_uncovered_structures():
    with pytest.raises(ValueError, match="route='log-depth' needs an open chain"):
        ARCHITECTURES["mps-out-end"](plan="log-depth").plan()
    with pytest.raises(ValueError, match="route='log-depth'"):
        TTN(n_sites=8, bond_dim=2, plan="log-depth").plan()
    assert ChainRoute.of(TTN(n_sites=8, bond_dim=2).structure) is None


def test_784_site_chain_finite_in_float32():
    torch.manual_seed(0)
    m = MPS(784, 2, 10, 10, init="normal", plan="log-depth")
    ref = MPS(784, 2, 10, 10, init="normal", plan="sequential")
    ref.load_state_dict(m.state_dict())
    x = torch.rand(8, 784)
    la, _ = m.log_forward(x)
    lb, _ = ref.log_forward(x)
    assert torch.isfinite(la).all()
    assert torch.allclose(la, lb, atol=1e-2)


def test_route_choice_visible_and_by_device():
    m = MPS(784, 2, 10, 10)
    plan = m.plan()
    assert plan.route_for(100) == "sequential"  # CPU: D x D products cost D x the vector work
    assert "sequential chain" in plan.describe(100) and "blocks of 3 sites" in plan.describe(100)
    assert "blocked chain" in MPS(784, 2, 10, 10, plan="blocked").plan().describe(100)
    assert MPS(64, 2, 10, 10).plan().route_for(256) == "sequential"  # a short chain: few steps to save
    assert "sequential" in MPS(64, 2, 10, 10).plan().describe(256)
    assert choose_route(784, 2, 10, 100, "cuda") == "log-depth"  # a launch costs more than the extra FLOPs
    assert "log-depth chain" in MPS(784, 2, 10, 10, plan="log-depth").plan().describe(100)
    c = chain_costs(784, 2, 10, 100)
    assert c.log_depth_flops > c.sequential_flops and c.log_depth_ops < c.sequential_ops / 10


def test_logdepth_rescaling_is_load_bearing(monkeypatch):
    """Without the per-level rescaling a 784-site float32 chain leaves float32's range (mutation check)."""
    import tnml.plans.chain as chain

    torch.manual_seed(0)
    m = MPS(784, 2, 10, 10, init="normal", init_std=0.05, plan="log-depth")
    x = torch.rand(4, 784)
    assert torch.isfinite(m.log_forward(x)[0]).all()
    monkeypatch.setattr(chain, "_rescale", lambda t, n_lead: (t, t.new_zeros(t.shape[:n_lead])))
    monkeypatch.setattr(chain, "_block_scale", lambda t: (t.new_ones(t.shape[:1]), t.new_zeros(t.shape[:1])))
    monkeypatch.setattr(chain, "_out_scale", lambda t: (t.new_ones(t.shape[:1]), t.new_zeros(t.shape[:1])))
    monkeypatch.setattr(chain, "_level_scale", lambda t: (t.new_ones(t.shape[:1]), t.new_zeros(t.shape[:1])))
    assert not torch.isfinite(m.log_forward(x)[0]).all()


def test_logdepth_level_rescaling_alone_is_load_bearing(monkeypatch):
    """The rescaling between pairwise levels (inside the hand-written autograd function) is needed on its own: with
    the block matrices and the output still rescaled, a 784-site chain whose products grow leaves float32's range
    when the levels are not rescaled (mutation check), and stays finite with them."""
    import tnml.plans.chain as chain

    torch.manual_seed(0)
    m = MPS(784, 2, 10, 10, init="normal", init_std=0.5, plan="log-depth")
    x = torch.rand(4, 784)
    la, _ = m.log_forward(x)
    assert torch.isfinite(la).all()
    monkeypatch.setattr(chain, "_level_scale", lambda t: (t.new_ones(t.shape[:1]), t.new_zeros(t.shape[:1])))
    assert not torch.isfinite(m.log_forward(x)[0]).all()
