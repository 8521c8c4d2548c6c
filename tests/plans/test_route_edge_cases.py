"""Edge cases of the chain routes (log-depth, blocked, sequential) and of tree spines against float64 references.

The references are independent of the plans: the dense coefficient tensor (``to_dense``, an einsum over the network)
contracted with inputs embedded by a hand-written trig map, a naive site-by-site sweep for chains too long to
densify, and the plain-autograd forms of the block matrices. Values and gradients (with respect to the cores and to
the raw inputs) are compared over short chains (n = 4, 5, 6, 7, 9), every output site a route accepts, input
dimensions d > 2, bonds 1 and above d^k, float32 / float64 / complex128, batch 0 and 1, non-contiguous inputs,
no-grad / eval / inference mode, retained graphs, accumulated gradients, second derivatives, ``.double()`` after the
plan was built, ``torch.func`` transforms, frozen parameters, networks with permuted axes and reversed input order.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import quimb.tensor as qtn
import torch
from torch.autograd import gradcheck, gradgradcheck

from tnml import TNModel
from tnml.feature_maps import OneHotMap, TrigMap
from tnml.networks import MPS, TTN
from tnml.plans import chain as chain_mod
from tnml.plans.blocks import BlockMatrices, BlockSpec, block_matrices_reference, site_table
from tnml.plans.compile import compile_plan
from tnml.plans.tree import TreePlan
from tnml.testing import dense_forward

ROUTES = ("log-depth", "blocked", "sequential")
F64 = torch.float64


def trig(x: torch.Tensor, theta: float = 0.5) -> torch.Tensor:
    """The trig feature map written out: ``(cos(pi theta x), sin(pi theta x))``."""
    a = math.pi * theta * x
    return torch.stack((torch.cos(a), torch.sin(a)), -1)


def embedded(model, x: torch.Tensor) -> torch.Tensor:
    """Inputs embedded without the model's feature-map code where it is the trig map."""
    return trig(x) if isinstance(model.feature_map, TrigMap) else model.embed(x)


def mps(route, n=9, d=2, bond=3, out_dim=2, site=None, dtype=F64, fmap="trig", seed=0, **kw):
    torch.manual_seed(seed)
    return MPS(n, d, bond, out_dim, output_site=site, feature_map=fmap, init="normal", plan=route, dtype=dtype, **kw)


def raw(model, batch, seed=1, requires_grad=True, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    n, d = model.n_sites, model.phys_dim
    if isinstance(model.feature_map, OneHotMap):
        return torch.randint(0, d, (batch, n), generator=g).to(dtype)  # categories: no input gradient
    return torch.rand(batch, n, generator=g, dtype=dtype).requires_grad_(requires_grad)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max() / b.detach().abs().max().clamp_min(1e-300))


def grads(out: torch.Tensor, wrt, w=None):
    """Gradients of ``sum(Re(w * out))`` (``w`` random, fixed by the caller)."""
    w = torch.ones_like(out) if w is None else w
    return torch.autograd.grad((out * w).real.sum(), wrt, allow_unused=True)


def assert_matches_dense(model, x, tol=1e-10):
    """``model(x)`` and the gradients wrt its parameters (and ``x`` if it requires grad) equal the dense reference."""
    out = model(x)
    ref = dense_forward(model, embedded(model, x))
    assert out.dtype == ref.dtype and out.shape == ref.shape
    assert rel(out, ref) < tol, (rel(out, ref), model.plan().describe(x.shape[0]))
    wrt = [p for p in model.parameters() if p.requires_grad] + ([x] if x.requires_grad else [])
    w = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(7))
    for a, b in zip(grads(out, wrt, w), grads(ref, wrt, w), strict=True):
        assert rel(a, b) < tol, (rel(a, b), model.plan().describe(x.shape[0]))


# ------------------------------------------------------------------ shapes, sites, maps, dtypes
@pytest.mark.parametrize("route", ROUTES)
def test_every_output_site_of_short_chains_equals_dense(route):
    """n = 4 .. 9 (powers of two and not; odd and even block counts), every inner output site, no output leg."""
    for n in (4, 5, 6, 7, 9):
        for site in [*range(1, n - 1), None]:
            model = mps(route, n=n, out_dim=None if site is None else 3, site=site, seed=n)
            assert_matches_dense(model, raw(model, 3, seed=n))


@pytest.mark.parametrize("route", ["log-depth", "blocked"])
def test_chains_the_routes_do_not_cover_are_refused_with_the_fix(route):
    for n, site in [(2, 0), (3, 1), (4, 0), (7, 6)]:
        with pytest.raises(ValueError, match=f"route='{route}' needs an open chain.*plan='tree'"):
            mps(route, n=n, out_dim=3, site=site)(torch.rand(2, n, dtype=F64))


