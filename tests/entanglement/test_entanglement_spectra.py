"""Schmidt values, cut ranks and entropies: network routes vs dense SVD over the registry (tests/registry.py),
known states (GHZ, W), quimb, errors, gradients."""

import functools
import math

import networkx as nx
import numpy as np
import pytest
import quimb.tensor as qtn
import torch

import tnml
import tnml.entanglement as ent
from tests.registry import build, names
from tnml.networks import MPS, TTN
from tnml.testing import random_binary_tree_network


def _ghz():
    w = np.zeros((2, 2, 2))
    w[0, 0, 0] = w[1, 1, 1] = 1
    return w


def _w_state():
    w = np.zeros((2, 2, 2))
    w[0, 0, 1] = w[0, 1, 0] = w[1, 0, 0] = 1
    return w


@functools.cache
def generic(name: str, seed: int = 0):
    """The registry's case ``name`` in float64 with every parameter redrawn i.i.d. N(0, 1) (seeded): a generic
    instance of the architecture, so no Schmidt value sits near a rank threshold by accident of the init."""
    m = build(name, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return m


NETWORKS = names("tnmodel")
PARTS = [[0], [0, 1], [0, 2], [1, 3], [0, 2, 4]]  # one site, contiguous, interleaved (single-edge cuts: below)


def _dense_values(model, part, output):
    d = model.to_dense().detach()
    if output is not None:
        d = d[..., output]
    return ent.schmidt_values(d.numpy(), part)


def _close(s, ref):
    s = np.asarray(s.detach() if isinstance(s, torch.Tensor) else s, dtype=float)
    k = max(len(s), len(ref))
    s, ref = np.pad(s, (0, k - len(s))), np.pad(ref, (0, k - len(ref)))
    np.testing.assert_allclose(s, ref, rtol=0, atol=1e-8 * ref[0])


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("method", ["auto", "factor", "gram"])
def test_network_routes_match_dense_svd(name, method):
    model = generic(name)
    output = 1 if model.out_dim is not None else None
    parts = sorted({tuple(k for k in part if k < model.n_sites) for part in PARTS} - {()})
    parts = [list(p) for p in parts if len(p) < model.n_sites]
    if not parts:
        pytest.skip(f"{name} has {model.n_sites} site: no split")
    for part in parts:
        ref = _dense_values(model, part, output)
        s = ent.schmidt_values(model, part, output=output, method=method)
        assert isinstance(s, torch.Tensor)
        _close(s, ref)
        assert ent.cut_rank(model, part, output=output, method=method) == ent.cut_rank(
            model.to_dense().detach()[..., output] if output is not None else model.to_dense().detach(), part
        )
        e = float(ent.entanglement_entropy(model, part, output=output, method=method).detach())
        p = ref**2 / (ref**2).sum()
        p = p[p > 0]
        assert e == pytest.approx(-(p * np.log(p)).sum(), abs=1e-9)


def _single_edge_cuts(model):
    """The sides A realized by cutting one bond of a loop-free network (the sites on one side of it)."""
    g = nx.Graph()
    owners = {}
    for t in model.structure.tensors:
        g.add_node(t.name)
        for i in t.inds:
            owners.setdefault(i, []).append(t.name)
    site = {ind: k for k, ind in enumerate(model.structure.input_inds)}
    bonds = [ts for ts in owners.values() if len(ts) == 2]
    g.add_edges_from(bonds)
    parts = set()
    for a, b in bonds:
        g.remove_edge(a, b)
        side = nx.node_connected_component(g, a)
        g.add_edge(a, b)
        sites = sorted(site[i] for t in model.structure.tensors if t.name in side for i in t.inds if i in site)
        if 0 < len(sites) < model.n_sites:
            parts.add(tuple(sites))
    return sorted(parts)


@pytest.mark.parametrize("name", names("tree", "tnmodel"))
def test_tree_route_is_used_and_exact_on_tree_cuts(name):
    model = generic(name)
    if model.n_sites < 2:
        pytest.skip(f"{name} has {model.n_sites} site: no split")
    parts = _single_edge_cuts(model)
    assert parts
    output = 1 if model.out_dim is not None else None
    spectra = ent.schmidt_spectra(model, parts, method="tree", output=output)
    dense = model.to_dense().detach().numpy()
    if output is not None:
        dense = dense[..., output]
    for p, s in zip(parts, spectra, strict=True):
        _close(s, ent.schmidt_values(dense, p))


def test_tree_route_refuses_multi_edge_cut_and_loops():
    with pytest.raises(ValueError, match="not realized by one edge"):
        ent.schmidt_values(generic("mps-scalar"), [0, 2], method="tree")
    with pytest.raises(ValueError, match="not a tree"):
        ent.schmidt_values(generic("cp-onehot"), [0], method="tree")
    with pytest.raises(ValueError, match="not a tree"):
        ent.schmidt_values(generic("ring-5"), [0], method="tree")


def test_ghz_every_cut_rank_2_entropy_ln2():
    ghz = _ghz()
    for part in ([0], [1], [2], [0, 1], [0, 2], [1, 2]):
        assert ent.cut_rank(ghz, part) == 2
        assert ent.entanglement_entropy(ghz, part) == pytest.approx(math.log(2), abs=1e-12)


def test_w_state_ranks_and_entropy():
    w = _w_state()
    for part in ([0], [1], [2], [0, 1]):
        assert ent.cut_rank(w, part) == 2
    assert ent.entanglement_entropy(w, [0]) == pytest.approx(0.63651, abs=1e-5)
    assert ent.entanglement_entropy(torch.tensor(w), [0]).item() == pytest.approx(0.63651, abs=1e-5)


@pytest.mark.parametrize("bond", [1, 2, 3, 4, 5, 8])
def test_random_mps_4_sites_ranks(bond):
    torch.manual_seed(bond)
    m = MPS(n_sites=4, phys_dim=2, bond_dim=bond, init="normal", dtype=torch.float64)
    assert ent.cut_rank(m, [0, 1]) == min(bond, 4)
    assert ent.cut_rank(m, [0, 2]) == (4 if bond >= 2 else 1)


def test_renyi_entropies():
    s = np.array([3.0, 2.0, 1.0])
    x = np.diag(s)
    p = s**2 / (s**2).sum()
    assert ent.entanglement_entropy(x, [0], alpha=2) == pytest.approx(-math.log((p**2).sum()))
    assert ent.entanglement_entropy(x, [0], alpha=0.5) == pytest.approx(2 * math.log(np.sqrt(p).sum()))
    assert ent.entanglement_entropy(x, [0], alpha=math.inf) == pytest.approx(-math.log(p.max()))
    assert ent.entanglement_entropy(x, [0], alpha=0) == pytest.approx(math.log(3))
    assert ent.entanglement_entropy(x, [0], alpha=1.0000001) == pytest.approx(
        ent.entanglement_entropy(x, [0]), abs=1e-5
    )


def test_matches_quimb_mps_entropy_and_schmidt_values():
    psi = qtn.MPS_rand_state(8, 4, seed=3)
    for i in range(1, 8):
        part = [f"k{j}" for j in range(i)]
        assert ent.entanglement_entropy(psi, part) == pytest.approx(psi.entropy(i) * math.log(2), abs=1e-10)
        p = ent.schmidt_values(psi, part, normalize=True) ** 2
        np.testing.assert_allclose(p[: len(psi.schmidt_values(i))], psi.schmidt_values(i), atol=1e-10)


@pytest.mark.parametrize("name", names("tnmodel", exclude="output"))
def test_tnmodel_and_its_quimb_network_agree(name):
    m = generic(name)
    tn = m.to_quimb()
    part = [0, 1, m.n_sites - 1] if m.n_sites > 3 else [0]
    s_model = ent.schmidt_values(m, part).detach().numpy()
    s_tn = ent.schmidt_values(tn, [m.structure.input_inds[k] for k in part])
    assert isinstance(s_tn, np.ndarray)
    _close(s_model, s_tn)


def test_complex_dense_and_network():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s) + 1j * rng.normal(size=s) for s in [(2, 3), (3, 2, 3), (3, 2)]]
    tn = qtn.TensorNetwork(
        [
            qtn.Tensor(arrays[0], ("a", "b1")),
            qtn.Tensor(arrays[1], ("b1", "c", "b2")),
            qtn.Tensor(arrays[2], ("b2", "d")),
        ]
    )
    dense = tn.to_dense(["a", "c", "d"], []).reshape(2, 2, 2)
    for part, inds in [([0], ["a"]), ([1], ["c"]), ([0, 2], ["a", "d"])]:
        _close(ent.schmidt_values(tn, inds), ent.schmidt_values(dense, part))
        _close(ent.schmidt_values(tn, inds, method="gram"), ent.schmidt_values(dense, part))


