"""torch.compile and torch.func over the models: no graph break (the input check and the plans read no tensor on the
host while traced), compiled forward and backward equal eager, vmap runs."""

from __future__ import annotations

import pytest
import torch

from tnml.networks import CP, MPS, TTN

MODELS = {
    "mps": lambda: MPS(6, 2, 3, 4, dtype=torch.float64),
    "mps-log-depth": lambda: MPS(6, 2, 3, 4, plan="log-depth", dtype=torch.float64),
    # 4 blocks per half: two pairwise levels (the hand-written autograd function; 6 sites have none)
    "mps-log-depth-levels": lambda: MPS(24, 2, 3, 4, plan="log-depth", dtype=torch.float64),
    "mps-blocked": lambda: MPS(9, 2, 3, 4, plan="blocked", dtype=torch.float64),
    "ttn": lambda: TTN(n_sites=8, bond_dim=3, out_dim=3, dtype=torch.float64),
    "cp": lambda: CP(6, 2, 4, out_dim=3, dtype=torch.float64),
}


def _fwd_bwd(model, fn, x):
    model.zero_grad(set_to_none=True)
    y = fn(x)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("name", list(MODELS))
def test_compile_fullgraph_matches_eager(name):
    """fullgraph=True raises on any graph break; aot_eager traces forward and backward without a C++ build."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = MODELS[name]()
    x = torch.rand(5, m.n_sites, dtype=torch.float64)
    y0, g0 = _fwd_bwd(m, m, x)
    cm = torch.compile(m, backend="aot_eager", fullgraph=True)
    y1, g1 = _fwd_bwd(m, cm, x)
    assert torch.allclose(y1, y0, rtol=1e-6, atol=1e-12)
    for a, b in zip(g1, g0):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-12)


def test_compile_input_check_is_asynchronous_not_skipped():
    """Under torch.compile a NaN input still fails (an asynchronous assertion instead of a host read)."""
    torch._dynamo.reset()
    m = MPS(6, 2, 3, 4, dtype=torch.float64)
    cm = torch.compile(m, backend="aot_eager", fullgraph=True)
    cm(torch.rand(2, 6, dtype=torch.float64))
    x = torch.rand(2, 6, dtype=torch.float64)
    x[1, 3] = float("nan")
    with pytest.raises(RuntimeError):
        cm(x)


@pytest.mark.parametrize("name", list(MODELS))
def test_vmap_over_batches(name):
    torch.manual_seed(0)
    m = MODELS[name]()
    xs = torch.rand(3, 4, m.n_sites, dtype=torch.float64)
    out = torch.func.vmap(m)(xs)
    ref = torch.stack([m(x) for x in xs])
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-14)


def test_eager_input_check_reads_host_once_and_compile_path_does_not(monkeypatch):
    """Mutation check of the compile test's premise: with the traced-mode guard removed, the host read of the input
    check is a graph break again (fullgraph=True fails)."""
    import tnml.model as model_mod

    torch._dynamo.reset()
    monkeypatch.setattr(model_mod, "traced", lambda t: False)
    m = MPS(6, 2, 3, 4, dtype=torch.float64)
    m.plan()
    cm = torch.compile(m, backend="aot_eager", fullgraph=True)
    with pytest.raises(Exception, match="(?i)graph break|data-dependent|Unsupported|item"):
        cm(torch.rand(2, 6, dtype=torch.float64))
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mps", "ttn", "cp"])
def test_compile_inductor_matches_eager(name):
    """The default backend (inductor, C++ kernels on CPU): 40-120 s per model on a loaded 2-core machine."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = MODELS[name]()
    x = torch.rand(5, m.n_sites, dtype=torch.float64)
    y0, g0 = _fwd_bwd(m, m, x)
    y1, g1 = _fwd_bwd(m, torch.compile(m), x)
    assert torch.allclose(y1, y0, rtol=1e-6, atol=1e-12)
    for a, b in zip(g1, g0):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-12)
