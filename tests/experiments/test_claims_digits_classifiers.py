"""Claims of ``digits-classifiers`` (issue 13): the 784-pixel MPS trains from tnml's default init on the MNIST-shaped
embedded workload, and why it uses the polynomial map (the trig identity init starts far below 1 on such images);
the 28x28 TTN trains from its pass-through default init (issue 18), where the Gaussian init stayed near chance."""

from __future__ import annotations

import torch

from tnml.datasets import digits_upsampled
from tnml.experiments import digits_classifiers as dc
from tnml.experiments.registry import RunConfig
from tnml.init import mean_log_norm
from tnml.networks import MPS, TTN, NormalizedLogits


def test_claim_digits_classifiers_mps784_default_init_trains(tmp_path):
    """Three epochs of the experiment's own 784-site MPS (default init, Adam 3e-4, batch 32) on digits upsampled to
    28x28: test accuracy >= 0.85 (the quick run's 5 epochs reached 0.933 when measured), from chance at the start."""
    data = {"28x28": digits_upsampled(28, seed=0)}
    cfg = RunConfig(out_dir=tmp_path, quick=True, seed=0)
    m = dc.train_one("mps784", cfg, data, epochs=3)
    assert m["history"]["test_acc"][-1] >= 0.85, m["history"]
    assert all(torch.isfinite(torch.tensor(m["history"]["loss"])))


def test_claim_digits_classifiers_polynomial_identity_is_neutral_on_images():
    """The mechanism behind the map choice: on mostly-0 images the trig identity init starts at ln||f|| << 0
    (gain cos+sin scaled for uniform inputs: e^-0.237 per 0-pixel) while the (1, x) map's gain is exactly 1."""
    xtr = digits_upsampled(28, seed=0)[0][:64]
    torch.manual_seed(0)
    trig = MPS(784, 2, 10, out_dim=10)
    torch.manual_seed(0)
    poly = MPS(784, 2, 10, out_dim=10, feature_map="polynomial")
    assert mean_log_norm(trig, xtr) < -40
    assert abs(mean_log_norm(poly, xtr)) < 3


def test_claim_digits_classifiers_ttn784_default_init_trains(tmp_path):
    """The experiment's own 28x28 TTN (default trig map and pass-through init, NormalizedLogits, Adam 5e-3): two
    epochs reach test accuracy >= 0.85 (the quick run's 5 epochs: 0.981 measured); from Gaussian nodes
    (``init="normal"``, the default before) the same model stayed near chance (0.11-0.20 measured)."""
    data = {"28x28": digits_upsampled(28, seed=0)}
    cfg = RunConfig(out_dir=tmp_path, quick=True, seed=0)
    m = dc.train_one("ttn784", cfg, data, epochs=2)
    assert m["history"]["test_acc"][-1] >= 0.85, m["history"]
    spec = dc.SPECS["ttn784"]
    gaussian = dc.ModelSpec(spec.data, lambda quick, dev: NormalizedLogits(
        TTN(shape=(28, 28), bond_dim=8, out_dim=10, init="normal", device=dev)), spec.lr, spec.batch_size,
        spec.epochs, spec.label)  # fmt: skip
    dc.SPECS["ttn784-normal"] = gaussian
    try:
        g = dc.train_one("ttn784-normal", cfg, data, epochs=2)
    finally:
        del dc.SPECS["ttn784-normal"]
    assert m["history"]["test_acc"][-1] - g["history"]["test_acc"][-1] > 0.3, (m["history"], g["history"])
