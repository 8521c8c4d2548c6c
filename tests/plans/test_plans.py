"""Compiled plans: chosen by structure, cached, stacking identical contractions, batch-free path search."""

from __future__ import annotations

import time

import pytest
import torch

from tnml.networks import CP, MPS, TTN
from tnml.plans import compile_plan
from tnml.plans.tree import TreePlan


def test_plan_kind_by_structure():
    assert MPS(5, 2, 2).plan().kind == "tree"
    assert TTN(n_sites=8, bond_dim=2).plan().kind == "tree"
    assert CP(5, 2, 3).plan().kind == "star"


def test_plan_cached_per_structure_and_device():
    a, b = MPS(30, 2, 3, out_dim=2), MPS(30, 2, 3, out_dim=2)
    assert a.plan() is b.plan()
    assert a.structure == b.structure and hash(a.structure) == hash(b.structure)
    assert MPS(31, 2, 3).plan() is not a.plan()


def test_chain_halves_advance_together():
    # an MPS with the output in the middle: the two half-chains are stacked, one group per step
    plan = MPS(100, 2, 4, out_dim=3).plan()
    assert isinstance(plan, TreePlan)
    assert len(plan.groups) <= 52
    assert max(len(g.names) for g in plan.groups) == 2


def test_tree_level_is_one_group():
    plan = TTN(n_sites=64, bond_dim=4, out_dim=2).plan()
    assert [len(g.names) for g in plan.groups] == [32, 16, 8, 4, 2, 1]


def test_compile_784_sites_under_a_second():
    compile_plan.cache_clear()
    t = time.perf_counter()
    MPS(784, 2, 10, out_dim=10).plan()
    assert time.perf_counter() - t < 5.0  # generous for loaded CI machines; benchmarks report the real figure


def test_generic_plan_path_excludes_batch():
    m = MPS(12, 2, 3, out_dim=2, plan="generic")
    plan = m.plan()
    assert plan.kind == "generic"
    # every einsum of the replayed path uses at most one batch letter 'a', never in path search
    assert all(eq.count("->") == 1 for _, eq, _ in plan.steps)
    x = torch.rand(3, 12)
    ref = MPS(12, 2, 3, out_dim=2)
    ref.load_state_dict(m.state_dict())
    torch.testing.assert_close(m(x), ref(x))


@pytest.mark.parametrize("chunk", [1, 50, 10**9])
@pytest.mark.parametrize("legs", [(3,), (4, 5), (2, 3, 4), (40, 2), (40, 33)])
def test_absorb_all_routes_match_einsum(monkeypatch, chunk, legs):
    """absorb = einsum over the stacked legs, whatever route (chunked, small-leg, bmm) it takes."""
    import tnml.plans.absorb as ab

    monkeypatch.setattr(ab, "_CHUNK_ELEMENTS", chunk)
    g, b, p = 5, 7, 3
    gen = torch.Generator().manual_seed(0)
    core = torch.randn(g, *legs, p, generator=gen, dtype=torch.float64, requires_grad=True)
    ops = [torch.randn(g, b, a, generator=gen, dtype=torch.float64, requires_grad=True) for a in legs]
    letters = "ijk"[: len(legs)]
    eq = f"g{letters}p," + ",".join(f"gb{c}" for c in letters) + "->gbp"
    ref = torch.einsum(eq, core, *ops)
    out = ab.absorb(core, ops)
    torch.testing.assert_close(out, ref)
    grads = torch.autograd.grad(out.sin().sum(), [core, *ops])
    ref_grads = torch.autograd.grad(ref.sin().sum(), [core, *ops])
    for a, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, r)


# ---------------------------------------------------------------------------------------------- merged levels
def _unmerged(structure):
    plan = TreePlan(structure)
    plan.merge_candidates, plan._merges_cache = {}, {}
    return plan


@pytest.mark.parametrize(
    "kw, batch_merges",
    [
        # level 2 over leaf pairs (16 input dims, bond 16) from a handful of samples on
        (dict(n_sites=8, phys_dim=2, bond_dim=16, out_dim=3), {1: set(), 16: {1}}),
        # bond 64: level 2, then level 3 too (256 input dims against 64^3) once the batch pays for it
        (dict(n_sites=16, phys_dim=2, bond_dim=64, out_dim=2), {1: set(), 8: {1}, 32: {1, 2}}),
        # bond 2: merging would not halve the per-sample work
        (dict(n_sites=8, phys_dim=2, bond_dim=2, out_dim=3), {64: set()}),
    ],
)
def test_levels_absorb_input_only_children_when_it_pays(kw, batch_merges):
    """Levels whose children only absorb inputs get the children's cores contracted in before the data when the
    cost model says so for the batch: same function (dense einsum reference) and the same gradients as the
    level-by-level plan, in float64, for every batch size tried."""
    from tests.registry import dense_forward

    torch.manual_seed(0)
    m = TTN(**kw, dtype=torch.float64)
    plan = m.plan()
    ref = _unmerged(m.structure)
    cores = m.core_dict()
    for batch, expect in batch_merges.items():
        merged, absorbed = plan.merges_for(batch)
        assert set(merged) == expect
        assert absorbed == {plan.merge_candidates[g].source for g in expect}
        x = torch.rand(batch, m.n_sites, dtype=torch.float64)
        torch.testing.assert_close(m(x), dense_forward(m, x))
        v, e = plan(cores, m.embed(x))
        rv, re_ = ref(cores, m.embed(x))
        out, ref_out = v * torch.exp2(e)[:, None], rv * torch.exp2(re_)[:, None]
        torch.testing.assert_close(out, ref_out)
        grads = torch.autograd.grad(out.sin().sum(), list(cores.values()))
        ref_grads = torch.autograd.grad(ref_out.sin().sum(), list(cores.values()))
        for a, b in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(a, b)


