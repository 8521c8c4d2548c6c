"""Learned mode trees, per-edge TTN widths, the spec round trip and the widths rule (tnml.workflows.design)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tnml.datasets.synthetic import planted_pairs
from tnml.entanglement import mincut_bound
from tnml.mode_trees import tree_leaves, tree_nodes, validate_tree
from tnml.networks import TTN
from tnml.networks.ttn import inner_edges
from tnml.testing import assert_matches_dense
from tnml.workflows import auto_widths, design_ttn, edge_entanglement, learn_mode_tree, ttn_param_count
from tnml.workflows.mode_tree_learning import learn_mode_tree_layout


def _planted(n_features: int, seed: int, rho: float = 0.95, n: int = 1500):
    x, y = planted_pairs(n, n_features, rho=rho, seed=seed)
    perm = np.random.default_rng(seed).permutation(n_features)
    inv = np.argsort(perm)
    h = n_features // 2
    return x[:, perm], y, [frozenset((int(inv[i]), int(inv[i + h]))) for i in range(h)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["surrogate", "qe"])
def test_learned_tree_makes_every_planted_pair_siblings(seed, method):
    x, y, pairs = _planted(16 if method == "qe" else 32, seed)
    tree = learn_mode_tree(x, y, method=method, random_state=seed)
    siblings = {frozenset(b) for b in tree_nodes(tree) if len(b) == 2}
    assert all(p in siblings for p in pairs)


@pytest.mark.parametrize("n", [3, 5, 7, 13, 30, 37])
@pytest.mark.parametrize("arity", [2, 3])
def test_learned_tree_is_valid_for_ttn_on_ragged_n(n, arity):
    x = np.random.default_rng(n).normal(size=(60, n))
    tree = learn_mode_tree(x, arity=arity, random_state=0)
    assert validate_tree(tree, n) == tree
    assert sorted(tree_leaves(tree)) == list(range(n))
    assert all(len(b) <= arity for b in _children(tree))
    m = TTN(tree=tree, bond_dim=3, out_dim=2, dtype=torch.float64)
    assert m(torch.rand(4, n, dtype=torch.float64)).shape == (4, 2)


def _children(tree):
    if isinstance(tree, int):
        return []
    return [tree] + [c for k in tree for c in _children(k)]


@pytest.mark.parametrize("shape", [(3, 5), (4, 4), (6, 7)])
def test_2d_tree_has_the_quad_tree_block_sizes(shape):
    """dims=2 keeps the block sizes of the canonical quad-tree over the grid (not which pixels)."""
    n = shape[0] * shape[1]
    x = np.random.default_rng(1).normal(size=(80, n))
    lay = learn_mode_tree_layout(x, dims=2, shape=shape, random_state=0)
    from tnml.entanglement import canonical_partitions

    canon = sorted(len(p.sites) for p in canonical_partitions(shape=shape))
    nodes = [b for b in tree_nodes(lay.tree) if 1 < len(b) < n] + [b for b in tree_nodes(lay.tree) if len(b) == 1]
    assert sorted(len(b) for b in nodes) == canon
    pos = np.argsort(lay.order)  # every node is a canonical block of X[:, order]
    canon_sets = {frozenset(p.sites) for p in canonical_partitions(shape=shape)}
    assert all(frozenset(pos[list(b)].tolist()) in canon_sets for b in nodes)


def test_learned_tree_is_deterministic_under_random_state():
    x = np.random.default_rng(0).normal(size=(100, 40))
    x[:, 20:] += x[:, :20]
    assert learn_mode_tree(x, random_state=3) == learn_mode_tree(x, random_state=3)
    assert learn_mode_tree(x, None, method="qe", random_state=1) == learn_mode_tree(x, None, method="qe",
                                                                                   random_state=1)


def test_learned_tree_never_permutes_data_and_uses_training_rows_only():
    """The tree is a function of the rows it is given: extra (test) rows change nothing unless passed."""
    x, y, _ = _planted(32, 0)
    train, test = x[:1000], x[1000:]
    tree = learn_mode_tree(train, random_state=0)
    shuffled_test = test[::-1] * 3.0 + 7.0
    assert learn_mode_tree(np.asarray(train), random_state=0) == tree
    model, rep = design_ttn(train, y[:1000], random_state=0)
    assert model.tree == tree
    # design_ttn has no access to test rows: the design is identical however the held-out rows look
    model2, _ = design_ttn(np.concatenate([train]), y[:1000], random_state=0)
    assert model2.edge_widths == model.edge_widths
    assert shuffled_test.shape == test.shape


@pytest.mark.parametrize("bad,match", [
    (dict(dims=3), "dims=3 is unknown"), (dict(method="x"), "method='x' is unknown"), (dict(arity=1), "arity"),
    (dict(dims=2, shape=(3, 3)), "h \\* w"),
])
def test_learn_mode_tree_bad_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        learn_mode_tree(np.random.default_rng(0).normal(size=(10, 8)), **bad)


def test_tree_method_alias_is_what_learn_mode_tree_accepts():
    from typing import get_type_hints

    from tnml.options import TreeMethod, choices
    from tnml.workflows.mode_tree_learning import METHODS

    assert choices(TreeMethod) == tuple(METHODS)
    assert get_type_hints(design_ttn)["method"] is TreeMethod
    with pytest.raises(ValueError, match="method"):
        design_ttn(np.random.default_rng(0).normal(size=(10, 8)), method="x")


# ---------------------------------------------------------------------------------------------- per-edge widths
def test_ttn_per_edge_widths_match_dense_and_mincut():
    tree = (((0, 3), 5), ((1, 2), (4, 6)))
    widths = {(0, 3): 2, (0, 3, 5): 5, (1, 2): 3, (4, 6): 4, (1, 2, 4, 6): 6}
    m = TTN(tree=tree, bond_dim=widths, out_dim=2, init="normal", dtype=torch.float64)
    assert m.edge_widths == widths and m.bond_dims is None
    assert_matches_dense(m)
    assert mincut_bound(m, [0, 3]).rank_bound == 2  # the bond (0, 3) carries width 2 < 4 = 2 sites' dims
    # across (1,2,4,6) | (0,3,5): the width-6 edge, or the width-2 edge (0,3) plus site 5 (dim 2): 4
    assert mincut_bound(m, [1, 2, 4, 6]).rank_bound == 4
    assert mincut_bound(m, [1, 2]).rank_bound == 3
    assert ttn_param_count(tree, widths, 2, 2) == sum(p.numel() for p in m.parameters())
    f = TTN(tree=tree, bond_dim=lambda e: len(e) + 1, out_dim=2)
    assert f.edge_widths == {e: len(e) + 1 for e in inner_edges(tree)}


def test_ttn_level_widths_still_work_and_fill_edge_widths():
    m = TTN(n_sites=7, bond_dim=[2, 3], out_dim=2)
    assert m.bond_dims == (2, 3)
    assert m.edge_widths == {(0, 1): 2, (2, 3): 2, (4, 5): 2, (0, 1, 2, 3): 3, (4, 5, 6): 3}


@pytest.mark.parametrize("bad,match", [
    ({(0, 1): 2}, "missing"), ({(0, 1): 2, (2, 3): 2, (0, 2): 3}, "not an inner node"),
    ({(0, 1): 0, (2, 3): 2}, "bond_dim"), ("auto", "design_ttn"),
])
def test_ttn_bad_edge_widths(bad, match):
    with pytest.raises(ValueError, match=match):
        TTN(tree=((0, 1), (2, 3)), bond_dim=bad, out_dim=2)


def test_spec_round_trip(tmp_path):
    tree = ((0, (2, 4)), (1, 3))
    m = TTN(tree=tree, bond_dim={(2, 4): 3, (0, 2, 4): 5, (1, 3): 2}, out_dim=3,
            feature_map=("trig", {"theta": 0.25}))
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(m.to_spec()))
    r = TTN.from_spec(path)
    assert r.tree == m.tree and r.edge_widths == m.edge_widths and r.out_dim == 3
    assert r.feature_map.theta == 0.25
    assert [p.shape for p in r.parameters()] == [p.shape for p in m.parameters()]
    with pytest.raises(ValueError, match="not a TTN spec"):
        TTN.from_spec({"tree": [0, 1]})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="cannot read"):
        TTN.from_spec(tmp_path / "bad.json")


# ---------------------------------------------------------------------------------------------- the widths rule
def test_auto_widths_rule_caps_and_budget():
    tree = (((0, 1), (2, 3)), ((4, 5), (6, 7)))
    qe = {(0, 1): 0.0, (2, 3): 0.5, (4, 5): 1.0, (6, 7): 3.0, (0, 1, 2, 3): 2.0, (4, 5, 6, 7): 2.0}
    w, s = auto_widths(tree, qe, margin=0.0, cap=8)
    assert s == 1.0
    assert w[(0, 1)] == 1 and w[(2, 3)] == 2 and w[(4, 5)] == 3 and w[(6, 7)] == 4  # exp(qe), capped by 2 x 2
    assert w[(0, 1, 2, 3)] == 2  # exp(2) = 7.4 -> 8, but the node receives only 1 x 2
    full = ttn_param_count(tree, w, 2, 2)
    small, s_small = auto_widths(tree, qe, margin=0.0, cap=8, max_params=full // 2, out_dim=2)
    assert ttn_param_count(tree, small, 2, 2) <= full // 2 and s_small < 1
    big, s_big = auto_widths(tree, qe, margin=0.0, cap=8, max_params=10 * full, out_dim=2)
    assert s_big > 1 and all(big[e] >= w[e] for e in w)
    with pytest.raises(ValueError, match="max_params=5"):
        auto_widths(tree, qe, max_params=5)


@pytest.mark.parametrize("theta", [0.085, 0.2])
def test_widths_monotone_in_planted_entanglement(theta):
    """Two 4-feature blocks, each pair (i, i + 4) correlated with rho: the measured QE across the blocks' cut grows
    with rho, and no auto width ever shrinks; at theta = 0.2 the cut's width grows strictly from rho 0.3 to 0.95."""
    tree = (((0, 1), (2, 3)), ((4, 5), (6, 7)))
    qes, widths = [], []
    for rho in (0.0, 0.3, 0.6, 0.8, 0.95):
        rng = np.random.default_rng(0)
        u, e = rng.normal(size=(2, 800, 4))
        x = np.concatenate([u, rho * u + np.sqrt(1 - rho**2) * e], axis=1)
        qe, _ = edge_entanglement(x, None, tree, theta=theta, batch_size=800)
        qes.append(qe[(0, 1, 2, 3)])
        widths.append(auto_widths(tree, qe, cap=16)[0])
    assert all(b > a for a, b in zip(qes, qes[1:]))
    assert all(w2[e] >= w1[e] for w1, w2 in zip(widths, widths[1:]) for e in w1)
    if theta == 0.2:
        assert widths[-1][(0, 1, 2, 3)] > widths[1][(0, 1, 2, 3)]


