"""TTN inits: the Gaussian one (``init="normal"``) is log-norm neutral, so deep trees give O(1) outputs (not ~1e-11
as before); the default pass-through one (``init="identity"``) starts near a constant function and learns where the
Gaussian one memorizes."""

from __future__ import annotations

import math

import pytest
import torch

from tnml.init import passthrough_node
from tnml.networks import TTN
from tnml.networks.ttn import log_neutral_std


def test_single_node_is_log_norm_neutral():
    # one node W[x0, x1, y], i.i.d. N(0, s²) with s = log_neutral_std(5): ||W(v0 ⊗ v1)||² = s² χ²_5 for unit-norm
    # trig inputs, so E log ||out||² = 0 and E ||out||² = 5 s² for every input x (the raw draw, init_std = s)
    x = torch.rand(1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    s = log_neutral_std(5)
    raw, default = [], []

    def sq(**kw) -> float:
        return TTN(n_sites=2, bond_dim=[], out_dim=5, init="normal", dtype=torch.float64, **kw)(x).pow(2).sum().item()

    for seed in range(2000):
        torch.manual_seed(seed)
        raw.append(sq(init_std=s))
        torch.manual_seed(seed)
        default.append(sq())
    raw, default = torch.tensor(raw, dtype=torch.float64), torch.tensor(default, dtype=torch.float64)
    assert raw.log().mean().item() == pytest.approx(0.0, abs=0.08)  # std of the mean ≈ 0.016
    assert raw.mean().item() == pytest.approx(5 * s**2, rel=0.1)
    # the calibrated Gaussian init (the same draw, then rescaled on reference inputs) stays log-neutral at this x;
    # its second moment is no longer 5 s² (calibration divides each draw by its own reference gain)
    assert default.log().mean().item() == pytest.approx(0.0, abs=0.08)
    # the formula: E log χ²_k = ψ(k/2) + log 2, so s² = exp(-ψ(k/2)) / 2
    k = torch.tensor(2.5, dtype=torch.float64)
    assert log_neutral_std(5) ** 2 == pytest.approx(math.exp(-torch.special.digamma(k).item()) / 2, rel=1e-12)


@pytest.mark.parametrize("kw", [dict(n_sites=64), dict(n_sites=256), dict(shape=(8, 8)), dict(shape=(16, 16))])
def test_deep_trees_start_with_order_one_outputs(kw):
    medians = []
    for seed in range(4):
        torch.manual_seed(seed)
        m = TTN(bond_dim=8, out_dim=10, init="normal", dtype=torch.float64, **kw)
        medians.append(m(torch.rand(128, m.n_sites, dtype=torch.float64)).norm(dim=1).median().item())
    logs = torch.tensor(medians).log10()
    # the previous 1/sqrt(fan-in) default gave ~1e-11 at 64 sites and smaller for deeper trees; 1/sqrt(parent dim)
    # still drifted to ~1e-5..1e-8 at 256 sites. The log-norm spread across inits grows like sqrt(#nodes).
    assert (logs.abs() < 4).all(), medians
    assert logs.mean().abs() < 2, medians


def test_init_std_still_overrides():
    m = TTN(n_sites=8, bond_dim=4, out_dim=3, init="normal", init_std=0.25)
    for p in m.parameters():
        assert p.std().item() == pytest.approx(0.25, rel=0.5)


def test_passthrough_node_passes_first_order_deviations():
    g = torch.Generator().manual_seed(0)
    e0 = torch.eye(4, dtype=torch.float64)[0]
    c = torch.tensor([1.0, 0.0], dtype=torch.float64)  # polynomial map's neutral direction
    u = torch.full((3,), 3**-0.5, dtype=torch.float64)  # a root with 3 outputs
    for refs, through, parent in [([e0, e0], [True, True], e0), ([c, c], [False, False], e0),
                                  ([e0, c, e0], [True, False, True], u), ([e0, e0], [True, True], u)]:
        w = passthrough_node(refs, parent, through)
        assert w.shape == tuple(r.shape[0] for r in refs) + parent.shape
        msgs = [r.clone() for r in refs]
        out0 = _apply(w, msgs)
        torch.testing.assert_close(out0, parent)  # references map to the reference
        eps = 1e-6
        for j, (r, on) in enumerate(zip(refs, through)):
            if not on:
                continue
            delta = torch.randn(r.shape, generator=g, dtype=torch.float64)
            delta -= (delta @ r) * r  # a deviation orthogonal to the reference
            msgs = [m.clone() for m in refs]
            msgs[j] = r + eps * delta
            lin = (_apply(w, msgs) - parent) / eps
            k = min(r.shape[0], parent.shape[0]) - 1
            # an isometry on the first k complement directions: the deviation's norm there is kept
            assert lin @ parent == pytest.approx(0.0, abs=1e-8)
            assert float(lin.norm()) == pytest.approx(float(delta[1 : 1 + k].norm()) if r[0] == 1 else 0, rel=1e-6)


def _apply(w, msgs):
    for m in msgs:
        w = torch.tensordot(m, w, dims=([0], [0]))
    return w


def test_identity_init_any_bond_and_tree():
    """Bond 1, ragged and ternary trees, scalar roots: the pass-through init builds and gives finite O(1) outputs."""
    x = torch.rand(16, 9, generator=torch.Generator().manual_seed(1))
    for kw in (dict(n_sites=9, bond_dim=1, out_dim=3), dict(n_sites=9, arity=3, bond_dim=[2]),
               dict(tree=((0, 1, 2), (3, (4, 5)), (6, 7, 8)), bond_dim=[1, 3], out_dim=2), dict(n_sites=9, bond_dim=2)):
        torch.manual_seed(0)
        m = TTN(dtype=torch.float64, **kw)
        log_abs = m.log_forward(x)[0].detach()
        assert torch.isfinite(log_abs).all() and float(log_abs.mean().abs()) < 3, (kw, log_abs.mean())


def test_identity_init_starts_constant_and_log_neutral():
    x = torch.randint(0, 2, (64, 16)).double()
    torch.manual_seed(0)
    exact = TTN(n_sites=16, bond_dim=4, out_dim=3, feature_map="polynomial", init_std=0.0, dtype=torch.float64)
    f = exact(x).detach()
    torch.testing.assert_close(f, f[:1].expand_as(f))  # c·φ(x) = 1 for every x: the same output everywhere
    assert float(f[0].norm().log()) == pytest.approx(0.0, abs=1e-9)  # calibrated: ||f|| = 1
    assert torch.allclose(f[0], torch.full((3,), 3**-0.5, dtype=torch.float64))  # symmetric over the classes
    torch.manual_seed(0)
    noisy = TTN(n_sites=16, bond_dim=4, out_dim=3, feature_map="polynomial", dtype=torch.float64)
    fx = noisy(x).detach()
    spread = (fx - fx.mean(0)).norm(dim=1)
    assert 1e-4 < float(spread.mean()) < 0.2  # input dependence of the order of the noise, not of the output


def test_identity_init_learns_dna_where_the_gaussian_init_memorizes():
    """Statlog DNA (180 binary features, 3 classes): the default TTN generalizes; the Gaussian one does not."""
    from tnml.datasets import load_dna
    from tnml.networks import NormalizedLogits

    x, y = load_dna()
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:2000], perm[2000:]
    acc = {}
    for init in ("identity", "normal"):
        torch.manual_seed(0)
        model = NormalizedLogits(TTN(n_sites=180, bond_dim=8, out_dim=3, feature_map=("trig", {"theta": 0.5}),
                                     init=init))  # fmt: skip
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(3):
            for k in range(0, len(tr), 64):
                b = tr[k : k + 64]
                loss = torch.nn.functional.cross_entropy(model(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            acc[init] = float((model(x[te]).argmax(-1) == y[te]).float().mean())
    assert acc["identity"] > 0.85, acc
    assert acc["identity"] - acc["normal"] > 0.2, acc
