"""The one-hot route of the star plan: a CP with the one-hot feature map contracts raw integer inputs by gathering
core rows (``TNModel.contract_input`` -> ``StarPlan.run_indices`` / ``run_stacks_indices``) instead of multiplying
dense one-hot vectors. Checked in float64 against the dense route (the same model given the embedded one-hot
vectors) for values, exponents and gradients, with and without a head, stacked and per-tensor storage; long chains
beyond a float32 product; zero factors; the inputs it refuses; and the experiment that uses it."""

from __future__ import annotations

import math

import pytest
import torch

import tnml.experiments.natural_data_rank as ndr
from tnml import TNModel
from tnml.feature_maps import OneHotMap
from tnml.networks import CP, MPS
from tnml.plans.scaling import normalize, normalize_entries, safe_product_length


def _perturbed_cp(n, d, r, out, stack, dtype=torch.float64, seed=0, spread=0.3):
    torch.manual_seed(seed)
    m = CP(n, d, r, out, feature_map="onehot", stack_cores=stack, dtype=dtype)
    with torch.no_grad():
        for p in m.parameters():  # away from the init's near-constant factors; some entries negative
            p.mul_(1 + spread * torch.randn_like(p))
    return m


def _full(values, exp):
    """values * 2**exp in float64 (exp per sample)."""
    scale = torch.exp2(exp.double())
    return values.double() * (scale[:, None] if values.dim() == 2 else scale)


def _grads(m, out):
    return torch.autograd.grad(out.sum(), list(m.parameters()))


