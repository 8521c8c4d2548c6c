"""Spines of tree plans contracted in logarithmic depth: dense float64 references (values and gradients, real and
complex), level-by-level agreement on trees with long branches and subtree children, float32 rescaling over a
300+ tensor spine (with its mutation check), the cost model's choice, kernel counts and the single host read."""

from __future__ import annotations

import math

import pytest
import quimb.tensor as qtn
import torch

import tnml.plans.spine as spine_mod
from tests.registry import dense_forward, sample_input
from tnml import TNModel
from tnml.networks import MPS, TTN
from tnml.plans.tree import TreePlan


def comb(n: int, side=None):
    """The caterpillar mode tree over ``n`` leaves, ``(((0, 1), 2), ...)``; ``side(i)`` replaces leaf ``i >= 2``
    by a subtree."""
    t = (0, 1)
    for i in range(2, n):
        t = (t, i if side is None else side(i))
    return t


def _leaves(t):
    return [t] if isinstance(t, int) else [x for c in t for x in _leaves(c)]


def canonical(t):
    """``t`` with its leaves renumbered 0, 1, ... in increasing order."""
    relabel = {v: k for k, v in enumerate(sorted(_leaves(t)))}

    def go(u):
        return relabel[u] if isinstance(u, int) else tuple(go(c) for c in u)

    return go(t)


def with_plan(model, spines: str):
    """``model`` contracting through a fresh tree plan with the given spine option."""
    model.__dict__["_plan_cache"] = (str(model._ref().device), TreePlan(model.structure, spines=spines))
    return model


def caterpillar(m: int, bond: int, out_dim: int, dtype=torch.float64, seed: int = 0) -> TNModel:
    """A random caterpillar network: ``m`` spine tensors, each with one or two inputs (random), the output on the
    last one."""
    g = torch.Generator().manual_seed(seed)
    ts, site = [], 0
    for i in range(m):
        k = int(torch.randint(1, 3, (1,), generator=g))
        inds = ([f"e{i - 1}"] if i else []) + [f"x{site + j}" for j in range(k)]
        inds += [f"e{i}"] if i < m - 1 else ["y"]
        site += k
        shape = [bond if ind.startswith("e") else (out_dim if ind == "y" else 2) for ind in inds]
        data = torch.randn(*shape, generator=g, dtype=torch.float64) / math.sqrt(bond)
        ts.append(qtn.Tensor(data.numpy(), inds=inds))
    return TNModel.from_quimb(
        qtn.TensorNetwork(ts), [f"x{s}" for s in range(site)], "y", feature_map="trig", dtype=dtype
    )


def _value_and_grads(model, x):
    y = model(x)
    return y, torch.autograd.grad((y * y.conj()).real.sum(), list(model.parameters()))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("out_dim", [3, 4])  # 4 = the bond: the output tensor is the spine's top
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_random_caterpillar_equals_dense(seed, out_dim, dtype):
    model = with_plan(caterpillar(7, 4, out_dim, dtype=dtype, seed=seed), "always")
    spines = model.plan().spines
    assert len(spines) == 1 and spines[0].length >= 5
    for batch in (1, 6, 7):  # odd batches: the two streams share a sample
        x = sample_input(model, batch, seed=batch)
        y, grads = _value_and_grads(model, x)
        ref = dense_forward(model, x)
        torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-13)
        ref_grads = torch.autograd.grad((ref * ref.conj()).real.sum(), list(model.parameters()))
        for a, b in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 11])
