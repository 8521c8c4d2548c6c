"""Reliability round three, Python API: the hostile-input categories as one table.

Every row is a helper call that used to be silently wrong, allocate without bound from one scalar, hang, or fail
with an obscure error. Each row now either raises a clear error (the right type, naming the parameter) within
a couple of seconds, or returns a value that is checked against an independent reference. The row id starts with
the finding class (``silent``, ``alloc``, ``late``, ``obscure``), so ``pytest -rA`` counts per class.

Deep trees (caterpillars with hundreds of leaves: iterative traversals) and the memory limit's rlimit are below
the table.
"""

from __future__ import annotations

import math
import signal
import sys
import time

import networkx as nx
import numpy as np
import pytest
import torch

import tnml.settings
from tnml.datasets.embedded import digits, digits_upsampled
from tnml.datasets.synthetic import planted_pairs
from tnml.dynamics.cp_rank import cp_als
from tnml.dynamics.tasks import completion_loss, random_cp_tensor, random_sensing_task
from tnml.entanglement.gnn_bounds import gnn_separation_rank_bounds
from tnml.entanglement.mincut import mincut_on_graph
from tnml.entanglement.partitions import canonical_partitions, contiguous_partitions, interleaved_partitions
from tnml.entanglement.separation_rank import separation_rank
from tnml.feature_maps import TrigMap, available_feature_maps, get_feature_map, register_feature_map
from tnml.init import noncentral_chi2_log_mean, reference_sample
from tnml.mode_trees import contiguous_tree, tree_height, tree_leaves, tree_nodes, validate_tree
from tnml.networks import MPS
from tnml.settings import MemoryLimitError
from tnml.spectrum import default_rtol, gram_factor, numerical_rank, renyi_entropy
from tnml.structure import TensorSpec, TNStructure
from tnml.testing import random_binary_tree_network

NAN = float("nan")