@pytest.mark.parametrize("stack", [True, False], ids=["stacked", "per-tensor"])
@pytest.mark.parametrize(
    "n, d, r, out",
    [(2, 2, 1, 1), (3, 2, 1, None), (5, 3, 4, None), (5, 3, 4, 2), (64, 2, 15, None), (40, 4, 7, 3), (300, 2, 5, 2)],
)
def test_gather_route_equals_dense_route(n, d, r, out, stack):
    """Values, exponents and gradients of the gather route equal the dense route's (float64) for CPs with and
    without a head; the route is really taken (the one-hot vectors are never built)."""
    m = _perturbed_cp(n, d, r, out, stack)
    assert m.plan().kind == "star" and m.plan().takes_indices
    x = torch.randint(0, d, (9, n), generator=torch.Generator().manual_seed(1))
    phi = torch.nn.functional.one_hot(x, d).double()
    fast_v, fast_e = m.contract_input(x)
    dense_v, dense_e = m.contract(phi)
    torch.testing.assert_close(_full(fast_v, fast_e), _full(dense_v, dense_e), rtol=1e-12, atol=0)
    torch.testing.assert_close(fast_e, dense_e)  # the same per-sample power of two here
    y_fast, y_dense = m(x), m(phi)
    torch.testing.assert_close(y_fast, y_dense, rtol=1e-12, atol=0)
    for a, b in zip(_grads(m, y_fast * torch.linspace(-1, 1, y_fast.numel()).view_as(y_fast)),
                    _grads(m, y_dense * torch.linspace(-1, 1, y_dense.numel()).view_as(y_dense)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    # float inputs with integer values take the gather route as well, and the dense one-hot map is never called
    called = []
    orig = OneHotMap.forward
    OneHotMap.forward = lambda self, v: called.append(1) or orig(self, v)  # type: ignore[method-assign]
    try:
        torch.testing.assert_close(m(x.double()), y_dense, rtol=1e-12, atol=0)
    finally:
        OneHotMap.forward = orig  # type: ignore[method-assign]
    assert not called


def test_log_forward_beyond_the_float32_range():
    """2 000 factors of size ~2: the output (~2**1900) overflows float32, the exponent carries it; log_forward of
    the gather route equals the dense route's; products longer than one float32 chunk (125 factors) and longer than
    a chunk of chunks (125 * 125) are both exercised."""
    for n in (2000, 16_000):
        m = _perturbed_cp(n, 2, 3, None, True, dtype=torch.float32, spread=0.1)
        with torch.no_grad():
            for p in m.parameters():
                p.abs_().mul_(2.0 / p.mean())
        x = torch.randint(0, 2, (4, n), generator=torch.Generator().manual_seed(2))
        la, sa = m.log_forward(x)
        lb, sb = m.log_forward(torch.nn.functional.one_hot(x, 2).float())
        assert torch.isfinite(la).all() and float(la.detach().min()) > 1000  # ln f > 1000: far beyond float32
        torch.testing.assert_close(la, lb, rtol=1e-5, atol=0)
        torch.testing.assert_close(sa, sb)


def test_float64_long_chain_against_the_exact_log_sum():
    """3 000 factors in float64 (three chunks of <= 1021): ln f equals a log-sum-exp over the components of the
    summed log-factors, computed independently."""
    m = _perturbed_cp(3000, 3, 4, None, False, spread=0.05)
    x = torch.randint(0, 3, (5, 3000), generator=torch.Generator().manual_seed(3))
    a = torch.stack([m.core(f"site{k}") for k in range(3000)]).detach()  # (n, d, R), all positive here
    assert (a > 0).all()
    logs = a[torch.arange(3000), x].log().sum(1)  # (batch, R)
    ref = torch.logsumexp(logs, -1)
    got, sign = m.log_forward(x)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    assert (sign == 1).all()


def test_zero_factors_and_zero_outputs():
    """Exact zeros in the cores: components that vanish never set the scale; a sample whose every component
    vanishes gives 0 (finite exponent) and finite gradients, equal to the dense route's."""
    m = _perturbed_cp(6, 2, 3, 2, True)
    with torch.no_grad():
        m.core("site0")[1, :2] = 0.0  # x_0 = 1 kills components 0 and 1 ...
        m.core("site1")[1, 2] = 0.0  # ... and x_1 = 1 kills component 2
    x = torch.tensor([[1, 1, 0, 0, 1, 0], [1, 0, 1, 1, 0, 0], [0, 1, 0, 1, 0, 1]])
    phi = torch.nn.functional.one_hot(x, 2).double()
    v, e = m.contract_input(x)
    assert torch.isfinite(e).all() and (v[0] == 0).all()
    torch.testing.assert_close(_full(v, e), _full(*m.contract(phi)), rtol=1e-12, atol=0)
    for a, b in zip(_grads(m, m(x)), _grads(m, m(phi)), strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    # against the unscaled formula: the gradient at a zero factor is the product of its partners (the dense route
    # lost it while normalize scaled all-zero slices by 1/tiny)
    a, h = m.cores.stack_list()
    direct = torch.autograd.grad((a[torch.arange(6), x].prod(1) @ h[0]).sum(), a)[0]
    torch.testing.assert_close(_grads(m, m(x))[0], direct, rtol=1e-12, atol=1e-15)
    assert direct[0, 1, 0] != 0


def test_normalize_keeps_zero_slices_at_scale_one():
    t = torch.tensor([[0.0, 0.0], [3.0, -1.0]], dtype=torch.float64, requires_grad=True)
    tn, e = normalize(t, 1)
    assert e.tolist() == [0.0, 2.0] and tn.tolist() == [[0.0, 0.0], [0.75, -0.25]]
    (g,) = torch.autograd.grad(tn.sum(), t)
    assert g.tolist() == [[1.0, 1.0], [0.25, 0.25]]


def test_star_with_head_inputs_and_permuted_factors():
    """A star network from quimb whose factors come in two axis orders and whose head takes two inputs: the
    gather route equals the dense route (values and gradients)."""
    import quimb.tensor as qtn

    g = torch.Generator().manual_seed(3)
    ts = []
    for k in range(5):
        inds, shape = ((f"x{k}", "r"), (3, 4)) if k % 2 else (("r", f"x{k}"), (4, 3))
        ts.append(qtn.Tensor(torch.randn(*shape, generator=g, dtype=torch.float64).numpy(), inds=inds))
    ts.append(qtn.Tensor(torch.randn(3, 3, 4, 2, generator=g, dtype=torch.float64).numpy(),
                         inds=("x5", "x6", "r", "y")))
    for stack in (True, False):
        m = TNModel.from_quimb(qtn.TensorNetwork(ts), [f"x{k}" for k in range(7)], "y",
                               feature_map=("onehot", {"k": 3}), dtype=torch.float64)
        if not stack:
            m = TNModel(m.structure, ("onehot", {"k": 3}), stack_cores=False, dtype=torch.float64)
            with torch.no_grad():
                for t, tensor in zip(m.structure.tensors, ts):
                    m.core(t.name).copy_(torch.as_tensor(tensor.data))
        assert m.plan().kind == "star" and m.plan().head_sites == [5, 6]
        assert not stack or len(m.cores.stack_list()) == 3  # one group read from two stacks (two axis orders)
        x = torch.randint(0, 3, (8, 7), generator=g)
        phi = torch.nn.functional.one_hot(x, 3).double()
        torch.testing.assert_close(m(x), m(phi), rtol=1e-12, atol=0)
        for a, b in zip(_grads(m, m(x)[:, 1]), _grads(m, m(phi)[:, 1]), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


def test_gradcheck_on_the_gather_route():
    m = _perturbed_cp(6, 3, 2, 2, True)
    x = torch.randint(0, 3, (4, 6), generator=torch.Generator().manual_seed(4))
    stacks = m.cores.stack_list()
    plan = m.plan()

    def f(*st):
        v, e = plan.run_stacks_indices(list(st), x)
        return v * torch.exp2(e)[:, None]

    assert torch.autograd.gradcheck(f, tuple(s.detach().clone().requires_grad_() for s in stacks))


@pytest.mark.parametrize(
    "x",
    [
        torch.tensor([[0.0, 1.0, 2.0]]),  # out of range
        torch.tensor([[0, 1, 2]]),  # out of range, integer dtype (gathered, so it must be checked)
        torch.tensor([[-1, 0, 1]]),  # negative
        torch.tensor([[0.0, 0.5, 1.0]]),  # not an integer
    ],
    ids=["float-2", "long-2", "long-neg", "half"],
)
@pytest.mark.parametrize("plan", ["auto", "generic"])
def test_bad_onehot_inputs_name_the_values_and_the_fix(x, plan):
    """The gather route validates as the one-hot map always did (same message on both routes)."""
    m = CP(3, 2, 2, feature_map="onehot", plan=plan)
    assert m.plan().takes_indices == (plan == "auto")
    with pytest.raises(ValueError, match=r"onehot\(k=2\) needs integer values in \[0, 1\], got values in "
                                         r"\[-?[0-9.]+, [0-9.]+\]; discretize the data or raise k"):
        m(x)


def test_nan_and_shape_errors_on_the_gather_route():
    m = CP(3, 2, 2, feature_map="onehot")
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        m(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match=r"x has shape \(1, 4\); this model expects \(batch, 3\) raw"):
        m(torch.tensor([[0, 1, 1, 0]]))


def test_contract_indices_refuses_what_it_cannot_do():
    gen = CP(3, 2, 2, feature_map="onehot", plan="generic")
    with pytest.raises(ValueError, match="generic plan of this model does not take one-hot indices; call "
                                         r"contract\(torch.nn.functional.one_hot"):
        gen.contract_indices(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(NotImplementedError, match="does not take one-hot inputs as indices"):
        gen.plan().run_indices(gen.core_dict(), torch.zeros(2, 3, dtype=torch.long))
    star = CP(3, 2, 2, feature_map="onehot")
    with pytest.raises(ValueError, match=r"idx must be integer indices of shape \(batch, 3\), got torch.float32"):
        star.contract_indices(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"got torch.int64 of shape \(2, 4\)"):
        star.contract_indices(torch.zeros(2, 4, dtype=torch.long))


def test_other_maps_and_plans_keep_the_dense_route():
    """A CP with another feature map, a generic-plan CP and an MPS with the one-hot map contract densely and agree
    with their dense reference; an empty batch still gives an empty output."""
    x = torch.randint(0, 2, (5, 6), generator=torch.Generator().manual_seed(5))
    cp_gen = CP(6, 2, 3, 2, feature_map="onehot", plan="generic", dtype=torch.float64)
    cp_star = CP(6, 2, 3, 2, feature_map="onehot", dtype=torch.float64)
    cp_star.load_state_dict(cp_gen.state_dict())
    torch.testing.assert_close(cp_gen(x), cp_star(x), rtol=1e-12, atol=0)
    mps = MPS(6, 2, 3, out_dim=2, feature_map="onehot", dtype=torch.float64)
    assert not mps.plan().takes_indices
    torch.testing.assert_close(mps(x), mps(torch.nn.functional.one_hot(x, 2).double()))
    trig = CP(6, 2, 3, 2, dtype=torch.float64)
    assert trig.feature_map.indices(x.double()) is None
    assert cp_star(torch.zeros(0, 6, dtype=torch.long)).shape == (0, 2)


def test_complex_cp_on_the_gather_route():
    m = CP(5, 3, 2, 2, feature_map="onehot", dtype=torch.complex128)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3j * torch.randn_like(p.real))
    x = torch.randint(0, 3, (4, 5), generator=torch.Generator().manual_seed(6))
    phi = torch.nn.functional.one_hot(x, 3).to(torch.complex128)
    torch.testing.assert_close(m(x), m(phi), rtol=1e-12, atol=0)


def test_entry_normalization_and_safe_length():
    t = torch.tensor([0.0, 3.0, -0.3, 2.0**-126, 1e-40, float("inf")])
    mant, e = normalize_entries(t)
    torch.testing.assert_close(mant * torch.exp2(e), t, rtol=0, atol=0)
    assert ((mant[1:4].abs() >= 0.5) & (mant[1:4].abs() < 1)).all() and mant[0] == 0 and torch.isfinite(mant[4])
    assert safe_product_length(torch.float32) == 125 and safe_product_length(torch.float64) == 1021
    assert safe_product_length(torch.complex64) == 125
    # the promise: that many normalized factors of the smallest magnitude stay a normal number
    for dt in (torch.float32, torch.float64):
        k = safe_product_length(dt)
        assert torch.tensor(0.5, dtype=dt) ** k >= torch.finfo(dt).tiny


def test_natural_data_rank_uses_the_library_cp(monkeypatch):
    """fit_rank trains tnml.networks.CP (no model class of its own) and clamps its factors after every step."""
    assert not hasattr(ndr, "OneHotCP")
    built = []
    real = ndr.onehot_cp
    monkeypatch.setattr(ndr, "onehot_cp", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    monkeypatch.setattr(ndr, "CLAMP", 0.5)  # far below the init mean: the clamp must act
    data = ndr.make_datasets(0)["original"]
    out = ndr.fit_rank(data, 2, 5, seed=3)
    assert len(built) == 1 and type(built[0]) is CP and built[0].feature_map.registry_name == "onehot"
    assert all(float(p.detach().abs().max()) <= 0.5 for p in built[0].parameters())
    assert math.isfinite(out["train"]) and math.isfinite(out["test"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gather_route_on_cuda_matches_cpu():
    """The same CP on CUDA (integer pixels given on the CPU, as a data loader would): values and gradients of the
    gather route equal the CPU's (float64)."""
    import copy

    m = _perturbed_cp(64, 2, 5, 3, True)
    x = torch.randint(0, 2, (33, 64), generator=torch.Generator().manual_seed(7))
    gpu = copy.deepcopy(m).cuda()
    y, yg = m(x), gpu(x)
    torch.testing.assert_close(yg.cpu(), y, rtol=1e-12, atol=0)
    torch.testing.assert_close(gpu(x.double().cuda()).cpu(), y, rtol=1e-12, atol=0)
    for a, b in zip(_grads(m, y), _grads(gpu, yg), strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-10, atol=1e-13)
