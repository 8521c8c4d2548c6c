"""Sliced contraction (tnml.plans.sliced) with serial, thread and process executors, against plain contraction."""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import quimb.tensor as qtn
import torch

import tnml.settings
from tests.registry import ARCHITECTURES, sample_input
from tnml.plans.sliced import SlicedContraction, contract_sliced


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(2) as ex:
        yield ex


def _executors(pool):
    return {"serial": None, "threads": ThreadPoolExecutor(2), "processes": pool}


def _norm_network():
    """<psi|psi> of a random 3x3 PEPS, bond 3: a closed network with loops."""
    psi = qtn.PEPS.rand(3, 3, bond_dim=3, seed=0, dtype="float64")
    return psi.H & psi


@pytest.mark.parametrize("kind", ["serial", "threads", "processes"])
def test_closed_peps_norm_matches_plain_contraction(pool, kind):
    tn = _norm_network()
    ref = tn.contract(all, optimize="greedy")
    ex = _executors(pool)[kind]
    inputs = [tuple(t.inds) for t in tn.tensors]
    sizes = {i: int(d) for t in tn.tensors for i, d in zip(t.inds, t.shape)}
    plain = SlicedContraction(inputs, (), sizes)
    sc = SlicedContraction(inputs, (), sizes, target_size=plain.tree.max_size() // 8)
    assert sc.nslices >= 4 and sc.sliced_inds and set(sc.sliced_inds) <= set(sizes)
    assert sc.tree.max_size() <= plain.tree.max_size() // 8  # each slice's largest intermediate is smaller
    val = sc([t.data for t in tn.tensors], ex)
    assert float(val) == pytest.approx(float(ref), rel=1e-10)
    assert float(contract_sliced(tn, executor=ex, target_slices=6)) == pytest.approx(float(ref), rel=1e-10)
    if ex is not None and kind == "threads":
        ex.shutdown()


@pytest.mark.parametrize("kind", ["serial", "threads", "processes"])
def test_open_indices_stacked_over_sliced_outputs(pool, kind):
    """A 2x3 PEPS with its 6 physical legs open: slices over output indices are stacked, not summed."""
    psi = qtn.PEPS.rand(2, 3, bond_dim=2, seed=1, dtype="float64")
    out = tuple(f"k{i},{j}" for i in range(2) for j in range(3))
    ref = psi.contract(all, output_inds=out, optimize="greedy").data
    inputs = [tuple(t.inds) for t in psi.tensors]
    sizes = {i: int(d) for t in psi.tensors for i, d in zip(t.inds, t.shape)}
    sc = SlicedContraction(inputs, out, sizes, target_size=8)
    assert set(sc.sliced_inds) & set(out), sc.sliced_inds  # this slicing does cut output indices
    ex = _executors(pool)[kind]
    np.testing.assert_allclose(sc([t.data for t in psi.tensors], ex), ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(contract_sliced(psi, output_inds=out, executor=ex, target_size=8), ref,
                               rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["peps-2x3", "ring-5", "peps-2x2-loop"])
@pytest.mark.parametrize("kind", ["serial", "threads", "processes"])
def test_tnmodel_batch_matches_forward(pool, name, kind):
    torch.manual_seed(0)
    m = ARCHITECTURES[name](dtype=torch.float64)
    x = sample_input(m, batch=4)
    ex = _executors(pool)[kind]
    got = contract_sliced(m, x, executor=ex, target_slices=4)
    ref = m(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref.detach() if kind == "processes" else ref)
    if kind == "processes":
        assert not got.requires_grad  # process executors serialize the slices: no autograd history
        return
    # gradients flow through serial and thread slices and equal those of the compiled forward
    params = list(m.parameters())
    g_sliced = torch.autograd.grad(got.square().sum(), params)
    g_ref = torch.autograd.grad(ref.square().sum(), params)
    for a, b in zip(g_sliced, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_tnmodel_without_inputs_is_the_dense_tensor():
    torch.manual_seed(0)
    m = ARCHITECTURES["peps-2x3"](dtype=torch.float64)
    torch.testing.assert_close(contract_sliced(m, target_slices=4), m.to_dense())


def test_default_slice_size_follows_the_memory_limit(monkeypatch):
    tn = _norm_network()
    ref = float(tn.contract(all, optimize="greedy"))
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 512 * 8)  # 512 float64 entries per intermediate
    inputs = [tuple(t.inds) for t in tn.tensors]
    sizes = {i: int(d) for t in tn.tensors for i, d in zip(t.inds, t.shape)}
    sc = SlicedContraction(inputs, (), sizes)
    assert sc.tree.max_size() <= 512 and sc.nslices > 1
    assert float(sc([t.data for t in tn.tensors])) == pytest.approx(ref, rel=1e-10)
    psi = qtn.PEPS.rand(2, 3, bond_dim=2, seed=1, dtype="float64")
    sizes = {i: int(d) for t in psi.tensors for i, d in zip(t.inds, t.shape)}
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 512)
    with pytest.raises(tnml.MemoryLimitError, match=r"the result alone has 64 entries \(1 KiB\), over .*max_dense"):
        SlicedContraction([tuple(t.inds) for t in psi.tensors], tuple(psi.outer_inds()), sizes, itemsize=16)


def test_strip_exponent_beyond_float64_range():
    """A ring of 40 matrices with entries ~1e20: the trace (~1e800) overflows, its mantissa and exponent do not."""
    rng = np.random.default_rng(0)
    mats = [rng.uniform(0.5, 1.5, size=(3, 3)) * 1e20 for _ in range(40)]
    inputs = [(f"i{k}", f"i{(k + 1) % 40}") for k in range(40)]
    sizes = {f"i{k}": 3 for k in range(40)}
    sc = SlicedContraction(inputs, (), sizes, target_slices=3)
    mant, expo = sc(mats, strip_exponent=True)
    # reference: the trace of the product of the rescaled matrices, times 1e800
    prod = np.eye(3)
    for a in mats:
        prod = prod @ (a / 1e20)
    assert math.log10(abs(float(mant))) + float(expo) == pytest.approx(800 + math.log10(np.trace(prod)), rel=1e-12)
    with np.errstate(over="ignore"):
        assert not np.isfinite(sc(mats))


def test_errors():
    sc = SlicedContraction([("i", "j"), ("j", "k")], ("i", "k"), {"i": 2, "j": 3, "k": 4})
    with pytest.raises(ValueError, match="got 1 arrays for 2 inputs"):
        sc([np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"arrays\[1\] has shape \(4, 3\), expected \(3, 4\)"):
        sc([np.ones((2, 3)), np.ones((4, 3))])
    with pytest.raises(ValueError, match="output indices \\['z'\\] appear in no input"):
        SlicedContraction([("i", "j")], ("z",), {"i": 2, "j": 3})
    with pytest.raises(ValueError, match="target_size must be an integer >= 1, got 0"):
        SlicedContraction([("i", "j")], ("i",), {"i": 2, "j": 3}, target_size=0)
    with pytest.raises(TypeError, match="obj must be a quimb TensorNetwork or tnml.TNModel, got"):
        contract_sliced(np.ones(3))
    with pytest.raises(ValueError, match="max_pending"):
        sc([np.ones((2, 3)), np.ones((3, 4))], ThreadPoolExecutor(1), max_pending=0)
