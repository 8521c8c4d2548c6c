"""Experiment natural-data-rank: data construction, the one-hot CP predictor, and a smoke run."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import tnml.experiments.natural_data_rank as ndr
from tnml.experiments import EXPERIMENTS, RunConfig
from tnml.networks import CP


def test_registered():
    assert "natural-data-rank" in EXPERIMENTS


def test_binarize_matches_numpy_threshold():
    raw = load_digits().data  # values 0..16
    got = ndr.binarize(torch.as_tensor(raw / 16.0)).numpy()
    np.testing.assert_array_equal(got, (raw >= 8).astype(np.int64))
    assert got.dtype == np.int64 and set(np.unique(got)) == {0, 1}


def test_targets_one_vs_all():
    labels = torch.tensor([0, 6, 3, 6, 9])
    np.testing.assert_array_equal(ndr.targets(labels).numpy(), np.where(labels.numpy() == 6, 2.0, 0.0))


@pytest.fixture(scope="module")
def sets():
    return ndr.make_datasets(0)


def test_original_is_binarized_digits_split(sets):
    from sklearn.model_selection import train_test_split

    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.2, random_state=0, stratify=d.target)
    btr, ttr, bte, tte = sets["original"]
    np.testing.assert_array_equal(btr.numpy(), (xtr >= 8).astype(np.int64))
    np.testing.assert_array_equal(bte.numpy(), (xte >= 8).astype(np.int64))
    np.testing.assert_array_equal(ttr.numpy(), 2.0 * (ytr == 6))
    np.testing.assert_array_equal(tte.numpy(), 2.0 * (yte == 6))


def test_random_images_have_the_data_marginal(sets):
    btr, ytr, bte, yte = sets["original"]
    rtr, rytr, rte, ryte = sets["random images"]
    p = btr.float().mean().item()
    assert rtr.shape == btr.shape and rte.shape == bte.shape
    assert set(torch.unique(torch.cat([rtr, rte]).flatten()).tolist()) == {0, 1}
    for r in (rtr, rte):
        n = r.numel()
        # the pixel mean of n i.i.d. Bernoulli(p) pixels: within 5 standard deviations of p
        assert abs(r.float().mean().item() - p) < 5 * np.sqrt(p * (1 - p) / n)
    # i.i.d. pixels: no pixel is always off (some are in digits), and neighbours are uncorrelated
    a = rtr.double().numpy()
    c = np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]
    assert abs(c) < 5 / np.sqrt(a[:, 1:].size) and a.mean(0).min() > 0.2
    torch.testing.assert_close(rytr, ytr)  # labels kept
    torch.testing.assert_close(ryte, yte)


def test_random_labels_are_a_permutation(sets):
    btr, ytr, bte, yte = sets["original"]
    xtr, ptr, xte, pte = sets["random labels"]
    torch.testing.assert_close(xtr, btr)  # images kept
    torch.testing.assert_close(xte, bte)
    np.testing.assert_array_equal(np.sort(ptr.numpy()), np.sort(ytr.numpy()))
    np.testing.assert_array_equal(np.sort(pte.numpy()), np.sort(yte.numpy()))
    assert not torch.equal(ptr, ytr) and not torch.equal(pte, yte)


@pytest.mark.parametrize("dim", [2, 3])
def test_onehot_cp_equals_dense_tensor_inner_product(dim):
    """The library CP with the one-hot map (whose forward gathers factor rows) is the CP tensor's entry at x."""
    n, rank = 5, 3
    torch.manual_seed(0)
    model = CP(n, dim, rank, None, feature_map="onehot", dtype=torch.float64)
    with torch.no_grad():
        for k in range(n):
            model.core(f"site{k}").normal_(0.0, 0.5).add_(1.0)
    a = np.stack([model.core(f"site{k}").detach().numpy() for k in range(n)])  # (n, dim, rank)
    w = np.einsum("ar,br,cr,dr,er->abcde", *[a[k] for k in range(n)])  # dense CP tensor, float64
    x = np.array(list(itertools.product(range(dim), repeat=n)))  # every entry
    onehots = np.eye(dim)[x]  # (entries, n, dim)
    ref = np.einsum("abcde,za,zb,zc,zd,ze->z", w, *[onehots[:, k] for k in range(n)])  # <⊗ onehot(x_n), W>
    got = model(torch.as_tensor(x)).detach().numpy()  # integer pixels: the gather route
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref, w[tuple(x.T)], rtol=1e-12)
    # float pixels take the same route; embedded one-hot vectors the dense one: the same function
    np.testing.assert_allclose(model(torch.as_tensor(x, dtype=torch.float64)).detach().numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(model(torch.as_tensor(onehots)).detach().numpy(), ref, rtol=1e-10)


def test_onehot_cp_is_the_library_cp_with_the_experiments_init():
    """fit_rank's model: tnml.networks.CP with the one-hot map, factors i.i.d. mean·(1 + 0.1·N(0, 1)), the same
    draws for the same seed, and its parameters are exactly the factors (what the clamp acts on)."""
    m = ndr.onehot_cp(64, 15, init_mean=0.9, init_rel_std=ndr.INIT_REL_STD, seed=7)
    assert type(m) is CP and m.feature_map.registry_name == "onehot" and m.rank == 15 and m.out_dim is None
    assert m.plan().takes_indices
    a = torch.stack([m.core(f"site{k}") for k in range(64)]).detach()
    assert sum(p.numel() for p in m.parameters()) == a.numel() == 64 * 2 * 15
    rel = a / 0.9 - 1
    assert abs(float(rel.mean())) < 0.02 and abs(float(rel.std()) - ndr.INIT_REL_STD) < 0.01
    again = ndr.onehot_cp(64, 15, init_mean=0.9, init_rel_std=ndr.INIT_REL_STD, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), again.parameters()))
    x = ndr.make_datasets(0)["original"][0][:50]
    ref = a[torch.arange(64), x].prod(1).sum(-1)  # the CP tensor at x: one gather, one product (float32)
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=0)


def test_smoke_run(tmp_path, monkeypatch):
    monkeypatch.setitem(ndr.SETTINGS, True, ((1, 2), 1, 60))
    res = ndr.run(RunConfig(tmp_path, quick=True))
    assert res.plots == ["natural_data_rank.png"] and (tmp_path / "natural_data_rank.png").exists()
    assert res.comparisons and all(c.quantity for c in res.comparisons)
    json.dumps(res.metrics, default=float)
    ytr = ndr.make_datasets(0)["original"][1].numpy() / 2
    assert res.metrics["label_variance"] == pytest.approx(ytr.var(), rel=1e-6)
    mean = res.metrics["mean"]
    for name in ndr.DATASETS:
        for r in ("1", "2"):
            assert 0 <= mean[name][r]["train"] < 0.2
    # even 60 steps separate natural data from random labels at rank 1 (≈ 0.01 vs ≈ 0.085)
    assert mean["original"]["1"]["train"] < 0.5 * mean["random labels"]["1"]["train"]
