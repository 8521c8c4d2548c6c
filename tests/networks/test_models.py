"""Generic tests over the registry (tests/registry.py): every architecture (forward vs its brute-force reference,
factories, state, gradients, seeding), and every TNModel (plans, embedded inputs, dense gradients, quimb, graph)."""

from __future__ import annotations

import pytest
import torch

from tests.registry import build, dense_forward, inputs, names, reference, sample_input
from tnml import TNModel


@pytest.fixture(params=names())
def any_name(request):
    """Every registered architecture, TNModels and ProductGNNs."""
    return request.param


@pytest.fixture(params=names("tnmodel"))
def name(request):
    """Every registered TNModel."""
    return request.param


def test_forward_equals_reference(any_name):
    m = build(any_name, dtype=torch.float64)
    x = inputs(m)
    y = m(x)
    ref = reference(m, x)
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-12 * max(1.0, float(ref.detach().abs().max())))


@pytest.mark.parametrize("plan", ["generic"])
def test_generic_plan_agrees_with_specialized(name, plan):
    m = build(name, dtype=torch.float64)
    g = TNModel(m.structure, m.feature_map, plan=plan, dtype=torch.float64)
    g.load_state_dict(m.state_dict())
    x = sample_input(m)
    assert g.plan().kind == "generic"
    torch.testing.assert_close(g(x), m(x), rtol=1e-10, atol=1e-12)


def test_pre_embedded_input_matches_raw(name):
    m = build(name, dtype=torch.float64)
    x = sample_input(m)
    torch.testing.assert_close(m(m.embed(x)), m(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_factory_kwargs(any_name, dtype):
    m = build(any_name, dtype=dtype, device="cpu")
    assert all(p.dtype == dtype and p.device.type == "cpu" for p in m.parameters())
    y = m(inputs(m).double())
    assert y.dtype == dtype


def test_float32_close_to_float64(any_name):
    m64 = build(any_name, dtype=torch.float64)
    m32 = build(any_name, dtype=torch.float32)
    m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
    x = inputs(m64)
    torch.testing.assert_close(m32(x.float()).double(), m64(x), rtol=1e-4, atol=1e-5)


def test_state_dict_round_trip(any_name, tmp_path):
    m = build(any_name, seed=0, dtype=torch.float64)
    path = tmp_path / "m.pt"
    torch.save(m.state_dict(), path)
    m2 = build(any_name, seed=123, dtype=torch.float64)
    x = inputs(m)
    if any_name != "peps-2x2-loop":  # the loop's values come from a fixed quimb network
        assert not torch.allclose(m2(x), m(x))
    m2.load_state_dict(torch.load(path, weights_only=True))
    torch.testing.assert_close(m2(x), m(x))


def test_empty_batch_gives_empty_output(any_name):
    m = build(any_name, dtype=torch.float64)
    y = m(inputs(m, batch=2)[:0])
    assert y.shape == (0, *m(inputs(m, batch=2)).shape[1:]) and y.dtype == torch.float64
    y.sum().backward()  # an empty loss term still backpropagates (zero gradients)
    assert all(p.grad is not None and not p.grad.any() for p in m.parameters())


def test_gradients_reach_every_parameter(any_name):
    m = build(any_name, dtype=torch.float64)
    m(inputs(m)).pow(2).sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname
    if isinstance(m, TNModel):  # and every tensor of the network, whatever the storage
        for t in m.structure.tensor_names:
            g = m.core_grad(t)
            assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, t


def test_gradients_match_dense_reference(name):
    m = build(name, dtype=torch.float64)
    x = sample_input(m)
    m(x).sin().sum().backward()
    names = m.structure.tensor_names
    fast = {k: m.core_grad(k).clone() for k in names}
    m.zero_grad()
    dense_forward(m, x).sin().sum().backward()
    for k in names:
        torch.testing.assert_close(fast[k], m.core_grad(k), rtol=1e-8, atol=1e-10)


def test_same_seed_same_model(any_name):
    a, b = build(any_name, seed=3), build(any_name, seed=3)
    for (ka, pa), (kb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        assert torch.equal(pa, pb)


def test_quimb_round_trip_same_function(name):
    m = build(name, dtype=torch.float64)
    s = m.structure
    m2 = TNModel.from_quimb(m.to_quimb(), s.input_inds, s.output_ind, feature_map=m.feature_map, dtype=torch.float64)
    x = sample_input(m)
    torch.testing.assert_close(m2(x), m(x))
    assert m2.structure.size_dict == s.size_dict


def test_graph_describes_the_network(name):
    m = build(name)
    g = m.graph()
    s = m.structure
    tensors = [n for n, d in g.nodes(data=True) if d["kind"] == "tensor"]
    assert sorted(tensors) == sorted(s.tensor_names)
    inputs = sorted(d["site"] for _, d in g.nodes(data=True) if d["kind"] == "input")
    assert inputs == list(range(s.n_sites))
    assert g.number_of_edges() == sum(len(t.inds) for t in s.tensors) - len(s.bonds)
    assert all(d["dim"] == s.size_dict[d["ind"]] for _, _, d in g.edges(data=True))


def test_repr_names_hyperparameters(any_name):
    m = build(any_name)
    r = repr(m)
    assert r.startswith(type(m).__name__ + "(")
    assert "n_sites=" in r or "shape=" in r or "n_vertices=" in r
    if hasattr(m, "bond_dim"):
        assert "bond_dim=" in r
