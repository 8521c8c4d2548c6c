"""ProductGNN (P4, Razin, Verbin, Cohen, NeurIPS 2023): message passing equals the computation-tree tensor
network; graph input formats."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from tnml.networks import ProductGNN

GRAPHS = {
    "path": nx.path_graph(4),
    "cycle": nx.cycle_graph(4),
    "star": nx.star_graph(3),
}


@pytest.mark.parametrize("gname", sorted(GRAPHS))
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("output", ["graph", "vertex"])
def test_quimb_network_equals_forward(gname, depth, output):
    torch.manual_seed(depth)
    target = 1 if output == "vertex" else None
    m = ProductGNN(GRAPHS[gname], 2, 3, depth, output=output, target=target, out_dim=2, dtype=torch.float64)
    x = torch.randn(4, m.n_vertices, 2, dtype=torch.float64)
    y = m(x).detach().numpy()
    for copy_tensors in (False, True):
        tn = m.to_quimb(x=x, copy_tensors=copy_tensors)
        z = tn.contract(output_inds=("batch", "y")).data
        np.testing.assert_allclose(z, y, rtol=1e-10, atol=1e-12 * np.abs(y).max())
    # unbatched inputs and open legs
    z0 = m.to_quimb(x=x[0]).contract(output_inds=("y",)).data
    np.testing.assert_allclose(z0, y[0], rtol=1e-10, atol=1e-12 * np.abs(y).max())
    open_tn = m.to_quimb()
    legs = m.input_legs()
    assert set(open_tn.outer_inds()) == {"y"} | {leg for ls in legs.values() for leg in ls}
    assert {v: len(ls) for v, ls in legs.items()} == m.input_multiplicities()


def test_reference_formula_small():
    """Direct evaluation of the message-passing formula (P4) on the edge 0-1 with depth 2."""
    m = ProductGNN([(0, 1)], 2, 2, 2, dtype=torch.float64)
    x = torch.randn(3, 2, 2, dtype=torch.float64)
    w1, w2 = m.weights
    h1 = [(x[:, 0] @ w1.T) * (x[:, 1] @ w1.T)] * 2  # both vertices see {0, 1}
    h2 = [(h1[0] @ w2.T) * (h1[1] @ w2.T)] * 2
    ref = (h2[0] * h2[1]) @ m.head.T
    torch.testing.assert_close(m(x), ref)


def test_graph_formats_agree():
    edges = [(0, 1), (1, 2), (2, 0), (2, 3)]
    ms = [
        ProductGNN(g, 2, 2, 2, dtype=torch.float64)
        for g in (edges, nx.Graph(edges), torch.tensor(edges).T, np.array(edges))
    ]
    for m in ms[1:]:
        m.load_state_dict(ms[0].state_dict())
    x = torch.randn(2, 4, 2, dtype=torch.float64)
    for m in ms[1:]:
        torch.testing.assert_close(m(x), ms[0](x))


def test_graph_networkx_of_network():
    m = ProductGNN([(0, 1), (1, 2)], 2, 2, 2)
    g = m.graph()
    inputs = [n for n, a in g.nodes(data=True) if a["kind"] == "input"]
    assert len(inputs) == sum(m.input_multiplicities().values())
    assert {g.nodes[n]["vertex"] for n in inputs} == {0, 1, 2}
    assert "output:y" in g
    gc = m.graph(copy_tensors=True)
    assert not any(a["kind"] == "hyper" for _, a in gc.nodes(data=True))
    assert nx.is_tree(nx.Graph(gc))  # the computation tree, explicit


def test_backward_and_orthogonal_init():
    m = ProductGNN(nx.cycle_graph(5), 3, 4, 2, output="vertex", target=2, out_dim=3, init="orthogonal")
    y = m(torch.randn(7, 5, 3))
    assert y.shape == (7, 3)
    y.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_errors():
    with pytest.raises(ValueError, match="target"):
        ProductGNN([(0, 1)], 2, 2, 1, output="vertex")
    with pytest.raises(ValueError, match="only used"):
        ProductGNN([(0, 1)], 2, 2, 1, target=0)
    with pytest.raises(ValueError, match="not vertices"):
        ProductGNN([(0, 1)], 2, 2, 1, output="vertex", target=5)
    m = ProductGNN([(0, 1)], 2, 2, 1)
    with pytest.raises(ValueError, match="expected"):
        m(torch.randn(3, 3, 2))
    big = ProductGNN(nx.complete_graph(6), 2, 2, 5)
    with pytest.raises(ValueError, match="max_tensors"):
        big.to_quimb()
