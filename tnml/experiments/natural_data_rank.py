"""Experiment ``natural-data-rank``: natural data has low tensor rank (P2).

Binarized 8×8 digits turn one-vs-all prediction into *tensor completion*: an image ``x ∈ {0,1}^64`` indexes an
entry of an order-64 tensor with modes of size 2, and the entry's value is the label. A CP model of rank ``R``
with one-hot inputs, ``f(x) = ⟨⊗_n onehot(x_n), W⟩ = Σ_r Π_n W[n, x_n, r]``, is exactly a rank-``R`` CP tensor
``W`` evaluated at the observed entries. Fitting ranks 1..15 to the original data, to random images (pixels
i.i.d. Bernoulli with the data's fraction of lit pixels, labels kept) and to random labels (labels permuted)
shows whether the data tensor is close to low rank: P2 finds the original MNIST/Fashion-MNIST fit far better at
low rank than either randomized version.

Conventions (those of P2's released code): positive class 6, targets 2 (class 6) and 0 (every other class),
squared loss; reported errors are **MSE / 4**, which is the MSE of ``f/2`` against the 0/1 indicator -- the
constant predictor then scores the label variance ``p(1 − p) ≈ 0.09``. Pixels are on iff ``value ≥ 8`` of 16
(``x ≥ 0.5`` after scaling to [0, 1]). Optimizer: Adam, full batch, with every factor entry clamped to
``[−1.02, 1.02]`` after each step (P2's ``max_weights_value``).

Departures from P2's code: 8×8 scikit-learn digits (1 437 training images) instead of 28×28 MNIST (60 000), so
numbers are comparable only qualitatively; random images draw each pixel Bernoulli(fraction of lit pixels)
where P2 draws them uniformly (p = 1/2); the init is ``(mean target / R)^(1/64)·(1 + 0.1·N(0, 1))`` per entry
instead of ``1 + 1e-3·N(0, 1)`` (which predicts ``R`` everywhere and stalls; see :func:`fit_rank`); a fixed
number of full-batch steps instead of 10 000 epochs of mini-batches. ``--quick``: ranks 1, 2, 4, 8, 15 and one
seed; full: ranks 1..15 and 3 seeds (each seed redraws the split, the randomizations and the init).

Resumable: with ``--checkpoint-every N`` every fit (seed, dataset, rank) saves every ``N *``
:data:`CHECKPOINT_STEPS` steps and when it ends; ``--resume`` skips finished fits and continues the interrupted one.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from tnml.checkpoint import Checkpointer
from tnml.datasets.embedded import digits
from tnml.experiments._common import one_thread, pyplot
from tnml.experiments.registry import Claim, Comparison, ExperimentResult, RunConfig, register_experiment
from tnml.io import save_figure
from tnml.networks import CP
from tnml.training import fit

N_PIXELS, THRESHOLD, POSITIVE_CLASS, POS_VALUE, NEG_VALUE = 64, 0.5, 6, 2.0, 0.0
LR, CLAMP, INIT_REL_STD = 1e-2, 1.02, 0.1
DATASETS = ("original", "random images", "random labels")
#: thesis [fig] (MNIST, MSE/4): {(dataset, rank): (train, test)}; None where the plot gives no number
THESIS = {
    ("original", 1): (0.022, 0.024),
    ("original", 15): (0.002, 0.03),
    ("random images", 15): (0.015, 0.15),
    ("random labels", 15): (0.044, None),
}
THESIS_LABEL_VARIANCE = 0.09
#: (ranks, number of seeds, Adam steps) of the quick and full versions
SETTINGS = {True: ((1, 2, 4, 8, 15), 1, 500), False: (tuple(range(1, 16)), 3, 1500)}
#: Adam steps per checkpoint interval: ``--checkpoint-every N`` saves a :func:`fit_rank` run every
#: ``N * CHECKPOINT_STEPS`` steps and at its end (a step costs ~1-5 ms here, a save a few ms)
CHECKPOINT_STEPS = 100


# ------------------------------------------------------------------------------------------------ data
def binarize(x: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """Pixels in [0, 1] → ``{0, 1}`` (``1`` iff ``x >= threshold``), as int64 mode indices.

    Parameters
    ----------
    x : Tensor, shape (n, n_pixels), values in [0, 1]

    Returns
    -------
    LongTensor, shape (n, n_pixels)
    """
    return (x >= threshold).long()


def targets(labels: torch.Tensor, positive: int = POSITIVE_CLASS) -> torch.Tensor:
    """One-vs-all tensor entries: ``POS_VALUE`` where ``labels == positive``, else ``NEG_VALUE``; shape (n,)."""
    return torch.where(labels == positive, POS_VALUE, NEG_VALUE).float()


def random_images(n: int, n_pixels: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """``(n, n_pixels)`` i.i.d. Bernoulli(``p``) pixels as int64 (the same marginal as the data for ``p`` = the
    data's fraction of lit pixels)."""
    return (torch.rand(n, n_pixels, generator=generator) < p).long()


def permute_labels(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``y`` under a uniformly random permutation (class proportions kept, link to the images broken)."""
    return y[torch.randperm(len(y), generator=generator)]


def make_datasets(seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The three completion problems ``{name: (x_train, y_train, x_test, y_test)}`` of one seed.

    The digits split (80/20, stratified) uses ``seed``; random images are drawn afresh for train and test with
    the training images' fraction of lit pixels; random labels permute train and test labels separately.
    """
    xtr, xte, ltr, lte = digits(seed=seed)
    btr, bte = binarize(xtr), binarize(xte)
    ytr, yte = targets(ltr), targets(lte)
    g = torch.Generator().manual_seed(10_000 + seed)
    p = float(btr.float().mean())
    return {
        "original": (btr, ytr, bte, yte),
        "random images": (random_images(len(btr), N_PIXELS, p, g), ytr, random_images(len(bte), N_PIXELS, p, g), yte),
        "random labels": (btr, permute_labels(ytr, g), bte, permute_labels(yte, g)),
    }


# ------------------------------------------------------------------------------------------------ model
def onehot_cp(n_modes: int, rank: int, init_mean: float, init_rel_std: float, seed: int, device: str = "cpu") -> CP:
    r"""The rank-``R`` CP tensor over ``{0, 1}^N`` evaluated at given entries: the library's
    ``CP(n_modes, 2, rank, None, feature_map="onehot")``,
    :math:`f(x) = \langle \otimes_n \mathrm{onehot}(x_n), W\rangle = \sum_r \prod_n A[n, x_n, r]`
    with ``A[n] = core(f"site{n}")``. Its forward gathers the factor rows the pixels select (the one-hot route of
    the star plan, :meth:`tnml.TNModel.contract_input`): no one-hot vectors are built.

    Parameters
    ----------
    n_modes, rank : int
    init_mean, init_rel_std : float
        Entries start i.i.d. ``init_mean · (1 + init_rel_std · N(0, 1))``, drawn as one ``(n_modes, 2, rank)``
        tensor on the CPU from a generator seeded with ``seed`` (the draws of the experiment's earlier
        hand-written model).
    seed : int
    device : str

    Returns
    -------
    CP
        In float32 (the default dtype); ``model.parameters()`` are the factors and nothing else.

    Examples
    --------
    >>> m = onehot_cp(4, 3, init_mean=1.0, init_rel_std=0.1, seed=0)
    >>> m(torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]])).shape
    torch.Size([2])
    """
    model = CP(n_modes, 2, rank, None, feature_map="onehot", device=device)
    g = torch.Generator().manual_seed(seed)
    factors = torch.empty(n_modes, 2, rank).normal_(0.0, init_rel_std, generator=g).add_(1.0).mul_(init_mean)
    with torch.no_grad():
        for n in range(n_modes):
            model.core(f"site{n}").copy_(factors[n])
    return model


def fit_rank(
    data, rank: int, steps: int, seed: int, device: str = "cpu", checkpointer: Checkpointer | None = None
) -> dict:
    """Fit a rank-``rank`` CP (:func:`onehot_cp`) by full-batch Adam; train/test MSE/4 at the end.

    The init mean ``(mean target / R)^(1/N)`` makes the initial prediction the mean target (a start at
    ``init_mean = 1`` predicts ``R`` everywhere and, with identical components, stalls for thousands of steps).

    ``checkpointer`` (optional) saves the model, the Adam state and the step every
    ``checkpointer.every * CHECKPOINT_STEPS`` steps, and the errors at the end; if it holds a checkpoint of this
    fit, training continues from it (bit-identical on CPU), or a finished fit returns its errors at once. Its
    ``meta["loop"]`` records the sizes and hyper-parameters, so another fit's file is refused.
    """
    xtr, ytr, xte, yte = (t.to(device) for t in data)
    torch.manual_seed(seed)
    mean = (max(float(ytr.mean()), 1e-3) / rank) ** (1.0 / xtr.shape[1])
    model = onehot_cp(xtr.shape[1], rank, init_mean=mean, init_rel_std=INIT_REL_STD, seed=seed, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loop = {
        "n_train": len(xtr),
        "n_test": len(xte),
        "n_modes": int(xtr.shape[1]),
        "rank": rank,
        "steps": steps,
        "seed": seed,
        "lr": LR,
        "clamp": CLAMP,
        "init_rel_std": INIT_REL_STD,
    }

    def step(k: int) -> None:
        opt.zero_grad(set_to_none=True)
        loss = (model(xtr) - ytr).pow(2).mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p in model.parameters():  # the factors (a one-hot CP has no other parameter)
                p.clamp_(-CLAMP, CLAMP)

    def finish(done: int, stopped: bool) -> dict[str, float]:
        with torch.no_grad():
            train = float((model(xtr) - ytr).pow(2).mean()) / 4
            test = float((model(xte) - yte).pow(2).mean()) / 4
        if not (np.isfinite(train) and np.isfinite(test)):
            raise FloatingPointError(f"rank {rank}: the fit diverged (train MSE/4 {train}); lower LR")
        return {"train": train, "test": test}

    result = fit(model, opt, step, epochs=steps, checkpointer=checkpointer, loop=loop, save_unit=CHECKPOINT_STEPS,
                 finish=finish, desc="natural-data-rank", unit="step")  # fmt: skip
    return {k: float(v) for k, v in result.items()}


# ------------------------------------------------------------------------------------------------ run
@register_experiment(
    "natural-data-rank",
    "P2: binarized digits as an order-64 tensor completion; CP ranks 1..15 fit original data far better than "
    "random images or random labels",
)
def run(cfg: RunConfig) -> ExperimentResult:
    from tnml.training import progress_bar

    ranks, n_seeds, steps = SETTINGS[cfg.quick]
    t0 = time.perf_counter()
    errors: dict[str, dict[int, dict[str, list[float]]]] = {
        name: {r: {"train": [], "test": []} for r in ranks} for name in DATASETS
    }
    label_var = []
    with one_thread():  # small dense ops
        jobs = [(s, name, r) for s in range(n_seeds) for name in DATASETS for r in ranks]
        bar = progress_bar(total=sum(r for *_, r in jobs), desc="natural-data-rank", leave=False, dynamic_ncols=True)
        for s in range(n_seeds):
            sets = make_datasets(cfg.seed + s)
            n_train = len(sets["original"][0])
            ytr = sets["original"][1] / POS_VALUE
            label_var.append(float(ytr.var(unbiased=False)))
            for name in DATASETS:
                for r in ranks:
                    ck = cfg.checkpointer(f"seed{s}_{name.replace(' ', '-')}_rank{r}", dataset=name)
                    out = fit_rank(
                        sets[name], r, steps, seed=1000 * (cfg.seed + s) + r, device=cfg.device, checkpointer=ck
                    )
                    for k in ("train", "test"):
                        errors[name][r][k].append(out[k])
                    bar.update(r)
        bar.close()
    mean = {n: {r: {k: float(np.mean(v)) for k, v in errors[n][r].items()} for r in ranks} for n in DATASETS}
    std = {n: {r: {k: float(np.std(v)) for k, v in errors[n][r].items()} for r in ranks} for n in DATASETS}
    metrics = {
        "ranks": list(ranks),
        "n_seeds": n_seeds,
        "steps": steps,
        "optimizer": f"Adam lr {LR}, full batch, entries clamped to ±{CLAMP}",
        "init": f"entries (mean target / R)^(1/64) · (1 + {INIT_REL_STD}·N(0,1))",
        "binarization": f"pixel on iff value/16 >= {THRESHOLD}",
        "task": f"class {POSITIVE_CLASS} vs rest, targets {POS_VALUE:g}/{NEG_VALUE:g}; errors are MSE/4",
        "n_train": n_train,
        "label_variance": float(np.mean(label_var)),
        "errors": {n: {str(r): errors[n][r] for r in ranks} for n in DATASETS},
        "mean": {n: {str(r): mean[n][r] for r in ranks} for n in DATASETS},
        "std": {n: {str(r): std[n][r] for r in ranks} for n in DATASETS},
        "seconds": time.perf_counter() - t0,
    }
    full_ranks, full_seeds, full_steps = SETTINGS[False]
    seeds_note = f"mean of {n_seeds} seed{'s' if n_seeds > 1 else ''}; {steps} Adam steps" + (
        f" (--quick; the full run: ranks {full_ranks[0]}..{full_ranks[-1]}, {full_seeds} seeds, {full_steps} steps)"
        if cfg.quick
        else ""
    )
    lo, hi = ranks[0], ranks[-1]
    comparisons = [
        Comparison(
            "label variance p(1 − p) (MSE/4 of the best constant)",
            round(float(np.mean(label_var)), 4),
            THESIS_LABEL_VARIANCE,
            "digits, class 6 vs rest (MNIST in the thesis)",
        )
    ]
    for (name, r), (tr, te) in THESIS.items():
        rr = r if r in mean[name] else hi
        comparisons.append(
            Comparison(
                f"{name}, rank {rr}: train / test MSE/4",
                f"{mean[name][rr]['train']:.4f} / {mean[name][rr]['test']:.4f}",
                f"{tr} / {'-' if te is None else te}",
                f"8×8 digits ({n_train} train images) vs MNIST (60 000) [fig]; {seeds_note}",
            )
        )
    low = ranks[min(2, len(ranks) - 1)]
    below = mean["original"][low]["train"] < min(mean[n][low]["train"] for n in DATASETS[1:])
    comparisons.append(
        Comparison(
            f"rank {low} train MSE/4: original vs random images, labels",
            " vs ".join(f"{mean[n][low]['train']:.4f}" for n in DATASETS),
            "original far below both",
            f"original is {'below' if below else 'NOT below'} both randomized versions; ranks {lo}..{hi} in the plot",
            key=True,
        )
    )
    others = min(mean[n][low]["train"] for n in DATASETS[1:])
    ratio = mean["original"][low]["train"] / others if others > 0 else float("inf")
    claims = [
        Claim(
            "natural data fits far better than random data at low rank",
            ("reproduced" if ratio < 0.5 else "reproduced with differences") if below else "not reproduced",
            f"rank {low} train MSE/4 {ratio:.2f}x the randomized",
        )
    ]
    _plot(mean, std, ranks, cfg.out_dir / "natural_data_rank.png")
    return ExperimentResult(
        metrics,
        comparisons,
        ["natural_data_rank.png"],
        claims=claims,
        about="Binarized digits posed as an order-64 tensor completion problem: CP models of low rank fit the "
        "original images far better than the same images with shuffled pixels or shuffled labels — natural data "
        "has low tensor rank (P2: Razin, Maman & Cohen, ICML 2021; MNIST there, scikit-learn's 8x8 digits here).",
    )


def _plot(mean: dict, std: dict, ranks, path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    colors = {"original": "C0", "random images": "C1", "random labels": "C2"}
    for ax, split in zip(axes, ("train", "test")):
        for name in DATASETS:
            m = np.array([mean[name][r][split] for r in ranks])
            s = np.array([std[name][r][split] for r in ranks])
            ax.plot(ranks, m, "o-", color=colors[name], label=name, ms=4)
            ax.fill_between(ranks, m - s, m + s, color=colors[name], alpha=0.2)
        for (name, r), vals in THESIS.items():
            v = vals[0 if split == "train" else 1]
            if v is not None:
                ax.plot([r], [v], "x", color=colors[name], ms=8)
        ax.set(xlabel="CP rank", title=f"{split} (× = thesis, MNIST)")
    axes[0].set_ylabel("MSE / 4")
    axes[0].legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