@pytest.mark.parametrize(("n", "site"), [(2, 0), (2, 1), (3, 1), (3, 2), (4, 0), (5, 4)])
def test_sequential_on_short_chains_and_end_outputs_equals_dense(n, site):
    model = mps("sequential", n=n, out_dim=3, site=site)
    assert_matches_dense(model, raw(model, 4))


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("d", "fmap"), [(3, "polynomial"), (4, "onehot"), (17, "polynomial")])
def test_input_dims_above_two_and_extreme_bonds_equal_dense(route, d, fmap):
    """Bond 1 and bonds larger than d^k (k: the route's block size), input dims 3, 4 and 17 (k = 1)."""
    for n, bond in [(5, 1), (7, 2), (4, 12)] if d < 17 else [(5, 2)]:
        model = mps(route, n=n, d=d, bond=bond, site=1, fmap=fmap, seed=bond)
        assert_matches_dense(model, raw(model, 3, seed=bond))


@pytest.mark.parametrize("route", ROUTES)
def test_bonds_above_two_to_the_k_and_a_single_output(route):
    """d = 2 with bonds 12 and 20 (block size k = 3: D > 2^k), out_dim 1 (an output leg of size one)."""
    for n, bond, out_dim in [(9, 12, 1), (11, 5, 1), (7, 20, 4)]:
        model = mps(route, n=n, bond=bond, out_dim=out_dim, site=3, seed=bond)
        assert_matches_dense(model, raw(model, 2, seed=bond))


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-4), (torch.complex128, 1e-10)])
def test_float32_and_complex_chains_equal_dense(route, dtype, tol):
    for n in (5, 8, 11):
        model = mps(route, n=n, site=n - 2, dtype=dtype, seed=n)
        assert_matches_dense(model, raw(model, 3, seed=n), tol)


@pytest.mark.parametrize("route", ROUTES)
def test_batch_zero_and_one(route):
    model = mps(route)
    empty = torch.rand(0, 9, dtype=F64, requires_grad=True)
    out = model(empty)
    assert out.shape == (0, 2)
    out.sum().backward()
    assert all(float(p.grad.abs().sum()) == 0.0 for p in model.parameters())
    model.zero_grad()
    assert_matches_dense(model, raw(model, 1))


# ------------------------------------------------------------------ inputs and modes
@pytest.mark.parametrize("route", ROUTES)
def test_non_contiguous_inputs_and_inference_modes(route):
    model = mps(route)
    xt = torch.rand(9, 6, dtype=F64).t().requires_grad_()  # transposed
    assert not xt.is_contiguous()
    assert_matches_dense(model, xt)
    xs = torch.rand(5, 18, dtype=F64)[:, ::2]  # sliced
    ref = dense_forward(model, trig(xs))
    model.eval()
    with torch.no_grad():
        assert rel(model(xs), ref) < 1e-12
    with torch.inference_mode():
        assert rel(model(xs), ref) < 1e-12
    model.train()
    # embedded, non-contiguous phi
    phi = trig(torch.rand(6, 9, dtype=F64)).transpose(0, 1).contiguous().transpose(0, 1)
    assert not phi.is_contiguous()
    assert rel(model(phi), dense_forward(model, phi)) < 1e-12


@pytest.mark.parametrize("route", ROUTES)
def test_retained_graph_accumulation_and_second_derivatives(route):
    model = mps(route)
    params = list(model.parameters())
    x = torch.rand(4, 9, dtype=F64)
    out = model(x)
    out.sum().backward(retain_graph=True)
    first = [p.grad.clone() for p in params]
    out.sum().backward()  # a second backward through the retained graph adds the same gradient
    second = [p.grad.clone() for p in params]
    model.zero_grad()
    want = torch.autograd.grad(dense_forward(model, trig(x)).sum(), params)
    for a, b, c in zip(first, second, want, strict=True):
        assert rel(a, c) < 1e-10 and rel(b, 2 * c) < 1e-10
    # two steps accumulated, different batch sizes
    xa, xb = torch.rand(3, 9, dtype=F64), torch.rand(5, 9, dtype=F64)
    model(xa).pow(2).sum().backward()
    model(xb).sum().backward()
    want = torch.autograd.grad(
        dense_forward(model, trig(xa)).pow(2).sum() + dense_forward(model, trig(xb)).sum(), params
    )
    for p, c in zip(params, want, strict=True):
        assert rel(p.grad, c) < 1e-10
    model.zero_grad()

    # the gradient of a gradient norm (cores and inputs)
    xg = torch.rand(3, 9, dtype=F64, requires_grad=True)

    def grad_norm_grad(f):
        g = torch.autograd.grad(f(xg).pow(2).sum(), [*params, xg], create_graph=True)
        return torch.autograd.grad(sum(t.pow(2).sum() for t in g), [*params, xg])

    got = grad_norm_grad(model)
    want = grad_norm_grad(lambda z: dense_forward(model, trig(z)))
    for a, b in zip(got, want, strict=True):
        assert rel(a, b) < 1e-9


