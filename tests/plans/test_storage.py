"""Stacked parameter storage (tnml.storage.CoreStacks) against per-tensor storage of the same model."""

from __future__ import annotations

import pytest
import torch

from tnml import TNModel
from tnml.networks import MPS, TTN
from tnml.storage import stack_layout

F64 = {"dtype": torch.float64}


def _pair(factory, **kw):
    """The same model with stacked and with per-tensor storage, equal values."""
    torch.manual_seed(0)
    stacked = factory(stack_cores=True, **kw)
    flat = factory(stack_cores=False, **kw)
    with torch.no_grad():
        for name in stacked.structure.tensor_names:
            flat.core(name).copy_(stacked.core(name))
    return stacked, flat


FACTORIES = {
    "mps": lambda **kw: MPS(n_sites=9, phys_dim=2, bond_dim=3, out_dim=4, output_site=3, init="normal",
                            init_std=0.6, **kw),
    "ttn-1d": lambda **kw: TTN(n_sites=8, phys_dim=2, bond_dim=3, out_dim=2, **kw),
    "ttn-2d": lambda **kw: TTN(shape=(4, 4), phys_dim=2, bond_dim=3, out_dim=3, **kw),
}


def test_layout_groups_equal_shapes_in_first_appearance_order():
    m = MPS(n_sites=6, phys_dim=2, bond_dim=3, out_dim=4, output_site=2)
    layout = stack_layout(m.structure)
    # shapes in order of first appearance; the bulk (3, 2, 3) spans two plan levels, so two stacks:
    # site1 and site4 (height 1), then site3 (height 2)
    assert [shape for shape, _ in layout] == [(2, 3), (3, 2, 3), (3, 2, 3), (3, 2, 3, 4), (3, 2)]
    assert set(layout[1][1]) == {"site1", "site4"} and layout[2][1] == ("site3",)
    assert sorted(nm for _, names in layout for nm in names) == sorted(m.structure.tensor_names)
    for _, names in layout:  # each stack is read in the plan's row order
        plan_rows = [nm for g in m.plan().groups for nm in g.names if nm in names]
        assert tuple(plan_rows) == names
    # one parameter per stack
    assert [tuple(p.shape) for p in m.parameters()] == [(1, 2, 3), (2, 3, 2, 3), (1, 3, 2, 3), (1, 3, 2, 3, 4),
                                                         (1, 3, 2)]


@pytest.mark.parametrize("name", list(FACTORIES))
def test_stacked_equals_per_tensor_forward_and_gradients(name):
    stacked, flat = _pair(FACTORIES[name], **F64)
    x = torch.rand(5, stacked.n_sites, dtype=torch.float64)
    torch.testing.assert_close(stacked(x), flat(x), rtol=1e-12, atol=1e-14)
    stacked(x).sin().sum().backward()
    flat(x).sin().sum().backward()
    for t in stacked.structure.tensor_names:
        torch.testing.assert_close(stacked.core_grad(t), flat.core_grad(t), rtol=1e-10, atol=1e-13)


TREES = ["mps-out-mid", "mps-out-end", "mps-scalar", "ttn-binary", "ttn-ternary-ragged", "ttn-2d", "ttn-user-tree"]


@pytest.mark.parametrize("name", TREES)
def test_tree_layouts_match_per_tensor_storage_across_the_registry(name):
    """Whatever stacks a tree gets (per level or per shape), the stacked model computes the per-tensor model's
    function and gradients, every tensor lives in exactly one row, and the plan reads rows in its own order."""
    from tests.registry import ARCHITECTURES, sample_input

    torch.manual_seed(3)
    stacked = ARCHITECTURES[name](stack_cores=True, **F64)
    flat = ARCHITECTURES[name](stack_cores=False, **F64)
    with torch.no_grad():
        for nm in stacked.structure.tensor_names:
            flat.core(nm).copy_(stacked.core(nm))
    layout = stack_layout(stacked.structure)
    assert sorted(nm for _, names in layout for nm in names) == sorted(stacked.structure.tensor_names)
    order = {nm: r for r, nm in enumerate(nm for g in stacked.plan().groups for nm in g.names)}
    for _, names in layout:
        assert [order[nm] for nm in names] == sorted(order[nm] for nm in names)
    x = sample_input(stacked, batch=4)
    torch.testing.assert_close(stacked(x), flat(x), rtol=1e-12, atol=1e-14)
    stacked(x).sin().sum().backward()
    flat(x).sin().sum().backward()
    for nm in stacked.structure.tensor_names:
        torch.testing.assert_close(stacked.core_grad(nm), flat.core_grad(nm), rtol=1e-10, atol=1e-13)


def test_core_views_write_through_and_read_like_a_dict():
    m = MPS(n_sites=5, phys_dim=2, bond_dim=3, out_dim=2, **F64)
    keys = m.cores.keys()
    assert keys == [f"site{i}" for i in range(5)] and len(m.cores) == 5 and "site2" in m.cores
    with torch.no_grad():
        m.core("site1").fill_(0.25)
    assert torch.all(m.core("site1") == 0.25)
    assert dict(m.cores.items())["site1"].eq(0.25).all()
    stack = m.cores.stack_list()[m.cores.where["site1"][0]]
    assert stack[m.cores.where["site1"][1]].eq(0.25).all()  # the parameter itself changed
    assert m.core_grad("site1") is None  # before any backward
    with pytest.raises(KeyError, match="no tensor 'site9'"):
        m.cores["site9"]


