"""Norm-neutral default initialization: every architecture starts at |f| ~ 1 at any size, the formulas
of ``tnml.init`` against Monte Carlo and dense references, and the once-per-model output-scale warning."""

from __future__ import annotations

import math
import warnings

import pytest
import quimb.tensor as qtn
import torch

from tnml import OutputScaleWarning, TNModel
from tnml.feature_maps import LinearMap, OneHotMap, PolynomialMap, TrigMap
from tnml.init import (
    calibrate_,
    feature_log_norm,
    identity_log_gain,
    log_neutral_std,
    mean_log_norm,
    neutral_direction,
    noncentral_chi2_log_mean,
    reference_embeddings,
)
from tnml.networks import CP, MPS, PEPS, TTN, PeriodicMPS

#: the large sizes of the issue: (constructor, n_sites)
LARGE = {
    "mps-784": (lambda: MPS(784, 2, 10, out_dim=10), 784),
    "mps-3072": (lambda: MPS(3072, 2, 10, out_dim=10), 3072),
    "mps-784-out-end": (lambda: MPS(784, 2, 10, out_dim=10, output_site=783), 784),
    "mps-784-poly-scalar": (lambda: MPS(784, 2, 10, feature_map="polynomial"), 784),
    "mps-784-normal": (lambda: MPS(784, 2, 10, out_dim=10, init="normal"), 784),
    "cp-784": (lambda: CP(784, 2, 20, out_dim=10), 784),
    "cp-784-scalar": (lambda: CP(784, 2, 20), 784),
    "ring-784": (lambda: PeriodicMPS(784, 2, 10, out_dim=10), 784),
    "ttn-32x32": (lambda: TTN(shape=(32, 32), bond_dim=8, out_dim=10), 1024),
    "ttn-1d-1024-poly": (lambda: TTN(n_sites=1024, bond_dim=8, out_dim=10, feature_map="polynomial"), 1024),
    "peps-8x8": (lambda: PEPS(shape=(8, 8), bond_dim=3, out_dim=10), 64),
}


@pytest.mark.parametrize("name", sorted(LARGE))
@pytest.mark.parametrize("seed", [0, 1])
def test_default_init_is_norm_neutral_at_scale(name, seed):
    make, n = LARGE[name]
    torch.manual_seed(seed)
    model = make()
    x = torch.rand(16, n, generator=torch.Generator().manual_seed(100 + seed))  # not the calibration inputs
    assert abs(mean_log_norm(model, x)) <= 5.0
    # one Adam step of cross-entropy on forward() is finite (a scalar model: a squared loss)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = model(x)
    loss = (
        torch.nn.functional.cross_entropy(out, torch.randint(0, 10, (16,)))
        if out.dim() == 2
        else (out - 1.0).pow(2).mean()
    )
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.isfinite(model(x)).all()


def test_issue_snippet_trains():
    """The issue's snippet: finite loss that falls over 15 Adam steps (it was NaN: every output inf)."""
    torch.manual_seed(0)
    m = MPS(n_sites=784, phys_dim=2, bond_dim=10, out_dim=10)
    x = torch.rand(32, 784)
    y = torch.randint(0, 10, (32,))
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.1


def test_log_neutral_std_against_monte_carlo():
    # E ln(s^2 chi2_k) = 0 with s = log_neutral_std(k)
    g = torch.Generator().manual_seed(0)
    for k in (1, 3, 10):
        s = log_neutral_std(k)
        chi2 = torch.randn(200_000, k, generator=g, dtype=torch.float64).pow(2).sum(1)
        assert torch.log(s**2 * chi2).mean().item() == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize("k", [1, 2, 10])
@pytest.mark.parametrize("lam", [0.0, 0.7, 9.0, 60.0])
def test_noncentral_chi2_log_mean_against_monte_carlo(k, lam):
    g = torch.Generator().manual_seed(k)
    z = torch.randn(400_000, k, generator=g, dtype=torch.float64)
    z[:, 0] += math.sqrt(lam)
    mc = torch.log(z.pow(2).sum(1)).mean().item()
    assert noncentral_chi2_log_mean(k, torch.tensor([lam])).item() == pytest.approx(mc, abs=0.01)