@pytest.mark.parametrize("route", ROUTES)
def test_gradcheck_on_stacks_and_embedded_inputs(route):
    model = mps(route, n=6, bond=2, site=2)
    plan = model.plan()
    phi = trig(torch.rand(2, 6, dtype=F64)).requires_grad_()
    stacks = tuple(s.detach().requires_grad_() for s in model.cores.stack_list())

    def f(phi, *st):
        v, e = plan.run_stacks(list(st), phi)
        return v * torch.exp2(e)[:, None]

    assert gradcheck(f, (phi, *stacks), eps=1e-6, atol=1e-8)
    assert gradgradcheck(f, (phi, *stacks), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("route", ROUTES)
def test_double_after_the_plan_was_built_in_float32(route):
    model = mps(route, dtype=torch.float32)
    model(torch.rand(2, 9))  # plan and per-dtype constants built in float32
    model = model.double()
    x = torch.rand(3, 9, dtype=F64, requires_grad=True)
    assert model(x).dtype == F64
    assert_matches_dense(model, x)


@pytest.mark.parametrize("route", ROUTES)
def test_torch_func_grad_and_vmap(route):
    from torch.func import functional_call, grad, jacrev, vmap

    model = mps(route)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.rand(4, 9, dtype=F64)
    g = grad(lambda p, xx: functional_call(model, p, (xx,)).sum())(params, x)
    want = torch.autograd.grad(dense_forward(model, trig(x)).sum(), list(model.parameters()))
    for (name, _), b in zip(model.named_parameters(), want, strict=True):
        assert rel(g[name], b) < 1e-10

    def one(xx):
        return functional_call(model, params, (xx.unsqueeze(0),)).squeeze(0)

    assert rel(vmap(one)(x), dense_forward(model, trig(x))) < 1e-12
    gx = vmap(grad(lambda xx: one(xx).sum()))(x)
    xr = x.clone().requires_grad_()
    assert rel(gx, torch.autograd.grad(dense_forward(model, trig(xr)).sum(), xr)[0]) < 1e-10
    # vmap(model) over batches of batches, and a Jacobian wrt the inputs
    xs = torch.rand(3, 2, 9, dtype=F64)
    assert rel(vmap(model)(xs), torch.stack([dense_forward(model, trig(b)) for b in xs])) < 1e-12
    assert rel(jacrev(model)(x[:2]), jacrev(lambda z: dense_forward(model, trig(z)))(x[:2])) < 1e-10


# ------------------------------------------------------------------ parameters and geometry
@pytest.mark.parametrize("route", ["log-depth", "blocked"])
def test_frozen_parameters(route):
    """Some stacks frozen (the end tensors, all but the first, all): the rest and the input get dense gradients."""
    model = mps(route)
    names = [n for n, _ in model.named_parameters()]
    for frozen in (names[:1], names[-1:], names[1:], names):
        for n, p in model.named_parameters():
            p.requires_grad_(n not in frozen)
        assert_matches_dense(model, raw(model, 4))
    for p in model.parameters():
        p.requires_grad_(True)


@pytest.mark.parametrize("route", ROUTES)
def test_unstacked_cores(route):
    model = mps(route, n=10, stack_cores=False)
    assert_matches_dense(model, raw(model, 4))


def permuted_chain(n: int, out_pos: int, seed: int) -> qtn.TensorNetwork:
    """A random quimb chain whose end and output tensors have random axis orders and whose inner tensors all have
    the order (right bond, input, left bond)."""
    rng = np.random.default_rng(seed)
    ts = []
    for i in range(n):
        left, right = [f"b{i - 1}"] if i else [], [f"b{i}"] if i < n - 1 else []
        if 0 < i < n - 1 and i != out_pos:
            inds = [*right, f"p{i}", *left]
        else:
            inds = list(rng.permutation([*left, f"p{i}", *right, *(["y"] if i == out_pos else [])]))
        shape = [3 if s.startswith("b") else 2 for s in inds]  # bonds 3, inputs and output 2
        ts.append(qtn.Tensor(rng.standard_normal(shape) / math.sqrt(3), inds=inds))
    return qtn.TensorNetwork(ts)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("n", "out_pos", "reverse"), [(6, 2, True), (7, 4, False), (9, 3, True)])
