"""Adversarial tests of the data-driven design tools against independent references: the widths rule and the
parameter count re-derived from their documented definitions, edge QEs from a dense float64 data tensor, min-cut
capacities from a tree dynamic programme and the dense rank, learned trees against brute-force optimal splits and
feature relabelling, WIS against a reference built on the public walk index, and the ``tnml design`` command's
refusals. ``xfail(strict=True)`` marks a demonstrated bug (the reason says which)."""

from __future__ import annotations

import csv
import itertools
import json
import math

import networkx as nx
import numpy as np
import pytest
import torch

from tnml.cli import main
from tnml.entanglement import walk_index
from tnml.mode_trees import contiguous_tree, tree_leaves, tree_nodes, validate_tree
from tnml.networks import TTN
from tnml.networks.ttn import inner_edges
from tnml.preprocessing import FeatureRearrangement, one_wis, walk_index_sparsification
from tnml.preprocessing.igtd import IGTDRearrangement
from tnml.testing import assert_matches_dense
from tnml.workflows import auto_widths, design_ttn, edge_entanglement, learn_mode_tree, ttn_param_count
from tnml.workflows.mode_tree_learning import learn_mode_tree_layout


# ============================================================================================== references
def random_tree(n: int, rng: np.random.Generator, max_arity: int = 3):
    """A random mode tree over 0..n-1: random leaf order, random arity (2..max_arity) and child sizes per node."""

    def build(leaves: list[int]):
        if len(leaves) == 1:
            return leaves[0]
        k = int(rng.integers(2, min(max_arity, len(leaves)) + 1))
        cuts = sorted(rng.choice(np.arange(1, len(leaves)), size=k - 1, replace=False).tolist())
        return tuple(build(p) for p in np.split(np.asarray(leaves), cuts) for p in [p.tolist()])

    return build(rng.permutation(n).tolist())


def ref_nodes(tree) -> list[tuple[tuple[int, ...], list]]:
    """(sorted leaves, children) of every internal node, post-order, the root last; children as sorted leaf tuples
    (a site is a 1-tuple flagged by ``int``)."""
    out = []

    def visit(t):
        if isinstance(t, int):
            return t
        kids = [visit(c) for c in t]
        key = tuple(sorted(x for k in kids for x in ((k,) if isinstance(k, int) else k)))
        out.append((key, kids))
        return key

    visit(tree)
    return out


def ref_widths(tree, qe, margin, cap, phys, scale=1.0) -> dict:
    """The documented rule: width(K) = min(ceil(exp(s (QE(K) + margin))), cap, product of the children's dims); the
    ceil forgives 1e-9 above an integer, as the library does (a budget's scale lands exactly on such steps)."""
    w: dict = {}
    for key, kids in ref_nodes(tree)[:-1]:
        incoming = math.prod(phys if isinstance(k, int) else w[k] for k in kids)
        w[key] = min(max(1, math.ceil(math.exp(scale * (max(qe[key], 0.0) + margin)) - 1e-9)), cap, incoming)
    return w


def ref_param_count(tree, widths, phys, out_dim) -> int:
    nodes = ref_nodes(tree)
    total = 0
    for key, kids in nodes:
        up = (out_dim or 1) if key == nodes[-1][0] else widths[key]
        total += math.prod(phys if isinstance(k, int) else widths[k] for k in kids) * up
    return total


def ref_capacity(tree, widths, phys, part) -> float:
    """Min cut (sum of ln dims) separating the site legs in ``part`` from the others in a tree network, output leg
    unconstrained: a two-state dynamic programme over the tree (side A / side B per tensor)."""
    part = set(part)

    def cost(t):  # (cost if this tensor is on side A, on side B), for its subtree
        a = b = 0.0
        for c in t:
            if isinstance(c, int):
                a += 0.0 if c in part else math.log(phys)
                b += math.log(phys) if c in part else 0.0
            else:
                ca, cb = cost(c)
                lw = math.log(widths[tuple(sorted(tree_leaves(c)))])
                a += min(ca, cb + lw)
                b += min(cb, ca + lw)
        return a, b

    return min(cost(tree))


def dense_qe(X, y, part, theta) -> float:
    """QE of P5's empirical data tensor D = (1/M) Σ_m y_m ⊗_n φ(z_n^m) across ``part``, D formed densely in float64
    (z: standardized features, φ = (cos πθz, sin πθz); two classes: the larger +1; more: mean of one-vs-rest)."""
    X = np.asarray(X, dtype=np.float64)
    z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    m, n = z.shape
    phi = np.stack([np.cos(np.pi * theta * z), np.sin(np.pi * theta * z)], axis=-1)  # (M, N, 2)
    a = phi[:, 0, :]
    for k in range(1, n):
        a = (a[:, :, None] * phi[:, k, None, :]).reshape(m, -1)
    if y is None:
        signs = [np.ones(m)]
    else:
        classes, inv = np.unique(y, return_inverse=True)
        signs = [2.0 * inv - 1.0] if classes.size == 2 else [np.where(inv == c, 1.0, -1.0) for c in range(classes.size)]
    out = []
    for s in signs:
        d = (s[:, None] * a).mean(0).reshape((2,) * n)
        mat = np.moveaxis(d, list(part), list(range(len(part)))).reshape(2 ** len(part), -1)
        sv = np.linalg.svd(mat, compute_uv=False)
        p = sv**2 / (sv**2).sum()
        p = p[p > 0]
        out.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(out))


