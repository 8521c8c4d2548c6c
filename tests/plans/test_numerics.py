"""Long chains and deep trees stay finite: the per-sample log2 scale of the compiled plans."""

from __future__ import annotations

import math

import pytest
import torch

from tnml.networks import CP, MPS, TTN
from tnml.plans.scaling import normalize


def _chain_log_reference(m: MPS, x: torch.Tensor) -> torch.Tensor:
    """Naive float64 left-to-right chain with explicit renormalization: log|f(x)| per sample (scalar MPS)."""
    phi = m.embed(x).double()
    cores = [m.core(f"site{i}").detach().double() for i in range(m.n_sites)]
    v = torch.einsum("bs,sr->br", phi[:, 0], cores[0])
    log = torch.zeros(x.shape[0], dtype=torch.float64)
    for i in range(1, m.n_sites):
        a = cores[i]
        v = (
            torch.einsum("bl,bs,lsr->br", v, phi[:, i], a)
            if a.dim() == 3
            else torch.einsum("bl,bs,ls->b", v, phi[:, i], a)[:, None]
        )
        n = v.abs().amax(-1)
        v = v / n[:, None]
        log += n.log()
    return log + v[:, 0].abs().log()


def test_784_site_mps_normal_cores_float32_finite():
    torch.manual_seed(0)
    m = MPS(784, 2, 10, init="normal", init_std=1.0, dtype=torch.float32)
    x = torch.rand(8, 784)
    with torch.no_grad():
        assert not torch.isfinite(m(x)).all()  # the plain value is not representable in float32
    log_abs, sign = m.log_forward(x)
    assert torch.isfinite(log_abs).all() and log_abs.min() > 100  # far beyond float32's range (~88)
    assert set(sign.unique().tolist()) <= {-1.0, 1.0}
    log_abs.sum().backward()
    for p in m.parameters():
        assert torch.isfinite(p.grad).all()
    ref = _chain_log_reference(m, x)
    torch.testing.assert_close(log_abs.double(), ref, rtol=1e-4, atol=1e-2)


def test_784_site_mps_with_output_finite_gradients():
    torch.manual_seed(1)
    m = MPS(784, 2, 10, out_dim=10, init="normal", init_std=1.0)
    log_abs, _ = m.log_forward(torch.rand(4, 784))
    assert torch.isfinite(log_abs).all()
    torch.logsumexp(log_abs, -1).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


def test_tiny_values_do_not_underflow():
    torch.manual_seed(2)
    m = MPS(300, 2, 4, init="normal", init_std=1e-3)
    log_abs, _ = m.log_forward(torch.rand(3, 300))
    assert torch.isfinite(log_abs).all() and log_abs.max() < -1000


def test_deep_ttn_and_long_cp_finite():
    torch.manual_seed(3)
    t = TTN(n_sites=1024, bond_dim=4, init="normal", init_std=3.0)  # Gaussian std 3: log-norm far beyond float
    la, _ = t.log_forward(torch.rand(2, 1024))
    assert torch.isfinite(la).all()
    assert float(la.min()) > 1000  # the premise: ln|f| far beyond float64's range (ln max ≈ 709)
    c = CP(2000, 2, 5, init_std=2.0)
    lc, _ = c.log_forward(torch.rand(2, 2000))
    assert torch.isfinite(lc).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalize_is_exact_power_of_two(dtype):
    t = torch.randn(3, 4, 5, dtype=dtype) * torch.tensor([1e-30, 1.0, 1e30], dtype=dtype).view(3, 1, 1)
    tn, e = normalize(t, 1)
    assert torch.equal(tn * torch.exp2(e).view(3, 1, 1), t)
    m = tn.abs().flatten(1).amax(1)
    assert ((m >= 0.5) & (m < 1)).all()


def test_log_forward_matches_forward_when_representable():
    torch.manual_seed(4)
    m = MPS(20, 2, 5, out_dim=3, dtype=torch.float64)
    x = torch.rand(6, 20, dtype=torch.float64)
    y = m(x)
    la, s = m.log_forward(x)
    torch.testing.assert_close(s * la.exp(), y)
    assert math.isclose(float((y.abs().log() - la).abs().max().detach()), 0.0, abs_tol=1e-10)


# ---------------------------------------------------------------------------------------------- inputs checked
def test_contract_indices_refuses_out_of_range_index():
    """An index >= phys_dim would read the next site's row of the stacked cores: refused, naming the range."""
    m = CP(5, 3, 3, feature_map="onehot")
    ok = torch.zeros(2, 5, dtype=torch.long)
    m.contract_indices(ok)
    for bad in (3, -1):
        idx = ok.clone()
        idx[1, 2] = bad
        with pytest.raises(ValueError, match=r"idx holds values in .*phys_dim=3"):
            m.contract_indices(idx)


def test_complex_input_to_real_model_refused():
    m = MPS(4, 2, 2, out_dim=2)
    with pytest.raises(ValueError, match="x is complex .* imaginary part would be dropped"):
        m(torch.rand(3, 4, dtype=torch.complex64))


def test_complex_nan_input_refused_by_complex_model():
    m = MPS(4, 2, 2, out_dim=2, feature_map="identity", dtype=torch.complex128)
    x = torch.rand(3, 4, 2, dtype=torch.complex128)
    m(x)
    x[1, 2, 0] = complex(float("nan"), 0.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        m(x)
