"""Issue 17, rows 4-17 of the adversarial table: each refusal happens before any work (O(1) from the arguments),
names the parameter, the value and the fix; results that used to be silently wrong are now correct or refused.
Rows 1-3 (concurrent runs, symlinks, overwriting) are in tests/reliability/test_output_safety.py."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest
import torch

import tnml
import tnml.settings
from tnml.dynamics import GroupRMSprop, effective_rank
from tnml.dynamics.cp_rank import cp_rank_estimate
from tnml.dynamics.rank_measures import matricization_rank
from tnml.entanglement import (
    cut_rank,
    data_entanglement,
    entanglement_entropy,
    mincut_bound,
    surrogate_entanglement,
    walk_index,
)
from tnml.networks import CP, MPS, PEPS, TTN, PeriodicMPS, ProductGNN
from tnml.networks.factorizations import (
    DeepMatrixFactorization,
    HierarchicalTensorFactorization,
    TensorFactorization,
)
from tnml.preprocessing import FeatureRearrangement, walk_index_sparsification


def _fast(fn, limit_s: float = 2.0):
    t0 = time.perf_counter()
    out = fn()
    assert time.perf_counter() - t0 < limit_s
    return out


# ------------------------------------------------------------------------------------------ rows 4 and 5
@pytest.mark.parametrize(
    "build, fix",
    [
        (lambda: MPS(4, 2, 100000), "smaller n_sites or bond_dim"),  # row 4: 80 GB of parameters
        (lambda: MPS(10**9, 2, 2), "smaller n_sites or bond_dim"),  # row 5: hang before
        (lambda: CP(10**9), "smaller n_sites or rank"),
        (lambda: PEPS(shape=(30000, 30000)), "smaller shape or bond_dim"),
        (lambda: PeriodicMPS(10**9, 2, 2), "smaller n_sites or bond_dim"),
        (lambda: TTN(n_sites=10**9, bond_dim=8), "fewer sites"),
        (lambda: TTN(n_sites=64, bond_dim=10**4), "fewer sites or a smaller bond_dim"),
        (lambda: DeepMatrixFactorization((10**6, 10**6), 3), "smaller shape"),
        (lambda: TensorFactorization((10**6,) * 4, 10**4), "smaller shape or rank"),
        (lambda: HierarchicalTensorFactorization((10,) * 4, ranks=10**4), "smaller shape or ranks"),
        (lambda: ProductGNN(nx.path_graph(3), 2, 10**6, 3), "smaller hidden_dim or depth"),
    ],
)
def test_constructors_refuse_sizes_past_the_setting_in_constant_time(build, fix):
    with pytest.raises(tnml.MemoryLimitError) as info:
        _fast(build, 1.0)
    msg = str(info.value)
    assert "tnml.settings.max_param_bytes" in msg and fix in msg and "GiB" in msg or "TiB" in msg or "PiB" in msg


def test_param_guard_follows_the_setting_and_counts_exactly_for_a_small_mps(monkeypatch):
    m = MPS(6, 2, 3, out_dim=2, dtype=torch.float64)
    n = sum(p.numel() for p in m.parameters())
    assert n <= (6 + 2) * 2 * 9  # the estimate is an upper bound of what is allocated
    monkeypatch.setattr(tnml.settings, "max_param_bytes", 8 * n - 1)
    with pytest.raises(tnml.MemoryLimitError, match="max_param_bytes"):
        MPS(6, 2, 3, out_dim=2, dtype=torch.float64)
    monkeypatch.setattr(tnml.settings, "max_param_bytes", 8 * (6 + 2) * 2 * 9)
    MPS(6, 2, 3, out_dim=2, dtype=torch.float64)
    monkeypatch.setattr(tnml.settings, "max_tensors", 5)
    with pytest.raises(tnml.MemoryLimitError, match="max_tensors"):
        MPS(6, 2, 3)


def test_walk_index_depth_refused_in_constant_time_and_exact_below():
    g = nx.path_graph(50)
    with pytest.raises(tnml.MemoryLimitError, match=r"depth=1000000000 .*max_walk_bits"):
        _fast(lambda: walk_index(g, range(25), depth=10**9))
    # below the limit the counts are still exact big integers (path 0-1, Â = [[1,1],[1,1]]: ρ_{L-1} = 2^L)
    assert walk_index([(0, 1)], [0], depth=200) == 2**200
    # a graph without edges: Â = I, nothing propagates, any depth is instant
    assert _fast(lambda: walk_index(nx.empty_graph(4), [0, 1], depth=10**9)) == 0


# ------------------------------------------------------------------------------------------ row 6
def test_surrogate_and_rearrangement_respect_max_dense_bytes(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 64))
    ref = surrogate_entanglement(X)
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 3 * 64 * 64 * 8)  # too small for 3 n^2 + 2 m n floats
    with pytest.raises(tnml.MemoryLimitError, match=r"64x64 feature correlation.*max_dense_bytes"):
        surrogate_entanglement(X)
    with pytest.raises(tnml.MemoryLimitError, match="fewer features"):
        FeatureRearrangement().fit(X)
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 8 * (3 * 64 * 64 + 2 * 20 * 64))
    np.testing.assert_array_equal(surrogate_entanglement(X), ref)  # at the limit: the same numbers


def test_surrogate_refuses_100k_features_before_allocating():
    X = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(3, 100_000), strides=(0, 0))  # no real memory
    with pytest.raises(tnml.MemoryLimitError, match="100000x100000"):
        _fast(lambda: surrogate_entanglement(X))


# ------------------------------------------------------------------------------------------ row 7
def test_effective_rank_refuses_nan_tol_and_nonfinite_entries_and_handles_complex():
    with pytest.raises(ValueError, match=r"tol=nan must be a finite number >= 0"):
        effective_rank(np.eye(3), tol=float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite entr"):
        effective_rank(np.array([[np.inf, 0.0], [0.0, 1.0]]))
    assert effective_rank(1j * np.eye(2)) == pytest.approx(2.0)  # |σ| of a complex matrix (was 0.0)
    a = np.array([[1.0, 2.0], [0.5, -1.0]])
    assert effective_rank(np.exp(0.7j) * a) == pytest.approx(effective_rank(a))
    assert effective_rank(torch.tensor(a)) == pytest.approx(effective_rank(a))
    t = np.einsum("i,j,k->ijk", [1, 1j], [1, 2], [1, -1j]) + np.einsum("i,j,k->ijk", [1, 0], [0, 1], [1, 1])
    assert matricization_rank(t, [0]) == 2 and matricization_rank(t.real, [0]) <= 2


# ------------------------------------------------------------------------------------------ row 8 and 13 (max_rank)
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_sweeps": 0}, "n_sweeps must be an integer >= 1, got 0"),
        ({"tol": -1}, "tol=-1 must be a finite number > 0"),
        ({"tol": float("nan")}, "tol=nan"),
        ({"max_rank": 0}, "max_rank must be an integer >= 1, got 0"),
        ({"n_restarts": 0}, "n_restarts must be an integer >= 1, got 0"),
    ],
)
def test_cp_rank_estimate_refuses_settings_that_gave_wrong_ranks(kwargs, match):
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 3, 2))
    t = np.einsum("ir,jr,kr->ijk", a, b, c)
    with pytest.raises(ValueError, match=match):
        cp_rank_estimate(t, **kwargs)
    assert cp_rank_estimate(t).rank == 2


# ------------------------------------------------------------------------------------------ row 9
def test_data_entanglement_refuses_nan_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8))
    y = np.sign(rng.normal(size=40))
    y[3] = np.nan
    with pytest.raises(ValueError, match=r"y holds 1 NaN or infinite label\(s\) \(first at sample 3\)"):
        data_entanglement(X, y)


# ------------------------------------------------------------------------------------------ rows 10 and 11
def _complex_tn():
    import quimb.tensor as qtn

    rng = np.random.default_rng(0)
    a = qtn.Tensor(rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3)), inds=("x0", "b"), tags="A")
    b = qtn.Tensor(rng.normal(size=(3, 2, 4)) + 1j * rng.normal(size=(3, 2, 4)), inds=("b", "x1", "y"), tags="B")
    return a & b


def test_from_quimb_keeps_complex_networks_complex_end_to_end():
    tn = _complex_tn()
    m = tnml.TNModel.from_quimb(tn, ["x0", "x1"], "y")
    assert m.core("A").dtype == torch.complex128
    x = torch.rand(5, 2, 2, dtype=torch.float64).to(torch.complex128)
    dense = tn.to_dense(["x0"], ["x1"], ["y"]).reshape(2, 2, 4)
    ref = np.einsum("abk,na,nb->nk", dense, x[:, 0].numpy(), x[:, 1].numpy())
    np.testing.assert_allclose(m(x).detach().numpy(), ref, rtol=1e-12)
    with pytest.raises(ValueError, match=r"dtype=torch.float64 is real but tensors \['A', 'B'\].*complex dtype"):
        tnml.TNModel.from_quimb(tn, ["x0", "x1"], "y", dtype=torch.float64)


def test_from_quimb_refuses_output_ind_among_input_inds():
    with pytest.raises(ValueError, match=r"output_ind='x1' is also one of input_inds"):
        tnml.TNModel.from_quimb(_complex_tn(), ["x0", "x1"], output_ind="x1")


# ------------------------------------------------------------------------------------------ row 12
def test_group_rmsprop_eps_zero_with_zero_gradient_stays_finite():
    p = torch.nn.Parameter(torch.ones(3))
    opt = GroupRMSprop([p], lr=0.1, eps=0)
    p.grad = torch.zeros(3)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3))
    p.grad = torch.tensor([1.0, 0.0, 0.0])  # then a real gradient: the usual bias-corrected step
    opt.step()
    v = 0.01 * 1.0 / (1 - 0.99**2)
    assert p[0].item() == pytest.approx(1.0 - 0.1 / v**0.5)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        GroupRMSprop([p], eps=float("inf"))


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0])
@pytest.mark.parametrize("build", [lambda s: MPS(4, 2, 2, init_std=s), lambda s: CP(4, 2, 2, init_std=s),
                                   lambda s: PEPS((2, 2), init_std=s), lambda s: TTN(4, init_std=s)])
def test_init_std_nonfinite_or_negative_refused(build, value):
    with pytest.raises(ValueError, match="init_std="):
        build(value)


# ------------------------------------------------------------------------------------------ row 13
def test_nan_core_named_before_any_decomposition():
    m = MPS(6, 2, 3)
    with torch.no_grad():
        m.core("site2").fill_(float("nan"))
    with pytest.raises(ValueError, match=r"NaN or infinite entries in tensor\(s\) \['site2'\]"):
        entanglement_entropy(m, [0, 1, 2])


def test_cut_rank_tol_string_named():
    with pytest.raises(TypeError, match=r"tol='1e-3' must be a real number"):
        cut_rank(MPS(4, 2, 2), [0, 1], tol="1e-3")


def test_wis_depth_overflow_named_and_huge_vertex_id_refused():
    with pytest.raises(ValueError, match=r"depth=1000000 overflows int64 walk counts.*smaller depth"):
        walk_index_sparsification(nx.path_graph(5), 1, depth=10**6)
    ei = torch.tensor([[0, 10**12], [10**12, 1]])
    with pytest.raises(tnml.MemoryLimitError, match="relabel the vertices"):
        _fast(lambda: walk_index(ei, [0], depth=2))


def test_surrogate_shape_mismatch_names_shape():
    X = np.random.default_rng(0).normal(size=(20, 8))
    with pytest.raises(ValueError, match=r"shape=\(3, 3\) has 9 sites but X has 8 features"):
        surrogate_entanglement(X, shape=(3, 3))


# ------------------------------------------------------------------------------------------ row 14
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only install")
@pytest.mark.parametrize(
    "build",
    [
        lambda: MPS(4, 2, 2, device="cuda"),
        lambda: CP(4, 2, 2, device="cuda"),
        lambda: PEPS((2, 2), device="cuda"),
        lambda: PeriodicMPS(4, device="cuda"),
        lambda: TTN(4, device="cuda"),
        lambda: ProductGNN(nx.path_graph(3), 2, 2, 2, device="cuda"),
        lambda: DeepMatrixFactorization((3, 3), 2, device="cuda"),
        lambda: TensorFactorization((3, 3, 3), 2, device="cuda"),
        lambda: HierarchicalTensorFactorization((3, 3, 3, 3), device="cuda"),
        lambda: tnml.TNModel.from_quimb(_complex_tn(), ["x0", "x1"], "y", device="cuda"),
    ],
)
def test_cuda_without_cuda_in_tnml_words(build):
    with pytest.raises(ValueError, match=r"device='cuda' asks for CUDA, but this torch install has no usable CUDA"):
        build()


# ------------------------------------------------------------------------------------------ row 15
def test_output_site_without_out_dim_and_output_side_without_output_leg_refused():
    with pytest.raises(ValueError, match=r"output_site=3 is given but out_dim is None.*pass out_dim"):
        MPS(4, 2, 2, output_site=3)
    with pytest.raises(ValueError, match="out_dim is None"):
        PEPS((2, 2), output_site=1)
    assert MPS(4, 2, 2, out_dim=2, output_site=3).output_site == 3
    with pytest.raises(ValueError, match=r"output_side='A' is given but the network has no output leg"):
        mincut_bound(MPS(4, 2, 2), [0, 1], output_side="A")


# ------------------------------------------------------------------------------------------ row 16
def test_numpy_integers_and_integer_tensors_accepted():
    m = MPS(np.int64(8), np.int32(2), torch.tensor(3), out_dim=np.int64(2), output_site=np.int64(1))
    assert (m.n_sites, m.bond_dim, m.output_site) == (8, 3, 1)
    assert type(m.bond_dim) is int and type(m.output_site) is int
    assert CP(np.int64(4), rank=np.int16(3)).rank == 3
    model = MPS(6, 2, 3)
    assert cut_rank(model, torch.tensor([0, 1])) == cut_rank(model, [0, 1])
    assert cut_rank(model, np.array([0, 1])) == cut_rank(model, [0, 1])
    with pytest.raises(TypeError, match="integer site ids"):
        cut_rank(model, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="n_sites must be an integer >= 1"):
        MPS(np.float64(8.0))
    with pytest.raises(ValueError, match="n_sites must be an integer >= 1"):
        MPS(True)


# ------------------------------------------------------------------------------------------ row 17
def test_network_entropy_refused_before_work_on_a_large_loopy_network():
    """8x8 PEPS, bond 8, a cut that is no single edge: the routes' cost is estimated (greedy orders, milliseconds)
    and refused with MemoryLimitError instead of a 17-23 s path search first."""
    from tnml.networks.peps import peps_structure

    model = tnml.TNModel(peps_structure((8, 8), 2, 8, None, 0))  # default init: PEPS's calibration is not the point
    t0 = time.perf_counter()
    with pytest.raises(tnml.MemoryLimitError, match="max_dense_bytes"):
        entanglement_entropy(model, [0, 9, 18, 27])
    assert time.perf_counter() - t0 < 5.0