def corr_abs(X) -> np.ndarray:
    c = np.abs(np.corrcoef(np.asarray(X, dtype=np.float64), rowvar=False))
    np.fill_diagonal(c, 0.0)
    return c


def mixed_data(m: int, n: int, seed: int) -> np.ndarray:
    """Gaussian features with varied, tie-free correlations (a random mixing of independent sources)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n)) @ (np.eye(n) + 0.6 * rng.normal(size=(n, n)))


def blocks(tree) -> set[frozenset]:
    return {frozenset(b) for b in tree_nodes(tree)}


# ============================================================================================== the widths rule
@pytest.mark.parametrize("seed", range(6))
def test_auto_widths_equal_the_documented_rule_on_random_trees(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 14))
    tree = random_tree(n, rng)
    keys = [k for k, _ in ref_nodes(tree)[:-1]]
    assert keys == inner_edges(tree)  # same edge keys, same post-order
    qe = {k: float(rng.uniform(0.01, 3.0)) for k in keys}
    phys, cap, margin = int(rng.integers(2, 4)), int(rng.integers(2, 12)), float(rng.uniform(0.0, 1.0))
    w, s = auto_widths(tree, qe, margin=margin, cap=cap, phys_dim=phys)
    assert s == 1.0 and w == ref_widths(tree, qe, margin, cap, phys)
    # the parameter count, against the built network's parameters and the definition
    out_dim = int(rng.integers(1, 5))
    model = TTN(tree=tree, bond_dim=w, out_dim=out_dim, phys_dim=phys, feature_map="polynomial")
    count = ttn_param_count(tree, w, phys, out_dim)
    assert count == ref_param_count(tree, w, phys, out_dim) == sum(p.numel() for p in model.parameters())
    assert ttn_param_count(tree, w, phys, None) == ref_param_count(tree, w, phys, None)


@pytest.mark.parametrize("seed", range(6))
def test_auto_widths_budget_is_respected_maximal_and_keeps_the_order(seed):
    """Under ``max_params`` the widths are the rule at the returned scale ``s``; they fit the budget; any larger
    ``s`` breaks it (unless every width is already at its largest); a more entangled cut is never narrower than a
    less entangled one, except where the incoming dimension caps it."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 16))
    tree = random_tree(n, rng)
    qe = {k: float(rng.uniform(0.01, 3.0)) for k in inner_edges(tree)}
    cap, out_dim = 8, 3
    top = ref_widths(tree, qe, math.log(2), cap, 2, scale=50.0)  # every width at cap or incoming
    budget = int(
        rng.integers(ref_param_count(tree, {k: 1 for k in qe}, 2, out_dim), ref_param_count(tree, top, 2, out_dim) + 1)
    )
    w, s = auto_widths(tree, qe, cap=cap, max_params=budget, out_dim=out_dim)
    assert w == ref_widths(tree, qe, math.log(2), cap, 2, scale=s)
    assert ref_param_count(tree, w, 2, out_dim) <= budget
    if w != top:
        assert (
            ref_param_count(tree, ref_widths(tree, qe, math.log(2), cap, 2, scale=s * (1 + 1e-6) + 1e-6), 2, out_dim)
            > budget
        )
    kids = dict(ref_nodes(tree)[:-1])
    for a, b in itertools.permutations(qe, 2):
        if qe[a] >= qe[b]:
            incoming = math.prod(2 if isinstance(k, int) else w[k] for k in kids[a])
            assert w[a] >= min(w[b], incoming)


@pytest.mark.parametrize(
    "margin,bond_dim", [(float("nan"), "auto"), (float("inf"), "auto"), (float("nan"), 3), (-1.0, 3)]
)
def test_design_ttn_refuses_a_bad_margin_by_name(margin, bond_dim):
    x = mixed_data(40, 6, 0)
    with pytest.raises(ValueError, match="margin"):
        design_ttn(x, (x[:, 0] > 0).astype(int), margin=margin, bond_dim=bond_dim)


def test_design_ttn_fixed_width_with_a_budget_is_refused():
    x = mixed_data(60, 8, 0)
    with pytest.raises(ValueError, match="max_params"):
        design_ttn(x, (x[:, 0] > 0).astype(int), bond_dim=3, max_params=50)


@pytest.mark.parametrize(
    "qe,kwargs,name",
    [
        ({(0, 1): float("nan"), (2, 3): 0.1}, {}, "qe"),
        ({(0, 1): float("inf"), (2, 3): 0.1}, {}, "qe"),
        ({(0, 1): 0.5, (2, 3): 0.1}, {"phys_dim": 0}, "phys_dim"),
        ({(0, 1): 0.5, (2, 2): 0.1}, {"tree": ((0, 1), (2, 2))}, "tree"),
    ],
)
def test_auto_widths_refuses_bad_inputs_by_name(qe, kwargs, name):
    tree = kwargs.pop("tree", ((0, 1), (2, 3)))
    with pytest.raises(ValueError, match=name):
        auto_widths(tree, qe, **kwargs)