def test_optimizer_sees_one_parameter_per_shape_class_and_trains():
    m = MPS(n_sites=64, phys_dim=2, bond_dim=4, out_dim=3)
    assert len(list(m.parameters())) == 4
    x, y = torch.rand(32, 64), torch.randint(0, 3, (32,))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", list(FACTORIES))
def test_per_tensor_state_dict_loads_into_stacked_model_and_back(name):
    stacked, flat = _pair(FACTORIES[name], **F64)
    torch.manual_seed(5)
    fresh = FACTORIES[name](stack_cores=True, **F64)
    fresh.load_state_dict(flat.state_dict())  # per-tensor keys ("cores.site0", ...) into stacks
    x = torch.rand(4, stacked.n_sites, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), flat(x), rtol=0, atol=0)
    round_trip = FACTORIES[name](stack_cores=True, **F64)
    round_trip.load_state_dict(stacked.state_dict())
    torch.testing.assert_close(round_trip(x), stacked(x), rtol=0, atol=0)


def test_ttn_levels_are_stacks_and_the_plan_reads_them_whole():
    """A binary TTN's inner nodes get one stack per level, in the plan's order, so the tree plan takes every
    stack as it is (no index_select, no split)."""
    m = TTN(n_sites=16, phys_dim=2, bond_dim=3, out_dim=2)
    layout = stack_layout(m.structure)
    plan = m.plan()
    assert [names for _, names in layout] == [g.names for g in plan.groups]
    assert [shape for shape, _ in layout] == [(2, 2, 3), (3, 3, 3), (3, 3, 3), (3, 3, 2)]
    assert all(type(entry).__name__ == "_WholeStacks" for entry in plan.stack_batches)
    # a long chain's bulk stays one stack (hundreds of two-member levels)
    chain = MPS(n_sites=40, phys_dim=2, bond_dim=3, out_dim=2)
    assert len(list(chain.parameters())) == 4


@pytest.mark.parametrize("name", ["mps", "ttn-2d"])
def test_version_1_stacks_are_converted_on_load(name):
    """Stacks saved by state_dict version 1 (one stack per shape, rows in structure order) load into the right
    tensors of the current layout; a state_dict without metadata is taken as current."""
    from tnml.storage import _classes

    m = FACTORIES[name](stack_cores=True, **F64)
    x = torch.rand(3, m.n_sites, dtype=torch.float64)
    old = {}  # version 1: one stack per shape, rows in structure order
    for k, (_, names) in enumerate(_classes(m.structure)):
        old[f"cores.stacks.{k}"] = torch.stack([m.core(nm).detach().clone() for nm in names])
    sd = m.state_dict()
    for key in [key for key in sd if key.startswith("cores.stacks.")]:
        del sd[key]
    sd.update(old)
    sd._metadata["cores"]["version"] = 1
    fresh = FACTORIES[name](stack_cores=True, **F64)
    fresh.load_state_dict(sd)
    torch.testing.assert_close(fresh(x), m(x), rtol=0, atol=0)
    plain = dict(m.state_dict())  # no _metadata
    again = FACTORIES[name](stack_cores=True, **F64)
    again.load_state_dict(plain)
    torch.testing.assert_close(again(x), m(x), rtol=0, atol=0)


def test_incomplete_or_misshaped_per_tensor_state_dict_is_refused():
    stacked, flat = _pair(FACTORIES["mps"], **F64)
    sd = flat.state_dict()
    del sd["cores.site4"]
    with pytest.raises(RuntimeError, match="Missing key"):
        stacked.load_state_dict(sd)
    sd = flat.state_dict()
    sd["cores.site4"] = torch.zeros(2, 2, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="size mismatch"):
        stacked.load_state_dict(sd)


def test_stack_cores_validation_and_class_default():
    with pytest.raises(TypeError, match="stack_cores must be True or False"):
        MPS(n_sites=4, stack_cores="yes")
    from tnml.networks import TensorFactorization

    assert TNModel.stack_cores and not TensorFactorization.stack_cores


def test_views_follow_dtype_moves_and_copies():
    import copy

    m = MPS(n_sites=6, phys_dim=2, bond_dim=3, out_dim=2)
    x = torch.rand(3, 6, dtype=torch.float64)
    m64 = copy.deepcopy(m).double()  # module conversion replaces the stacks' data: views are made on access
    assert m64.core("site2").dtype == torch.float64 and m.core("site2").dtype == torch.float32
    torch.testing.assert_close(m64(x), m(x.float()).double(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        m64.core("site2").zero_()
    assert m.core("site2").abs().sum() > 0  # the copy owns its storage
    assert m64(x).abs().max() == 0  # a zero core zeroes the chain