def test_design_ttn_report():
    x, y, _ = _planted(32, 1)
    model, rep = design_ttn(x, y, max_params=3000, random_state=0)
    assert rep.n_params == sum(p.numel() for p in model.parameters()) <= 3000
    assert len(rep.edges) == len(inner_edges(model.tree)) == 30
    for e in rep.edges:
        assert model.edge_widths[e.sites] == e.width
        assert e.capacity <= np.log(e.width) + 1e-9  # the edge itself is a cut
    assert "TTN design" in rep.to_markdown()
    with pytest.raises(ValueError, match="bond_dim"):
        design_ttn(x, y, bond_dim="big")
    with pytest.raises(ValueError, match="y must have shape"):
        design_ttn(x, y[:5])


@pytest.mark.parametrize("m,batch_size,n_batches", [(1000, 300, 1), (1000, 300, 10), (10, 3, 2), (50, 80, 2),
                                                     (97, 10, 3)])
def test_qe_samples_are_the_samples_data_entanglement_uses(m, batch_size, n_batches):
    from tnml.entanglement import data_entanglement
    from tnml.workflows.design import _qe_samples

    x = np.random.default_rng(0).normal(size=(m, 4))
    res = data_entanglement(x, None, [[0, 1]], theta=0.5, batch_size=batch_size, n_batches=n_batches)
    assert _qe_samples(m, batch_size, n_batches) == sum(res.batch_sizes)