# ============================================================================================== measured QE and SE
@pytest.mark.parametrize("seed,n_classes", [(0, 2), (1, 3), (2, None)])
def test_edge_entanglement_equals_the_dense_data_tensor(seed, n_classes):
    """Every inner edge of a random tree: QE from samples (one batch of all M samples) = the QE of the data tensor
    formed densely in float64; SE = the sum of |Pearson| across the cut (numpy's corrcoef)."""
    rng = np.random.default_rng(seed)
    n, m = 7, 40  # 2^|K| > M on the large sides: both the Gram route and the explicit route are exercised
    x = mixed_data(m, n, seed)
    y = None if n_classes is None else rng.integers(0, n_classes, size=m)
    tree = random_tree(n, rng)
    qe, se = edge_entanglement(x, y, tree, theta=0.3, batch_size=m, n_batches=1)
    c = corr_abs(x)
    for e in inner_edges(tree):
        assert qe[e] == pytest.approx(dense_qe(x, y, e, 0.3), abs=1e-8)
        rest = [j for j in range(n) if j not in e]
        assert se[e] == pytest.approx(c[np.ix_(list(e), rest)].sum(), rel=1e-10)


@pytest.mark.parametrize("dims,n", [(1, 8), (1, 7), (2, 9)])
def test_edge_entanglement_shared_pass_equals_cut_by_cut(dims, n):
    """With a canonical layout all QEs come from one shared pass over the tree; cut by cut must give the same
    numbers (and both the dense reference)."""
    x = mixed_data(48, n, 3)
    y = (x[:, 0] * x[:, -1] > 0).astype(int)
    lay = learn_mode_tree_layout(x, y, dims=dims, random_state=0)
    assert lay.canonical
    shared, _ = edge_entanglement(x, y, lay.tree, layout=lay, theta=0.3, batch_size=48)
    alone, _ = edge_entanglement(x, y, lay.tree, theta=0.3, batch_size=48)
    assert shared.keys() == alone.keys() == set(inner_edges(lay.tree))
    for e in shared:
        assert shared[e] == pytest.approx(alone[e], abs=1e-9)
        assert shared[e] == pytest.approx(dense_qe(x, y, e, 0.3), abs=1e-8)


@pytest.mark.parametrize("qe_method,tol", [("exact", 1e-8), ("sketch", 1e-6)])
def test_edge_entanglement_whole_data_routes_equal_the_dense_data_tensor(qe_method, tol):
    """The whole-data routes (exact; the sketch with every sample a landmark) against the dense tensor of all
    M samples, here with M = 70 above the batch size 50 that the default route would use."""
    x = mixed_data(70, 8, 8)
    y = np.arange(70) % 3
    lay = learn_mode_tree_layout(x, y, random_state=0)
    qe, _ = edge_entanglement(x, y, lay.tree, layout=lay, theta=0.3, batch_size=50, qe_method=qe_method, sketch_size=70)
    for e in inner_edges(lay.tree):
        assert qe[e] == pytest.approx(dense_qe(x, y, e, 0.3), abs=tol)


# ============================================================================================== designed networks
@pytest.fixture(scope="module")
def designed():
    x = mixed_data(60, 7, 5)
    y = np.digitize(x[:, 1] + x[:, 5], [-1.0, 1.0])  # three classes
    model, rep = design_ttn(x, y, random_state=0, dtype=torch.float64, init="normal")
    return x, y, model, rep


def test_design_report_is_the_rule_on_the_measured_qe(designed):
    x, y, model, rep = designed
    assert model.out_dim == 3 and model.n_sites == 7
    assert validate_tree(model.tree, 7) == model.tree and sorted(tree_leaves(model.tree)) == list(range(7))
    assert [e.sites for e in rep.edges] == inner_edges(model.tree)
    qe, se = edge_entanglement(x, y, model.tree, theta=0.085, batch_size=300)  # cut by cut, no layout
    kids = dict(ref_nodes(model.tree)[:-1])
    for e in rep.edges:
        assert e.qe == pytest.approx(qe[e.sites], abs=1e-9) and e.se == pytest.approx(se[e.sites], rel=1e-10)
        assert e.target == math.ceil(math.exp(max(e.qe, 0.0) + math.log(2)))
        incoming = math.prod(2 if isinstance(k, int) else model.edge_widths[k] for k in kids[e.sites])
        assert e.width == model.edge_widths[e.sites] == min(e.target, 8, incoming)
    assert rep.n_params == sum(p.numel() for p in model.parameters())
    assert rep.n_params_uniform == ref_param_count(model.tree, {e.sites: 8 for e in rep.edges}, 2, 3)