def test_merge_children_matches_einsum_and_gradcheck():
    from torch.autograd import gradcheck

    from tnml.plans.merge import merge_children, merge_costs

    g = torch.Generator().manual_seed(0)
    n, k, c, p, dims = 3, 3, 4, 5, [2, 1]
    child = torch.randn(k * n, 2, c, generator=g, dtype=torch.float64, requires_grad=True)
    parent = torch.randn(n, c, c, c, p, generator=g, dtype=torch.float64, requires_grad=True)
    ref = torch.einsum("nxa,nyb,nzc,nabcp->nxyzp", child[:n], child[n:2 * n], child[2 * n:], parent)
    out = merge_children(child, parent, k, dims)
    assert out.shape == (n, 2, 1, 2, 1, 2, 1, p)
    torch.testing.assert_close(out.reshape(ref.shape), ref)
    assert gradcheck(lambda ch, pa: merge_children(ch, pa, k, dims), (child, parent), eps=1e-6, atol=1e-8)
    # two leaves of 2 x 2 inputs, bond 64: per sample 2 (2*4*64 + 4) + 2*64^3 against 2*16*64 + 16
    saving, cost = merge_costs([2, 2], 2, 64, 64)
    assert saving == 2 * (2 * 4 * 64 + 4) + 2 * 64**3 - (2 * 16 * 64 + 16)
    assert cost == 2 * 4 * 64**2 * 64 + 2 * 16 * 64 * 64
    assert merge_costs([2, 2], 2, 2, 2) is None and merge_costs([2], 11, 4, 4) is None


def _mixed_star():
    """A star network whose factors have two axis orders ((x, r) and (r, x)) and one with two inputs: the stacks
    (one per raw shape) and the plan's groups (one per permuted shape) then differ."""
    import quimb.tensor as qtn

    from tnml import TNModel

    g = torch.Generator().manual_seed(3)
    ts = []
    for k in range(5):
        inds, shape = ((f"x{k}", "r"), (2, 3)) if k % 2 else (("r", f"x{k}"), (3, 2))
        ts.append(qtn.Tensor(torch.randn(*shape, generator=g, dtype=torch.float64).numpy(), inds=inds))
    head = torch.randn(2, 2, 3, 4, generator=g, dtype=torch.float64).numpy()
    ts.append(qtn.Tensor(head, inds=("x5", "x6", "r", "y")))
    tn = qtn.TensorNetwork(ts)
    return TNModel.from_quimb(tn, [f"x{k}" for k in range(7)], "y", feature_map="trig", dtype=torch.float64)


@pytest.mark.parametrize("kind", ["tree", "star", "star-mixed", "generic"])
def test_every_plan_takes_stacks_and_dicts_the_same_way(kind):
    """Every plan implements Plan's two entry points: ``run_stacks`` (stacked storage, read directly) and
    ``__call__`` (per-tensor dict); both give the same values, exponents and gradients."""
    from tnml.plans.base import Plan

    m = {
        "tree": lambda: TTN(n_sites=8, phys_dim=2, bond_dim=3, out_dim=2, dtype=torch.float64),
        "star": lambda: CP(6, 2, 3, out_dim=2, dtype=torch.float64),
        "star-mixed": _mixed_star,
        "generic": lambda: MPS(6, 2, 3, out_dim=2, plan="generic", dtype=torch.float64),
    }[kind]()
    assert m.stack_cores
    plan = m.plan()
    assert isinstance(plan, Plan) and plan.kind == kind.split("-")[0]
    phi = m.embed(torch.rand(5, m.n_sites, dtype=torch.float64))
    stacks = m.cores.stack_list()
    v1, e1 = plan.run_stacks(stacks, phi)
    v2, e2 = plan(m.core_dict(), phi)
    torch.testing.assert_close(v1 * torch.exp2(e1)[:, None], v2 * torch.exp2(e2)[:, None], rtol=1e-12, atol=0)
    g1 = torch.autograd.grad((v1 * torch.exp2(e1)[:, None]).sum(), stacks)
    g2 = torch.autograd.grad((v2 * torch.exp2(e2)[:, None]).sum(), stacks)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    ref = torch.einsum(m.to_dense(), list(range(m.n_sites + 1)),
                       *[a for s in range(m.n_sites) for a in (phi[:, s], [m.n_sites + 1, s])],
                       [m.n_sites + 1, m.n_sites])
    torch.testing.assert_close(m(phi), ref)
    if kind == "star":  # a CP's factors are one stack: the star plan reads it whole, no gather
        assert all(sel is None for reads in plan.stack_reads for _, sel, _ in reads)
