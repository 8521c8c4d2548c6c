"""Locally connected CNNs and the ``data-suitability`` experiment's helpers (fast)."""

import numpy as np
import pytest
import torch

from tnml.experiments import EXPERIMENTS
from tnml.experiments import data_suitability as ds
from tnml.networks.local_cnn import CNN1D, CNN2D


@pytest.mark.parametrize("n", [64, 13, 30, 1])
def test_cnn1d_shapes_and_gradients(n):
    torch.manual_seed(0)
    m = CNN1D(n, 3, channels=(4, 8))
    x = torch.randn(5, n)
    out = m(x)
    assert out.shape == (5, 3)
    assert torch.allclose(m(x.unsqueeze(1)), out)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    with pytest.raises(ValueError):
        m(torch.randn(5, n + 1))


@pytest.mark.parametrize("shape", [(8, 8), (5, 3)])
def test_cnn2d_shapes_and_gradients(shape):
    torch.manual_seed(0)
    m = CNN2D(shape, 10, channels=(4, 8, 8))
    x = torch.randn(4, *shape)
    out = m(x)
    assert out.shape == (4, 10)
    assert torch.allclose(m(x.reshape(4, -1)), out)
    out.square().mean().backward()
    assert sum(p.grad.abs().sum() for p in m.parameters()) > 0
    with pytest.raises(ValueError):
        CNN2D(shape, 10, kernel_size=2)


def test_cnn_is_locally_connected():
    """Output at one early conv position depends only on a window of inputs."""
    m = CNN1D(16, 2, channels=(1,), kernel_size=3)
    conv = m.features[0]
    x = torch.zeros(1, 1, 16, requires_grad=True)
    conv(x)[0, 0, 5].backward()
    assert set(torch.nonzero(x.grad[0, 0]).flatten().tolist()) <= {4, 5, 6}


@pytest.mark.parametrize("dims", [1, 2])
def test_build_orders_are_permutations_and_keep_rows(dims):
    task = ds.load_task(f"digits-{dims}d", 0)
    x = task.x_train[:200]
    orders, info = ds.build_orders(x, dims, task.shape, seed=1)
    assert set(orders) == set(ds.ORDERS)
    assert info["backend"] in ("auto", "kl")
    n = x.shape[1]
    np.testing.assert_array_equal(orders["original"], np.arange(n))
    for name, p in orders.items():
        np.testing.assert_array_equal(np.sort(p), np.arange(n)), name
        xp = ds.apply_order(x, p)
        assert xp.shape == x.shape
        # same rows, in the same sample order, with their entries reordered
        np.testing.assert_array_equal(np.sort(xp, axis=1), np.sort(x, axis=1))
        np.testing.assert_array_equal(xp[:, np.argsort(p)], x)
    assert not np.array_equal(orders["random"], np.arange(n))


def test_swap_pairs():
    assert np.array_equal(ds.swap_pairs(10, 0), np.arange(10))
    p = ds.swap_pairs(10, 3, seed=2)
    assert np.array_equal(np.sort(p), np.arange(10))
    assert (p != np.arange(10)).sum() == 6
    with pytest.raises(ValueError):
        ds.swap_pairs(5, 3)


def test_tiny_core_loop():
    s = ds.Settings(seeds=1, epochs=1, channels=(4,), qe_batch=64, qe_batches=1, qe_all_seeds=True,
                    swap_ks=(0, 2), swap_seeds=1, tabular=False)
    r = ds.compare_orders("wine", [0], s)
    for name in ds.ORDERS:
        o = r["orders"][name]
        assert 0.0 <= o["acc_mean"] <= 1.0 and len(o["acc"]) == 1
        assert set(o["qe_levels"]) == {1, 2, 3, 4}
        assert all(np.isfinite(v) and v >= 0 for v in o["qe_levels"].values())
    sw = ds.swap_curve("wine", (0, 2), [0], s)
    assert [row["k"] for row in sw["rows"]] == [0, 2]


def test_registered():
    assert "data-suitability" in EXPERIMENTS