def test_design_capacities_are_the_tree_min_cut_and_bound_the_dense_rank(designed):
    """Each edge's reported capacity = the min cut from a dynamic programme over the tree; the dense coefficient
    tensor (float64, random normal cores) has rank at most exp(capacity) across the cut, for every output."""
    _, _, model, rep = designed
    dense = model.to_dense().detach().numpy()  # (2,) * 7 + (3,)
    for e in rep.edges:
        cap = ref_capacity(model.tree, model.edge_widths, 2, e.sites)
        assert e.capacity == pytest.approx(cap, abs=1e-12)
        rest = [j for j in range(7) if j not in e.sites]
        for k in range(3):
            mat = np.transpose(dense[..., k], list(e.sites) + rest).reshape(2 ** len(e.sites), -1)
            sv = np.linalg.svd(mat, compute_uv=False)
            rank = int((sv > sv[0] * 1e-10).sum())
            assert rank <= round(math.exp(cap))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_designed_model_forward_and_gradients(designed, dtype):
    x, y, _, _ = designed
    model, _ = design_ttn(x, y, random_state=0, dtype=dtype)
    xb = torch.as_tensor(x[:9], dtype=dtype)
    out = model(xb)
    assert out.shape == (9, 3) and out.dtype == dtype and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.as_tensor(y[:9])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for p in model.parameters()) > 0
    assert_matches_dense(model)
    # already-embedded input (batch, n_sites, phys_dim) gives the same outputs
    torch.testing.assert_close(model(model.feature_map(xb)), out.detach())
    # the spec rebuilds the same architecture: the trained weights load into it and give the same outputs
    rebuilt = TTN.from_spec(model.to_spec(), dtype=dtype)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.tree == model.tree and rebuilt.edge_widths == model.edge_widths
    torch.testing.assert_close(rebuilt(xb), out.detach())


def test_design_on_a_grid_reads_3d_input_and_the_flat_input_alike():
    x = mixed_data(50, 12, 7)
    y = (x[:, 0] > 0).astype(int)
    m3, r3 = design_ttn(x.reshape(50, 3, 4), y, dims=2, random_state=0)
    m2, r2 = design_ttn(x, y, dims=2, shape=(3, 4), random_state=0)
    assert m3.tree == m2.tree and m3.edge_widths == m2.edge_widths
    assert [e.qe for e in r3.edges] == pytest.approx([e.qe for e in r2.edges], abs=1e-12)


def test_design_ttn_on_two_features():
    x = mixed_data(40, 2, 0)
    model, rep = design_ttn(x, (x[:, 0] > 0).astype(int), random_state=0)
    assert model.n_sites == 2 and rep.edges == []


def test_design_ttn_with_a_tree_refuses_1d_x_by_name():
    with pytest.raises(ValueError, match="X"):
        design_ttn(np.zeros(10), tree=((0, 1), (2, 3)))


# ============================================================================================== learned trees
@pytest.mark.parametrize("seed", range(3))
def test_learned_root_split_is_the_brute_force_minimum_cut(seed):
    """Blocks of at most 12 features are split exhaustively: the root split's |Pearson| cut equals the minimum
    over all balanced splits (enumerated here), for even and odd N."""
    n = 10 + seed % 2
    x = mixed_data(200, n, seed)
    c = corr_abs(x)
    tree = learn_mode_tree(x, random_state=seed)
    a = sorted(tree_leaves(tree[0]))
    b = [j for j in range(n) if j not in a]
    assert len(a) == (n + 1) // 2
    best = min(
        c[np.ix_(list(s), [j for j in range(n) if j not in s])].sum()
        for s in itertools.combinations(range(n), (n + 1) // 2)
    )
    assert c[np.ix_(a, b)].sum() == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("method", ["surrogate", "qe"])
def test_learned_tree_follows_a_relabelling_of_the_features(method):
    """Permuting the columns permutes the learned tree's leaves (every split of N <= 12 is an exact, tie-free
    optimum for the surrogate; the QE score of each candidate split is relabelling-invariant too)."""
    n = 10
    x = mixed_data(120, n, 11)
    y = (x[:, 2] > 0).astype(int)
    p = np.random.default_rng(4).permutation(n)
    t0 = learn_mode_tree(x, y, method=method, random_state=0)
    t1 = learn_mode_tree(x[:, p], y, method=method, random_state=0)
    assert {frozenset(int(p[j]) for j in b) for b in blocks(t1)} == blocks(t0)


@pytest.mark.parametrize("n", [5, 7, 13, 16])
def test_learned_layout_nodes_are_the_canonical_blocks_of_the_order(n):
    """1-D, ragged N: every node of the learned tree is a canonical block of ``X[:, order]`` and every canonical
    block is a node (the layout's promise, which the shared QE pass relies on)."""
    from tnml.entanglement import canonical_partitions

    lay = learn_mode_tree_layout(mixed_data(60, n, n), random_state=0)
    assert sorted(lay.order.tolist()) == list(range(n))
    pos = np.argsort(lay.order)
    every = frozenset(range(n))

    def split(block) -> frozenset:  # the unordered cut (block | rest)
        side = frozenset(block)
        return frozenset((side, every - side))

    nodes = {split(int(pos[j]) for j in b) for b in tree_nodes(lay.tree) if len(b) < n}
    assert nodes == {split(p.sites) for p in canonical_partitions(n)}


@pytest.mark.parametrize("kind", ["bool", "int", "3d"])
def test_learned_tree_is_valid_on_other_input_kinds(kind):
    x = mixed_data(80, 12, 2)
    arr = {"bool": x > 0, "int": np.rint(3 * x).astype(np.int32), "3d": x.reshape(80, 3, 4)}[kind]
    tree = learn_mode_tree(arr, random_state=0)
    assert sorted(tree_leaves(tree)) == list(range(12)) and validate_tree(tree, 12) == tree


def test_qe_method_root_split_is_no_more_entangled_than_the_surrogates():
    # (the |Pearson| graph was built from standardized X: float noise changed the first candidate, 1.796 vs 1.762)
    """The surrogate's split is the partitioner at the given seed, which the QE method scores first among its
    candidates: the QE method's root cut can only be less entangled (same QE estimator, same batch and seed).
    Instances where it was not: (seed, N) = (1, 24), (2, 32), (6, 24), M = 200."""
    from tnml.entanglement import data_entanglement

    for seed, n in ((1, 24), (2, 32), (6, 24)):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(200, n)) @ (np.eye(n) + 0.3 * rng.normal(size=(n, n)))
        y = (x[:, 0] * x[:, 5] > 0).astype(int)
        sides = [
            sorted(tree_leaves(learn_mode_tree(x, y, method=m, random_state=seed)[0])) for m in ("surrogate", "qe")
        ]
        z = (x - x.mean(0)) / x.std(0)
        qe = data_entanglement(z, y, sides, theta=0.085, batch_size=200, n_batches=1, seed=seed).qe
        assert qe[1] <= qe[0] + 1e-9, (seed, n, qe)