@pytest.fixture(autouse=True)
def _hang_guard():
    """A row that hangs fails after 30 s instead of blocking the suite (POSIX)."""
    if sys.platform == "win32":  # pragma: no cover
        yield
        return

    def boom(*_):
        raise TimeoutError("row took more than 30 s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class _OtherTrig(TrigMap):
    pass


def _w():
    return torch.arange(6.0).reshape(2, 3)


def _small_mps():
    return MPS(3, 2, 2, dtype=torch.float64)


# (id, call, expected exception type, text the message must contain)
REFUSALS = [
    # ---- silently wrong before (finding 5)
    ("silent-numerical_rank-nan-array", lambda: numerical_rank(np.array([1.0, NAN, 0.5]), rtol=1e-3), ValueError,
     "values"),
    ("silent-numerical_rank-nan-tensor", lambda: numerical_rank(torch.tensor([NAN, 1.0]), rtol=1e-3), ValueError,
     "values"),
    ("silent-mps-normal-init-std-0", lambda: MPS(8, 2, 3, init="normal", init_std=0), ValueError, "init_std"),
    ("silent-numerical_rank-rtol-nan", lambda: numerical_rank(np.array([1.0, 0.5]), rtol=NAN), ValueError, "rtol"),
    ("silent-numerical_rank-rtol-negative", lambda: numerical_rank(np.array([1.0, 0.0]), rtol=-1), ValueError,
     "rtol"),
    ("silent-numerical_rank-atol-negative", lambda: numerical_rank(np.array([1.0, 0.0]), atol=-1.0), ValueError,
     "atol"),
    ("silent-renyi-nan-weight", lambda: renyi_entropy([0.5, NAN, 0.25]), ValueError, "weights"),
    ("silent-renyi-nan-tensor", lambda: renyi_entropy(torch.tensor([0.5, NAN])), ValueError, "weights"),
    ("silent-renyi-alpha-negative", lambda: renyi_entropy([0.5, 0.5], alpha=-1.0), ValueError, "alpha"),
    ("silent-default_rtol-negative-size", lambda: default_rtol(-5, torch.float64), ValueError, "size"),
    ("silent-gram_factor-nonsymmetric",
     lambda: gram_factor(torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)), ValueError, "symmetric"),
    ("silent-gram_factor-indefinite", lambda: gram_factor(torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))),
     ValueError, "positive semi-definite"),
    ("silent-completion_loss-negative-index",
     lambda: completion_loss(_w(), torch.tensor([[-1, 0]]), torch.tensor([1.0])), ValueError, "indices"),
    ("obscure-completion_loss-index-too-large",
     lambda: completion_loss(_w(), torch.tensor([[0, 3]]), torch.tensor([1.0])), ValueError, "indices"),
    ("silent-completion_loss-length-mismatch",
     lambda: completion_loss(_w(), torch.tensor([[0, 0], [1, 1]]), torch.tensor([1.0])), ValueError, "values"),
    ("silent-completion_loss-no-observations",
     lambda: completion_loss(_w(), torch.zeros(0, 2, dtype=torch.long), torch.zeros(0)), ValueError, "indices"),
    ("obscure-completion_loss-float-indices",
     lambda: completion_loss(_w(), torch.tensor([[0.0, 1.0]]), torch.tensor([1.0])), TypeError, "indices"),
    ("silent-random_cp_tensor-rank-0", lambda: random_cp_tensor((3, 3), 0), ValueError, "rank"),
    ("silent-cp_als-zero-sweeps", lambda: cp_als(np.ones((2, 2)), 1, n_sweeps=0), ValueError, "n_sweeps"),
    ("silent-cp_als-negative-sweeps", lambda: cp_als(np.ones((2, 2)), 1, n_sweeps=-1), ValueError, "n_sweeps"),
    ("silent-cp_als-rank-0", lambda: cp_als(np.ones((2, 2)), 0), ValueError, "rank"),
    ("silent-digits-int-dtype", lambda: digits(dtype=torch.int64), ValueError, "dtype"),
    ("silent-digits_upsampled-int-dtype", lambda: digits_upsampled(8, dtype=torch.int32), ValueError, "dtype"),
    ("silent-TensorSpec-fractional-size", lambda: TensorSpec("a", ("i",), (2.9,)), TypeError, "2.9"),
    ("obscure-TNStructure-output-is-input",
     lambda: TNStructure([TensorSpec("a", ("i", "j"), (2, 2))], ["i", "j"], "i"), ValueError, "output_ind"),
    ("silent-mincut_on_graph-unknown-terminal",
     lambda: mincut_on_graph(_small_mps().graph(), ["input:nope"], ["input:p1"]), ValueError, "terminals_a"),
    ("silent-get_feature_map-instance-with-kwargs", lambda: get_feature_map(TrigMap(0.5), theta=0.3), ValueError,
     "theta"),
    ("silent-register_feature_map-replaces-trig", lambda: register_feature_map("trig")(_OtherTrig), ValueError,
     "'trig'"),
    ("obscure-register_feature_map-int-name", lambda: register_feature_map(3), TypeError, "name"),
    # ---- huge allocations from one scalar (finding 6): refused in O(1), naming the size and the limit
    ("alloc-onehot-k-1e8-model", lambda: MPS(4, 10**8, 2, feature_map=("onehot", {"k": 10**8})), MemoryLimitError,
     "max_"),
    ("alloc-polynomial-degree-1e6-model", lambda: MPS(4, 10**6 + 1, 2, feature_map=("polynomial", {"degree": 10**6})),
     MemoryLimitError, "max_"),
    ("alloc-contiguous_tree-1e9", lambda: contiguous_tree(10**9), MemoryLimitError, "max_dense_bytes"),
    ("alloc-canonical_partitions-1e9", lambda: canonical_partitions(10**9), MemoryLimitError, "max_dense_bytes"),
    ("alloc-interleaved_partitions-1e9", lambda: interleaved_partitions(10**9), MemoryLimitError, "max_dense_bytes"),
    ("alloc-contiguous_partitions-1e8", lambda: contiguous_partitions(10**8), MemoryLimitError, "max_dense_bytes"),
    ("alloc-random_sensing_task-1e7",
     lambda: random_sensing_task(torch.zeros(30, 30, dtype=torch.float64), 10**7), MemoryLimitError,
     "max_dense_bytes"),
    ("alloc-reference_sample-1e10", lambda: reference_sample(_small_mps(), n=10**10), MemoryLimitError,
     "max_dense_bytes"),
    ("alloc-random_binary_tree_network-phys-1e9", lambda: random_binary_tree_network(0, phys_dim=10**9),
     MemoryLimitError, "max_dense_bytes"),
    ("alloc-random_cp_tensor-huge-shape", lambda: random_cp_tensor((10**4,) * 3, 2), MemoryLimitError,
     "max_dense_bytes"),
    ("alloc-digits_upsampled-1e5", lambda: digits_upsampled(size=10**5), MemoryLimitError, "max_dense_bytes"),
    ("alloc-planted_pairs-1e9", lambda: planted_pairs(n_samples=10**9), MemoryLimitError, "max_dense_bytes"),
    ("alloc-planted_pairs-features-1e9", lambda: planted_pairs(n_samples=10, n_features=2 * 10**9),
     MemoryLimitError, "max_dense_bytes"),
]


