"""``torch.autograd.gradcheck`` (float64, finite differences) for the custom pieces of the contraction engine.

The power-of-two rescaling ``t -> (t * 2**-e, e)`` has a piecewise-constant exponent ``e`` (detached on purpose):
the mantissa's gradient is ``2**-e`` almost everywhere, and the function the model computes,
``log|values| + e ln 2``, is smooth. Both are checked against finite differences, as are the absorb kernel (every
route: small legs, large legs, chunked), the plan replays (tree, star, generic) and ``TNModel.log_forward`` end to
end with respect to every parameter and the raw inputs. Inputs are scaled so the exponents are not all zero.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call

import tnml.plans.absorb as absorb_mod
from tests.registry import ARCHITECTURES, sample_input
from tnml.plans.absorb import absorb
from tnml.plans.gemm_vecmat import gemm_vecmat, gemm_vecmat_reference
from tnml.plans.scaling import normalize
from tnml.plans.tree import TreePlan

F64 = torch.float64


def _away_from_powers_of_two(t: torch.Tensor, n_lead: int) -> torch.Tensor:
    """Rescale each slice so its max-abs is 0.75 * 2**k: finite differences never cross an exponent jump."""
    mag = t.abs().flatten(n_lead).amax(-1) if t.dim() > n_lead else t.abs()
    _, e = torch.frexp(mag)
    target = 0.75 * torch.exp2(e.to(t.dtype))
    return t * (target / mag).view(mag.shape + (1,) * (t.dim() - n_lead))


# ---------------------------------------------------------------------------------------------- rescaling
@pytest.mark.parametrize("shape, n_lead", [((4, 6), 1), ((3, 2, 5), 2), ((7,), 1), ((2, 3, 4), 1)])
def test_normalize_mantissa_gradcheck(shape, n_lead):
    g = torch.Generator().manual_seed(len(shape) * 10 + n_lead)
    # scales 2**-6 .. 2**6: a finite-difference step of 1e-6 is resolved and never crosses an exponent jump
    scales = torch.exp2(torch.randint(-6, 7, shape[:n_lead], generator=g).to(F64))
    t = torch.randn(*shape, generator=g, dtype=F64) * scales.view(scales.shape + (1,) * (len(shape) - n_lead))
    t = _away_from_powers_of_two(t, n_lead).requires_grad_()
    mant, e = normalize(t, n_lead)
    assert not e.requires_grad and (e != 0).any()  # the exponent is a constant for autograd, and not trivial
    assert gradcheck(lambda x: normalize(x, n_lead)[0], (t,), eps=1e-6, atol=1e-8)
    # the analytic gradient is exactly 2**-e per slice
    (grad,) = torch.autograd.grad(mant.sum(), t)
    torch.testing.assert_close(grad, torch.exp2(-e).view(e.shape + (1,) * (len(shape) - n_lead)).expand(shape),
                               rtol=0, atol=0)
    # mantissa * 2**e reconstructs t exactly, and its gradient is the identity
    assert gradcheck(lambda x: (lambda m, ex: m * torch.exp2(ex).view(ex.shape + (1,) * (x.dim() - n_lead)))(
        *normalize(x, n_lead)), (t,), eps=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------- absorb
@pytest.mark.parametrize("chunk", ["none", "nodes", "batch"])
@pytest.mark.parametrize("legs", [(3,), (4, 2), (33, 3), (2, 40, 2)])
@pytest.mark.parametrize("p", [2, 5])
def test_absorb_gradcheck(monkeypatch, chunk, legs, p):
    """Small legs (multiply-and-sum), legs > 32 (batched matmul), the outer product of the operands (first leg
    smaller than the parent leg ``p``: (4, 2) and (2, 40, 2) with p = 5) and both chunked paths (a few nodes at a
    time; one node in batch slices)."""
    n_nodes, batch = 3, 3
    rest = math.prod(legs[1:]) * p
    if chunk == "nodes":  # two nodes per piece
        monkeypatch.setattr(absorb_mod, "_CHUNK_ELEMENTS", 2 * batch * rest)
    elif chunk == "batch":  # one node, two samples per piece
        monkeypatch.setattr(absorb_mod, "_CHUNK_ELEMENTS", 2 * rest)
        monkeypatch.setattr(absorb_mod, "_SLICE_ELEMENTS", 2 * rest)
    g = torch.Generator().manual_seed(sum(legs))
    core = torch.randn(n_nodes, *legs, p, generator=g, dtype=F64, requires_grad=True)
    ops = [torch.randn(n_nodes, batch, a, generator=g, dtype=F64, requires_grad=True) for a in legs]
    letters = "ijkl"[: len(legs)]
    ref = torch.einsum(f"g{letters}p," + ",".join(f"gb{c}" for c in letters) + "->gbp", core, *ops)
    torch.testing.assert_close(absorb(core, ops), ref)
    assert gradcheck(lambda c, *o: absorb(c, list(o)), (core, *ops), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("step", [1, 2, 5])
def test_gemm_vecmat_gradcheck_and_double_backward(step):
    """The fused binary node (tnml.plans.gemm_vecmat) against einsum, finite differences for its hand-written
    backward (pieces of 1, 2 and all nodes), and second derivatives (its create_graph path)."""
    g = torch.Generator().manual_seed(step)
    n_nodes, batch, a0, a1, p = 3, 4, 3, 4, 2
    core = torch.randn(n_nodes, a0, a1 * p, generator=g, dtype=F64, requires_grad=True)
    first = torch.randn(n_nodes, batch, a0, generator=g, dtype=F64, requires_grad=True)
    second = torch.randn(n_nodes, batch, a1, generator=g, dtype=F64, requires_grad=True)
    ref = torch.einsum("gijp,gbi,gbj->gbp", core.view(n_nodes, a0, a1, p), first, second)
    torch.testing.assert_close(gemm_vecmat(core, first, second, step), ref)
    torch.testing.assert_close(gemm_vecmat_reference(core, first, second), ref)
    fn = lambda c, f, s: gemm_vecmat(c, f, s, step)  # noqa: E731
    assert gradcheck(fn, (core, first, second), eps=1e-6, atol=1e-8)
    assert gradgradcheck(fn, (core, first, second), eps=1e-6, atol=1e-8)
    # only some inputs need gradients (a leaf level's inputs do not)
    out = gemm_vecmat(core, first.detach(), second, step)
    gc, gs = torch.autograd.grad(out.sin().sum(), [core, second])
    rc, rs = torch.autograd.grad(ref.sin().sum(), [core, second])
    torch.testing.assert_close(gc, rc)
    torch.testing.assert_close(gs, rs)


def test_absorb_takes_the_fused_route_for_wide_binary_nodes(monkeypatch):
    """A binary node with a second leg > 32 goes through gemm_vecmat, and agrees with the plain route."""
    calls = []
    real = absorb_mod.gemm_vecmat
    monkeypatch.setattr(absorb_mod, "gemm_vecmat", lambda *a: calls.append(a[3]) or real(*a))
    g = torch.Generator().manual_seed(1)
    core = torch.randn(4, 34, 33, 5, generator=g, dtype=F64, requires_grad=True)
    ops = [torch.randn(4, 3, a, generator=g, dtype=F64, requires_grad=True) for a in (34, 33)]
    fused = absorb(core, ops)
    grads = torch.autograd.grad(fused.square().sum(), [core, *ops])
    assert len(calls) == 1
    monkeypatch.setattr(absorb_mod, "_FUSE_BINARY", False)
    plain = absorb(core, ops)
    torch.testing.assert_close(fused, plain)
    for a, b in zip(grads, torch.autograd.grad(plain.square().sum(), [core, *ops]), strict=True):
        torch.testing.assert_close(a, b)
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------------- plans
PLAN_CASES = {  # architecture -> plan kind it compiles to
    "mps-out-mid": "tree",
    "mps-scalar": "tree",
    "ttn-binary": "tree",
    "ttn-ternary-ragged": "tree",
    "cp-out": "star",
    "cp-onehot": "star",
    "peps-2x2-loop": "generic",
    "peps-2x3": "generic",
    "ring-5": "generic",
}


def _log_value(plan, names, phi, *cores):
    vals, exp = plan(dict(zip(names, cores)), phi)
    e = exp.unsqueeze(-1) if vals.dim() == 2 else exp
    return torch.log(vals.abs()) + e * math.log(2.0)


def _model(name):
    torch.manual_seed(0)
    m = ARCHITECTURES[name](dtype=F64)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)  # products of many cores leave [0.5, 1): the exponents carry information
    return m


@pytest.mark.parametrize("name", sorted(PLAN_CASES))
def test_plan_replay_gradcheck(name):
    """Gradient of log|values| + exponent·ln 2 with respect to every core and the embedded inputs."""
    m = _model(name)
    plan = m.plan()
    assert plan.kind == PLAN_CASES[name]
    cores = {k: v.detach().clone().requires_grad_() for k, v in m.core_dict().items()}
    phi = m.embed(sample_input(m, batch=3)).detach().requires_grad_()
    _, exp = plan(cores, phi)
    assert (exp != 0).any()
    names = list(cores)
    # the value is log|f(x)| of the network: compare with the dense contraction first
    ref = torch.log(torch.abs(_dense(m, phi.detach())))
    torch.testing.assert_close(_log_value(plan, names, phi, *cores.values()), ref)
    assert gradcheck(lambda p, *c: _log_value(plan, names, p, *c), (phi, *cores.values()), eps=1e-6, atol=1e-7)


def _dense(m, phi):
    w = m.to_dense()
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = "z" if m.out_dim is not None else ""
    eq = letters[: m.n_sites] + out + "," + ",".join("b" + letters[i] for i in range(m.n_sites)) + "->b" + out
    return torch.einsum(eq, w, *phi.unbind(1))


@pytest.mark.parametrize("name", ["mps-out-mid", "ttn-binary"])
def test_tree_plan_rescale_every_level_gradcheck(name):
    """The fallback replay (rescale every group, used when the sparse schedule over/underflows)."""
    m = _model(name)
    plan = m.plan()
    assert isinstance(plan, TreePlan) and not all(plan.rescale)
    cores = {k: v.detach().clone().requires_grad_() for k, v in m.core_dict().items()}
    phi = m.embed(sample_input(m, batch=3)).detach().requires_grad_()
    names = list(cores)

    def every_level(p, *c):
        stacks = plan.stack(dict(zip(names, c)))
        vals, exp = plan._run(plan._group_cores_stacked(stacks), p, [True] * len(plan.groups))
        e = exp.unsqueeze(-1) if vals.dim() == 2 else exp
        return torch.log(vals.abs()) + e * math.log(2.0)

    torch.testing.assert_close(every_level(phi, *cores.values()), _log_value(plan, names, phi, *cores.values()))
    assert gradcheck(every_level, (phi, *cores.values()), eps=1e-6, atol=1e-7)


class _LogForward(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.log_forward(x)[0]


@pytest.mark.parametrize("name", ["mps-out-end", "ttn-2d", "cp-out", "peps-2x3"])
def test_log_forward_end_to_end_gradcheck(name):
    """TNModel.log_forward (feature map, embedding, compiled plan, exponents) w.r.t. every parameter and raw x."""
    m = _model(name)
    wrapper = _LogForward(m)
    keys = [k for k, _ in wrapper.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in wrapper.named_parameters()]
    x = sample_input(m, batch=2)

    def f(*ps):
        return functional_call(wrapper, dict(zip(keys, ps)), (x,))

    torch.testing.assert_close(f(*params), m.log_forward(x)[0])
    assert gradcheck(f, tuple(params), eps=1e-6, atol=1e-7)
    xr = x.clone().requires_grad_()
    assert gradcheck(lambda v: m.log_forward(v)[0], (xr,), eps=1e-6, atol=1e-7)