def _pairs_far_apart(m=400, half=4, rho=0.9, seed=0):
    rng = np.random.default_rng(seed)
    u, e = rng.normal(size=(2, m, half))
    return np.concatenate([u, rho * u + np.sqrt(1 - rho**2) * e], axis=1)  # feature i pairs with i + half


def _qe_total(x, tree) -> float:
    qe, _ = edge_entanglement(x, None, tree, theta=0.2, batch_size=len(x))
    return sum(qe.values())


def test_learned_tree_lowers_the_measured_qe_on_planted_far_pairs():
    """Pairs (i, i + 4): the learned tree puts each pair in one node and the data's measured QE summed over its
    cuts falls well below the contiguous tree's (which splits every pair at the root)."""
    x = _pairs_far_apart()
    tree = learn_mode_tree(x, random_state=0)
    assert {frozenset((i, i + 4)) for i in range(4)} <= blocks(tree)
    assert _qe_total(x, tree) < 0.5 * _qe_total(x, contiguous_tree(8))


def test_learned_tree_qe_mutation_blind_partitioner(monkeypatch):
    """The same statistic with the partitioner blind to the data (first ``size_a`` features on side A): the
    learned tree is the contiguous one and the QE advantage is gone."""
    import tnml.workflows.mode_tree_learning as mtl

    monkeypatch.setattr(mtl, "bisect", lambda w, size_a, backend="auto", seed=0: np.arange(len(w)) < size_a)
    x = _pairs_far_apart()
    tree = learn_mode_tree(x, random_state=0)
    assert not _qe_total(x, tree) < 0.5 * _qe_total(x, contiguous_tree(8))


@pytest.mark.parametrize("fit", ["tree", "rearrange"])
def test_negative_grid_shape_is_refused_by_name(fit):
    x = mixed_data(30, 6, 0)
    with pytest.raises(ValueError, match="shape"):
        if fit == "tree":
            learn_mode_tree(x, dims=2, shape=(-2, -3))
        else:
            FeatureRearrangement(dims=2, shape=(-2, -3)).fit(x)


# ============================================================================================== rearrangement
@pytest.mark.parametrize("n", [2, 3, 5, 7, 13])
def test_rearrangement_round_trips_on_ragged_n(n):
    x = mixed_data(60, n, n)
    fr = FeatureRearrangement(random_state=0).fit(x)
    assert sorted(fr.permutation_.tolist()) == list(range(n))
    new = mixed_data(7, n, 99)  # transform reads new rows, never refits
    np.testing.assert_array_equal(fr.transform(new), new[:, fr.permutation_])
    np.testing.assert_array_equal(fr.inverse_transform(fr.transform(new)), new)
    np.testing.assert_array_equal(fr.transform(fr.inverse_transform(new)), new)
    np.testing.assert_array_equal(FeatureRearrangement(random_state=0).fit_transform(x), fr.transform(x))