def test_every_block_size_equals_dense(monkeypatch, k, dtype):
    """Blocks of k spine tensors (the lowest padded with identities when k does not divide the 11-tensor spine)
    give the dense values and gradients."""
    monkeypatch.setattr(spine_mod, "block_size", lambda length, bond, other: k)
    torch.manual_seed(0)
    model = with_plan(TTN(tree=comb(13), phys_dim=2, bond_dim=3, out_dim=3, init="normal", dtype=dtype), "always")
    assert [(s.length, s.k) for s in model.plan().spines] == [(11, k)]
    x = sample_input(model, 5, seed=3)
    y, grads = _value_and_grads(model, x)
    ref = dense_forward(model, x)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-13)
    ref_grads = torch.autograd.grad((ref * ref.conj()).real.sum(), list(model.parameters()))
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_spine_gradcheck():
    model = with_plan(TTN(tree=comb(6), phys_dim=2, bond_dim=3, out_dim=2, init="normal", dtype=torch.float64),
                      "always")
    plan = model.plan()
    assert plan.spines_for(3) == (0,)
    phi = model.embed(sample_input(model, 3, seed=4))
    stacks = [s.detach().requires_grad_() for s in model.cores.stack_list()]

    def f(*st):
        v, e = plan.run_stacks(list(st), phi)
        return v * torch.exp2(e)[:, None]

    assert torch.autograd.gradcheck(f, tuple(stacks), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "tree",
    [
        canonical((((100, 101), (102, 103)), comb(10))),  # a balanced part and one long comb branch
        canonical(comb(8, side=lambda i: (2 * i + 10, 2 * i + 11))),  # spine tensors absorb two-leaf subtrees
    ],
    ids=["long-branch", "subtree-children"],
)
@pytest.mark.parametrize("out_dim", [2, 3])
def test_trees_with_long_branches_equal_dense(tree, out_dim):
    torch.manual_seed(0)
    model = with_plan(TTN(tree=tree, phys_dim=2, bond_dim=3, out_dim=out_dim, init="normal",
                          dtype=torch.float64), "always")
    assert max(s.length for s in model.plan().spines) >= 4
    x = sample_input(model, 5, seed=1)
    y, grads = _value_and_grads(model, x)
    ref = dense_forward(model, x)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-13)
    ref_grads = torch.autograd.grad((ref * ref).sum(), list(model.parameters()))
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_rescaled_subtree_messages_and_level_by_level_agree():
    """Spine tensors whose other children are 16-leaf subtrees (their messages carry exponents): the pairwise
    spine and the level-by-level plan give the same values, exponents and gradients."""
    torch.manual_seed(0)

    def side(i):  # a balanced 16-leaf subtree
        return tuple(tuple(tuple(tuple(16 * i + 8 * a + 4 * b + 2 * c + e for e in (0, 1)) for c in (0, 1))
                           for b in (0, 1)) for a in (0, 1))

    tree = canonical(comb(6, side=side))  # leaves 0, 1 then four 16-leaf subtrees
    model = TTN(tree=tree, phys_dim=2, bond_dim=3, out_dim=2, init="normal", dtype=torch.float64)
    always, never = TreePlan(model.structure, spines="always"), TreePlan(model.structure, spines="never")
    sp = always.spines[0]
    assert sp.length >= 3 and any(k == "message" for c in sp.classes for k, _ in c.legs)
    assert any(always.rescale[g] for g in range(len(always.groups)) if g not in sp.gids)
    phi = model.embed(sample_input(model, 5, seed=2))
    stacks = model.cores.stack_list()
    outs = []
    for plan in (always, never):
        v, e = plan.run_stacks(stacks, phi)
        y = v * torch.exp2(e)[:, None]
        outs.append((y, torch.autograd.grad(y.pow(2).sum(), stacks)))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-10, atol=0)
    for a, b in zip(outs[0][1], outs[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-300)


def test_mps_rooted_at_an_end_is_one_spine():
    torch.manual_seed(0)
    m = with_plan(MPS(12, 2, 3, out_dim=2, output_site=11, init="normal", dtype=torch.float64), "always")
    assert m.plan().chain is None and [s.length for s in m.plan().spines] == [10]
    x = sample_input(m, 4, seed=0)
    torch.testing.assert_close(m(x), dense_forward(m, x), rtol=1e-10, atol=1e-13)


def _log2_abs(plan, stacks, phi):
    v, e = plan.run_stacks(stacks, phi)
    return torch.log2(v.abs().double()) + e.double()[:, None], v


def test_claim_spine_rescaling_keeps_a_320_tensor_spine_finite_in_float32(monkeypatch):
    """A 320-leaf comb (a 318-tensor spine up to the root, seven pairwise levels over blocks of three) whose cores
    are doubled (outputs near 2**320) in float32 matches float64 level by level in log2 |f|; with the spine's
    rescaling (per matrix and between pairwise levels) switched off the products leave float32's range."""
    torch.manual_seed(0)
    m64 = TTN(tree=comb(320), phys_dim=2, bond_dim=10, out_dim=10, init="normal", dtype=torch.float64)
    with torch.no_grad():
        for p in m64.parameters():
            p.mul_(2.0)
    m32 = TTN(tree=comb(320), phys_dim=2, bond_dim=10, out_dim=10, init="normal", dtype=torch.float32)
    m32.load_state_dict(m64.state_dict())
    x = sample_input(m64, 8, seed=0)
    ref, _ = _log2_abs(TreePlan(m64.structure, spines="never"), m64.cores.stack_list(), m64.embed(x))
    plan = TreePlan(m32.structure, spines="always")
    assert plan.spines[0].length == 318 and plan.spines[0].levels >= 7
    phi = m32.embed(x.float())
    got, v = _log2_abs(plan, m32.cores.stack_list(), phi)
    assert torch.isfinite(v).all() and (v.abs().amax(-1) > 0).all()
    assert ref.abs().max() > 200  # far outside float32 without the exponent (log2 of its range is 128)
    assert (got - ref).abs().max() < 1e-2
    # mechanism off: no rescaling between levels, the matrices and the result unscaled
    monkeypatch.setattr(spine_mod, "levels_between_rescales", lambda bond, dtype: 64)
    monkeypatch.setattr(spine_mod, "normalize", lambda t, n: (t, t.detach().abs().flatten(n).amax(-1) * 0))
    _, v_off = plan.run_stacks(m32.cores.stack_list(), phi)
    assert not (torch.isfinite(v_off).all() and (v_off.abs().amax(-1) > 0).all())


def test_cost_model_picks_per_batch_and_device():
    plan = TTN(tree=comb(256), phys_dim=2, bond_dim=10, out_dim=10).plan()
    assert [s.length for s in plan.spines] == [254]
    assert plan.spines[0].k == 4 and plan.spines[0].levels == 6  # 64 blocks of four tensors (one padded)
    assert plan.spines_for(1000) == () and plan.spines_for(100) == (0,) and plan.spines_for(4) == (0,)
    assert "none pairwise" in plan.describe(1000)
    assert "1 contracted pairwise (lengths 254, 6 levels)" in plan.describe(100)
    plan.device_type, plan._spine_cache = "cuda", {}
    assert plan.spines_for(1000) == (0,)
    # a balanced tree has no spine; a chain that the chain routes cover is not searched for one
    assert TTN(n_sites=64, bond_dim=16, out_dim=10).plan().spines == []
    assert MPS(64, 2, 10, out_dim=10).plan().spines == []
    assert "spine" not in TTN(n_sites=64, bond_dim=16, out_dim=10).plan().describe(256)
    forced = TTN(tree=comb(16), phys_dim=2, bond_dim=3, out_dim=2, plan="sequential").plan()
    assert forced.spines == []  # a forced sequential route is level by level throughout


def test_spines_option_is_checked():
    with pytest.raises(ValueError, match=r"spines='sometimes' is unknown; choose one of \['auto', 'always', 'never'\]"):
        TreePlan(TTN(tree=comb(5), bond_dim=2).structure, spines="sometimes")


def _aten_ops(model, x) -> int:
    from torch.profiler import ProfilerActivity, profile

    model(x).sum().backward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x).sum().backward()
    return sum(e.name.startswith("aten::") for e in prof.events())


