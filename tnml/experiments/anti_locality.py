"""Experiment ``anti-locality``: the gradient-cosine regularizer on an IsSameClass task at growing distance (P3).

Task. Two 8×8 digits (scikit-learn, embedded, standardized) sit on a fixed ``1 × 8 × 64`` zero canvas, the first at
columns 0..7 and the second at columns ``8 + gap ..``; the label is whether they show the same class (balanced).

Model (:func:`residual_cnn`). A BatchNorm-free residual CNN with ResNet-style pooling: a 3×3 stem, residual blocks
(ReLU, 3×3 conv, ReLU, 3×3 conv, plus the identity), :data:`DOWNSAMPLES` stride-2 3×3 convolutions between the
stages, then ReLU, global *average* pooling over the remaining ``1 × 8`` map and one output logit. Its receptive
field covers the whole canvas — the middle output unit depends on every column (:func:`unit_column_support`) — but
the two digits at the largest gap meet only at the edges of the last stage's receptive fields, the situation of
ResNet18 on P3's 224² canvas. (A CNN that max-pools the canvas down to one unit barely loses accuracy with
distance, which leaves a regularizer nothing to recover: ``docs/science/anti-locality-evidence.md``.)

Training. ``BCE + λ(t) R`` with Adam, where ``R`` is :class:`~tnml.regularization.GradientCosineRegularizer` with the
two digit regions as patches (which one plays ``I`` drawn at every step, as in the authors' code), evaluated on the
first :data:`R_BATCH` pairs of each batch. λ stays 0 until the λ = 0 run of the same seed at the smallest gap has
left chance (:data:`LEFT_CHANCE` training accuracy, :func:`left_chance_epoch`), then rises linearly to λ over
:data:`RAMP` epochs: switched on in full while a run is still on the chance plateau, R kept the run there.
λ ∈ :data:`LAMBDAS_FULL`: 0, the thesis's 1 for IsSameClass and its 9 for Pathfinder (the quick version:
:data:`LAMBDAS`, 0 and 9).

Reported (``metrics.json``): test accuracy per (λ, gap), mean ± std over seeds; the precondition (λ = 0 loses at
least :data:`PRECONDITION_DROP` from the smallest to the largest gap); per λ > 0 the gain at the largest gap and
whether it exceeds the summed seed stds; the separation rank of each trained model across (digit 1 | digit 2)
(:func:`pair_separation_rank`: the grid matrix ``f(t_a, t_b)`` over template digits,
``tnml.entanglement.separation_rank``); R and the ratio of R's to BCE's parameter gradient at initialization per
gap (how much room the regularizer has to act) and, per epoch of every run, BCE, R, both gradient norms and λ.
Measured numbers and their interpretation: ``docs/science/anti-locality-evidence.md``.

Carried over from the authors' released code [code] (``asafmaman101/imp_reg_htf``: ``is_same_experiment.py``,
``input_grad_change_regularization_trainer.py``, ``torchvision_datamodule.py``; facts only, no code): one output
logit and ``BCEWithLogitsLoss``; ``R`` differentiates that logit; the patches are the two image regions in random
order per step; images standardized before they are placed on the zero canvas.

P3's conditions that differ (budget): a small BatchNorm-free residual CNN instead of ResNet18 (whose BatchNorm
stayed in training mode during both gradient passes), 8×8 digits on an ``8 × 64`` canvas instead of CIFAR-10 on
224², fewer training pairs and epochs, Adam instead of SGD, ``R`` on a sub-batch, and the λ ramp.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from tnml.checkpoint import Checkpointer
from tnml.datasets import digits
from tnml.entanglement.separation_rank import separation_rank
from tnml.experiments._common import pyplot
from tnml.experiments.registry import Claim, Comparison, ExperimentResult, RunConfig, register_experiment
from tnml.io import save_figure
from tnml.regularization import GradientCosineRegularizer, rect_patch
from tnml.spectrum import default_rtol, numerical_rank, renyi_entropy
from tnml.training import fit, minibatches, progress_bar

#: the regularization weights of the quick version: 0 and the thesis's value for Pathfinder (9)
LAMBDAS = (0.0, 9.0)
#: the regularization weights of the full version: 0, the thesis's value for IsSameClass (1) and for Pathfinder (9)
LAMBDAS_FULL = (0.0, 1.0, 9.0)
#: the largest λ
LAMBDA = max(LAMBDAS_FULL)
#: canvas columns (fixed for every gap, as P3's 224² canvas)
CANVAS = 64
#: (gaps, seeds, training pairs, epochs) of the quick and the full version
SETTINGS = {True: ((0, 24), 3, 800, 10), False: ((0, 8, 16, 24, 48), 3, 2000, 16)}
#: epochs over which λ rises linearly from 0 to its value once it starts (quick, full)
RAMP = {True: 2, False: 3}
#: the former name of :data:`RAMP` (the same dict)
WARMUP = RAMP
#: batch, pairs per batch that R is evaluated on, Adam learning rate, test pairs, pairs R is monitored on
BATCH, R_BATCH, LR, N_TEST, N_MONITOR = 64, 16, 3e-3, 1000, 64
#: base channels and stride-2 downsamplings of :func:`residual_cnn`
WIDTH, DOWNSAMPLES = 4, 3
#: training pairs the per-epoch training accuracy is measured on; the accuracy that counts as having left chance
N_ACC, LEFT_CHANCE = 256, 0.6
#: the precondition: λ = 0 must lose at least this much test accuracy from the smallest to the largest gap
PRECONDITION_DROP = 0.15
#: template digits per class for the separation rank (grid matrix of (10·k)² model evaluations)
TEMPLATES_PER_CLASS = 4
#: relative tolerance of the reported separation rank (float32 model: the default sqrt(eps) sits near the noise)
SEP_TOL = 1e-3
#: thesis [fig], CIFAR-10 pairs on a 224² canvas, ResNet18: accuracy (%) at distance 0..160 with λ = 0, and λ = 1 at 160
THESIS_LAMBDA0 = (61.0, 60.0, 56.0, 50.0, 50.5)
THESIS_LAMBDA1_FAR = 58.5


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with 3×3 convolutions (padding 1) that keep the channels and the size.

    Parameters
    ----------
    channels : int
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(torch.relu(x))))

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


def residual_cnn(width: int = WIDTH, downsamples: int = DOWNSAMPLES) -> nn.Sequential:
    """A BatchNorm-free residual CNN with ResNet-style pooling and one output logit.

    3×3 stem conv to ``width`` channels; ``downsamples + 1`` stages of one :class:`ResidualBlock` each, separated by
    stride-2 3×3 convs that double the channels (at most ``4 · width``); then ReLU, global average pooling and a
    linear head.

    Parameters
    ----------
    width : int
        Channels of the first stage.
    downsamples : int
        Stride-2 convolutions (the ``8 × 64`` canvas becomes a ``1 × 64 / 2**downsamples`` map).

    Returns
    -------
    nn.Sequential
        Maps images ``(batch, 1, H, W)`` to logits ``(batch, 1)``; ``model[:-3]`` is the feature map before pooling.

    Examples
    --------
    >>> import torch
    >>> residual_cnn(4, 3)(torch.rand(2, 1, 8, 64)).shape
    torch.Size([2, 1])
    """
    if width < 1 or downsamples < 0:
        raise ValueError(f"width={width} must be >= 1 and downsamples={downsamples} >= 0")
    layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1)]
    c = width
    for k in range(downsamples + 1):
        layers.append(ResidualBlock(c))
        if k < downsamples:
            c_next = min(2 * c, 4 * width)
            layers.append(nn.Conv2d(c, c_next, 3, padding=1, stride=2))
            c = c_next
    return nn.Sequential(*layers, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1))


def unit_column_support(model: nn.Sequential, height: int = 8, width: int = CANVAS) -> list[tuple[int, int]]:
    """Leftmost and rightmost input column each unit of the last feature map depends on (its receptive field).

    Computed on a copy of the feature part ``model[:-3]`` with every conv weight set to 1 and bias to 0, on an
    all-ones input: every activation is then positive, ReLU passes everything, and the input gradient of a unit is
    nonzero exactly on its receptive field.

    Returns
    -------
    list of (int, int)
        One ``(first column, last column)`` per output column of the feature map (its row 0).
    """
    import copy

    feats = copy.deepcopy(model[:-3]).double()
    for mod in feats.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.ones_(mod.weight)
            assert mod.bias is not None  # the network's convolutions have biases
            nn.init.zeros_(mod.bias)
    x = torch.ones(1, 1, height, width, dtype=torch.float64, requires_grad=True)
    out = feats(x)
    support = []
    for col in range(out.shape[-1]):
        (g,) = torch.autograd.grad(out[0, :, 0, col].sum(), x, retain_graph=True)
        cols = torch.nonzero(g[0, 0].abs().sum(0) > 0).flatten()
        support.append((int(cols.min()), int(cols.max())))
    return support


def same_class_pairs(
    x: torch.Tensor, y: torch.Tensor, n: int, gap: int, generator: torch.Generator, width: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced IsSameClass pairs of 8×8 digits on a canvas.

    Parameters
    ----------
    x : Tensor, shape (n_digits, 64)
        Row-major 8×8 images.
    y : Tensor of int, shape (n_digits,)
        Digit classes 0..9.
    n : int
        Number of pairs; the first ``n // 2`` are same-class (label 1), the rest different-class (label 0).
    gap : int
        Empty columns between the two digits.
    width : int, optional
        Canvas columns (at least ``16 + gap``; the columns right of the second digit stay empty). Default
        ``16 + gap``.

    Returns
    -------
    canvas : Tensor, shape (n, 1, 8, width)
    label : Tensor of int64, shape (n,)
    """
    if gap < 0:
        raise ValueError(f"gap must be >= 0 columns, got {gap}")
    if width is not None and width < 16 + gap:
        raise ValueError(f"width={width} columns cannot hold two 8-column digits {gap} apart; pass width >= {16 + gap}")
    by_class = [torch.nonzero(y == c).flatten() for c in range(10)]
    label = torch.cat([torch.ones(n // 2), torch.zeros(n - n // 2)]).long()
    first = torch.randint(0, len(x), (n,), generator=generator)
    other_class = (y[first] + torch.randint(1, 10, (n,), generator=generator)) % 10
    cls = torch.where(label.bool(), y[first], other_class)
    pick = torch.rand(n, generator=generator)
    second = torch.stack([by_class[c][int(p * len(by_class[c]))] for c, p in zip(cls.tolist(), pick.tolist())])
    return place_pair(x[first], x[second], gap, width), label


def place_pair(first: torch.Tensor, second: torch.Tensor, gap: int, width: int | None = None) -> torch.Tensor:
    """Two batches of row-major 8×8 digits, shape (n, 64) each, on zero canvases of shape (n, 1, 8, width): the
    first at columns 0..7, the second at columns ``8 + gap .. 15 + gap`` (``width`` defaults to ``16 + gap``)."""
    n = first.shape[0]
    width = 16 + gap if width is None else width
    canvas = torch.zeros(n, 1, 8, width, dtype=first.dtype, device=first.device)
    canvas[:, 0, :, :8] = first.reshape(n, 8, 8)
    canvas[:, 0, :, 8 + gap : 16 + gap] = second.reshape(n, 8, 8)
    return canvas


def digit_patches(gap: int) -> GradientCosineRegularizer:
    """The regularizer with the left and right digit regions (all 8 rows) as patches I and J."""
    return GradientCosineRegularizer(rect_patch(range(8), range(8)), rect_patch(range(8), range(8 + gap, 16 + gap)))


def standardize(x_train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Scale pixels to zero mean and unit std with the training images' statistics (the authors normalize
    CIFAR-10 by its channel mean and std before placing the images on a zero canvas)."""
    mean, std = x_train.mean(), x_train.std()
    return tuple((x - mean) / std for x in (x_train, *others))


def template_digits(x: torch.Tensor, y: torch.Tensor, per_class: int = TEMPLATES_PER_CLASS):
    """The first ``per_class`` digits of each class, class-major: templates (10·k, 64) and their classes (10·k,)."""
    idx = torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in range(10)])
    return x[idx], y[idx]


def pair_separation_rank(f, templates: torch.Tensor, classes: torch.Tensor | None = None, tol: float = SEP_TOL) -> dict:
    """Separation rank of a two-digit model across (digit 1 | digit 2), from its grid matrix over template digits.

    ``f`` maps a pair batch ``(batch, 2, 64)`` (first digit, second digit) to one value per pair. The grid matrix
    ``V[a, b] = f(t_a, t_b)`` has rank ≤ the separation rank of ``f`` across the two digits
    (:func:`tnml.entanglement.separation_rank` with the ``M`` templates as vector template points of 2 sites).

    Returns
    -------
    dict
        ``rank`` (relative tolerance ``tol``), ``rank_1e-2``, ``rank_float32`` (the library default ``sqrt(eps)``),
        ``erank`` (effective rank of the singular values), ``n_templates``, ``sv_head`` (first 12 singular values
        divided by the largest) and, with ``classes``, ``ideal_rank``: the rank of ``1[class a = class b]`` on the
        same templates (10 for 10 classes) — the separation rank an exact IsSameClass function needs there.
    """
    dtype, device = templates.dtype, templates.device
    grid_f = lambda pair: f(pair.to(device=device, dtype=dtype))  # noqa: E731  (the grid arrives in float64)
    res = separation_rank(grid_f, [0], n_sites=2, templates=templates.detach().cpu().double().numpy(), tol=tol)
    s = res.singular_values
    out = {
        "rank": int(res.rank),
        "rank_1e-2": int(res.rank_at(1e-2)),
        "rank_float32": int(res.rank_at(default_rtol(1, torch.float32, "sampled"))),
        "erank": float(np.exp(renyi_entropy(s))),  # effective rank: Shannon entropy of σ / Σσ
        "n_templates": int(templates.shape[0]),
        "tol": tol,
        "sv_head": [float(v) for v in (s[:12] / s[0])],
    }
    if classes is not None:
        same = (classes[:, None] == classes[None, :]).double()
        out["ideal_rank"] = numerical_rank(torch.linalg.svdvals(same), default_rtol(same.shape[0], same.dtype))
    return out


def _bce(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y.to(x.dtype))


def _norm(grads) -> float:
    return float(torch.sqrt(sum((gr.detach() ** 2).sum() for gr in grads if gr is not None)))


def gradient_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor, gap: int) -> dict[str, float]:
    """``R`` (both patch orders averaged) and the norms of the parameter gradients of BCE and of ``R`` on one batch:
    how much room the regularizer has to act on ``model`` (a model separable across the digits has ``R = 1`` and a
    zero R-gradient)."""
    params = [p for p in model.parameters() if p.requires_grad]
    reg = digit_patches(gap)
    g_bce = torch.autograd.grad(_bce(model, x, y), params)
    r = 0.5 * (reg(model, x) + reg(model, x, swap=True))
    g_r = torch.autograd.grad(r, params, allow_unused=True)
    return {"R": float(r.detach()), "grad_bce": _norm(g_bce), "grad_R": _norm(g_r), "ratio": _norm(g_r) / _norm(g_bce)}


def train_one(
    data: tuple[torch.Tensor, ...],
    gap: int,
    lam: float,
    *,
    epochs: int,
    seed: int,
    ramp: float = 0,
    start: int = 0,
    device: str = "cpu",
    templates: tuple[torch.Tensor, torch.Tensor] | None = None,
    checkpointer: Checkpointer | None = None,
    warmup: float | None = None,
) -> dict:
    """Train :func:`residual_cnn` with ``BCE + λ(t) · R`` (R on the first :data:`R_BATCH` pairs of each batch, patch
    order drawn at every step; ``λ(t) = lam · clip((t - start) / ramp, 0, 1)`` with ``t`` the fractional epoch).

    Parameters
    ----------
    data : (x_train, y_train, x_test, y_test)
        Canvases of shape (n, 1, 8, width) and int64 labels of shape (n,), as :func:`same_class_pairs` makes.
    gap : int
        Empty columns between the digits (the second digit's patch starts at column ``8 + gap``).
    lam : float
        Final regularization weight.
    ramp : float
        Epochs over which λ rises linearly from 0 (0: λ in full from epoch ``start`` on).
    start : int
        Epochs of plain BCE before the ramp begins (the experiment takes it from the λ = 0 run at the smallest gap:
        :func:`left_chance_epoch`).
    templates : (digits, classes), optional
        Template digits (M, 64) and their classes (M,): the result then holds ``separation_rank``
        (:func:`pair_separation_rank` of the trained logit).
    checkpointer : Checkpointer, optional
        Saves the model, optimizer, generator and RNG states and the history after every ``checkpointer.every``-th
        epoch and after the last; if it holds a checkpoint of this loop, training continues from it (bit-identical
        on CPU). Its ``meta["loop"]`` records gap, λ, ramp, epochs, sizes and seed, so another loop's file is refused.
    warmup : float, optional
        The former name of ``ramp``.

    Returns
    -------
    dict
        ``test_acc``, ``train_acc``, ``R_test`` (R on the first 256 test pairs, both orders averaged), ``history``:
        per epoch, ``bce`` (mean training BCE), ``R`` (R on the first ``N_MONITOR`` training pairs), ``grad_bce`` and
        ``grad_R`` (mean norms of the parameter gradients of BCE and of R over the epoch's steps; ``grad_R`` is 0
        when R is off), ``lam`` (mean λ over the epoch's steps) and ``acc`` (accuracy on ``N_ACC`` evenly spaced
        training pairs, both labels, after the epoch), and with ``templates`` ``separation_rank``.
    """
    if warmup is not None:
        ramp = warmup
    if ramp < 0 or lam < 0 or start < 0:
        raise ValueError(f"ramp={ramp} epochs, start={start} epochs and lam={lam} must be >= 0")
    xtr, ytr, xte, yte = (t.to(device) for t in data)
    width = xtr.shape[-1]
    torch.manual_seed(seed)
    model = residual_cnn(WIDTH, DOWNSAMPLES).to(device)
    params = list(model.parameters())
    reg = digit_patches(gap)
    opt = torch.optim.Adam(params, lr=LR)
    g = torch.Generator().manual_seed(seed)
    g_order = torch.Generator().manual_seed(seed + 7919)  # which digit region plays I at each step
    loop = {
        "gap": gap,
        "lambda": lam,
        "ramp": ramp,
        "start": start,
        "epochs": epochs,
        "seed": seed,
        "n_train": len(xtr),
        "n_test": len(xte),
        "width": width,
        "batch": BATCH,
        "r_batch": R_BATCH,
        "lr": LR,
        "version": 4,
    }  # fmt: skip  (4: residual CNN on a fixed canvas, λ ramp, R on a sub-batch)
    steps_per_epoch = -(-len(xtr) // BATCH)
    acc_idx = torch.linspace(0, len(xtr) - 1, min(N_ACC, len(xtr)), device=xtr.device).long()

    def both_orders(x: torch.Tensor) -> float:
        with torch.no_grad():
            return 0.5 * (reg(model, x).item() + reg(model, x, swap=True).item())

    def train_epoch(epoch: int) -> dict[str, float]:
        bce_sum, gb_sum, gr_sum, lam_sum, steps = 0.0, 0.0, 0.0, 0.0, 0
        for step, idx in enumerate(minibatches(len(xtr), BATCH, g)):
            idx = idx.to(device)
            t = epoch + step / steps_per_epoch - start
            lam_now = 0.0 if t < 0 else (lam * min(1.0, t / ramp) if ramp > 0 else lam)
            bce = _bce(model, xtr[idx], ytr[idx])
            if not torch.isfinite(bce):
                raise FloatingPointError(f"anti-locality gap={gap} λ={lam}: BCE became {bce.item()}")
            g_bce = torch.autograd.grad(bce, params)
            grads = g_bce
            sub = idx[:R_BATCH]
            if lam_now > 0 and len(sub) >= 2:
                swap = bool(torch.randint(2, (1,), generator=g_order))
                r = reg(model, xtr[sub], swap=swap)
                if not torch.isfinite(r):
                    raise FloatingPointError(f"anti-locality gap={gap} λ={lam}: R became {r.item()}")
                g_r = torch.autograd.grad(r, params, allow_unused=True)
                g_r = tuple(torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, g_r))
                gr_sum += _norm(g_r)
                grads = tuple(a + lam_now * b for a, b in zip(g_bce, g_r))
            for p, gr in zip(params, grads):
                p.grad = gr
            opt.step()
            bce_sum += bce.item() * len(idx)
            gb_sum += _norm(g_bce)
            lam_sum += lam_now
            steps += 1
        with torch.no_grad():  # evenly spaced pairs: the pairs come sorted by label (same-class first)
            train_acc = ((model(xtr[acc_idx])[:, 0] > 0).long() == ytr[acc_idx]).float().mean().item()
        return {"bce": bce_sum / len(xtr), "R": both_orders(xtr[:N_MONITOR]), "grad_bce": gb_sum / steps,
                "grad_R": gr_sum / steps, "lam": lam_sum / steps, "acc": train_acc}  # fmt: skip

    history = fit(
        model,
        opt,
        train_epoch,
        epochs=epochs,
        generators=[g, g_order],
        history={k: [] for k in ("bce", "R", "grad_bce", "grad_R", "lam", "acc")},
        checkpointer=checkpointer,
        loop=loop,
        desc="anti-locality",
    )
    model.eval()
    with torch.no_grad():
        acc = lambda x, y: ((model(x)[:, 0] > 0).long() == y).float().mean().item()  # noqa: E731
        out = {
            "test_acc": acc(xte, yte),
            "train_acc": acc(xtr, ytr),
            "R_test": both_orders(xte[:256]),
            "history": history,
        }
    if templates is not None:
        logit = lambda pair: model(place_pair(pair[:, 0], pair[:, 1], gap, width).to(device))[:, 0]  # noqa: E731
        out["separation_rank"] = pair_separation_rank(logit, templates[0].to(device), templates[1])
    return out


def left_chance_epoch(history: dict, threshold: float = LEFT_CHANCE) -> int | None:
    """Epochs of training after which the run first reached ``threshold`` training accuracy (``history["acc"]``),
    None if it never did.

    Examples
    --------
    >>> left_chance_epoch({"acc": [0.5, 0.55, 0.7, 0.8]})
    3
    """
    for epoch, acc in enumerate(history["acc"]):
        if acc >= threshold:
            return epoch + 1
    return None


def precondition(table: dict, gaps) -> dict:
    """λ = 0's test-accuracy drop from the smallest to the largest gap (seed means) and whether it reaches
    :data:`PRECONDITION_DROP`."""
    acc = table["0.0"]
    drop = acc[str(min(gaps))]["test_acc"]["mean"] - acc[str(max(gaps))]["test_acc"]["mean"]
    return {"drop": float(drop), "required": PRECONDITION_DROP, "holds": bool(drop >= PRECONDITION_DROP)}


def regularizer_gains(table: dict, gaps) -> dict:
    """Per λ > 0: the test-accuracy gain over λ = 0 at the largest gap (seed means), the summed seed stds, and
    whether the gain exceeds them."""
    far = str(max(gaps))
    base = table["0.0"][far]["test_acc"]
    out = {}
    for lam, per_gap in table.items():
        if float(lam) == 0:
            continue
        a = per_gap[far]["test_acc"]
        gain, noise = a["mean"] - base["mean"], a["std"] + base["std"]
        out[lam] = {"gain": float(gain), "summed_std": float(noise), "helps": bool(gain > noise)}
    return out


@register_experiment(
    "anti-locality",
    "P3: IsSameClass on two embedded digits at growing distance on a fixed canvas, a residual CNN with global "
    "average pooling, gradient-cosine regularizer λ ∈ {0, 9} (full: {0, 1, 9}; λ ramp): accuracy and separation "
    "rank vs distance",
)
def run(cfg: RunConfig) -> ExperimentResult:
    gaps, n_seeds, n_train, epochs = SETTINGS[cfg.quick]
    lambdas = LAMBDAS if cfg.quick else LAMBDAS_FULL
    ramp = min(RAMP[cfg.quick], epochs)
    t0 = time.perf_counter()
    xtr, xte, ytr, yte = digits(seed=cfg.seed)
    xtr, xte = standardize(xtr, xte)
    templates = template_digits(xte, yte)
    runs: dict[str, dict[int, list[dict]]] = {str(lam): {gap: [] for gap in gaps} for lam in lambdas}
    init: dict[str, list[dict]] = {str(gap): [] for gap in gaps}
    starts: list[int | None] = []
    bar = progress_bar(total=len(gaps) * n_seeds * len(lambdas), desc="anti-locality", leave=False,
                       dynamic_ncols=True)
    for s in range(n_seeds):
        seed = cfg.seed + s
        start = epochs
        for gap in sorted(gaps):  # the smallest gap first: its λ = 0 run decides when λ starts for this seed
            gen = torch.Generator().manual_seed(10_000 * gap + seed)
            train = same_class_pairs(xtr, ytr, n_train, gap, gen, CANVAS)
            test = same_class_pairs(xte, yte, N_TEST, gap, gen, CANVAS)
            with torch.random.fork_rng():  # the initialization train_one starts from
                torch.manual_seed(seed)
                model0 = residual_cnn(WIDTH, DOWNSAMPLES).to(cfg.device)
            x0, y0 = train[0][:BATCH].to(cfg.device), train[1][:BATCH].to(cfg.device)
            init[str(gap)].append(gradient_ratio(model0, x0, y0, gap))
            for lam in sorted(lambdas):
                ck = cfg.checkpointer(f"lam{lam:g}_gap{gap}_seed{seed}", n_train_pairs=n_train, n_test_pairs=N_TEST)
                out = train_one((*train, *test), gap, lam, epochs=epochs, seed=seed, ramp=ramp, start=start,
                                device=cfg.device, templates=templates, checkpointer=ck)  # fmt: skip
                runs[str(lam)][gap].append(out)
                if lam == 0 and gap == min(gaps):
                    left = left_chance_epoch(out["history"])
                    starts.append(left)
                    start = epochs if left is None else left
                bar.update()
    bar.close()
    stat = lambda v: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": v}  # noqa: E731
    table = {
        lam: {
            str(gap): {
                **{key: stat([r[key] for r in rs]) for key in ("test_acc", "train_acc", "R_test")},
                "separation_rank": stat([r["separation_rank"]["rank"] for r in rs]),
                "separation_erank": stat([r["separation_rank"]["erank"] for r in rs]),
                "final_R_train": stat([r["history"]["R"][-1] for r in rs]),
                "mean_grad_ratio_R_over_bce": stat(
                    [float(np.mean(np.array(r["history"]["grad_R"]) / np.array(r["history"]["grad_bce"]))) for r in rs]
                ),
            }
            for gap, rs in per_gap.items()
        }
        for lam, per_gap in runs.items()
    }
    pre = precondition(table, gaps)
    gains = regularizer_gains(table, gaps)
    support = unit_column_support(residual_cnn(WIDTH, DOWNSAMPLES))
    init_stats = {gap: {k: stat([d[k] for d in ds]) for k in ("R", "grad_bce", "grad_R", "ratio")}
                  for gap, ds in init.items()}  # fmt: skip
    metrics = {
        "gaps": list(gaps),
        "lambdas": list(lambdas),
        "lambda_ramp_epochs": ramp,
        "lambda_start_epoch_per_seed": starts,
        "canvas": [8, CANVAS],
        "model": f"residual_cnn(width={WIDTH}, downsamples={DOWNSAMPLES}): global average pooling over a 1 × "
        f"{len(support)} map",
        "unit_column_support": support,
        "init_R_and_gradients": init_stats,
        "n_seeds": n_seeds,
        "n_train_pairs": n_train,
        "n_test_pairs": N_TEST,
        "epochs": epochs,
        "batch": BATCH,
        "r_batch": R_BATCH,
        "separation_rank_templates": int(templates[0].shape[0]),
        "separation_rank_per_run": {
            lam: {str(gap): [r["separation_rank"] for r in rs] for gap, rs in per_gap.items()}
            for lam, per_gap in runs.items()
        },  # fmt: skip
        "histories": {
            lam: {str(gap): [r["history"] for r in rs] for gap, rs in per_gap.items()} for lam, per_gap in runs.items()
        },  # fmt: skip
        "results": table,
        "precondition": pre,
        "gain_at_largest_gap": gains,
        "seconds": time.perf_counter() - t0,
    }
    _plot(table, gaps, cfg.out_dir / "accuracy_vs_distance.png")
    return _result(metrics, table, gaps, lambdas, init_stats, n_seeds, n_train, epochs, ramp)


def _result(metrics, table, gaps, lambdas, init_stats, n_seeds, n_train, epochs, ramp) -> ExperimentResult:
    """Short table rows, claims with the verdicts the run measured, and notes (only this run's numbers)."""
    fmt = lambda a: f"{100 * a['mean']:.1f} ± {100 * a['std']:.1f} %"  # noqa: E731
    far, near = str(max(gaps)), str(min(gaps))
    acc = lambda lam, gap: table[str(lam)][gap]["test_acc"]  # noqa: E731
    sep = lambda lam, gap: table[str(lam)][gap]["separation_rank"]["mean"]  # noqa: E731
    pre, gains = metrics["precondition"], metrics["gain_at_largest_gap"]
    lam_hi = max(lambdas)
    comparisons = [
        Comparison(f"accuracy, λ = 0, gap {near}", fmt(acc(0.0, near)), f"{THESIS_LAMBDA0[0]} %",
                   "thesis: CIFAR-10 pairs on a 224² canvas, ResNet18, distance 0"),
        Comparison(f"accuracy, λ = 0, gap {far}", fmt(acc(0.0, far)), f"{THESIS_LAMBDA0[-1]} %",
                   "thesis: distance 160 (chance level)"),
        Comparison(f"λ = 0: accuracy lost from gap {near} to {far}", f"{100 * pre['drop']:.1f} points",
                   f"{THESIS_LAMBDA0[0] - THESIS_LAMBDA0[-1]:.1f} points",
                   f"the precondition (at least {100 * PRECONDITION_DROP:.0f} points here): the regularizer can only "
                   "recover a loss that distance causes"),
    ]  # fmt: skip
    for lam in lambdas[1:]:
        gn = gains[str(lam)]
        comparisons += [
            Comparison(f"accuracy, λ = {lam:g}, gap {near}", fmt(acc(lam, near)), None, "no thesis number"),
            Comparison(f"accuracy, λ = {lam:g}, gap {far}", fmt(acc(lam, far)),
                       f"{THESIS_LAMBDA1_FAR} %" if lam == 1 else None,
                       "thesis: λ = 1 at distance 160 (CIFAR-10, ResNet18)" if lam == 1 else "no thesis number"),
            Comparison(f"gain of λ = {lam:g} over λ = 0, gap {far}",
                       f"{100 * gn['gain']:+.1f} points (stds {100 * gn['summed_std']:.1f})",
                       f"{THESIS_LAMBDA1_FAR - THESIS_LAMBDA0[-1]:+.1f} points" if lam == 1 else None,
                       "a gain counts only above the summed seed stds of both λ"),
        ]  # fmt: skip
    comparisons += [
        Comparison(f"separation rank, gap {far}, λ = " + " / ".join(f"{lam:g}" for lam in lambdas),
                   " / ".join(f"{sep(lam, far):.1f}" for lam in lambdas), None,
                   f"seed means, trained logit across (digit 1 | digit 2) on {metrics['separation_rank_templates']} "
                   f"template digits (tolerance {SEP_TOL:g}); an exact IsSameClass function needs 10 there; gap "
                   f"{near}: " + " / ".join(f"{sep(lam, near):.1f}" for lam in lambdas)),
        Comparison(f"untrained |∇R| / |∇BCE|, gap {near} / {far}",
                   f"{init_stats[near]['ratio']['mean']:.3g} / {init_stats[far]['ratio']['mean']:.3g}", None,
                   f"parameter gradients on {BATCH} training pairs, mean over seeds; R = "
                   f"{init_stats[near]['R']['mean']:.3f} / {init_stats[far]['R']['mean']:.4f}: a model separable "
                   "across the digits has R = 1 and no R-gradient, so R has nothing to act on"),
    ]  # fmt: skip
    helps = [lam for lam, g in gains.items() if g["helps"]]
    best = max(gains, key=lambda lam: gains[lam]["gain"])
    rank_up = (
        sep(lam_hi, far)
        > sep(0.0, far)
        + table["0.0"][far]["separation_rank"]["std"]
        + table[str(lam_hi)][far]["separation_rank"]["std"]
    )
    claims = [
        Claim(f"distance hurts at λ = 0 (≥ {100 * PRECONDITION_DROP:.0f} points), receptive field covers the canvas",
              "reproduced" if pre["holds"] else "not reproduced",
              f"{fmt(acc(0.0, near))} → {fmt(acc(0.0, far))}, {n_seeds} seeds"),
        Claim("λ > 0 recovers accuracy at the largest distance", "reproduced" if helps else "not reproduced",
              f"best λ = {float(best):g}: {100 * gains[best]['gain']:+.1f} points, stds "
              f"{100 * gains[best]['summed_std']:.1f}"),
        Claim(f"λ = {lam_hi:g} raises the separation rank across the two digits at the largest gap",
              "reproduced" if rank_up else "not reproduced",
              f"rank {sep(0.0, far):.1f} → {sep(lam_hi, far):.1f} at gap {far}"),
    ]  # fmt: skip
    about = (
        "P3's IsSameClass test of the gradient-cosine regularizer on embedded digits: two 8×8 digits on an 8 × "
        f"{CANVAS} canvas, a residual CNN with global average pooling, BCE + λR. It asks whether distance hurts "
        "without the regularizer and whether λ > 0 recovers the loss. Measured numbers of earlier explorations: "
        "docs/science/anti-locality-evidence.md."
    )
    notes = [
        f"This run: gaps {list(gaps)}, λ ∈ {list(lambdas)} (0 until the λ = 0 run at gap {min(gaps)} reached "
        f"{100 * LEFT_CHANCE:.0f} % training accuracy — after epochs {metrics['lambda_start_epoch_per_seed']} "
        f"per seed, None: never — then ramped linearly over {ramp:g} epochs), "
        f"{n_seeds} seeds, {n_train} training pairs, {N_TEST} test pairs, {epochs} epochs, batch {BATCH} (R on "
        f"{R_BATCH} pairs of each batch), Adam lr {LR:g}, residual_cnn(width={WIDTH}, downsamples={DOWNSAMPLES}); "
        f"{metrics['seconds']:.0f} s.",
        "Conditions that differ from P3: a small BatchNorm-free residual CNN instead of ResNet18, 8×8 digits instead "
        "of CIFAR-10 on 224², fewer pairs and epochs, Adam instead of SGD, R on a sub-batch, and the λ ramp.",
    ]
    return ExperimentResult(metrics, comparisons, ["accuracy_vs_distance.png"], claims=claims, about=about,
                            notes=notes)  # fmt: skip


def _plot(table: dict, gaps: tuple[int, ...], path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    dist = [8 + g for g in gaps]  # distance between the digits' left edges, in pixels
    for lam, per_gap in table.items():
        for ax, key in zip(axes, ("test_acc", "separation_rank")):
            m = np.array([per_gap[str(g)][key]["mean"] for g in gaps])
            s = np.array([per_gap[str(g)][key]["std"] for g in gaps])
            ax.errorbar(dist, m, yerr=s, marker="o", capsize=3, label=f"λ = {float(lam):g}")
    axes[0].axhline(0.5, color="gray", ls=":", lw=1, label="chance")
    axes[0].set(xlabel="distance between digits (pixels)", ylabel="test accuracy", title="IsSameClass, residual CNN")
    axes[1].set(xlabel="distance between digits (pixels)", ylabel="separation rank (grid matrix)",
                title="digit 1 | digit 2")  # fmt: skip
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
