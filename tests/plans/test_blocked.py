"""The blocked chain route (block matrices of k sites, then a vector sweep): dense float64 reference, agreement
with the sequential route, gradients, rescaling, low precision, the cost model's choice."""

from __future__ import annotations

import math

import pytest
import torch

from tests.registry import ARCHITECTURES, dense_forward, sample_input
from tnml.networks import MPS
from tnml.plans.chain import chain_costs, choose_route, route_times


def _pair(n, bond, out_dim, output_site=None, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    seq = MPS(n, 2, bond, out_dim, output_site=output_site, init="normal", plan="sequential", dtype=dtype, **kw)
    blk = MPS(n, 2, bond, out_dim, output_site=output_site, init="normal", plan="blocked", dtype=dtype, **kw)
    blk.load_state_dict(seq.state_dict())
    return seq, blk


def _log_values(m, x):
    v, e = m.contract_input(x)
    return torch.log(v.abs()) + e.unsqueeze(-1) * math.log(2), torch.sign(v)


@pytest.mark.parametrize(
    ("n", "bond", "out_dim", "output_site"),
    [(4, 3, 5, None), (5, 2, None, None), (9, 3, 2, 1), (12, 4, 3, 10), (14, 3, 2, 6)],
)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_blocked_equals_dense_float64(n, bond, out_dim, output_site, k):
    _, blk = _pair(n, bond, out_dim, output_site)
    x = sample_input(blk, 6, seed=1)
    ref = dense_forward(blk, x)
    plan = blk.plan()
    v, e = plan.chain.run_blocked(blk.cores.stack_list(), blk.embed(x), k)
    got = (v * torch.exp2(e).view(-1, *([1] * (v.dim() - 1)))).detach()
    assert torch.allclose(got, ref, rtol=1e-10, atol=1e-12 * float(ref.abs().max()))


@pytest.mark.parametrize(("n", "bond"), [(33, 3), (257, 4)])
def test_blocked_equals_sequential_long_chains(n, bond):
    seq, blk = _pair(n, bond, 3)
    x = torch.rand(5, n, dtype=torch.float64)
    (la, sa), (lb, sb) = _log_values(seq, x), _log_values(blk, x)
    assert torch.allclose(la, lb, atol=1e-9) and torch.equal(sa, sb)


def test_blocked_gradients_match_sequential():
    seq, blk = _pair(40, 3, 4, seed=3)
    x = torch.rand(6, 40, dtype=torch.float64)
    for m in (seq, blk):
        m.log_forward(x)[0].sum().backward()
    for (na, pa), (nb, pb) in zip(seq.named_parameters(), blk.named_parameters()):
        assert na == nb and torch.allclose(pa.grad, pb.grad, rtol=1e-8, atol=1e-12), na


def test_blocked_per_tensor_storage_and_registry_chain():
    seq, blk = _pair(21, 3, 2, stack_cores=False)
    x = torch.rand(4, 21, dtype=torch.float64)
    assert torch.allclose(seq(x), blk(x), rtol=1e-10)
    m = ARCHITECTURES["mps-out-mid"](plan="blocked", dtype=torch.float64)
    x = sample_input(m, 3, seed=2)
    assert torch.allclose(m(x), dense_forward(m, x), rtol=1e-10, atol=1e-14)


def test_784_site_chain_finite_in_float32():
    torch.manual_seed(0)
    m = MPS(784, 2, 10, 10, init="normal", plan="blocked")
    ref = MPS(784, 2, 10, 10, init="normal", plan="sequential")
    ref.load_state_dict(m.state_dict())
    x = torch.rand(8, 784)
    with torch.no_grad():
        la, _ = m.log_forward(x)
        lb, _ = ref.log_forward(x)
    assert torch.isfinite(la).all() and torch.allclose(la, lb, atol=1e-2)


def test_blocked_rescaling_is_load_bearing(monkeypatch):
    """Without the rescaling of the block matrices and of the swept vector a 784-site float32 chain leaves
    float32's range (mutation check)."""
    import tnml.plans.chain as chain

    torch.manual_seed(0)
    m = MPS(784, 2, 10, 10, init="normal", init_std=0.05, plan="blocked")
    x = torch.rand(4, 784)
    assert torch.isfinite(m.log_forward(x)[0]).all()
    monkeypatch.setattr(chain, "_rescale", lambda t, n_lead: (t, t.new_zeros(t.shape[:n_lead])))
    monkeypatch.setattr(chain, "_block_scale", lambda t: (t.new_ones(t.shape[:1]), t.new_zeros(t.shape[:1])))
    monkeypatch.setattr(chain, "_out_scale", lambda t: (t.new_ones(t.shape[:1]), t.new_zeros(t.shape[:1])))
    assert not torch.isfinite(m.log_forward(x)[0]).all()


def test_cost_model_picks_the_measured_fastest_route():
    # 1 thread, train steps: 784 sites D=10 b=100 sequential (3 sites per step) 26.0 ms, blocked 41.0 ms; 64 sites
    # D=10 b=256 sequential 5.2 ms, blocked 8.1 ms; at D=32 the block matrices are memory-bound
    assert choose_route(784, 2, 10, 100, "cpu") == "sequential"
    assert choose_route(64, 2, 10, 256, "cpu") == "sequential"
    assert choose_route(784, 2, 32, 100, "cpu") == "sequential"
    assert choose_route(784, 2, 10, 100, "cuda") == "log-depth"
    c = chain_costs(784, 2, 10, 100)
    assert c.log_depth_ops < c.blocked_ops < c.sequential_ops and c.blocked_block > 1
    assert all(t > 0 for t in route_times(784, 2, 10, 100, "cpu").values())


def test_blocked_refuses_uncovered_structures():
    with pytest.raises(ValueError, match="route='blocked' needs an open chain"):
        ARCHITECTURES["mps-out-end"](plan="blocked").plan()


@pytest.mark.parametrize("large", [0, 1 << 62])  # the amax + amin path for large tensors, the abs + amax path
def test_power_of_two_scale_edge_slices(monkeypatch, large):
    """Both max-abs paths: a slice scaled into (0.5, 1] by an exact power of two, a zero slice with scale 1 and
    exponent 0, a subnormal slice scaled as if at the smallest normal number, a non-finite slice kept non-finite."""
    import tnml.plans.chain as chain

    monkeypatch.setattr(chain, "_LARGE", large)
    tiny = torch.finfo(torch.float32).tiny
    t = torch.stack([
        torch.tensor([[3.0, -12.0], [0.5, 1.0]]),
        torch.zeros(2, 2),
        torch.full((2, 2), tiny / 8),
        torch.tensor([[1.0, float("inf")], [0.0, 2.0]]),
        torch.tensor([[-1e30, 2.0], [0.0, 1e-30]]),
    ])
    scale, e = chain.power_of_two_scale(t, 1)
    assert e.dtype == torch.float32 and torch.equal(scale, torch.exp2(-e))
    assert e.tolist()[:2] == [4.0, 0.0] and e[2] == math.frexp(tiny)[1] and e[3] == 0.0
    scaled = t * scale.view(-1, 1, 1)
    mag = scaled.abs().flatten(1).amax(-1)
    assert 0.5 < mag[0] <= 1 and 0.5 < mag[4] <= 1 and mag[1] == 0 and not torch.isfinite(scaled[3]).all()
    assert torch.equal(scaled[0] * 16, t[0])  # exact: a power of two