def test_rearrangement_first_split_is_optimal_and_relabelling_invariant():
    n = 8
    x = mixed_data(200, n, 21)
    c = corr_abs(x)
    fr = FeatureRearrangement(random_state=0).fit(x)
    left = fr.permutation_[: n // 2].tolist()
    best = min(
        c[np.ix_(list(s), [j for j in range(n) if j not in s])].sum() for s in itertools.combinations(range(n), n // 2)
    )
    assert c[np.ix_(left, [j for j in range(n) if j not in left])].sum() == pytest.approx(best, rel=1e-12)
    p = np.random.default_rng(0).permutation(n)
    fp = FeatureRearrangement(random_state=0).fit(x[:, p])
    assert fp.objective_after_ == pytest.approx(fr.objective_after_, rel=1e-12)
    assert fp.objective_before_ != pytest.approx(fr.objective_before_)  # the input orders do differ


def test_rearrangement_input_errors_name_the_problem():
    x = mixed_data(30, 6, 0)
    with pytest.raises(ValueError, match="at least 2"):
        FeatureRearrangement().fit(x[:, :1])
    with pytest.raises(ValueError, match=r"shape \(30,\)"):
        FeatureRearrangement().fit(x[:, 0])
    with pytest.raises(ValueError, match="non-finite"):
        FeatureRearrangement().fit(np.where(x > 1.5, np.inf, x))
    with pytest.raises(TypeError, match="numbers"):
        FeatureRearrangement().fit(x.astype(str))
    fr = FeatureRearrangement().fit(x)
    for bad in (x[:, :5], np.c_[x, x[:, :1]], x[:, :4].reshape(30, 2, 2)):
        with pytest.raises(ValueError, match="fitted on 6 features"):
            fr.transform(bad)
    with pytest.raises(ValueError, match="fitted on 6 features"):
        fr.inverse_transform(x[:, :3])


@pytest.mark.parametrize("backend", ["auto", "kl"])
def test_rearrangement_of_constant_features(backend):
    """All-constant columns (no correlation anywhere; > 12 features, so not the exhaustive path): a valid order
    and a zero objective."""
    x = np.ones((20, 16))
    x[:, 3] = np.arange(20)  # one varying feature
    fr = FeatureRearrangement(backend=backend, random_state=0).fit(x)
    assert sorted(fr.permutation_.tolist()) == list(range(16))
    assert fr.objective_before_ == fr.objective_after_ == 0.0


def test_rearrangement_is_a_sklearn_transformer():
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = mixed_data(50, 8, 1)
    fr = FeatureRearrangement(random_state=3, dims=1)
    assert clone(fr).get_params() == fr.get_params()
    pipe = make_pipeline(StandardScaler(), FeatureRearrangement(random_state=3)).fit(x)
    z = StandardScaler().fit_transform(x)
    np.testing.assert_allclose(pipe.transform(x), z[:, pipe[-1].permutation_])


def test_rearrangement_dims1_does_not_silently_use_a_grid():
    x = mixed_data(60, 6, 0)
    try:
        fr = FeatureRearrangement(dims=1, shape=(2, 3), random_state=0).fit(x)
    except ValueError as e:  # refusing the conflict is a fix too
        assert "shape" in str(e) and "dims" in str(e)
        return
    assert fr.shape_ is None
    np.testing.assert_array_equal(fr.permutation_, FeatureRearrangement(random_state=0).fit(x).permutation_)


def test_igtd_error_never_rises_and_places_every_feature():
    x = mixed_data(100, 10, 4)
    ig = IGTDRearrangement(max_step=120).fit(x)
    assert sorted(ig.permutation_.tolist()) == list(range(10))
    assert all(b <= a + 1e-9 for a, b in zip(ig.errors_, ig.errors_[1:]))


def naive_igtd(x, shape, max_step, val_step, threshold):
    """IGTD (Zhu et al. 2021) step by step with every candidate swap's error recomputed from scratch: feature
    distance 1 - Pearson (numpy's corrcoef), position distance |i - j| or Euclidean on the grid, both as average
    ranks over the pairs; at each step the position swapped longest ago, its best partner, a swap only if it lowers
    the error; stop after ``val_step`` steps that lowered it by less than ``threshold`` (relative)."""
    from scipy.stats import rankdata

    n = x.shape[1]
    iu = np.triu_indices(n, 1)
    if shape is None:
        pos = np.arange(n, dtype=float)[:, None]
    else:
        pos = np.stack(np.divmod(np.arange(n), shape[1]), 1).astype(float)

    def ranks(d):
        r = np.zeros((n, n))
        r[iu] = rankdata(d[iu])
        return r + r.T

    rk = ranks(1 - np.corrcoef(x, rowvar=False))
    qk = ranks(np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1)))

    def error(perm):
        return np.abs(rk[np.ix_(perm, perm)] - qk)[iu].sum()

    perm, last = np.arange(n), np.zeros(n, dtype=int)
    errors = [error(perm)]
    for step in range(1, max_step + 1):
        a = int(np.argmin(last))
        delta = np.zeros(n)
        for b in range(n):
            if b != a:
                swapped = perm.copy()
                swapped[[a, b]] = swapped[[b, a]]
                delta[b] = error(swapped) - errors[-1]
        b = int(np.argmin(delta))
        last[a] = step
        if delta[b] < 0:
            perm[[a, b]] = perm[[b, a]]
            last[b] = step
        errors.append(error(perm))
        if step >= val_step and errors[-1 - val_step] - errors[-1] < threshold * max(abs(errors[-1]), 1e-300):
            break
    return perm, errors