def test_long_mps_contiguous_cut_is_finite():
    m = MPS(n_sites=1000, phys_dim=2, bond_dim=16, init="normal", dtype=torch.float64)
    e = ent.entanglement_entropy(m, range(500))
    s = ent.schmidt_values(m, range(500), normalize=True)
    assert 0 < float(e.detach()) <= math.log(16) + 1e-12
    assert torch.isfinite(s).all() and float(s.detach().norm()) == pytest.approx(1.0)
    assert ent.cut_rank(m, range(500)) <= 16


def test_entropy_is_differentiable():
    torch.manual_seed(1)
    m = MPS(n_sites=6, phys_dim=2, bond_dim=3, init="normal", dtype=torch.float64)
    e = ent.entanglement_entropy(m, [0, 1, 2])
    e.backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in m.parameters())
    # matches the gradient through the dense tensor
    g_net = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    ent.entanglement_entropy(m.to_dense(), [0, 1, 2]).backward()
    for a, b in zip(g_net, [p.grad for p in m.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_gram_route_memory_limit(monkeypatch):
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 64)
    with pytest.raises(tnml.MemoryLimitError, match="max_dense_bytes"):
        ent.schmidt_values(generic("cp-onehot"), [0, 1])


def test_errors():
    m = generic("mps-scalar")
    with pytest.raises(ValueError, match="output=k"):
        ent.schmidt_values(generic("mps-out-end"), [0])
    with pytest.raises(ValueError, match="output=2 must be an integer in 0..1"):
        ent.schmidt_values(generic("mps-out-end"), [0], output=2)
    with pytest.raises(ValueError, match="no output index"):
        ent.schmidt_values(m, [0], output=0)
    with pytest.raises(ValueError, match="side B of the split is empty"):
        ent.cut_rank(m, range(m.n_sites))
    with pytest.raises(ValueError, match="method='svd' is unknown"):
        ent.schmidt_values(m, [0], method="svd")
    with pytest.raises(ValueError, match=r"alpha=-1 must be a number .*>= 0"):
        ent.entanglement_entropy(m, [0], alpha=-1)
    with pytest.raises(ValueError, match="not outer indices"):
        ent.schmidt_values(m.to_quimb(), ["nope"])
    with pytest.raises(TypeError, match="outer index names"):
        ent.schmidt_values(m.to_quimb(), [0])
    with pytest.raises(TypeError, match="obj must be"):
        ent.schmidt_values([[1.0, 0.0]], [0])
    with pytest.raises(ValueError, match="tol=-1"):
        ent.cut_rank(_ghz(), [0], tol=-1)


# ---------------------------------------------------------------------------------------------- factor route


@pytest.mark.parametrize("seed", range(12))
def test_interleaved_cut_of_binary_tree_is_exact(seed):
    """Regression: the Gram route undercounted (14, 12, 14 for seeds 2, 3, 9); the factor route gives the dense
    rank and values to 1e-12 of the largest."""
    tn = random_binary_tree_network(seed)
    part = ["p0", "p2", "p4", "p6"]
    dense = tn.contract(output_inds=part + ["p1", "p3", "p5", "p7"]).data.reshape(16, 16)
    ref = np.linalg.svd(dense, compute_uv=False)
    s = ent.schmidt_values(tn, part)
    assert len(s) == 16
    np.testing.assert_allclose(s, ref, rtol=0, atol=1e-12 * ref[0])
    assert ent.cut_rank(tn, part) == np.linalg.matrix_rank(dense) == 16
    assert ent.cut_rank_bounds(tn, part) == (16, 16)


def test_gram_route_says_when_a_rank_is_uncertain():
    """Seed 3: smallest value 4.6e-9 x the largest, below the Gram route's resolution: warned, interval holds 16."""
    tn = random_binary_tree_network(3)
    part = ["p0", "p2", "p4", "p6"]
    with pytest.warns(ent.RankUncertaintyWarning, match=r"between 1\d and 16"):
        low = ent.cut_rank(tn, part, method="gram")
    lo, hi = ent.cut_rank_bounds(tn, part, method="gram")
    assert lo == low < 16 <= hi
    assert ent.cut_rank(tn, part, method="factor") == 16


def test_auto_falls_back_to_gram_when_factor_does_not_fit(monkeypatch):
    """A TTN's interleaved cut: factor and Gram agree; under a small memory limit method='factor' is refused
    with a message naming the route and the remedy, and 'auto' takes the Gram route (which needs less here)."""
    from tnml.entanglement._inputs import base_network, with_sides
    from tnml.entanglement.spectra_factor import factor_bytes
    from tnml.entanglement.spectra_gram import cut_split

    torch.manual_seed(0)
    model = TTN(n_sites=8, bond_dim=3, init="normal", dtype=torch.float64)
    part = [0, 2, 4, 6]
    ref = _dense_values(model, part, None)
    _close(ent.schmidt_values(model, part, method="factor"), ref)
    net = with_sides(base_network(model), model, part)
    ma, mb, cut = cut_split(net.structure, net.side_a, net.side_b, tree=True)
    need = factor_bytes(net.structure, ma, mb, net.side_a, net.side_b, cut, tree=True, item=8)
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", need - 1)
    with pytest.raises(tnml.MemoryLimitError, match="factor route"):
        ent.schmidt_values(model, part, method="factor")
    try:
        s = ent.schmidt_values(model, part)
    except tnml.MemoryLimitError as err:  # the Gram route may not fit either: then its own message
        assert "Gram matrix" in str(err)
    else:
        _close(s, ref)


def test_factor_route_on_loops_matches_dense():
    from tnml.networks import PEPS

    torch.manual_seed(3)
    m = PEPS(shape=(3, 3), bond_dim=2, phys_dim=2, feature_map="identity", dtype=torch.float64)
    dense = m.to_dense().detach().numpy()
    for part in ([0, 1, 3, 4], [0, 4, 8], [1, 3, 5, 7], [4]):
        ref = ent.schmidt_values(dense, part)
        s = ent.schmidt_values(m, part, method="factor").detach().numpy()
        k = max(len(s), len(ref))
        np.testing.assert_allclose(np.pad(s, (0, k - len(s))), np.pad(ref, (0, k - len(ref))), rtol=0,
                                   atol=1e-12 * ref[0])
        assert ent.cut_rank(m, part) == ent.cut_rank(dense, part)


def test_factor_route_gradient_matches_dense():
    torch.manual_seed(2)
    m = TTN(n_sites=8, bond_dim=2, dtype=torch.float64)
    part = [0, 3, 5]
    ent.entanglement_entropy(m, part, method="factor").backward()
    g_net = [p.grad.clone() for p in m.parameters()]
    assert all(torch.isfinite(g).all() for g in g_net) and any(g.abs().sum() > 0 for g in g_net)
    m.zero_grad()
    ent.entanglement_entropy(m.to_dense(), part).backward()
    for a, b in zip(g_net, [p.grad for p in m.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_deep_chain_non_contiguous_cut_is_exact():
    """A 10-site random MPS, interleaved cut (many bonds): values to 1e-12 of the largest vs the dense SVD."""
    torch.manual_seed(4)
    m = MPS(n_sites=10, phys_dim=2, bond_dim=4, init="normal", dtype=torch.float64)
    part = [0, 2, 4, 6, 8]
    ref = ent.schmidt_values(m.to_dense().detach().numpy(), part)
    s = ent.schmidt_values(m, part).detach().numpy()
    np.testing.assert_allclose(s[: len(ref)], ref, rtol=0, atol=1e-12 * ref[0])
    assert ent.cut_rank(m, part) == np.linalg.matrix_rank(_matricize(m, part))


def _matricize(m, part):
    d = m.to_dense().detach().numpy()
    rest = [a for a in range(d.ndim) if a not in part]
    return np.transpose(d, list(part) + rest).reshape(2 ** len(part), -1)


def test_long_chain_non_edge_cut_factor_route_and_gram_refusal(monkeypatch):
    """A 120-site chain: the factor route agrees with the tree route on the single-edge cut {0} and with the Gram
    route on {0, 60}. A Gram matrix that under/overflows (seen on a 300-site bond-16 chain: every value 0.0, where
    the factor route gives 0.94, 0.35) now raises instead of returning zeros."""
    import tnml.entanglement.spectra_gram as sg

    torch.manual_seed(5)
    m = MPS(n_sites=120, phys_dim=2, bond_dim=6, init="normal", dtype=torch.float64)
    with torch.no_grad():
        tree = ent.schmidt_values(m, [0], normalize=True)
        torch.testing.assert_close(ent.schmidt_values(m, [0], method="factor", normalize=True), tree,
                                   rtol=1e-10, atol=1e-12)
        s = ent.schmidt_values(m, [0, 60], normalize=True)
        torch.testing.assert_close(s, ent.schmidt_values(m, [0, 60], method="gram", normalize=True),
                                   rtol=1e-6, atol=1e-8)
        real = sg._side_gram
        monkeypatch.setattr(sg, "_side_gram", lambda *a, **k: real(*a, **k) * 0.0)
        with pytest.raises(FloatingPointError, match="method='factor'"):
            ent.schmidt_values(m, [0, 60], method="gram")
