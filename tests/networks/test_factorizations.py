"""Deep matrix, CP and hierarchical tensor factorizations: end tensor = dense contraction, init, ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnml import TNModel
from tnml.dynamics import hierarchical_rank, matricization_rank
from tnml.mode_trees import tree_leaves
from tnml.networks import DeepMatrixFactorization, HierarchicalTensorFactorization, TensorFactorization

F64 = {"dtype": torch.float64}

MODELS = {
    "dmf-square": lambda: DeepMatrixFactorization((3, 3), depth=3, init_scale=0.3, **F64),
    "dmf-rect-unbalanced": lambda: DeepMatrixFactorization((2, 5), depth=2, balanced=False, init_scale=0.3, **F64),
    "dmf-wide-hidden": lambda: DeepMatrixFactorization((3, 4), depth=4, hidden=[5, 6, 3], init_scale=0.3, **F64),
    "cp": lambda: TensorFactorization((3, 3, 3, 3), rank=4, init_scale=0.5, **F64),
    "cp-balanced": lambda: TensorFactorization((4, 4, 4), rank=3, init_scale=0.5, balanced=True, **F64),
    "ht-binary": lambda: HierarchicalTensorFactorization((2, 2, 2, 2), ranks=[2, 3], init_scale=0.7, **F64),
    "ht-order3": lambda: HierarchicalTensorFactorization((3, 3, 3), ranks=2, init_scale=0.7, **F64),
    "ht-user-tree": lambda: HierarchicalTensorFactorization(
        (2,) * 5, tree=((0, (1, 2)), (3, 4)), ranks=[2, 3, 2], init_scale=0.7, **F64
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_end_tensor_matches_dense_contraction(name):
    torch.manual_seed(0)
    m = MODELS[name]()
    assert isinstance(m, TNModel)
    dense = m.to_dense()
    if isinstance(m, DeepMatrixFactorization):
        dense = dense.T  # inputs = columns first, output = rows
        ref = m.factors()[0]
        for w in m.factors()[1:]:
            ref = w @ ref
        torch.testing.assert_close(m.tensor(), ref)
    assert tuple(m.tensor().shape) == tuple(m.shape)
    torch.testing.assert_close(m.tensor(), dense)


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_reach_every_core(name):
    torch.manual_seed(1)
    m = MODELS[name]()
    m.tensor().pow(2).sum().backward()
    for key, p in m.cores.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, key


def test_dmf_balanced_init_is_balanced():
    torch.manual_seed(0)
    m = DeepMatrixFactorization((3, 4), depth=4, hidden=[3, 5, 3], init_scale=0.2, **F64)
    ws = m.factors()
    for lo, hi in zip(ws[:-1], ws[1:]):
        torch.testing.assert_close(hi.T @ hi, lo @ lo.T)


def test_dmf_unbalanced_init_std():
    torch.manual_seed(0)
    m = DeepMatrixFactorization((40, 40), depth=2, balanced=False, init_scale=8e-3, **F64)
    assert float(m.factors()[0].detach().std()) == pytest.approx(8e-3, rel=0.05)


def test_cp_component_norms_and_balance():
    torch.manual_seed(0)
    m = TensorFactorization((3, 3, 3), rank=5, init_scale=0.4, balanced=True, **F64)
    fs = m.factors()
    for r in range(5):
        comp = torch.einsum("i,j,k->ijk", *(f[:, r] for f in fs))
        assert float(m.component_norms()[r]) == pytest.approx(float(comp.detach().norm()))
        norms = torch.stack([f[:, r].norm() for f in fs])
        torch.testing.assert_close(norms, norms[0].expand(3))


def test_ht_random_has_ht_rank_of_its_widths():
    """Generic HT rank: a leaf min(d, width(parent)); a node min(width(node), width(parent))."""
    torch.manual_seed(0)
    m = HierarchicalTensorFactorization((4, 4, 4, 4), ranks=[3, 2], init_scale=1.0, **F64)
    assert hierarchical_rank(m.tensor()) == {(0,): 3, (1,): 3, (0, 1): 2, (2,): 3, (3,): 3, (2, 3): 2}
    m3 = HierarchicalTensorFactorization((16, 16, 16), ranks=(5, 5), init_scale=1.0, **F64)  # P3's default HT
    assert set(hierarchical_rank(m3.tensor(), ((0, 1), 2)).values()) == {5}


def test_ht_rank_bounded_by_nonzero_local_components():
    torch.manual_seed(0)
    m = HierarchicalTensorFactorization((4, 4, 4, 4), ranks=[4, 4], init_scale=1.0, **F64)
    with torch.no_grad():
        m.core("node_0_1")[2:] = 0  # local components (node (0,1), r) for r >= 2 vanish
    norms = m.local_component_norms()
    assert int((norms[(0, 1)] > 0).sum()) == 2
    assert matricization_rank(m.tensor(), [0, 1]) == 2
    assert set(norms) == {(0, 1), (2, 3), (0, 1, 2, 3)}


def test_ht_local_component_norm_is_product_of_vector_norms():
    torch.manual_seed(0)
    m = HierarchicalTensorFactorization((2, 2, 2, 2), ranks=[3, 2], init_scale=1.0, **F64)
    norms = m.local_component_norms()
    c = m.core_dict()
    expect = c["node_0_1"][1].norm() * c["leaf0"][:, 1].norm() * c["leaf1"][:, 1].norm()
    assert float(norms[(0, 1)][1]) == pytest.approx(expect.item())
    expect_root = c["root"][0].abs() * c["node_0_1"][:, 0].norm() * c["node_2_3"][:, 0].norm()
    assert float(norms[(0, 1, 2, 3)][0]) == pytest.approx(expect_root.item())



def ht_einsum_reference(m: HierarchicalTensorFactorization) -> torch.Tensor:
    """The end tensor as one einsum over the cores, walking ``m.tree`` (one letter per mode and per node)."""
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    modes = {n: next(letters) for n in range(len(m.shape))}
    operands, terms = [], []

    def visit(node, parent_letter: str | None) -> None:
        if isinstance(node, int):
            operands.append(m.core(f"leaf{node}"))
            terms.append(modes[node] + parent_letter)
            return
        here = next(letters)
        block = tuple(tree_leaves(node))
        name = "root" if parent_letter is None else "node_" + "_".join(map(str, block))
        operands.append(m.core(name))
        terms.append(here + (parent_letter or ""))
        for c in node:
            visit(c, here)

    visit(m.tree, None)
    out = "".join(modes[n] for n in range(len(m.shape)))
    return torch.einsum(",".join(terms) + "->" + out, *operands)


# (shape, tree, ranks); which path of the node contraction each hits: root (always), "g" (parent width below the
# rows of the other children: child folded into the node matrix), "full" (outer product, then the node matrix),
# "3+" (3+ children: the largest child folded), "1" (one child)
HT_TREES = {
    "order3-binary-full": ((3, 3, 3), ((0, 1), 2), [2, 3]),
    "order3-binary-g": ((3, 3, 3), ((0, 1), 2), [4, 2]),
    "order3-flat": ((3, 3, 3), (0, 1, 2), [3]),
    "order3-one-child": ((3, 3, 3), ((0,), (1, 2)), [2, 3]),
    "order4-binary": ((2, 2, 2, 2), ((0, 1), (2, 3)), [3, 2]),
    "order4-flat-root-3+": ((3, 3, 3, 3), ((0, 1), 2, 3), [2, 3]),
    "order5-user-tree": ((2,) * 5, ((0, (1, 2)), (3, 4)), [2, 3, 2]),
    "order5-deep-g": ((2,) * 5, (((0, 1), 2), (3, 4)), [3, 3, 2]),
    "order5-flat-node": ((2,) * 5, ((0, 1, 2), (3, 4)), [3, 2]),
}


@pytest.mark.parametrize("name", list(HT_TREES))
def test_ht_tensor_and_gradients_match_einsum_reference(name):
    shape, tree, ranks = HT_TREES[name]
    torch.manual_seed(0)
    m = HierarchicalTensorFactorization(shape, tree, ranks, init_scale=0.8, **F64)
    t, ref = m.tensor(), ht_einsum_reference(m)
    assert t.shape == ref.shape == torch.Size(shape)
    torch.testing.assert_close(t, ref, rtol=1e-13, atol=1e-15)
    probe = torch.randn(shape, dtype=torch.float64)
    params = list(m.parameters())
    grads = torch.autograd.grad((t * probe).sum(), params)
    ref_grads = torch.autograd.grad((ref * probe).sum(), params)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DeepMatrixFactorization((2, 2, 2), depth=2), "shape must be"),
        (lambda: DeepMatrixFactorization((2, 2), depth=0), "depth"),
        (lambda: DeepMatrixFactorization((2, 2), depth=3, hidden=[2]), "depth - 1"),
        (lambda: DeepMatrixFactorization((3, 3), depth=2, hidden=[2]), "balanced=False"),
        (lambda: TensorFactorization((3, 4), rank=2), "equal mode sizes"),
        (lambda: TensorFactorization((3, 3), rank=2, init_scale=-1.0), "init_scale"),
        (lambda: HierarchicalTensorFactorization((2,) * 4, ranks=[2, 2, 2]), "levels"),
        (lambda: HierarchicalTensorFactorization((2,) * 4, tree=((0, 1), (2, 2))), "leaves"),
    ],
)
def test_errors_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_state_dict_round_trip():
    torch.manual_seed(0)
    a = HierarchicalTensorFactorization((2,) * 4, ranks=2, **F64)
    b = HierarchicalTensorFactorization((2,) * 4, ranks=2, **F64)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.tensor(), b.tensor())


# ---------------------------------------------------------------------------------------------- every tree shape
def _random_tree(sites: list[int], rng) -> object:
    """A random mode tree over ``sites``: arities 1..4 and single-child wrappers (of leaves and of internal
    nodes) anywhere, the shapes :func:`validate_tree` accepts."""
    if len(sites) == 1:
        node = sites[0]
    else:
        k = int(rng.integers(2, min(4, len(sites)) + 1))
        cuts = sorted(rng.choice(np.arange(1, len(sites)), size=k - 1, replace=False).tolist())
        parts = np.split(np.asarray(sites), cuts)
        node = tuple(_random_tree(p.tolist(), rng) for p in parts)
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.4 else 0):
        node = (node,)
    return node


def _walk_reference(m: HierarchicalTensorFactorization) -> torch.Tensor:
    """End tensor by one einsum walking ``m.tree``; node tensors found by the documented names
    (``node_<block>``, ``_up<k>`` for a node ``k`` single-child levels above the innermost of its block)."""
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    modes = {n: next(letters) for n in range(len(m.shape))}
    operands, terms = [], []

    def up(node) -> int:
        k = 0
        while not isinstance(node, int) and len(node) == 1 and not isinstance(node[0], int):
            node, k = node[0], k + 1
        return k

    def visit(node, parent_letter):
        if isinstance(node, int):
            operands.append(m.core(f"leaf{node}"))
            terms.append(modes[node] + parent_letter)
            return
        here = next(letters)
        block = "_".join(map(str, tree_leaves(node)))
        name = "root" if parent_letter is None else f"node_{block}" + (f"_up{up(node)}" if up(node) else "")
        operands.append(m.core(name))
        terms.append(here + (parent_letter or ""))
        for c in node:
            visit(c, here)

    visit(m.tree, None)
    return torch.einsum(",".join(terms) + "->" + "".join(modes[n] for n in range(len(m.shape))), *operands)


@pytest.mark.parametrize("seed", range(40))
def test_ht_every_tree_shape(seed):
    """Regression: a node whose only child is internal raised "repeated index"; every accepted tree now builds,
    and its end tensor (and gradients) match the einsum walk and the generic network contraction."""
    from tnml.mode_trees import tree_height, validate_tree
    from tnml.networks.factorizations import ht_node_key

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    tree = validate_tree(_random_tree(list(rng.permutation(n)), rng), n)
    if isinstance(tree, int):
        tree = (tree,)
    torch.manual_seed(seed)
    m = HierarchicalTensorFactorization((2,) * n, tree, ranks=2, init_scale=0.9, **F64)
    t, ref = m.tensor(), _walk_reference(m)
    torch.testing.assert_close(t, ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(m.to_dense(), t, rtol=1e-12, atol=1e-14)
    params = list(m.parameters())
    probe = torch.randn(t.shape, dtype=torch.float64)
    for g, r in zip(torch.autograd.grad((t * probe).sum(), params), torch.autograd.grad((ref * probe).sum(), params)):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-14)
    internal = []

    def collect(node):
        if not isinstance(node, int):
            internal.append(ht_node_key(node))
            for c in node:
                collect(c)

    collect(tree)
    assert sorted(m.local_component_norms()) == sorted(internal) and len(set(internal)) == len(internal)
    assert len(m.ranks) == tree_height(tree)


def test_ht_authors_single_child_tree():
    """The reported reproduction: ``(0, ((1, 2),))``."""
    m = HierarchicalTensorFactorization((2, 2, 2), tree=(0, ((1, 2),)), ranks=2, **F64)
    assert set(m.local_component_norms()) == {(1, 2), (1, 2, -1), (0, 1, 2)}
    torch.testing.assert_close(m.tensor(), _walk_reference(m))