def test_claim_spine_kernels_grow_with_log_length():
    """Forward + backward aten ops: doubling a comb's spine adds about one pairwise level (tens of ops) on the
    spine route; level by level (mechanism off) it adds hundreds."""
    counts = {}
    for mode in ("always", "never"):
        for n in (32, 64):
            torch.manual_seed(0)
            m = with_plan(TTN(tree=comb(n), phys_dim=2, bond_dim=4, out_dim=3), mode)
            counts[mode, n] = _aten_ops(m, sample_input(m, 8, seed=0))
    assert counts["always", 64] - counts["always", 32] < 60
    assert counts["never", 64] - counts["never", 32] > 500
    assert counts["always", 64] * 2 < counts["never", 64]


def test_overflow_check_reads_the_host_once_and_still_retries(monkeypatch):
    torch.manual_seed(0)
    model = TTN(n_sites=16, bond_dim=3, out_dim=2, init="normal", dtype=torch.float64)
    plan = model.plan()
    phi = model.embed(sample_input(model, 4, seed=0))
    stacks = model.cores.stack_list()
    reads = []
    orig = torch.Tensor.__float__
    monkeypatch.setattr(torch.Tensor, "__float__", lambda t: reads.append(1) or orig(t))
    v, e = plan.run_stacks(stacks, phi)
    assert len(reads) == 1
    # cores scaled by 2**-600 underflow float64 two levels up without rescaling: the check must see it and
    # contract again, rescaling every level
    monkeypatch.setattr(plan, "rescale", [False] * len(plan.groups))
    tiny = [s * 2.0**-600 for s in stacks]
    v2, e2 = plan.run_stacks(tiny, phi)
    assert len(reads) == 2 and (v2.abs().amax(-1) > 0).all()
    shift = 600 * sum(s.shape[0] for s in stacks)  # the output is linear in every core
    torch.testing.assert_close(torch.log2(v2.abs()) + (e2 + shift)[:, None], torch.log2(v.abs()) + e[:, None])
    torch.testing.assert_close(torch.sign(v2), torch.sign(v))
