"""The test registry is complete and its tags are true (torch's module_db discipline): every tensor-network
architecture that ``tnml.networks`` exports is registered or skipped with a written reason, and each tag a
generic test selects by is checked against the built model."""

from __future__ import annotations

from collections import defaultdict

import networkx as nx
import pytest
import torch
from torch import nn

import tnml.networks
from tests.registry import ARCHITECTURES, CASES, SKIPPED, TAGS, build, inputs, names, reference
from tnml import TNModel


def _exported_modules() -> dict[str, type]:
    out = {}
    for name in tnml.networks.__all__:
        obj = getattr(tnml.networks, name)
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            out[name] = obj
    return out


def test_every_exported_architecture_is_registered_or_skipped_with_a_reason():
    registered = {c.arch for c in CASES.values()}
    exported = _exported_modules()
    assert len(exported) >= 9  # the check sees the architectures (not an empty __all__)
    missing = sorted(n for n, cls in exported.items() if cls not in registered and cls not in SKIPPED)
    assert not missing, f"register these in tests/registry.py or add them to SKIPPED with a reason: {missing}"
    for cls, reason in SKIPPED.items():
        assert cls.__name__ in exported, f"{cls.__name__} is skipped but no longer exported: drop it from SKIPPED"
        assert cls not in registered, f"{cls.__name__} is both registered and skipped"
        assert len(reason.split()) >= 5, f"{cls.__name__}: say why it is skipped"


def test_completeness_check_catches_an_unregistered_architecture(monkeypatch):
    """The check above fails when an exported nn.Module class has no case: add one to ``__all__``."""

    class Unregistered(TNModel):
        pass

    monkeypatch.setattr(tnml.networks, "Unregistered", Unregistered, raising=False)
    monkeypatch.setattr(tnml.networks, "__all__", [*tnml.networks.__all__, "Unregistered"])
    with pytest.raises(AssertionError, match="Unregistered"):
        test_every_exported_architecture_is_registered_or_skipped_with_a_reason()


def test_registry_shape():
    for n, c in CASES.items():
        assert c.name == n and c.tags <= TAGS, n
        assert len({"tnmodel", "gnn"} & c.tags) == 1, n
        assert len({"tree", "loop", "hyper"} & c.tags) == 1, n  # exactly one geometry
    assert sorted(ARCHITECTURES) == names("tnmodel")
    assert names("gnn") and names("loop") and names("hyper") and names("complex", "gnn")
    assert set(names("tree", exclude="gnn")) == set(names("tree")) - set(names("gnn"))
    with pytest.raises(ValueError, match="unknown tags"):
        names("trees")


def _geometry(model: TNModel) -> str:
    """'loop' if the network (tensors and hyper-indices as nodes) has a cycle, 'hyper' if some index joins more
    than two tensors, else 'tree'."""
    owners = defaultdict(list)
    for t in model.structure.tensors:
        for i in t.inds:
            owners[i].append(t.name)
    g = nx.MultiGraph()
    g.add_nodes_from(model.structure.tensor_names)
    hyper = False
    for ind, ts in owners.items():
        if len(ts) == 2:
            g.add_edge(*ts)
        elif len(ts) > 2:
            hyper = True
            g.add_edges_from((f"hyper:{ind}", t) for t in ts)
    if g.number_of_edges() > g.number_of_nodes() - nx.number_connected_components(g):
        return "loop"
    return "hyper" if hyper else "tree"


PLAN_FOR = {"tree": {"tree"}, "loop": {"generic"}, "hyper": {"star", "generic"}}


@pytest.mark.parametrize("name", names())
def test_tags_are_true(name):
    case = CASES[name]
    m = build(name, dtype=torch.float64)
    assert isinstance(m, case.arch)
    out_dim = m.out_dim
    if "gnn" in case.tags:
        # the computation tree with explicit COPY tensors is a tree; the head always has out_dim rows
        assert nx.is_tree(nx.Graph(m.graph(copy_tensors=True)))
        assert ("output" in case.tags) == (out_dim > 1 or m.output == "vertex")
    else:
        assert isinstance(m, TNModel)
        (geometry,) = {"tree", "loop", "hyper"} & case.tags
        assert _geometry(m) == geometry
        assert m.plan().kind in PLAN_FOR[geometry]
        assert ("output" in case.tags) == (out_dim is not None)
    if "complex" in case.tags:
        mc = build(name, dtype=torch.complex128)
        assert all(p.dtype == torch.complex128 for p in mc.parameters())
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in mc.parameters():  # random phases: a genuinely complex function
                p.mul_(torch.exp(1j * torch.rand(p.shape, dtype=torch.float64, generator=g)))
            x = inputs(mc, batch=3)
            y, ref = mc(x), reference(mc, x)
        assert y.dtype == torch.complex128 and y.imag.abs().max() > 0
        torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-12 * float(ref.abs().max()))