@pytest.mark.parametrize("call, exc, text", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_hostile_api_input_is_refused_clearly_and_quickly(call, exc, text):
    t0 = time.perf_counter()
    with pytest.raises(exc) as info:
        call()
    assert time.perf_counter() - t0 < 3.0
    msg = str(info.value)
    assert text in msg, msg
    assert "\n" not in msg.strip() and len(msg) < 600


def _exp_sum(x):  # e^{i(x0 + x1)} = e^{i x0} e^{i x1}: a product, separation rank 1
    return torch.exp(1j * (x[:, 0] + x[:, 1]))


def _check_gnn_k30_depth4():
    bs = gnn_separation_rank_bounds(nx.complete_graph(30), range(15), depth=4, hidden_dim=100, in_dim=100)
    by = {b.name: b for b in bs}
    wi = by["walk_index"]
    assert wi.value is None and wi.log_value > 1000  # beyond float: only the log form
    assert math.isfinite(by["degree"].log_value) and by["degree"].log_value > 0
    return True


def _check_gnn_k30_depth5():
    bs = gnn_separation_rank_bounds(nx.complete_graph(30), range(15), depth=5, hidden_dim=100, in_dim=100)
    return all(math.isfinite(b.log_value) for b in bs)


def _check_gnn_small_exact():
    # small counts stay exact ints, and their log form agrees
    bs = gnn_separation_rank_bounds([(0, 1)], [0], depth=3, hidden_dim=2, in_dim=2)
    return [(b.name, b.value) for b in bs] == [("walk_index", 2**33), ("degree", 9), ("multiset_lower", 9)] and all(
        abs(b.log_value - math.log(b.value)) < 1e-9 for b in bs
    )


def _check_chi2_asymptote():
    lam = torch.tensor([1e12, 1e9, 5e3])
    got = noncentral_chi2_log_mean(3, lam)
    # E ln X = ln(λ + k) - (2λ + 2k)/(λ + k)^2 / 2 + ... (delta method): agrees with ln λ to O(1/λ)
    ref = torch.log(lam.double()) + (3 - 2) / lam.double()
    return bool(torch.allclose(got, ref, rtol=0, atol=1e-6))


def _check_chi2_matches_series_at_switch():
    # just below the switch the Poisson series runs; the expansion agrees with it there
    from tnml.init import CHI2_ASYMPTOTE_LAMBDA

    lam = torch.tensor([CHI2_ASYMPTOTE_LAMBDA * 0.999], dtype=torch.float64)
    return all(
        abs(float(noncentral_chi2_log_mean(k, lam)[0]) - (math.log(float(lam)) + (k - 2) / float(lam))) < 1e-6
        for k in (1, 2, 3)
    )


def _check_separation_rank_complex_product():
    return separation_rank(_exp_sum, [0], n_sites=2).rank == 1 and separation_rank(
        lambda x: torch.exp(1j * x[:, 0]) + torch.exp(2j * x[:, 1]), [0], n_sites=2
    ).rank == 2


def _check_available_feature_maps_after_bad_register():
    with pytest.raises(TypeError):
        register_feature_map(3)
    return "trig" in available_feature_maps() and type(get_feature_map("trig")) is TrigMap


def _check_get_feature_map_instance_without_kwargs():
    fm = TrigMap(0.3)
    return get_feature_map(fm) is fm


def _check_numerical_rank_plain():
    return numerical_rank(np.array([1.0, 1e-3, 0.0]), rtol=1e-2) == 1 and numerical_rank(np.zeros(3), rtol=0.1) == 0


def _check_renyi_inf_weights_clear():
    with pytest.raises(ValueError, match="weights"):
        renyi_entropy(torch.tensor([1.0, math.inf]))
    return abs(float(renyi_entropy([1.0, 1.0])) - math.log(2)) < 1e-12


def _check_gram_factor_psd_with_roundoff():
    a = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = a @ a.T  # rank 3, eigenvalues 0 up to round-off (slightly negative)
    f = gram_factor(g)
    return bool(torch.allclose(f.T @ f, g, atol=1e-10))


COMPUTES = [
    ("late-gnn_bounds-K30-depth4-log-form", _check_gnn_k30_depth4),
    ("late-gnn_bounds-K30-depth5-fast", _check_gnn_k30_depth5),
    ("late-gnn_bounds-small-stays-exact", _check_gnn_small_exact),
    ("alloc-noncentral_chi2-huge-lambda-asymptote", _check_chi2_asymptote),
    ("alloc-noncentral_chi2-continuous-at-switch", _check_chi2_matches_series_at_switch),
    ("silent-separation_rank-complex-product", _check_separation_rank_complex_product),
    ("obscure-available_feature_maps-after-int-name", _check_available_feature_maps_after_bad_register),
    ("silent-get_feature_map-instance-passes", _check_get_feature_map_instance_without_kwargs),
    ("silent-numerical_rank-valid-still-counts", _check_numerical_rank_plain),
    ("silent-renyi-valid-and-inf-refused", _check_renyi_inf_weights_clear),
    ("silent-gram_factor-roundoff-psd-accepted", _check_gram_factor_psd_with_roundoff),
]


@pytest.mark.parametrize("check", [c[1] for c in COMPUTES], ids=[c[0] for c in COMPUTES])
def test_hostile_api_input_is_computed_correctly_and_quickly(check):
    t0 = time.perf_counter()
    assert check()
    assert time.perf_counter() - t0 < 5.0


# ------------------------------------------------------------------------------------ deep trees (finding 8)
def _caterpillar(n: int):
    """((((0, 1), 2), 3), ...): height n - 1."""
    t = 0
    for k in range(1, n):
        t = (t, k)
    return t


@pytest.mark.parametrize("n", [450, 3000])
def test_caterpillar_trees_are_walked_without_recursion(n):
    t = _caterpillar(n)
    v = validate_tree(t)  # (comparing two such tuples with == would recurse inside Python itself)
    assert tree_nodes(v) == tree_nodes(t)
    as_lists = 0
    for k in range(1, n):
        as_lists = [as_lists, np.int64(k)]
    assert tree_nodes(validate_tree(as_lists)) == tree_nodes(t)
    assert tree_leaves(t) == list(range(n))
    assert tree_height(t) == n - 1
    nodes = tree_nodes(t)
    assert len(nodes) == 2 * n - 1 and nodes[-1] == tuple(range(n)) and nodes[0] == (0,)


def test_deep_tree_validation_errors_still_name_the_problem():
    t = (_caterpillar(500), 3)  # site 3 twice, 499 missing... leaves 0..499 plus 3
    with pytest.raises(ValueError, match="repeated"):
        validate_tree(t)


def test_tree_nodes_matches_a_recursive_reference_on_a_small_tree():
    t = ((0, (1, 2)), (3, 4, (5, 6)))

    def ref(t, out):
        if isinstance(t, int):
            out.append((t,))
            return [t]
        leaves = []
        for c in t:
            leaves += ref(c, out)
        out.append(tuple(leaves))
        return leaves

    expect: list = []
    ref(t, expect)
    assert tree_nodes(t) == expect
    assert tree_height(t) == 3


@pytest.mark.parametrize("n", [450])
def test_deep_caterpillar_ttn_and_htf_build(n):
    from tnml.networks import TTN
    from tnml.networks.factorizations import HierarchicalTensorFactorization

    t = _caterpillar(n)
    m = TTN(tree=t, bond_dim=2, phys_dim=2, dtype=torch.float64)
    assert m.n_sites == n
    h = HierarchicalTensorFactorization((2,) * n, ranks=1, tree=t)
    assert h is not None


# ------------------------------------------------------------------------------------ memory limit and rlimit
def test_memory_limit_respects_the_process_rlimit(monkeypatch):
    resource = pytest.importorskip("resource")
    monkeypatch.setattr(resource, "getrlimit", lambda which: (3 * 2**30, resource.RLIM_INFINITY))
    assert tnml.settings._address_space_limit_bytes() == 3 * 2**30
    assert tnml.settings._default_param_bytes() <= 3 * 2**30 // 2
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert tnml.settings._address_space_limit_bytes() is None
