"""GradientCosineRegularizer (SPEC §3): separable models give |cos| = 1, a Jacobian reference, double backprop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tnml.regularization import GradientCosineRegularizer, rect_patch

I1, J1 = [0, 2, 4], [1, 3, 5]  # interleaved patches of a 1-D input of 7 features (feature 6 in neither)


class Separable(nn.Module):
    """``f_c(x) = a_c(x_I, x_K) · b_c(x_J)``: separable across I and J (K = the rest rides with I)."""

    def __init__(self, n: int, patch_i: list[int], patch_j: list[int], n_classes: int = 3):
        super().__init__()
        rest = [k for k in range(n) if k not in patch_j]
        self.register_buffer("ik", torch.tensor(rest))
        self.register_buffer("j", torch.tensor(patch_j))
        self.a = nn.Sequential(nn.Linear(len(rest), 16), nn.Tanh(), nn.Linear(16, n_classes))
        self.b = nn.Sequential(nn.Linear(len(patch_j), 16), nn.Tanh(), nn.Linear(16, n_classes))

    def forward(self, x):
        return self.a(x[:, self.ik]) * self.b(x[:, self.j])


class SeparableImage(nn.Module):
    """A conv net on the left half of a ``(B, C, H, W)`` image times one on the right half."""

    def __init__(self, c: int, w_half: int, n_classes: int = 2):
        super().__init__()
        self.w = w_half

        def branch():
            return nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.LazyLinear(n_classes))

        self.a, self.b = branch(), branch()

    def forward(self, x):
        return self.a(x[..., : self.w]) * self.b(x[..., self.w :])


def mlp(n: int, n_classes: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(n, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, n_classes))


def batch(b: int = 8, n: int = 7, n_classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, generator=g, dtype=torch.float64), torch.randint(0, n_classes, (b,), generator=g)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_separable_model_gives_unit_cosine():
    model = Separable(7, I1, J1).double()
    x, y = batch()
    reg = GradientCosineRegularizer(I1, J1)
    g, gt = reg.gradients(model, x, y)
    cos = nn.functional.cosine_similarity(g, gt, dim=1)
    assert torch.allclose(cos.abs(), torch.ones_like(cos), atol=1e-6, rtol=0)
    assert abs(reg(model, x, y).item() - 1.0) < 1e-6


def test_separable_image_model_gives_unit_cosine():
    model = SeparableImage(c=2, w_half=4).double()
    x = torch.randn(6, 2, 5, 8, dtype=torch.float64)
    y = torch.randint(0, 2, (6,))
    model(x)  # materialize the lazy layers
    reg = GradientCosineRegularizer(rect_patch(range(5), range(4)), rect_patch(range(5), range(4, 8)))
    assert abs(reg(model, x, y).item() - 1.0) < 1e-6


def test_non_separable_model_below_one():
    model = mlp(7).double()
    x, y = batch()
    r = GradientCosineRegularizer(I1, J1)(model, x, y)
    assert 0.0 <= r.item() < 0.99


def jacobian_reference(model: nn.Module, x: torch.Tensor, y, patch_i, patch_j) -> torch.Tensor:
    """R from per-sample full Jacobians (torch.autograd.functional.jacobian), with explicit loops; ``y=None``: the
    model has one output, differentiated for every sample."""
    cosines = []
    b = len(x)
    for k in range(b):
        xt = x[k].clone()
        xt[patch_j] = x[(k + 1) % b][patch_j]  # the next sample's patch J
        grads = []
        for z in (x[k], xt):
            jac = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], z)  # (n_classes, n)
            grads.append(jac.reshape(-1, len(z))[0 if y is None else y[k], patch_i])
        cosines.append((grads[0] @ grads[1]) / (grads[0].norm() * grads[1].norm()))
    return torch.stack(cosines).abs().mean()


@pytest.mark.parametrize("patches", [(I1, J1), ([0, 1], [5]), ([6], [0, 1, 2, 3, 4, 5])])
def test_matches_jacobian_reference(patches):
    pi, pj = patches
    model = mlp(7).double()
    x, y = batch(b=5)
    r = GradientCosineRegularizer(pi, pj)(model, x, y)
    ref = jacobian_reference(model, x, y, pi, pj)
    assert torch.allclose(r, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("flat", [True, False])
def test_single_logit_model_matches_jacobian_reference(flat):
    """A one-output (BCE) model: the gradient of its single logit for every sample, the label unused ([code])."""
    net = mlp(7, n_classes=1).double()
    model = (lambda v: net(v)[:, 0]) if flat else net  # outputs (B,) or (B, 1)
    x, y = batch(b=6)
    reg = GradientCosineRegularizer(I1, J1)
    r = reg(model, x)
    assert torch.allclose(r, jacobian_reference(net, x, None, I1, J1), atol=1e-10, rtol=0)
    assert torch.equal(reg(model, x, y % 2), r)  # labels, if given, do not change the differentiated output


def test_single_logit_separable_model_gives_unit_cosine():
    model = Separable(7, I1, J1, n_classes=1).double()
    x, _ = batch()
    assert abs(GradientCosineRegularizer(I1, J1)(model, x).item() - 1.0) < 1e-6


def test_swap_exchanges_the_patches():
    model = mlp(7).double()
    x, y = batch(b=5)
    r_swap = GradientCosineRegularizer(I1, J1)(model, x, y, swap=True)
    assert torch.allclose(r_swap, GradientCosineRegularizer(J1, I1)(model, x, y), atol=1e-12, rtol=0)
    assert torch.allclose(r_swap, jacobian_reference(model, x, y, J1, I1), atol=1e-10, rtol=0)
    assert not torch.allclose(r_swap, GradientCosineRegularizer(I1, J1)(model, x, y), atol=1e-6, rtol=0)


def test_separable_model_is_a_stationary_point_of_r():
    """|cos| = 1 is R's maximum: at a separable model (additive or multiplicative) R's parameter gradient is 0,
    while a generic model gets a nonzero one."""
    x, y = batch()
    reg = GradientCosineRegularizer(I1, J1)

    class Additive(Separable):
        def forward(self, v):
            return self.a(v[:, self.ik]) + self.b(v[:, self.j])

    for model in (Separable(7, I1, J1).double(), Additive(7, I1, J1).double()):
        grads = torch.autograd.grad(reg(model, x, y), list(model.parameters()), allow_unused=True)
        assert max(g.abs().max().item() for g in grads if g is not None) < 1e-8
    generic = mlp(7).double()
    grads = torch.autograd.grad(reg(generic, x, y), list(generic.parameters()), allow_unused=True)
    assert max(g.abs().max().item() for g in grads if g is not None) > 1e-4


def test_boolean_mask_equals_positions():
    model = mlp(7).double()
    x, y = batch()
    mi, mj = np.zeros(7, bool), torch.zeros(7, dtype=torch.bool)
    mi[I1], mj[J1] = True, True
    r_mask = GradientCosineRegularizer(mi, mj)(model, x, y)
    r_pos = GradientCosineRegularizer(I1, J1)(model, x, y)
    assert torch.allclose(r_mask, r_pos, atol=1e-12, rtol=0)


def test_image_patches_include_every_channel():
    """A (row, col) patch over (B, C, H, W) gathers that pixel in every channel: compare against a flat reference."""
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 4 * 6, 2)).double()
    x = torch.randn(4, 2, 4, 6, dtype=torch.float64)
    y = torch.randint(0, 2, (4,))
    pi, pj = rect_patch(range(4), range(0, 2)), rect_patch(range(4), range(4, 6))
    r = GradientCosineRegularizer(pi, pj)(conv, x, y)

    def flat_model(v):
        return conv(v.reshape(-1, 2, 4, 6))

    idx = torch.arange(2 * 4 * 6).reshape(2, 4, 6)
    fi = idx[:, [p[0] for p in pi], [p[1] for p in pi]].flatten().tolist()
    fj = idx[:, [p[0] for p in pj], [p[1] for p in pj]].flatten().tolist()
    ref = jacobian_reference(flat_model, x.reshape(4, -1), y, fi, fj)
    assert torch.allclose(r, ref, atol=1e-10, rtol=0)


def test_parameter_gradients_exist_and_are_finite():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 8, 2))
    x = torch.randn(6, 1, 4, 8)
    y = torch.randint(0, 2, (6,))
    reg = GradientCosineRegularizer(rect_patch(range(4), range(3)), rect_patch(range(4), range(5, 8)))
    loss = nn.functional.cross_entropy(model(x), y) + 1.0 * reg(model, x, y)
    loss.backward()
    for name, p in model.named_parameters():
        if name == "3.bias":  # a logit bias does not reach an input gradient
            continue
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_parameter_gradient_of_r_passes_gradcheck():
    """Double backprop: dR/dθ from autograd agrees with finite differences in float64."""
    model = mlp(7).double()
    x, y = batch(b=4)
    reg = GradientCosineRegularizer(I1, J1)
    params = tuple(model.parameters())

    names = [n for n, _ in model.named_parameters()]

    def r_of(*ps):
        def f(z):
            return torch.func.functional_call(model, dict(zip(names, ps)), (z,))

        return reg(f, x, y)

    assert torch.autograd.gradcheck(r_of, tuple(p.detach().clone().requires_grad_(True) for p in params))


def test_lambda_r_step_lowers_r():
    """A few gradient steps on R alone (double backprop) lower it."""
    model = mlp(7)
    x, y = batch(b=32)
    x = x.float()
    reg = GradientCosineRegularizer(I1, J1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    r0 = reg(model, x, y).item()
    for _ in range(30):
        opt.zero_grad()
        r = reg(model, x, y)
        r.backward()
        opt.step()
    assert reg(model, x, y).item() < r0


@pytest.mark.parametrize(
    ("pi", "pj", "match"),
    [
        ([0, 1, 2], [2, 3], "overlap"),
        ([], [1], "patch_i is empty"),
        ([0], [], "patch_j is empty"),
        (np.zeros(7, bool), [1], "patch_i is empty"),
        ([-1], [2], "negative"),
        ([0, 0], [2], "repeats"),
        ([(0, 1)], [2], "same"),
        ([(0, 1), (1,)], [(2, 2)], "same"),
        (3, [1], "iterable"),
    ],
)
def test_construction_errors(pi, pj, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GradientCosineRegularizer(pi, pj)


def test_forward_errors():
    model = mlp(7)
    x, y = batch()
    x = x.float()
    with pytest.raises(ValueError, match=r"patch_j position \(9,\) is out of range"):
        GradientCosineRegularizer([0], [9])(model, x, y)
    with pytest.raises(ValueError, match="overlap"):
        m = torch.zeros(7, dtype=torch.bool)
        m[[1, 2]] = True
        GradientCosineRegularizer([1], m)(model, x, y)
    with pytest.raises(ValueError, match="mask shape"):
        GradientCosineRegularizer([1], torch.ones(5, dtype=torch.bool))(model, x, y)
    with pytest.raises(ValueError, match="batch size 1"):
        GradientCosineRegularizer([0], [1])(model, x[:1], y[:1])
    with pytest.raises(ValueError, match="integer class labels"):
        GradientCosineRegularizer([0], [1])(model, x, y.float())
    with pytest.raises(ValueError, match="outside"):
        GradientCosineRegularizer([0], [1])(model, x, y + 5)
    with pytest.raises(ValueError, match="trailing dim"):
        GradientCosineRegularizer([(0, 1)], [(0, 2)])(model, x[:, 0], y)
    with pytest.raises(TypeError, match="floating-point"):
        GradientCosineRegularizer([0], [1])(model, x.long(), y)
    with pytest.raises(ValueError, match="y is None but the model has 3 outputs"):
        GradientCosineRegularizer([0], [1])(model, x)


def test_value_under_no_grad():
    model = mlp(7).double()
    x, y = batch()
    reg = GradientCosineRegularizer(I1, J1)
    r = reg(model, x, y)
    with torch.no_grad():
        r_ng = reg(model, x, y)
    assert not r_ng.requires_grad
    assert torch.allclose(r, r_ng, atol=1e-12, rtol=0)


# ---- experiment `anti-locality` (its --quick takes ~1 min, so its pieces are tested here) ----


def test_same_class_pairs_balanced_and_placed():
    from tnml.experiments.anti_locality import same_class_pairs

    x = torch.rand(50, 64)
    y = torch.arange(50) % 10
    canvas, label = same_class_pairs(x, y, 40, gap=5, generator=torch.Generator().manual_seed(0))
    assert canvas.shape == (40, 1, 8, 21)
    assert label.sum() == 20
    assert (canvas[:, :, :, 8:13] == 0).all()  # the gap is empty
    first = [int(torch.nonzero((x.view(50, 8, 8) == c[0, :, :8]).all((1, 2)))[0]) for c in canvas]
    second = [int(torch.nonzero((x.view(50, 8, 8) == c[0, :, 13:]).all((1, 2)))[0]) for c in canvas]
    same = torch.tensor([int(y[a] == y[b]) for a, b in zip(first, second)])
    assert torch.equal(same, label)
    with pytest.raises(ValueError, match="gap"):
        same_class_pairs(x, y, 4, gap=-1, generator=torch.Generator())
    wide, label2 = same_class_pairs(x, y, 40, gap=5, generator=torch.Generator().manual_seed(0), width=30)
    assert wide.shape == (40, 1, 8, 30) and torch.equal(label2, label)
    assert torch.equal(wide[..., :21], canvas) and (wide[..., 21:] == 0).all()  # a fixed canvas, empty on the right
    with pytest.raises(ValueError, match="width"):
        same_class_pairs(x, y, 4, gap=5, generator=torch.Generator(), width=20)


def test_anti_locality_pieces_run():
    from tnml.experiments.anti_locality import digit_patches, residual_cnn, template_digits, train_one

    model = residual_cnn(width=2, downsamples=3)
    x = torch.rand(6, 1, 8, 20)
    assert model(x).shape == (6, 1)  # one logit, as the authors' BCE model
    r = digit_patches(4)(model, x)
    assert 0 <= r.item() <= 1
    data = (torch.rand(32, 1, 8, 20), torch.randint(0, 2, (32,)), torch.rand(16, 1, 8, 20), torch.randint(0, 2, (16,)))
    tmpl = template_digits(torch.rand(40, 64), torch.arange(40) % 10, per_class=2)
    out = train_one(data, 4, 1.0, epochs=3, seed=0, ramp=2, templates=tmpl)
    assert set(out) == {"test_acc", "train_acc", "R_test", "history", "separation_rank"}
    assert all(np.isfinite(out[k]) for k in ("test_acc", "train_acc", "R_test"))
    h = out["history"]
    assert [len(h[k]) for k in ("bce", "R", "grad_bce", "grad_R", "lam", "acc")] == [3] * 6
    assert all(0 <= v <= 1 for v in h["R"]) and all(v > 0 for v in h["bce"])
    assert h["lam"][0] == 0 and h["lam"][1] == 0.5 and h["lam"][2] == 1  # one step per epoch: λ = min(1, t / 2)
    assert h["grad_R"][0] == 0 and all(v > 0 for v in h["grad_R"][1:])  # λ = 0 at the first step: R not computed
    sr = out["separation_rank"]
    assert sr["n_templates"] == 20 and sr["ideal_rank"] == 10 and 1 <= sr["rank"] <= 20
    with pytest.raises(ValueError, match="ramp"):
        train_one(data, 4, 1.0, epochs=1, seed=0, ramp=-1)


def test_lambda_ramp_is_linear_in_steps(monkeypatch):
    """λ rises linearly over the steps of the first ``ramp`` epochs, then stays at its value."""
    import tnml.experiments.anti_locality as al

    monkeypatch.setattr(al, "N_MONITOR", 8)
    g = torch.Generator().manual_seed(0)
    n = 4 * al.BATCH
    data = (torch.rand(n, 1, 8, 16, generator=g), torch.randint(0, 2, (n,), generator=g),
            torch.rand(8, 1, 8, 16, generator=g), torch.randint(0, 2, (8,), generator=g))  # fmt: skip
    h = al.train_one(data, 0, 2.0, epochs=3, seed=0, ramp=2)["history"]
    # steps at t = 0, 1/4, 2/4, 3/4 | 1, 5/4, 6/4, 7/4 | >= 2: mean λ = 2 · mean(min(1, t / 2)) per epoch
    assert h["lam"] == pytest.approx(
        [2 * np.mean([0, 1 / 8, 2 / 8, 3 / 8]), 2 * np.mean([4 / 8, 5 / 8, 6 / 8, 7 / 8]), 2]
    )
    h = al.train_one(data, 0, 2.0, epochs=3, seed=0, ramp=1, start=1)["history"]  # plain BCE for one epoch first
    assert h["lam"] == pytest.approx([0, 2 * np.mean([0, 1 / 4, 2 / 4, 3 / 4]), 2])
    assert h["grad_R"][0] == 0 and h["grad_R"][2] > 0
    assert len(h["acc"]) == 3 and all(0 <= a <= 1 for a in h["acc"])


def test_left_chance_epoch():
    from tnml.experiments.anti_locality import left_chance_epoch

    assert left_chance_epoch({"acc": [0.5, 0.61]}) == 2
    assert left_chance_epoch({"acc": [0.5, 0.55]}) is None
    assert left_chance_epoch({"acc": [0.7]}, threshold=0.8) is None


def test_residual_cnn_receptive_field_covers_the_canvas():
    """The middle units of the last feature map depend on every canvas column; the edge units do not (checked
    against the receptive-field arithmetic: a 3×3 conv adds 2 · jump columns, a stride-2 conv doubles the jump)."""
    from tnml.experiments.anti_locality import CANVAS, residual_cnn, unit_column_support

    support = unit_column_support(residual_cnn(4, 3))
    assert len(support) == CANVAS // 8
    assert (0, CANVAS - 1) in support
    assert support[0][0] == 0 and support[0][1] < CANVAS - 1  # the leftmost unit misses the right edge
    # receptive field width of the middle unit: stem 3, blocks 2·2·jump each, downsampling convs 2·jump each
    rf = 1 + 2 + 4 * 1 + 2 * 1 + 4 * 2 + 2 * 2 + 4 * 4 + 2 * 4 + 4 * 8
    lo, hi = support[len(support) // 2 - 1]
    assert hi - lo + 1 <= rf
    with pytest.raises(ValueError, match="downsamples"):
        residual_cnn(4, -1)


def test_pair_separation_rank_against_known_functions():
    """The grid matrix of f(a, b) over template digits: a separable product has rank 1, a sum of two products rank
    2, the exact IsSameClass indicator on 4 templates per class rank 10 (= ``ideal_rank``)."""
    from tnml.experiments.anti_locality import pair_separation_rank, template_digits

    g = torch.Generator().manual_seed(0)
    digits_, classes = template_digits(torch.randn(60, 64, generator=g, dtype=torch.float64), torch.arange(60) % 10)
    w1, w2 = torch.randn(64, generator=g, dtype=torch.float64), torch.randn(64, generator=g, dtype=torch.float64)
    assert pair_separation_rank(lambda p: (p[:, 0] @ w1) * (p[:, 1] @ w2), digits_)["rank"] == 1
    two = lambda p: (p[:, 0] @ w1) * (p[:, 1] @ w2) + torch.tanh(p[:, 0] @ w2) * torch.cos(p[:, 1] @ w1)  # noqa: E731
    assert pair_separation_rank(two, digits_)["rank"] == 2
    lookup = {tuple(d.tolist()): int(c) for d, c in zip(digits_, classes)}
    cls = lambda x: torch.tensor([lookup[tuple(r.tolist())] for r in x])  # noqa: E731
    same = lambda p: (cls(p[:, 0]) == cls(p[:, 1])).double()  # noqa: E731
    res = pair_separation_rank(same, digits_, classes)
    assert res["rank"] == res["ideal_rank"] == 10 and res["n_templates"] == 40


def test_anti_locality_regularizes_whole_batch_in_random_order(monkeypatch):
    """R on the first ``R_BATCH`` pairs of every training batch (the authors use the whole batch; a sub-batch for
    CPU time), the order of the patches drawn per step (both orders occur); λ = 0 computes R only for monitoring
    (no graph)."""
    import tnml.experiments.anti_locality as al

    calls = []
    real = GradientCosineRegularizer.forward

    def spy(self, model, x, y=None, *, swap=False):
        calls.append((len(x), swap, torch.is_grad_enabled()))
        return real(self, model, x, y, swap=swap)

    monkeypatch.setattr(GradientCosineRegularizer, "forward", spy)
    monkeypatch.setattr(al, "N_MONITOR", 8)
    g = torch.Generator().manual_seed(0)
    n = 3 * al.BATCH + 5
    data = (torch.rand(n, 1, 8, 16, generator=g), torch.randint(0, 2, (n,), generator=g),
            torch.rand(8, 1, 8, 16, generator=g), torch.randint(0, 2, (8,), generator=g))  # fmt: skip
    al.train_one(data, 0, 1.0, epochs=3, seed=0)
    train_calls = [c for c in calls if c[2]]
    assert [c[0] for c in train_calls] == [al.R_BATCH, al.R_BATCH, al.R_BATCH, min(5, al.R_BATCH)] * 3
    assert {c[1] for c in train_calls} == {False, True}
    calls.clear()
    al.train_one(data, 0, 0.0, epochs=1, seed=0)
    assert calls and not any(c[2] for c in calls)


def test_standardize_uses_training_statistics():
    from tnml.experiments.anti_locality import standardize

    g = torch.Generator().manual_seed(0)
    a, b = 3 + 2 * torch.rand(50, 64, generator=g, dtype=torch.float64), torch.rand(10, 64, dtype=torch.float64)
    sa, sb = standardize(a, b)
    assert abs(sa.mean().item()) < 1e-12 and abs(sa.std().item() - 1) < 1e-12
    assert torch.allclose(sb, (b - a.mean()) / a.std(), atol=1e-12, rtol=0)


def test_anti_locality_registered():
    from tnml.experiments import EXPERIMENTS

    assert "anti-locality" in EXPERIMENTS


def test_anti_locality_run_tiny(tmp_path, monkeypatch):
    """The whole experiment at tiny settings: metrics, short table cells, claims with verdicts, no process words."""
    import tnml.experiments.anti_locality as al
    from tnml.experiments.registry import PROCESS_WORDS, VERDICTS, RunConfig, cell_problems

    torch.set_num_threads(1)
    monkeypatch.setitem(al.SETTINGS, True, ((0, 8), 1, 64, 2))
    monkeypatch.setattr(al, "N_TEST", 32)
    monkeypatch.setattr(al, "TEMPLATES_PER_CLASS", 1)
    res = al.run(RunConfig(tmp_path, quick=True, seed=0, name="anti-locality", checkpoint_every=0))
    m = res.metrics
    assert m["gaps"] == [0, 8] and m["lambdas"] == list(al.LAMBDAS)
    assert set(m["precondition"]) == {"drop", "required", "holds"}
    assert set(m["gain_at_largest_gap"]) == {str(lam) for lam in al.LAMBDAS[1:]}
    assert (0, al.CANVAS - 1) in [tuple(s) for s in m["unit_column_support"]]
    assert m["init_R_and_gradients"]["0"]["ratio"]["mean"] > 0
    assert len(m["lambda_start_epoch_per_seed"]) == 1
    assert cell_problems(res, "anti-locality") == []
    assert len(res.claims) == 3 and all(c.verdict in VERDICTS for c in res.claims)
    text = " ".join([res.about, *res.notes, *(c.note for c in res.comparisons), *(c.text for c in res.claims)])
    assert not any(w in text for w in PROCESS_WORDS)
    assert (tmp_path / "accuracy_vs_distance.png").exists()
