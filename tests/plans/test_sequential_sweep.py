"""The sequential chain route (running row vectors swept through k-site block cores): dense float64 reference,
agreement with the level-by-level tree contraction, gradients, rescaling and its retry, the cost model's block."""

from __future__ import annotations

import math

import pytest
import torch

from tests.registry import dense_forward, sample_input
from tnml.networks import MPS
from tnml.plans import chain as chain_mod
from tnml.plans.chain import chain_costs


def _model(n, bond, out_dim, output_site=None, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return MPS(n, 2, bond, out_dim, output_site=output_site, init="normal", plan="sequential", dtype=dtype)


def _value(v, e):
    return (v * torch.exp2(e).view(-1, *([1] * (v.dim() - 1)))).detach()


@pytest.mark.parametrize(
    ("n", "bond", "out_dim", "output_site"),
    [(4, 3, 5, None), (5, 2, None, None), (9, 3, 2, 1), (12, 4, 3, 10), (14, 3, 2, 6)],
)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_sweep_equals_dense_float64(n, bond, out_dim, output_site, k):
    m = _model(n, bond, out_dim, output_site)
    x = sample_input(m, 6, seed=1)
    ref = dense_forward(m, x).detach()
    got = _value(*m.plan().chain.run_sequential(m.cores.stack_list(), m.embed(x), k))
    assert torch.allclose(got, ref, rtol=1e-10, atol=1e-12 * float(ref.abs().max()))


def _levels(m, x):
    """The level-by-level tree contraction (the plan's route for trees that are not chains): log|f| and sign."""
    v, e = m.plan()._checked(m.cores.stack_list(), m.embed(x))
    return v, e


@pytest.mark.parametrize(("n", "bond", "k"), [(33, 3, 2), (257, 4, 2), (101, 5, 3)])
def test_sweep_equals_level_by_level_long_chains(n, bond, k):
    m = _model(n, bond, 3)
    x = torch.rand(5, n, dtype=torch.float64)
    v, e = m.plan().chain.run_sequential(m.cores.stack_list(), m.embed(x), k)
    w, f = _levels(m, x)
    la = torch.log(v.abs()) + e.unsqueeze(-1) * math.log(2)
    lb = torch.log(w.abs()) + f.unsqueeze(-1) * math.log(2)
    assert torch.allclose(la, lb, atol=1e-9) and torch.equal(torch.sign(v), torch.sign(w))


@pytest.mark.parametrize("k", [1, 2])
def test_sweep_gradients_match_level_by_level(k, monkeypatch):
    m = _model(40, 3, 4, seed=3)
    x = torch.rand(6, 40, dtype=torch.float64)
    grads = []
    for run in (lambda s, p: m.plan().chain.run_sequential(s, p, k), lambda s, p: m.plan()._checked(s, p)):
        m.zero_grad(set_to_none=True)
        v, e = run(m.cores.stack_list(), m.embed(x))
        (torch.log(v.abs()) + e.unsqueeze(-1) * math.log(2)).sum().backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    for ga, gb in zip(*grads):
        assert torch.allclose(ga, gb, rtol=1e-8, atol=1e-12)


def test_sweep_retries_with_every_block_rescaled(monkeypatch):
    """A float32 chain whose running vectors overflow between the regular rescalings is swept again, rescaling
    after every block, and matches float64; with the retry switched off the result is not finite."""
    torch.manual_seed(0)
    m = MPS(120, 2, 6, 3, init="normal", plan="sequential", dtype=torch.float32)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(1e3)  # the cores 1000x larger: the regularly rescaled sweep overflows float32
    ref = MPS(120, 2, 6, 3, init="normal", plan="sequential", dtype=torch.float64)
    ref.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
    x = torch.rand(4, 120)
    v, e = m.contract_input(x)
    w, f = ref.contract_input(x.double())
    assert torch.isfinite(v).all()
    la = torch.log(v.double().abs()) + e.double().unsqueeze(-1) * math.log(2)
    lb = torch.log(w.abs()) + f.unsqueeze(-1) * math.log(2)
    assert torch.allclose(la, lb, atol=1e-3)
    # mutation: no retry (the happy-path check reads nothing) -> the regularly rescaled sweep overflows
    chain = m.plan().chain
    k = m.plan().sequential_block(4)
    v2, _, _ = chain._sweep(m.cores.stack_list(), m.embed(x), k, max(1, chain_mod.SWEEP_RESCALE_SITES // k))
    assert not torch.isfinite(v2).all()


def test_sweep_block_from_the_cost_model():
    """d = 2: two sites per step cost the FLOPs of one site in half the steps. Measured train steps (1 thread):
    64 sites D=10 b=256, 1 / 2 / 3 sites per step 6.7 / 5.2 / 5.5 ms; 784 sites D=10 b=100, 2 / 3 / 4: 28.3 / 26.0
    / 29.0 ms; 784 sites D=32 b=100, 1 / 2 / 3: 68.2 / 61.6 / 74.6 ms. The model picks each minimum."""
    assert chain_costs(64, 2, 10, 256).sequential_block == 2
    assert chain_costs(784, 2, 10, 100).sequential_block == 3
    assert chain_costs(784, 2, 32, 100).sequential_block == 2
    m = MPS(64, 2, 10, 10)
    assert m.plan().route_for(256) == "sequential" and m.plan().sequential_block(256) == 2


@pytest.mark.parametrize(("n", "k"), [(4, 2), (5, 1), (64, 2), (65, 3)])
def test_paired_sites_equal_the_table_gather(n, k):
    """MPS stacks the two halves' inner sites interleaved in sweep order: the sequential route reads them without
    a gather; values and gradients equal the general site-table gather's."""
    m = _model(n, 3, 2, seed=2)
    chain = m.plan().chain
    assert chain._paired
    x = torch.rand(5, n, dtype=torch.float64)
    out = []
    for paired in (True, False):
        chain._paired = paired
        m.zero_grad(set_to_none=True)
        v, e = chain.run_sequential(m.cores.stack_list(), m.embed(x), k)
        (v.sum() + e.sum()).backward()
        out.append((v.detach(), e, [p.grad.clone() for p in m.parameters()]))
    chain._paired = True
    (va, ea, ga), (vb, eb, gb) = out
    assert torch.allclose(va, vb, rtol=1e-12) and torch.equal(ea, eb)
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-14) for a, b in zip(ga, gb))


def test_sweep_steps_set_the_kernel_count(monkeypatch):
    """A train step's aten ops fall with the sites per step (fewer dependent steps of ~28 ops each): at 128 sites
    two sites per step run at most 70 % of the site-by-site sweep's ops (mutation: one site per step)."""
    from tests.plans.test_kernel_budget import _step_ops

    torch.manual_seed(0)
    m = MPS(128, 2, 6, 10, plan="sequential")
    x, labels = torch.rand(8, 128), torch.randint(0, 10, (8,))
    counts = {}
    for k in (1, 2):
        monkeypatch.setattr(type(m.plan()), "sequential_block", lambda self, batch, k=k: k)
        counts[k] = _step_ops(m, x, labels)
    assert counts[2] <= 0.7 * counts[1], counts