def test_permuted_axes_and_reversed_input_order(route, n, out_pos, reverse):
    order = list(range(n))[::-1] if reverse else list(range(n))
    model = TNModel.from_quimb(
        permuted_chain(n, out_pos, seed=n), [f"p{i}" for i in order], "y", feature_map="trig", plan=route, dtype=F64
    )
    assert route.split("-")[0] in model.plan().describe(4)
    assert_matches_dense(model, raw(model, 4))


def naive_log_values(model: MPS, phi: torch.Tensor) -> torch.Tensor:
    """``log |f|`` per sample and output of an MPS by a site-by-site float64 sweep with explicit normalization."""
    cores = model.core_dict()
    n, o = model.n_sites, model.output_site
    v = torch.einsum("bs,sr->br", phi[:, 0], cores["site0"]).unsqueeze(1)  # (b, y=1, D)
    log = torch.zeros(phi.shape[0], dtype=F64)
    for i in range(1, n):
        c = cores[f"site{i}"]
        if i == n - 1:
            v = torch.einsum("byl,bs,ls->by", v, phi[:, i], c)
            break
        if i == o:
            v = torch.einsum("bzl,bs,lsry->byr", v, phi[:, i], c)
        else:
            v = torch.einsum("byl,bs,lsr->byr", v, phi[:, i], c)
        m = v.abs().flatten(1).amax(1)
        v, log = v / m.view(-1, 1, 1), log + torch.log(m)
    return torch.log(v.abs()) + log.unsqueeze(1)