def test_design_report_counts_the_qe_samples_of_near_equal_batches():
    x, y, _ = _planted(8, 0, n=400)
    # 400 samples in batches of at most 300: two batches of 200; the QE of one batch uses 200 samples, not 300
    _, rep = design_ttn(x, y, random_state=0, batch_size=300, n_batches=1)
    assert rep.settings["qe_samples"] == 200
    from tnml.entanglement import data_entanglement

    a = data_entanglement(x, y, [[0, 1, 2, 3]], batch_size=300, n_batches=None)
    b = data_entanglement(x, y, [[0, 1, 2, 3]], batch_size=200, n_batches=None)  # what edge_entanglement passes
    assert a.batch_sizes == b.batch_sizes == [200, 200] and np.array_equal(a.qe_per_batch, b.qe_per_batch)


def test_guide_example_runs(capsys):
    """The example of docs/guide/design.md executes, and its printed parameter counts respect the budget."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "guide" / "design.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    env: dict = {}
    exec(compile(code, "docs/guide/design.md", "exec"), env)  # noqa: S102 - our own documentation
    lines = capsys.readouterr().out.splitlines()
    n_params, n_uniform = map(int, lines[1].split())
    assert n_params <= 20_000 < n_uniform
    assert env["rebuilt"].edge_widths == env["model"].edge_widths