@pytest.mark.parametrize("fm", [TrigMap(0.5), TrigMap(0.085), PolynomialMap(1), PolynomialMap(3), OneHotMap(3)])
def test_neutral_direction_has_zero_mean_log_gain(fm):
    c, exact = neutral_direction(fm)
    phi = reference_embeddings(fm)
    m = phi @ c
    assert torch.log(m.abs()).mean().item() == pytest.approx(0.0, abs=1e-9)
    # a constant component gives gain exactly 1 for every input; the trig map has none
    assert exact == (not isinstance(fm, TrigMap))
    if exact:
        assert torch.allclose(m, torch.ones_like(m), atol=1e-9)


def test_neutral_direction_of_a_learned_linear_map_is_exact():
    torch.manual_seed(0)
    c, exact = neutral_direction(LinearMap(dim=3))
    assert exact and c.shape == (3,)


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.3])
@pytest.mark.parametrize("k", [1, 4])
def test_identity_log_gain_against_monte_carlo(noise, k):
    fm = TrigMap(0.5)
    c, _ = neutral_direction(fm)
    phi = reference_embeddings(fm)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(300, phi.shape[0], k, generator=g, dtype=torch.float64) * noise * phi.norm(dim=1).view(1, -1, 1)
    z[..., 0] += phi @ c
    mc = torch.log(z.norm(dim=-1)).mean().item()
    assert identity_log_gain(fm, c, noise, k) == pytest.approx(mc, abs=0.01)


def test_feature_log_norm():
    assert feature_log_norm(TrigMap(0.5)) == pytest.approx(0.0, abs=1e-12)
    # (1, x): E ln sqrt(1 + x^2) over U[0, 1] = (ln 2 - 2 + pi/2) / 2
    assert feature_log_norm(PolynomialMap(1)) == pytest.approx((math.log(2) - 2 + math.pi / 2) / 2, abs=1e-6)


def test_identity_init_gain_is_exactly_one_for_polynomial_on_any_data():
    """With a constant feature component the identity chain's output does not depend on the data's distribution:
    mostly-0 'images' and uniform inputs give the same log-norm up to the small noise."""
    torch.manual_seed(0)
    m = MPS(784, 2, 10, out_dim=10, feature_map="polynomial", dtype=torch.float64)
    sparse = (torch.rand(16, 784, dtype=torch.float64) > 0.8).double()
    dense = torch.rand(16, 784, dtype=torch.float64)
    assert abs(mean_log_norm(m, sparse) - mean_log_norm(m, dense)) < 1.0
    assert abs(mean_log_norm(m, sparse)) < 3.0


def test_old_identity_init_would_overflow():
    """The mechanism the issue reported: identity over every physical value multiplies by sum_s phi_s ~ 1.27 per
    site (E ln = 0.237); the new init divides it out."""
    fm = TrigMap(0.5)
    phi = reference_embeddings(fm)
    gain = torch.log(phi.sum(1)).mean().item()
    assert gain == pytest.approx(185.4 / 784, abs=2e-3)  # the issue measured +185 nats at 784 sites
    assert 784 * gain > math.log(torch.finfo(torch.float32).max)


def test_calibrate_on_user_data():
    torch.manual_seed(0)
    m = MPS(784, 2, 10, out_dim=10)  # trig identity: mostly-0 images start far below 1
    x = (torch.rand(32, 784) > 0.8).float()
    before = mean_log_norm(m, x)
    assert before < -50
    returned = calibrate_(m, x)
    assert returned == pytest.approx(before, abs=1e-6)
    assert abs(mean_log_norm(m, x)) < 1e-3


def test_from_quimb_normal_init_is_norm_neutral():
    rng = torch.Generator().manual_seed(0)
    ts = []
    h, w = 4, 4
    for r in range(h):
        for c in range(w):
            k = r * w + c
            inds = [f"x{k}"]
            if c + 1 < w:
                inds.append(f"h{r}_{c}")
            if c > 0:
                inds.append(f"h{r}_{c - 1}")
            if r + 1 < h:
                inds.append(f"v{r}_{c}")
            if r > 0:
                inds.append(f"v{r - 1}_{c}")
            shape = [2] + [4] * (len(inds) - 1)
            ts.append(qtn.Tensor(torch.randn(*shape, generator=rng).numpy() * 3.0, inds=inds))
    tn = qtn.TensorNetwork(ts)
    inputs = [f"x{k}" for k in range(h * w)]
    kept = TNModel.from_quimb(tn, inputs, feature_map="trig")
    x = torch.rand(8, h * w, generator=torch.Generator().manual_seed(5))
    assert mean_log_norm(kept, x) > 20  # the network's own values: 3x too large per tensor
    fresh = TNModel.from_quimb(tn, inputs, feature_map="trig", init="normal")
    assert abs(mean_log_norm(fresh, x)) < 3.0
    with pytest.raises(ValueError, match="init="):
        TNModel.from_quimb(tn, inputs, init="identity")