@pytest.mark.parametrize("shape,val_step", [(None, 50), ((2, 5), 50), (None, 4), ((3, 4), 6)])
def test_igtd_equals_the_naive_swap_search(shape, val_step):
    """The incremental swap gains against full recomputation: same swaps, same errors, same stopping step."""
    n = 10 if shape in (None, (2, 5)) else 12
    x = mixed_data(80, n, 30 + n)
    ig = IGTDRearrangement(dims=1 if shape is None else 2, shape=shape, max_step=40, val_step=val_step).fit(x)
    perm, errors = naive_igtd(x, shape, 40, val_step, 1e-4)
    np.testing.assert_array_equal(ig.permutation_, perm)
    np.testing.assert_allclose(ig.errors_, errors, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kwargs", [{"max_step": -5}, {"val_step": 0}])
def test_igtd_refuses_bad_step_counts(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        IGTDRearrangement(**kwargs).fit(mixed_data(40, 6, 0))


# ============================================================================================== WIS and 1-WIS
def ref_wis(graph: nx.Graph, n_remove: int, depth: int) -> list[tuple]:
    """P4's criterion evaluated with the public walk index: per vertex t, ``WI_{L-1,t}({t})`` =
    ``walk_index(G, {t}, L, target=t)``; remove the edge whose ascending vector is lexicographically largest; ties:
    the edge first in sorted-label order."""
    g = nx.Graph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((u, v) for u, v in graph.edges if u != v)
    order = {v: i for i, v in enumerate(sorted(g.nodes))}
    out = []
    for _ in range(n_remove):
        cands = sorted((tuple(sorted(e, key=order.get)) for e in g.edges), key=lambda e: (order[e[0]], order[e[1]]))
        best = None
        for u, v in cands:
            h = g.copy()
            h.remove_edge(u, v)
            vec = sorted(walk_index(h, {t}, depth, target=t) for t in h.nodes)
            if best is None or vec > best[0]:
                best = (vec, (u, v))
        g.remove_edge(*best[1])
        out.append(best[1])
    return out


def awkward_graph(seed: int) -> nx.Graph:
    """Two random components, a triangle with a tail, isolated vertices and a self-loop; string labels."""
    rng = np.random.default_rng(seed)
    g = nx.disjoint_union(nx.gnp_random_graph(5, 0.6, seed=seed), nx.gnp_random_graph(4, 0.7, seed=seed + 7))
    g.add_edges_from([(9, 10), (10, 11), (11, 9), (11, 12)])
    g.add_nodes_from([13, 14])
    g.add_edge(int(rng.integers(0, 9)), int(rng.integers(0, 9)))  # maybe a self-loop, maybe a new edge
    g.add_edge(13, 13)
    return nx.relabel_nodes(g, {v: f"v{v:02d}" for v in g.nodes})


@pytest.mark.parametrize("depth", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_wis_equals_the_walk_index_reference_on_awkward_graphs(seed, depth):
    g = awkward_graph(seed)
    n_edges = sum(1 for u, v in g.edges if u != v)
    k = min(n_edges, 7)
    got = walk_index_sparsification(g, k, depth)
    assert got == ref_wis(g, k, depth)
    if depth == 2:
        assert one_wis(g, k) == got


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_wis_budget_edges(depth):
    g = awkward_graph(2)
    edges = {frozenset(e) for e in g.edges if e[0] != e[1]}
    assert walk_index_sparsification(g, 0, depth) == [] and one_wis(g, 0) == []
    every = walk_index_sparsification(g, len(edges), depth)
    assert len(every) == len(edges) and {frozenset(e) for e in every} == edges
    order = {v: i for i, v in enumerate(sorted(g.nodes))}
    assert all(order[u] < order[v] for u, v in every)  # (u, v) with u before v in vertex order
    with pytest.raises(ValueError, match=f"between 0 and the number of edges \\({len(edges)}"):
        walk_index_sparsification(g, len(edges) + 1, depth)


def test_wis_directed_input_is_refused_with_the_fix():
    d = nx.DiGraph([(0, 1), (1, 0), (1, 2), (2, 3), (3, 1)])
    for fn in (lambda g: walk_index_sparsification(g, 2, 3), lambda g: one_wis(g, 2)):
        with pytest.raises(TypeError, match="to_undirected"):
            fn(d)
    und = d.to_undirected()
    assert walk_index_sparsification(und, 2, 3) == ref_wis(und, 2, 3)


def naive_degree_rule(graph, n_remove: int, by_sum: bool = False) -> list[tuple]:
    """1-WIS as P4 states it, O(k |E|): remove the edge with the largest min(deg u, deg v) (with ``by_sum``: the
    largest deg u + deg v), ties by the larger max degree, then the edge first in sorted-label order."""
    g = nx.Graph(graph)
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    order = {v: i for i, v in enumerate(sorted(g.nodes))}
    out = []
    for _ in range(n_remove):
        best = None
        for e in g.edges:
            u, v = sorted(e, key=order.get)
            lo, hi = sorted((g.degree(u), g.degree(v)))
            key = (lo + hi if by_sum else lo, hi, -order[u], -order[v])
            if best is None or key > best[0]:
                best = (key, (u, v))
        g.remove_edge(*best[1])
        out.append(best[1])
    return out


@pytest.mark.parametrize("seed", range(2))
def test_one_wis_on_hubs_equals_the_naive_degree_rule(seed, monkeypatch):
    """Two stars (121 and 81 vertices) with random chords, a path and a triangle: the hubs make the lazy heap
    switch to its grouped phase (checked), whose removals must equal the naive rule's, for 1-WIS and for the
    degree heuristic."""
    import importlib

    from tnml.preprocessing import degree_sparsification

    mod = importlib.import_module("tnml.preprocessing.one_wis")
    rng = np.random.default_rng(seed)
    g = nx.star_graph(120)
    g.add_edges_from((int(a), int(b)) for a, b in rng.integers(1, 121, size=(60, 2)) if a != b)
    g.add_edges_from([(200, 201), (201, 202), (202, 203), (300, 301), (301, 302), (302, 300)])
    g = nx.disjoint_union(g, nx.star_graph(80))
    entered = []
    grouped = mod._grouped
    monkeypatch.setattr(mod, "_grouped", lambda *a, **kw: entered.append(1) or grouped(*a, **kw))
    k = g.number_of_edges() - 3
    assert one_wis(g, k) == naive_degree_rule(g, k)
    assert degree_sparsification(g, k) == naive_degree_rule(g, k, by_sum=True)
    assert len(entered) == 2


# ============================================================================================== the CLI
def _csv(path, n_features=6, m=60, seed=0):
    x = mixed_data(m, n_features, seed)
    y = (x[:, 0] > 0).astype(int)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"f{j}" for j in range(n_features)] + ["target"])
        w.writerows([*map("{:.6f}".format, row), str(t)] for row, t in zip(x, y))
    return path


def _one_line_error(capsys, code) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("tnml: error: ") and err.count("\n") == 1, err
    return err


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's refusals
        return int(e.code)


@pytest.mark.parametrize(
    "extra,names",
    [
        (["--cap", "0"], "--cap"),
        (["--cap", "-3"], "--cap"),
        (["--margin", "nan"], "--margin"),
        (["--margin", "inf"], "--margin"),
        (["--bond", "2.5"], "--bond"),
        (["--bond", "0"], "--bond"),
        (["--method", "best"], "--method"),
        (["--seed", "-1"], "--seed"),
        (["--budget", "1e3"], "--budget"),
        (["--shape", "0", "6"], "--shape"),
        (["--dims", "1", "--shape", "2", "3"], "--shape"),
        (["--dims", "2"], "--dims 2"),
    ],
)
def test_cli_bad_values_one_line_naming_the_option(tmp_path, capsys, extra, names):
    data = _csv(tmp_path / "d.csv")
    out = tmp_path / "spec.json"
    err = _one_line_error(capsys, _run(["design", str(data), "--label", "target", "--out", str(out), *extra]))
    assert names in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_cli_unwritable_out_leaves_nothing(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv")
    err = _one_line_error(capsys, _run(["design", str(data), "--label", "target", "--out", str(data / "spec.json")]))
    assert "--out" in err
    # a refused design never creates the --out folder
    err = _one_line_error(
        capsys,
        _run(["design", str(data), "--label", "target", "--budget", "3", "--out", str(tmp_path / "new" / "spec.json")]),
    )
    assert "--budget 3" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_cli_three_features_round_trip(tmp_path, capsys):
    """The smallest tree with an inner edge: the spec rebuilds a network that runs."""
    data = _csv(tmp_path / "d.csv", n_features=3)
    out = tmp_path / "spec.json"
    assert _run(["design", str(data), "--label", "target", "--out", str(out)]) == 0
    model = TTN.from_spec(out)
    assert model.n_sites == 3 and model(torch.rand(4, 3)).shape == (4, 2)
    assert "wrote" in capsys.readouterr().out


def test_cli_two_features(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv", n_features=2)
    out = tmp_path / "spec.json"
    assert _run(["design", str(data), "--label", "target", "--out", str(out)]) == 0
    assert TTN.from_spec(out).n_sites == 2


def test_cli_drop_constant_keeps_the_names_of_the_leaves(tmp_path, capsys):
    """A constant column between the features is dropped; leaf k is still the CSV column features[k]: the
    planted pairs (f_j, f_{j+4}) are siblings by name."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(150, 4))
    x = np.concatenate([base, base + 0.1 * rng.normal(size=base.shape)], axis=1)
    names = [f"f{j}" for j in range(8)]
    cols = names[:3] + ["flat"] + names[3:] + ["target"]
    data = tmp_path / "d.csv"
    with open(data, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for row, t in zip(x, (base[:, 0] > 0).astype(int)):
            vals = [f"{v:.6f}" for v in row]
            w.writerow(vals[:3] + ["2.5"] + vals[3:] + [str(t)])
    out = tmp_path / "spec.json"
    err = _one_line_error(capsys, _run(["design", str(data), "--label", "target", "--out", str(out)]))
    assert "flat" in err and not out.exists()
    assert _run(["design", str(data), "--label", "target", "--out", str(out), "--drop-constant"]) == 0
    spec = json.loads(out.read_text())
    assert spec["features"] == names
    model = TTN.from_spec(out)
    pairs = {frozenset(spec["features"][k] for k in b) for b in tree_nodes(model.tree) if len(b) == 2}
    assert pairs == {frozenset((f"f{j}", f"f{j + 4}")) for j in range(4)}


def test_cli_help_lists_the_options(capsys):
    assert _run(["design", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--label", "--out", "--bond", "--budget", "--cap", "--margin", "--dims", "--shape", "--method"):
        assert option in text
