"""P5 on the locally connected tensor network itself: a bond sweep of the TTN over feature orders, with the QE of the
data it fits measured where the estimate is not saturated.

Part of the ``data-suitability`` experiment (:mod:`tnml.experiments.data_suitability`). P5's theorem (Alexander,
De La Vega, Razin, Cohen, NeurIPS 2023) concerns a locally connected tensor network of inner bond ``R``: it fits a
data tensor well iff the tensor's QE across every canonical partition is low (at most about ``ln R``). Read as a
prediction: an order of the features with lower QE should be fitted *at a smaller bond*. At a wide bond (8) every
order of DNA is fitted (≈ 95 %), so the order can only show where the bond is the bottleneck; this module sweeps it.

For every task, seed, feature order (``original`` / ``random`` / ``rearranged`` / ``igtd``, built by
:func:`~tnml.experiments.data_suitability.build_orders`) and bond ``R`` it trains the experiment's TTN
(:func:`~tnml.experiments.data_suitability.train_ttn`: contiguous binary pooling in 1-D, 2×2 windows in 2-D, trig map,
:class:`~tnml.networks.NormalizedLogits`) and reports

* test accuracy vs bond per order (mean ± std over seeds);
* the smallest bond at which an order reaches 90 % of the original order's accuracy at its best bond
  (:func:`smallest_bond`);
* the QE per canonical level of the data the TTN sees (its min–max inputs under its own map), estimated from ``M``
  samples in one batch, with ``QE / ln M`` per level: a level whose QE is near ``ln M`` is *saturated* (the batch,
  not the data, bounds it) and cannot rank orders (:func:`qe_profile`);
* Spearman's rank correlation, within each task, between an order's QE (mean over the unsaturated levels) and the
  smallest bond it needs (:func:`qe_bond_correlation`): P5's theorem predicts a positive one.

Tasks: ``dna`` (Statlog DNA, 180 binary features) and ``digits-1d`` (scikit-learn's 8 × 8 digits read row by row
as 64 features), where a pixel permutation costs the bond-2 tree several points; the full version adds
``digits-16x16`` (the digits upsampled to 16 × 16, :func:`~tnml.datasets.digits_upsampled`, on the 2-D tree of 2 × 2
windows).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tnml.entanglement import data_entanglement
from tnml.experiments import data_suitability as ds
from tnml.experiments._common import pyplot
from tnml.experiments.registry import Comparison
from tnml.io import save_figure

#: unsaturated: every order's QE at this level is below this fraction of ``ln M``
SATURATION = 0.9
#: an order "fits" at bond R when its mean test accuracy reaches this fraction of the original order's best
FIT_FRACTION = 0.9
#: a stricter criterion reported beside it: within 1 % of the original's best (at 90 % every order of DNA and of
#: 1-D digits reached the target at bond 3 in the quick run, so that criterion cannot rank orders there)
STRICT_FIT_FRACTION = 0.99


@dataclass(frozen=True)
class SweepSettings:
    #: tasks (see :func:`load_sweep_task`)
    tasks: tuple[str, ...]
    bonds: tuple[int, ...]
    seeds: int
    epochs: int
    lr: float = 1e-2
    #: samples ``M`` of the one QE batch per task (capped by the training split); 0 skips QE
    qe_samples: tuple[int, ...] = (1000, 1000)
    #: seeds on which QE is measured (the first ones)
    qe_seeds: int = 1


SWEEP_SETTINGS = {
    True: SweepSettings(("dna", "digits-1d"), (2, 3, 4), seeds=3, epochs=6, qe_samples=(1000, 800), qe_seeds=1),
    False: SweepSettings(("dna", "digits-1d", "digits-16x16"), (1, 2, 3, 4, 5, 6), seeds=5, epochs=10,
                         qe_samples=(2000, 1347, 1437), qe_seeds=5),
}


def load_sweep_task(name: str, seed: int) -> ds.Task:
    """``digits-16x16`` (digits upsampled to 16 × 16, 2-D, seeded 80/20 split) or any task of
    :func:`~tnml.experiments.data_suitability.load_task` (e.g. ``dna``)."""
    if name == "digits-16x16":
        from tnml.datasets import digits_upsampled

        xtr, xte, ytr, yte = digits_upsampled(16, seed=seed, dtype=torch.float64)
        return ds.Task(name, xtr.numpy(), xte.numpy(), ytr.numpy(), yte.numpy(), 2, (16, 16), 10)
    return ds.load_task(name, seed)


def qe_profile(task: ds.Task, perm: np.ndarray, n_samples: int, seed: int) -> dict:
    """QE per canonical level of the data the TTN sees, from one batch of ``M = min(n_samples, n_train)`` training
    samples (the exact Gram route of :func:`~tnml.entanglement.data_entanglement`).

    The TTN's inputs (:func:`~tnml.experiments.data_suitability.ttn_inputs`) in order ``perm`` under its trig map
    (θ = :data:`~tnml.experiments.data_suitability.TTN_THETA`), labels one-vs-rest for more than two classes. From
    ``M`` samples the QE across a cut is at most ``ln M``; ``fraction`` = QE / ln M per level shows how close each
    level is to that ceiling.

    Returns
    -------
    dict
        ``n_samples`` (M), ``levels`` {level: QE in nats}, ``fraction`` {level: QE / ln M}.
    """
    x = ds.apply_order(ds.ttn_inputs(task.x_train, task.x_train), perm)
    m = int(min(n_samples, len(x)))
    if task.dims == 2:
        assert task.shape is not None  # 2-D tasks carry their grid
        x = x.reshape(len(x), *task.shape)
    res = data_entanglement(x, task.y_train, theta=ds.TTN_THETA, batch_size=m, n_batches=1, seed=seed)
    lv = {int(k): float(v) for k, v in res.levels.items()}
    return {"n_samples": m, "levels": lv, "fraction": {k: v / np.log(m) for k, v in lv.items()}}


def smallest_bond(bonds, accuracy, target: float) -> int | None:
    """The smallest bond in ``bonds`` (ascending) whose ``accuracy`` reaches ``target``; None if none does.

    >>> smallest_bond([1, 2, 3], [0.5, 0.8, 0.9], 0.85)
    3
    """
    for b, a in zip(bonds, accuracy):
        if a >= target:
            return int(b)
    return None


def unsaturated_levels(profiles: dict[str, dict]) -> list[int]:
    """Levels at which every order's QE is below :data:`SATURATION` ``· ln M`` (``profiles``: order -> the
    :func:`qe_profile` of one seed, or a mean of them)."""
    levels = sorted(next(iter(profiles.values()))["fraction"])
    return [lv for lv in levels if all(p["fraction"][lv] < SATURATION for p in profiles.values())]


def spearman(a, b) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def qe_bond_correlation(points: list[dict]) -> dict:
    """Spearman correlation of QE with the smallest fitting bond and with the mean accuracy over the swept bonds
    (the area under the accuracy-vs-bond curve: higher when an order fits earlier) over ``points`` (one per order
    and QE seed: keys ``qe``, ``bond`` (None: never fits, ranked above every swept bond), ``acc_mean_over_bonds``)."""
    out = {"n": len(points), "qe_vs_bond": float("nan"), "qe_vs_acc_over_bonds": float("nan")}
    if not points:
        return out
    qe = [p["qe"] for p in points]
    for key in ("bond", "bond_strict"):
        if key in points[0]:
            big = max([p[key] for p in points if p[key] is not None], default=0) + 1
            out[f"qe_vs_{key}"] = spearman(qe, [big if p[key] is None else p[key] for p in points])
    out["qe_vs_acc_over_bonds"] = spearman(qe, [p["acc_mean_over_bonds"] for p in points])
    return out


def bond_sweep(task_name: str, bonds, seeds, *, epochs: int, lr: float = 1e-2, qe_samples: int = 1000,
               qe_seeds=(), orders=ds.ORDERS, device: str = "cpu", checkpointer=None) -> dict:
    """Train the TTN at every bond in ``bonds`` on every order and seed of ``task_name``; QE on ``qe_seeds``.

    Parameters
    ----------
    task_name : str
        See :func:`load_sweep_task`.
    bonds : sequence of int, ascending
    seeds : sequence of int
        One data split, permutation and initialization per seed.
    epochs, lr : training of :func:`~tnml.experiments.data_suitability.train_ttn`
    qe_samples : int
        Samples of the QE batch (0: no QE).
    qe_seeds : sequence of int
        Seeds (among ``seeds``) whose orders get a :func:`qe_profile`.
    checkpointer : callable tag -> Checkpointer or None, optional
        As in :func:`~tnml.experiments.data_suitability.compare_orders` (tags ``sweep_TASK_ORDER_bR_seedS``).

    Returns
    -------
    dict
        ``bonds``, ``seeds``, per order ``acc`` {bond: [per seed]}, ``acc_mean``/``acc_std`` (per bond, lists),
        ``smallest_bond`` (of the mean curve), ``smallest_bond_per_seed``, ``qe`` (list of profiles), ``qe_levels``
        and ``qe_fraction`` (means over QE seeds); ``target`` (90 % of the original order's best mean accuracy),
        ``unsaturated_levels``, ``correlation`` (:func:`qe_bond_correlation`) and ``seconds``.
    """
    ck = checkpointer or (lambda tag: None)
    bonds = [int(b) for b in bonds]
    t0 = time.perf_counter()
    acc: dict[str, dict[int, list[float]]] = {o: {b: [] for b in bonds} for o in orders}
    profiles: dict[str, list] = {o: [] for o in orders}
    profile_seeds: list[int] = []
    for seed in seeds:
        task = load_sweep_task(task_name, seed)
        perms, _ = ds.build_orders(task.x_train, task.dims, task.shape, seed, orders=orders)
        for name, perm in perms.items():
            for b in bonds:
                r = ds.train_ttn(task, perm, epochs=epochs, bond=b, seed=seed, lr=lr, device=device,
                                 checkpointer=ck(f"sweep_{task_name}_{name}_b{b}_seed{seed}"))
                acc[name][b].append(float(r["test_acc"]))
            if qe_samples and seed in qe_seeds:
                profiles[name].append(qe_profile(task, perm, qe_samples, seed))
        if qe_samples and seed in qe_seeds:
            profile_seeds.append(int(seed))
    out: dict = {"task": task_name, "bonds": bonds, "seeds": [int(s) for s in seeds], "epochs": epochs, "lr": lr,
                 "qe_seeds": profile_seeds, "orders": {}}
    means = {o: [float(np.mean(acc[o][b])) for b in bonds] for o in orders}
    best = max(means["original"]) if "original" in means else float("nan")
    out["target"], out["target_strict"] = FIT_FRACTION * best, STRICT_FIT_FRACTION * best
    for o in orders:
        entry: dict[str, Any] = {"acc": {b: acc[o][b] for b in bonds}, "acc_mean": means[o],
                 "acc_std": [float(np.std(acc[o][b])) for b in bonds], "qe": profiles[o]}
        for suffix, target in (("", out["target"]), ("_strict", out["target_strict"])):
            entry["smallest_bond" + suffix] = smallest_bond(bonds, means[o], target)
            entry[f"smallest_bond{suffix}_per_seed"] = [
                smallest_bond(bonds, [acc[o][b][i] for b in bonds], target) for i in range(len(seeds))]
        if profiles[o]:
            levels = sorted(profiles[o][0]["levels"])
            entry["qe_levels"] = {lv: float(np.mean([p["levels"][lv] for p in profiles[o]])) for lv in levels}
            entry["qe_fraction"] = {lv: float(np.mean([p["fraction"][lv] for p in profiles[o]])) for lv in levels}
        out["orders"][o] = entry
    out["unsaturated_levels"], out["correlation"] = [], qe_bond_correlation([])
    if profile_seeds:
        out["unsaturated_levels"] = unsaturated_levels(
            {o: {"fraction": out["orders"][o]["qe_fraction"]} for o in orders})
        lv = out["unsaturated_levels"] or [max(out["orders"][orders[0]]["qe_fraction"])]
        points = []
        for o in orders:
            for i, s in enumerate(seeds):
                if s in profile_seeds:
                    p = profiles[o][profile_seeds.index(s)]
                    points.append({"order": o, "seed": int(s), "qe": float(np.mean([p["levels"][k] for k in lv])),
                                   "bond": out["orders"][o]["smallest_bond_per_seed"][i],
                                   "bond_strict": out["orders"][o]["smallest_bond_strict_per_seed"][i],
                                   "acc_mean_over_bonds": float(np.mean([acc[o][b][i] for b in bonds]))})
        out["qe_points"] = points
        out["correlation"] = qe_bond_correlation(points)
        out["correlation_levels"] = lv
    out["seconds"] = time.perf_counter() - t0
    return out


def run_sweep(s: SweepSettings, base_seed: int = 0, device: str = "cpu", checkpointer=None) -> dict:
    """:func:`bond_sweep` on every task of ``s`` (seeds ``base_seed, base_seed + 1, …``)."""
    seeds = [base_seed + i for i in range(s.seeds)]
    out = {"settings": {"tasks": list(s.tasks), "bonds": list(s.bonds), "seeds": s.seeds, "epochs": s.epochs,
                        "lr": s.lr, "qe_samples": list(s.qe_samples), "qe_seeds": s.qe_seeds,
                        "saturation": SATURATION, "fit_fraction": FIT_FRACTION,
                        "strict_fit_fraction": STRICT_FIT_FRACTION}, "tasks": {}}
    for name, m in zip(s.tasks, s.qe_samples):
        out["tasks"][name] = bond_sweep(name, s.bonds, seeds, epochs=s.epochs, lr=s.lr, qe_samples=m,
                                        qe_seeds=seeds[: s.qe_seeds], device=device, checkpointer=checkpointer)
    return out


# ---------------------------------------------------------------------------------------------- reporting
def _bond(b) -> str:
    return "none" if b is None else str(b)


def sweep_comparisons(sweep: dict) -> list[Comparison]:
    """Rows of the experiment's table: per task, accuracy at the smallest bonds, the smallest fitting bond per
    order, the QE per order on the unsaturated levels and the rank correlation."""
    rows = []
    for name, r in sweep["tasks"].items():
        o, bonds, n = r["orders"], r["bonds"], len(r["seeds"])
        orders = list(o)
        for i, b in enumerate(bonds):
            rows.append(Comparison(
                f"{name} TTN bond {b} acc % ({'/'.join(k[:4] for k in orders)})",
                " / ".join(f"{100 * o[k]['acc_mean'][i]:.1f}" for k in orders), None,
                f"mean ± std over {n} seeds: " + "; ".join(
                    f"{k} {100 * o[k]['acc_mean'][i]:.1f} ± {100 * o[k]['acc_std'][i]:.1f}" for k in orders)
                + f"; {r['epochs']} epochs, lr {r['lr']:g}."))
        for suffix, frac in (("", FIT_FRACTION), ("_strict", STRICT_FIT_FRACTION)):
            rows.append(Comparison(
                f"{name} smallest bond reaching {100 * frac:g} % of original's best",
                " / ".join(_bond(o[k]["smallest_bond" + suffix]) for k in orders), None,
                f"target {100 * r['target' + suffix]:.1f} % ({100 * frac:g} % of the original order's best mean "
                f"accuracy), on the mean curve over {n} seeds, bonds {bonds} (none: not reached); per seed: "
                + "; ".join(f"{k} " + ",".join(_bond(b) for b in o[k][f"smallest_bond{suffix}_per_seed"])
                            for k in orders)
                + ". P5: an order with lower QE should fit at a smaller bond.", key=(name == "dna")))
        if r["qe_seeds"]:
            lv = r["correlation_levels"]
            m = r["orders"][orders[0]]["qe"][0]["n_samples"]
            fractions = "; ".join(f"{k} " + ", ".join(f"{v:.2f}" for v in o[k]["qe_fraction"].values()) for k in orders)
            rows.append(Comparison(
                f"{name} QE levels {','.join(map(str, lv))}, nats ({'/'.join(k[:4] for k in orders)})",
                " / ".join(f"{np.mean([o[k]['qe_levels'][v] for v in lv]):.2f}" for k in orders), None,
                f"the data the TTN sees (θ = {ds.TTN_THETA}), one batch of M = {m} training samples, seeds "
                f"{r['qe_seeds']}; QE / ln M per level 1, 2, …: {fractions}. Levels at or above {SATURATION} ln M in "
                "some order are saturated (bounded by the batch, not the data) and left out"
                + ("" if r["unsaturated_levels"] else " — every level was saturated; the deepest level is used")
                + "."))
            c = r["correlation"]
            rows.append(Comparison(
                f"{name} Spearman of QE with bond 90 % / 99 % / mean acc",
                f"{c['qe_vs_bond']:+.2f} / {c.get('qe_vs_bond_strict', float('nan')):+.2f} / "
                f"{c['qe_vs_acc_over_bonds']:+.2f}", None,
                f"over {c['n']} (order, seed) points: QE (mean over the levels above) against the smallest bond "
                f"reaching 90 % and 99 % of the original's best (per seed) and against the test accuracy averaged "
                f"over bonds {bonds}. P5's theorem predicts positive, positive, negative (lower QE: fitted at a "
                "smaller bond); nan: a side is constant."))
    return rows


def plot_sweep(sweep: dict, path) -> None:
    """Accuracy vs bond per order (mean ± std over seeds) with the 90 % and 99 % targets, beside QE / ln M per level."""
    plt = pyplot()
    tasks = sweep["tasks"]
    colors = {"original": "tab:green", "random": "tab:red", "rearranged": "tab:blue", "igtd": "tab:orange"}
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.4 * len(tasks), 6.4), squeeze=False)
    for j, (name, r) in enumerate(tasks.items()):
        ax = axes[0, j]
        for k, e in r["orders"].items():
            ax.errorbar(r["bonds"], [100 * a for a in e["acc_mean"]], yerr=[100 * a for a in e["acc_std"]],
                        fmt="o-", color=colors.get(k), label=k, capsize=3)
        ax.axhline(100 * r["target"], color="grey", ls=":", lw=1, label="90 % of original's best")
        ax.axhline(100 * r["target_strict"], color="grey", ls="--", lw=1, label="99 %")
        ax.set(title=f"{name}: TTN accuracy vs bond", xlabel="bond R", ylabel="test accuracy %")
        ax.set_xticks(r["bonds"])
        ax.legend(fontsize=7)
        ax = axes[1, j]
        for k, e in r["orders"].items():
            if "qe_fraction" in e:
                lv = e["qe_fraction"]
                ax.plot(list(lv), list(lv.values()), "o-", color=colors.get(k), label=k)
                ax.set_xticks(list(lv))
        ax.axhline(SATURATION, color="grey", ls=":", lw=1)
        ax.set(xlabel="canonical level", ylabel="QE / ln M", title=f"{name}: QE of the TTN's data", ylim=(0, 1.02))
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