def test_output_scale_warning_once():
    m = MPS(200, 2, 4, out_dim=3, init="normal", init_std=3.0)  # a user's own init: ln|f| ~ +200
    x = torch.rand(4, 200)
    with pytest.warns(OutputScaleWarning, match="log_forward.*NormalizedLogits.*calibrate_"):
        m(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutputScaleWarning)
        m(x)  # once per model, not per step
    quiet = MPS(200, 2, 4, out_dim=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutputScaleWarning)
        quiet(x)


def test_default_calibration_respects_its_budget():
    """A large loopy network is not contracted at construction (8x8 PEPS at bond 8: ~5e12 multiply-adds per
    sample; it took > 40 s before the budget): it keeps the closed-form second-moment init."""
    import time

    from tnml.init import CALIBRATION_BUDGET, contraction_cost, default_calibrate_

    t0 = time.perf_counter()
    big = PEPS(shape=(8, 8), bond_dim=8)
    assert time.perf_counter() - t0 < 5.0
    assert contraction_cost(big.structure) > CALIBRATION_BUDGET
    assert default_calibrate_(big) == 0
    small = PEPS(shape=(3, 3), bond_dim=2)
    assert default_calibrate_(small) == 64


def test_output_scale_warning_when_every_output_is_below_adams_eps():
    """A TTN over binary data with the trig map starts far below its uniform-[0, 1] reference (e^-0.23 per leaf):
    forward warns that Adam cannot move it, log_forward and NormalizedLogits do not; O(1) outputs stay quiet."""
    from tnml.model import TINY_OUTPUT_LOG2
    from tnml.networks import TTN, NormalizedLogits

    torch.manual_seed(0)
    m = TTN(n_sites=180, bond_dim=4, out_dim=3)
    x = torch.randint(0, 2, (8, 180)).float()
    log_abs, _ = m.log_forward(x)
    assert float(log_abs.max()) < TINY_OUTPUT_LOG2 * math.log(2)  # the premise: every output below 2**-26
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutputScaleWarning)
        NormalizedLogits(m)(x)  # scale-free: no warning
    with pytest.warns(OutputScaleWarning, match="below Adam's default eps"):
        m(x)
    torch.manual_seed(0)
    ok = TTN(n_sites=180, bond_dim=4, out_dim=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutputScaleWarning)
        ok(torch.rand(8, 180))  # inputs spread over [0, 1]: |f| ~ 1


def test_output_scale_warning_reads_the_true_magnitude():
    """The star plan's head-less sum is not normalized (up to R times the plan's exponent): a wide CP whose outputs
    sit above Adam's eps must not be reported below it (review finding: ln|f| -14.7 was reported as -19)."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    m = CP(64, 2, 4000)
    x = torch.as_tensor(load_digits().data[:256] > 8, dtype=torch.float32)
    from tnml.model import TINY_OUTPUT_LOG2

    _, exp = m.contract_input(x)
    x = x[exp < TINY_OUTPUT_LOG2]  # the samples whose plan exponent alone is below 2**-26 ...
    log_abs, _ = m.log_forward(x)
    assert len(x) > 100 and float(log_abs.max()) > TINY_OUTPUT_LOG2 * math.log(2)  # ... while |f| is above it
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutputScaleWarning)
        m(x)


def test_complex_ttn_builds_with_the_default_init():
    """Calibration runs log_forward, whose sign is the unit phase for complex outputs."""
    torch.manual_seed(0)
    m = TTN(n_sites=8, bond_dim=3, out_dim=2, dtype=torch.complex128)
    x = torch.rand(5, 8, dtype=torch.float64)
    log_abs, phase = m.log_forward(x)
    f = m(x).detach()
    torch.testing.assert_close(torch.exp(log_abs.detach()) * phase.detach(), f)
    assert float(log_abs.detach().mean().abs()) < 3