@pytest.mark.parametrize("route", ROUTES)
def test_long_chains_equal_a_naive_sweep(route):
    """37 and 130 sites (no power of two), output next to either end, inside and in the middle: log-values and their
    gradients."""
    for n in (37, 130):
        for site in (1, n // 3, n // 2, n - 2):  # n // 2: halves of equal and of unequal length
            model = mps(route, n=n, site=site, seed=n)
            x = raw(model, 5, seed=site)
            v, e = model.contract_input(x)
            got = torch.log(v.abs()) + e.unsqueeze(-1) * math.log(2)
            ref = naive_log_values(model, trig(x))
            assert float((got - ref).detach().abs().max()) < 1e-10
            wrt = [*model.parameters(), x]
            for a, b in zip(grads(got, wrt), grads(ref, wrt), strict=True):
                assert rel(a, b) < 1e-9


def decaying_float32_chain(route: str) -> tuple[MPS, MPS]:
    """A 64-site float32 chain whose cores are scaled by 0.02 (about -3.9 nats per site: 16 sites take a vector
    from 1 to about 2**-90, its smaller entries into float32's subnormal range), and its float64 copy."""
    m32, m64 = mps(route, n=64, site=20, dtype=torch.float32, seed=1), mps(route, n=64, site=20, seed=1)
    with torch.no_grad():
        for p in m32.parameters():
            p.mul_(0.02)
    m64.load_state_dict({k: v.double() for k, v in m32.state_dict().items()})
    return m32, m64


def float32_log_error(route: str) -> float:
    m32, m64 = decaying_float32_chain(route)
    x = torch.rand(8, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        v, e = m32.contract_input(x)
        got = torch.log(v.abs().double()) + e.double().unsqueeze(-1) * math.log(2)
        return float((got - naive_log_values(m64, trig(x.double()))).abs().max())


@pytest.mark.parametrize(
    "route",
    [
        "log-depth",
        "blocked",
        "sequential",
    ],
)
def test_float32_chains_with_fast_decay_keep_their_digits(route):
    """log |f| of a fast-decaying float32 chain within 1e-3 nats of a float64 sweep."""
    assert float32_log_error(route) < 1e-3


def test_float32_sequential_route_keeps_its_digits_when_rescaling_every_block(monkeypatch):
    """The chain above can show the effect: rescaled after every block the sequential route meets the bound."""
    monkeypatch.setattr(chain_mod, "SWEEP_RESCALE_SITES", 1)
    assert float32_log_error("sequential") < 1e-3


# ------------------------------------------------------------------ the block matrices' backward
@pytest.mark.parametrize(("route", "k"), [("log-depth", None), ("blocked", 2), ("blocked", 3)])
def test_block_matrices_take_any_incoming_gradient_layout(route, k):
    """Broadcast (stride 0, as from ``.sum()``), sliced and column-major incoming gradients give the plain-autograd
    gradients."""
    model = mps("log-depth", n=11, seed=3)
    ch = model.plan().chain
    stacks = [p.detach().clone().requires_grad_() for p in model.cores.stack_list()]
    phi = trig(torch.rand(4, 11, dtype=F64)).requires_grad_()
    if route == "log-depth":
        rows, cols, k, transposed = ch.site_rows, ch.phi_index, ch.k, False
    else:
        rows, cols, _ = ch.blocked_layout(k)
        transposed = True
    spec = BlockSpec(ch.d, ch.bond, k, rows, cols, transposed, chain_mod._block_scale)
    inner, first, last = ch._block_inputs(stacks)
    consts = ch._constants_for(F64, torch.device("cpu"))
    mats, _ = BlockMatrices.apply(inner, first, last, phi, consts, spec)
    ref, _ = block_matrices_reference(site_table(inner, first, last, consts, transposed), phi, consts[3], spec)
    big = torch.randn(mats.shape[0], 2 * ch.bond, ch.bond, dtype=F64, generator=torch.Generator().manual_seed(2))
    layouts = [
        torch.tensor(0.7, dtype=F64).expand(mats.shape),
        big[:, ::2],
        big[:, : ch.bond].transpose(1, 2),
        big[:, : ch.bond].permute(2, 1, 0).contiguous().permute(2, 1, 0),
    ]
    for g in layouts:
        got = torch.autograd.grad(mats, [*stacks, phi], g, retain_graph=True, allow_unused=True)
        want = torch.autograd.grad(ref, [*stacks, phi], g.contiguous(), retain_graph=True, allow_unused=True)
        for a, b in zip(got, want, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                assert rel(a, b) < 1e-12


# ------------------------------------------------------------------ tree spines
def comb(n: int):
    t = (0, 1)
    for i in range(2, n):
        t = (t, i)
    return t


@pytest.mark.parametrize("dtype", [F64, torch.complex128])
def test_spines_input_gradients_batch_one_and_non_contiguous_inputs(dtype):
    torch.manual_seed(0)
    model = TTN(tree=comb(12), phys_dim=2, bond_dim=3, out_dim=2, init="normal", dtype=dtype)
    model.__dict__["_plan_cache"] = (str(model._ref().device), TreePlan(model.structure, spines="always"))
    assert model.plan().spines and model.plan().spines_for(1) == (0,)
    for x in (torch.rand(1, 12, dtype=F64), torch.rand(12, 5, dtype=F64).t(), torch.rand(3, 24, dtype=F64)[:, 1::2]):
        assert_matches_dense(model, x.requires_grad_())


# ------------------------------------------------------------------ a first call in inference mode
def test_input_gradients_after_a_first_call_in_inference_mode():
    model = mps("tree")
    with torch.inference_mode():
        model(torch.rand(2, 9, dtype=F64))
    assert_matches_dense(model, raw(model, 3))


def test_trig_map_uses_a_theta_set_after_its_first_call():
    fmap = TrigMap(0.5)
    x = torch.rand(3, 4, dtype=F64)
    assert torch.allclose(fmap(x), trig(x, 0.5), rtol=0, atol=1e-15)
    fmap.theta = 0.085
    assert fmap.config() == {"theta": 0.085}
    assert torch.allclose(fmap(x), trig(x, 0.085), rtol=0, atol=1e-15)


@pytest.mark.parametrize("route", ["blocked", "sequential"])
def test_training_after_a_first_call_in_inference_mode(route):
    compile_plan.cache_clear()
    dtype = torch.complex128 if route == "blocked" else F64  # the blocked route indexes through autograd for complex
    try:
        with torch.inference_mode():
            mps(route, dtype=dtype, fmap="polynomial")(torch.rand(2, 9, dtype=F64))
        model = mps(route, dtype=dtype, fmap="polynomial", seed=1)  # a fresh model: the cached plan is shared
        assert_matches_dense(model, raw(model, 3))
    finally:
        compile_plan.cache_clear()  # no plan built in inference mode is left to later tests


def test_spines_train_after_a_first_call_in_inference_mode():
    """The spine schedule's index tensors are built at the first forward: under inference mode they must still be
    normal tensors, or every later backward through the plan fails."""
    torch.manual_seed(0)
    model = TTN(tree=comb(12), phys_dim=2, bond_dim=3, out_dim=2, init="normal", dtype=F64)
    model.__dict__["_plan_cache"] = (str(model._ref().device), TreePlan(model.structure, spines="always"))
    with torch.inference_mode():
        model(torch.rand(4, 12, dtype=F64))
    assert model.plan()._schedules and model.plan().spines_for(4) == (0,)
    assert_matches_dense(model, torch.rand(4, 12, dtype=F64).requires_grad_())
