"""The data-suitability experiment states the route of every QE it measures: P5's batches, and for the whole
training split the route ``data_entanglement(method="auto")`` chose (exact below its sample threshold, the streaming
sketch with its error estimate above it)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tnml.experiments import data_suitability as ds

#: the module, not the function of the same name that ``tnml.entanglement`` exports
DE = importlib.import_module("tnml.entanglement.data_entanglement")


@pytest.fixture(scope="module")
def wine():
    return ds.load_task("wine", 0)  # 133 training samples, 13 features: levels 1-4


def test_batch_route_names_the_batches_and_their_size(wine):
    perm = np.arange(wine.x_train.shape[1])
    levels, route = ds.measure_qe_route(wine, perm, 40, 2, 0)
    # 133 samples in ceil(133 / 40) = 4 near-equal batches (34, 33, 33, 33); the first two are used
    assert route == {"method": "batches", "n_samples": 133, "tensor_samples": 34, "batches": 2}
    assert levels == ds.measure_qe(wine, perm, 40, 2, 0)
    assert max(levels.values()) <= np.log(34)  # a batch's tensor: QE at most ln(batch)
    assert "2 batch(es) of 34 of the 133 samples" in ds.route_text(route)


def test_whole_data_qe_is_exact_below_the_threshold_and_equals_one_batch_of_every_sample(wine):
    perm = np.random.default_rng(3).permutation(wine.x_train.shape[1])
    levels, route = ds.measure_qe_whole(wine, perm, seed=0, sketch_size=32)
    assert route == {"method": "exact", "n_samples": 133, "tensor_samples": 133}
    # reference: P5's estimator with one batch that holds every sample (the QE does not depend on the row order)
    one_batch = ds.measure_qe(wine, perm, 133, 1, 0)
    assert levels.keys() == one_batch.keys()
    assert all(abs(levels[k] - one_batch[k]) < 1e-10 for k in levels)
    assert ds.route_text(route) == "exact, all 133 samples"


def test_whole_data_qe_takes_the_sketch_past_the_threshold_and_records_its_error_estimate(wine, monkeypatch):
    perm = np.arange(wine.x_train.shape[1])
    exact, _ = ds.measure_qe_whole(wine, perm, seed=0, sketch_size=32)
    monkeypatch.setattr(DE, "AUTO_EXACT_MAX_SAMPLES", 100)  # 133 samples are now "large"
    levels, route = ds.measure_qe_whole(wine, perm, seed=0, sketch_size=32)
    assert route["method"] == "sketch" and route["sketch_size"] == 32 and route["tensor_samples"] == 133
    est = route["error_estimate_levels"]
    assert set(est) == set(levels) == {1, 2, 3, 4}
    assert route["error_estimate_max"] == max(est.values()) > 0
    assert 0 < route["residual_max"] < 1
    assert "32 landmarks" in ds.route_text(route) and "error estimate up to" in ds.route_text(route)
    # every landmark: the sketch is the exact route up to round-off, its estimate ~0
    full, route_full = ds.measure_qe_whole(wine, perm, seed=0, sketch_size=133)
    assert route_full["method"] == "sketch"
    assert all(abs(full[k] - exact[k]) < 1e-6 for k in exact)
    assert route_full["error_estimate_max"] < 1e-6


def test_merged_routes_keep_the_largest_estimates():
    a = {"method": "sketch", "n_samples": 9, "tensor_samples": 9, "sketch_size": 4, "residual_max": 0.1,
         "error_estimate_max": 0.3, "error_estimate_levels": {1: 0.3, 2: 0.1}}
    b = dict(a, residual_max=0.2, error_estimate_max=0.25, error_estimate_levels={1: 0.05, 2: 0.25})
    m = ds._merge_routes([a, b])
    assert m["residual_max"] == 0.2 and m["error_estimate_max"] == 0.3
    assert m["error_estimate_levels"] == {1: 0.3, 2: 0.25}
    assert ds._merge_routes([{"method": "exact", "n_samples": 9, "tensor_samples": 9}])["method"] == "exact"


def test_the_run_states_every_route(tmp_path, monkeypatch):
    from tnml.experiments import RunConfig

    monkeypatch.setattr(DE, "AUTO_EXACT_MAX_SAMPLES", 100)  # wine's whole-data QE takes the sketch
    monkeypatch.setattr(ds, "_plot_orders", lambda *a, **k: None)
    monkeypatch.setattr(ds, "_plot_swap", lambda *a, **k: None)
    tiny = ds.Settings(seeds=1, epochs=1, channels=(4,), qe_batch=64, qe_batches=1, qe_all_seeds=True,
                       swap_ks=(0, 2), swap_seeds=1, tabular=False, planted_samples=150, planted_features=8,
                       extra_tasks=("wine",), qe_whole_tasks=("wine",), qe_whole_sketch_size=32)
    monkeypatch.setitem(ds.SETTINGS, True, tiny)
    res = ds.run(RunConfig(tmp_path, quick=True))
    tasks = res.metrics["tasks"]
    assert set(tasks["wine"]["qe_routes"]) == {"p5_protocol", "whole_data"}
    assert set(tasks["digits-1d"]["qe_routes"]) == {"p5_protocol"}
    whole = tasks["wine"]["qe_routes"]["whole_data"]
    assert whole["method"] == "sketch" and whole["n_samples"] == 133
    for name in ds.ORDERS:
        o = tasks["wine"]["orders"][name]
        assert set(o["qe_whole_levels"]) == {1, 2, 3, 4}
        assert o["qe_whole_mean"] == pytest.approx(np.mean(list(o["qe_whole_levels"].values())))
    row = next(c for c in res.comparisons if c.quantity.startswith("wine whole-data QE"))
    assert row.quantity == "wine whole-data QE, sketch k=32 (orig/rand/rear/IGTD)"
    assert f"error estimate up to {whole['error_estimate_max']:.3g} nats" in row.note
    assert "random − rearranged per level" in row.note
    note = next(n for n in res.notes if n.startswith("QE routes of this run"))
    for name in ("digits-1d", "digits-2d", "planted", "wine", "swap curve"):
        assert name in note
    assert "streaming Nyström sketch of all 133 samples with 32 landmarks" in note
    assert res.metrics["swap_curve"]["qe_route"]["method"] == "batches"
    qe_rows = [c for c in res.comparisons if "mean canonical QE" in c.quantity]
    assert qe_rows and all("Route: 1 batch(es) of" in c.note for c in qe_rows)
