"""The hand-written backward passes of the chain routes (block matrices, closing contraction) against plain autograd
in float64: values, exponents and gradients equal the reference forms; gradcheck and second derivatives."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from tnml.networks import MPS
from tnml.plans import chain as chain_mod
from tnml.plans.blocks import BlockMatrices, BlockSpec, block_matrices_reference, site_table
from tnml.plans.close import CloseChain, close_reference


def _unit_scale(t):
    return t.new_ones(t.shape[:1]), t.new_zeros(t.shape[:1])


def _setup(n=13, bond=3, out_dim=2, batch=5, seed=0):
    torch.manual_seed(seed)
    m = MPS(n, 2, bond, out_dim, init="normal", plan="log-depth", dtype=torch.float64)
    ch = m.plan().chain
    stacks = [p.detach().clone().requires_grad_() for p in m.cores.stack_list()]
    phi = m.embed(torch.rand(batch, n, dtype=torch.float64)).requires_grad_()
    return ch, stacks, phi


def _layout(ch, route, k):
    if route == "log-depth":
        return ch.site_rows, ch.phi_index, ch.k, False
    rows, cols, _ = ch.blocked_layout(k)
    return rows, cols, k, True


@pytest.mark.parametrize(("route", "k"), [("log-depth", None), ("blocked", 1), ("blocked", 2), ("blocked", 3)])
@pytest.mark.parametrize("transposed_grad", [False, True])
def test_block_matrices_equal_plain_autograd(route, k, transposed_grad):
    """Values, exponents and the gradients of the cores and the inputs equal the plain-autograd form; the incoming
    gradient either contiguous or transposed (as the pairwise levels hand it back)."""
    ch, stacks, phi = _setup()
    rows, cols, k, transposed = _layout(ch, route, k)
    spec = BlockSpec(ch.d, ch.bond, k, rows, cols, transposed, chain_mod._block_scale)
    inner, first, last = ch._block_inputs(stacks)
    consts = ch._constants_for(torch.float64, torch.device("cpu"))
    mats, e = BlockMatrices.apply(inner, first, last, phi, consts, spec)
    ref, e_ref = block_matrices_reference(site_table(inner, first, last, consts, transposed), phi, consts[3], spec)
    assert torch.equal(e, e_ref)
    torch.testing.assert_close(mats, ref, rtol=1e-13, atol=1e-15)
    g = torch.randn(mats.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    if transposed_grad:
        g = g.mT.contiguous().mT  # the same values, stored transposed
    got = torch.autograd.grad(mats, [*stacks, phi], g, allow_unused=True)
    want = torch.autograd.grad(ref, [*stacks, phi], g, allow_unused=True)
    for a, b in zip(got, want):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize(("route", "k"), [("log-depth", None), ("blocked", 3)])
def test_block_matrices_gradcheck_and_second_derivatives(route, k):
    ch, stacks, phi = _setup(n=7, bond=2, batch=2)
    rows, cols, k, transposed = _layout(ch, route, k)
    spec = BlockSpec(ch.d, ch.bond, k, rows, cols, transposed, _unit_scale)
    consts = ch._constants_for(torch.float64, torch.device("cpu"))
    inner, first, last = (t.detach().clone().requires_grad_() for t in ch._block_inputs(stacks))

    def fn(inner, first, last, phi):
        return BlockMatrices.apply(inner, first, last, phi, consts, spec)[0]

    assert gradcheck(fn, (inner, first, last, phi), eps=1e-6, atol=1e-8)
    assert gradgradcheck(fn, (inner, first, last, phi), eps=1e-6, atol=1e-8)


def test_close_chain_equals_plain_autograd_and_gradcheck():
    torch.manual_seed(0)
    b, D, d, y = 4, 3, 2, 5
    vl, vr = (torch.randn(b, D, dtype=torch.float64).requires_grad_() for _ in range(2))
    core = torch.randn(D, d, D, y, dtype=torch.float64).requires_grad_()
    phi_out = torch.randn(b, d, dtype=torch.float64).requires_grad_()
    out, e = CloseChain.apply(vl, vr, core, phi_out, chain_mod._out_scale)
    ref, e_ref = close_reference(vl, vr, core, phi_out, chain_mod._out_scale)
    assert torch.equal(e, e_ref)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-15)
    g = torch.randn(b, y, dtype=torch.float64)
    got = torch.autograd.grad(out, (vl, vr, core, phi_out), g)
    want = torch.autograd.grad(ref, (vl, vr, core, phi_out), g)
    for a, w in zip(got, want):
        torch.testing.assert_close(a, w, rtol=1e-12, atol=1e-14)

    def fn(vl, vr, core, phi_out):
        return CloseChain.apply(vl, vr, core, phi_out, _unit_scale)[0]

    assert gradcheck(fn, (vl, vr, core, phi_out), eps=1e-6, atol=1e-8)
    assert gradgradcheck(fn, (vl, vr, core, phi_out), eps=1e-6, atol=1e-8)
    no_out = core[..., 0].detach().requires_grad_()  # a chain without an output index: a (D, d, D) core
    assert gradcheck(fn, (vl, vr, no_out, phi_out), eps=1e-6, atol=1e-8)


def test_hand_written_backward_is_what_runs(monkeypatch):
    """Mutation check of the equality tests' premise: the routes call the hand-written functions in eager mode (with
    them replaced by failing stubs the forward fails), and the plain-autograd forms while traced."""
    ch, stacks, phi = _setup()

    class Boom:
        @staticmethod
        def apply(*args):
            raise RuntimeError("hand-written function called")

    monkeypatch.setattr(chain_mod, "BlockMatrices", Boom)
    with pytest.raises(RuntimeError, match="hand-written"):
        ch.run_stacks(stacks, phi.detach())
    v, e = torch.func.vmap(lambda p: ch.run_stacks(stacks, p), in_dims=1, out_dims=1)(phi.detach().unsqueeze(1))
    assert torch.isfinite(v).all()


@pytest.mark.parametrize("route", ["log-depth", "blocked"])
def test_complex_chain_gradients_match_sequential(route):
    """Complex cores: the pairwise levels' backward conjugates (dA = G B^H, dB = A^H G) and the block matrices and
    closing contraction take plain autograd; values and gradients equal the sequential route's."""
    torch.manual_seed(0)
    seq = MPS(20, 2, 3, 2, plan="sequential", dtype=torch.complex128)
    m = MPS(20, 2, 3, 2, plan=route, dtype=torch.complex128)
    m.load_state_dict(seq.state_dict())
    x = torch.rand(4, 20, dtype=torch.float64)
    results = []
    for model in (seq, m):
        y = model(x)
        (y.real.sum() + 2 * y.imag.sum()).backward()
        results.append((y.detach(), [p.grad for p in model.parameters()]))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-10, atol=1e-13)
    for a, b in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
