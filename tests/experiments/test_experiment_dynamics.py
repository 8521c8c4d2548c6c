"""Pieces and smoke runs of the experiments dmf-norms and tf-incremental-rank."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import tnml.experiments.dmf_norms as dmf
import tnml.experiments.tf_incremental_rank as tfr
from tnml.experiments import EXPERIMENTS, RunConfig


def test_registered():
    assert {"dmf-norms", "tf-incremental-rank"} <= set(EXPERIMENTS)


def test_dmf_closed_form_gradients_match_autograd():
    m = dmf.init_positive_det(3)
    m2 = dmf.init_positive_det(3)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(50.0)  # away from the origin, gradients of order 1
    mask, tgt = torch.from_numpy(dmf.MASK), torch.from_numpy(dmf.TARGET)
    loss = 0.5 * ((m.tensor() - tgt) * mask).pow(2).sum()
    loss.backward()
    ref = [w.grad.T for w in (m.core(f"layer{k + 1}") for k in range(3))]
    val, end, grads = dmf.end_to_end_gradients([w.detach().numpy() for w in m.factors()], dmf.MASK, dmf.TARGET)
    assert val == pytest.approx(loss.item())
    np.testing.assert_allclose(end, m.tensor().detach().numpy())
    for g, r in zip(grads, ref):
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-10, atol=1e-14)
    assert float(torch.linalg.det(m2.tensor().detach())) > 0


def test_dmf_gd_reaches_loss_1e1_with_thesis_w11():
    m = dmf.init_positive_det(0)
    out = dmf.run_gd(m, stop_loss=1e-1)
    c = out["crossings"][1e-1]
    assert 1.0 < abs(c["w11"]) < 3.0  # thesis [fig]: ≈ 2
    assert out["history"][-1]["effective_rank"] < 1.1
    np.testing.assert_allclose(m.tensor().detach().numpy()[0, 0], out["history"][-1]["w11"])


def test_rise_steps():
    steps = np.arange(0, 500, 100)
    norms = np.array([[0, 0, 0], [1, 0, 0], [1, 0.1, 0], [1, 1, 0], [1, 1, 1e-9]], dtype=float)
    assert tfr.rise_steps(steps, norms, 3) == [100, 300, None]


def test_smoke_runs(tmp_path, monkeypatch):
    """Both experiments run end to end at tiny settings (plots, JSON-able metrics, the rows the summary needs);
    their outcomes are asserted in tests/experiments/test_claims_dynamics.py."""
    monkeypatch.setitem(dmf.SETTINGS, True, (1e-1, (0,)))
    monkeypatch.setitem(dmf.FLOW_SETTINGS, True, (1e-1, (2, 3), (0,)))
    monkeypatch.setitem(tfr.SETTINGS, True, (20, (5e-3, 1e-2, 5e-2), {5e-3: 100, 1e-2: 80, 5e-2: 60}, 20))
    for mod, plot in ((dmf, "dmf_norms.png"), (tfr, "tf_incremental_rank.png")):
        res = mod.run(RunConfig(tmp_path, quick=True))
        assert res.plots == [plot] and (tmp_path / plot).exists()
        assert res.comparisons and all(c.quantity for c in res.comparisons)
        json.dumps(res.metrics, default=float)
        if mod is dmf:
            det = res.metrics["det_positive_throughout"]
            assert set(det) == {"depth 2", "depth 3"} and all(isinstance(v["0"], bool) for v in det.values())
            assert all(det[k]["0"] for k in det)  # to loss 0.1 every depth keeps det > 0 (resolved)
        else:
            assert [res.metrics["runs"][k]["steps"] for k in ("0.005", "0.01", "0.05")] == [100, 80, 60]
            assert any(c.quantity.endswith("at init 0.005 / 0.01 / 0.05") for c in res.comparisons)
