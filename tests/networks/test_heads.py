"""NormalizedLogits (cosine-softmax head) against the raw model, and the stall it fixes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnml.experiments import data_suitability as ds
from tnml.networks import MPS, TTN, NormalizedLogits


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TTN(n_sites=16, bond_dim=4, out_dim=5, feature_map=("trig", {"theta": 0.5}), dtype=torch.float64)


def test_same_prediction_and_norm_tau(model):
    head = NormalizedLogits(model, tau=3.0)
    x = torch.rand(50, 16, dtype=torch.float64)
    raw, logits = model(x), head(x)
    assert torch.equal(raw.argmax(-1), logits.argmax(-1))
    torch.testing.assert_close(logits, 3.0 * raw / raw.norm(dim=-1, keepdim=True))


def test_invariant_to_core_scale_beyond_float_range(model):
    """Scaling every core by 1e300 overflows the raw output in float64 but leaves the logits unchanged, and the
    gradients finite: the loss has no scale direction and the plan's power-of-two exponent cancels."""
    head = NormalizedLogits(model)
    x = torch.rand(8, 16, dtype=torch.float64)
    before = head(x).detach()
    with torch.no_grad():
        for name in model.structure.tensor_names:
            model.core(name).mul_(1e300)
    assert not torch.isfinite(model(x)).all()
    after = head(x)
    torch.testing.assert_close(after, before)
    torch.nn.functional.cross_entropy(after, torch.zeros(8, dtype=torch.long)).backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())
    assert head.log_tau.grad is not None and head.log_tau.grad != 0  # the temperature is learned


def test_bad_arguments():
    with pytest.raises(ValueError, match="out_dim=None"):
        NormalizedLogits(MPS(n_sites=4))
    with pytest.raises(ValueError, match="tau must be a positive finite number"):
        NormalizedLogits(MPS(n_sites=4, out_dim=2), tau=0.0)
    with pytest.raises(TypeError, match="model must be a TNModel"):
        NormalizedLogits(torch.nn.Linear(3, 2))


def test_1d_digits_ttn_that_stalled_now_learns():
    """1-D digits, seed 2, original order: test accuracy 0.128 with raw logits (at chance, measured last
    session); through the experiment's train_ttn (which uses the head) it must leave chance by far."""
    torch.set_num_threads(1)
    task = ds.load_task("digits-1d", 2)
    r = ds.train_ttn(task, np.arange(64), epochs=15, bond=8, lr=1e-2, seed=2)
    assert r["train_acc"] > ds.stall_threshold(10)
    assert r["test_acc"] > 0.8
