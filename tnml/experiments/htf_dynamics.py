"""Experiment ``htf-dynamics``: matrix, CP tensor and hierarchical tensor factorizations learn incrementally (P3).

Three factorizations, each far wider than its target's rank, complete 2 048 observed entries of a low-rank target
with GroupRMSprop from a small init (P3's dynamics figure; local components in :doc:`/science/theorems`):

* **MF**: depth-3 matrix factorization (hidden widths 512, i.i.d. init) of a 64×64 matrix of rank 5: its
  singular values rise one at a time;
* **TF**: CP factorization with R = 512 components of an order-3, 16×16×16 tensor of CP rank 5: its component
  norms rise one at a time;
* **HTF**: hierarchical tensor factorization (widths 512 at every internal node) of an order-4, 8×8×8×8 tensor of
  HT rank (5, 5) over the mode tree ``((0, 1), (2, 3))`` (two levels of internal nodes: (0,1) and (2,3) below the
  root): the local-component norms at each tree node rise one at a time, and at most 5 per node end nonzero, so
  the learned tensor has low hierarchical tensor rank.

Setting [code] (the authors' released code, ``imp_reg_htf``): P3 gives the HTF target's HT rank (5, 5) but not
its order or mode sizes; the authors' data generator defaults to order 3 and mode size 16 for both the CP and the
HT targets (the same as the TF target) with pool size 2 and "checkerboard" (contiguous) pooling. Order 3 has one
non-trivial internal node only (their order-3 HT model gives mode 2 a unary node), the weakest hierarchy there is;
the HTF here is order 4, mode size 8 (the same 4 096 entries and observed fraction), over the balanced binary
tree ``((0, 1), (2, 3))``. Targets are scaled to Frobenius norm ``sqrt(#entries)`` = 64 (entries of unit mean
square) as in that generator; the HT target is an HT factorization with ``N(0, 1)`` entries, the CP/matrix
targets sums of 5 outer products of standard normal vectors. MF and TF start i.i.d. ``N(0, 1e-2²)``, the order-4
HTF ``N(0, 3e-2²)`` (:data:`HTF_INIT`); the loss is the mean squared error on the observed entries; training stops
when it falls below 5e-5. The thesis's figure has no iteration
counts to compare with: the comparisons report the measured rise steps and ranks beside the claims (one at a
time; as many nonzero components as the target's rank).

What the quick run's HTF rank row measures (seed 0, width 48, init 3e-2, measured): at the stopping loss 5e-5
(step ~12 000, error 0.008) the internal nodes (0,1) and (2,3) have matricization rank 5 exactly (6th singular
value 5e-7 of the largest), while each leaf matricization keeps a 6th singular value at 1-2e-3 of its largest, just
above the rank threshold 1e-3, so the leaf ranks read 6-7. Training on shrinks it (P3's code keeps training until
the loss has stayed below 5e-5 for 2 500 steps): 1.7e-3 at +2 500 steps, 1.0e-3 at 20 000 steps; from init 2e-2
(same 6th value 2.3e-3 at the stopping loss) every rank reads 5 from step ~29 000 on (5.6e-4 at 40 000), with the
train loss flat at ~2.3e-5 (GroupRMSprop's floor at lr 1e-2). Both are beyond the quick run's budget.

Resumable: with ``--checkpoint-every N`` each model's run saves every ``N *``
:data:`tnml.dynamics.tasks.CHECKPOINT_STEPS` steps (:func:`tnml.dynamics.tasks.fit`).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from tnml.checkpoint import Checkpointer
from tnml.dynamics.group_rmsprop import GroupRMSprop
from tnml.dynamics.rank_measures import hierarchical_rank, matricization, singular_values
from tnml.dynamics.tasks import fit, random_completion_task, random_cp_tensor
from tnml.dynamics.trackers import ComponentNormTracker, LocalComponentNormTracker, SingularValueTracker
from tnml.experiments._common import one_thread, pyplot
from tnml.experiments.registry import Claim, Comparison, ExperimentResult, RunConfig, register_experiment
from tnml.experiments.tf_incremental_rank import rise_steps
from tnml.io import save_figure
from tnml.mode_trees import tree_nodes
from tnml.networks import DeepMatrixFactorization, HierarchicalTensorFactorization, TensorFactorization
from tnml.spectrum import numerical_rank
from tnml.validation import check_option

MF_SHAPE, MF_DEPTH = (64, 64), 3
TENSOR_SHAPE = (16, 16, 16)
#: HTF: order 4 over a tree with two levels of internal nodes; mode size 8 keeps the 4 096 entries (and the
#: observed fraction 2048 / 4096) of the order-3 targets
HT_SHAPE, HT_TREE = (8, 8, 8, 8), ((0, 1), (2, 3))
#: the tree over which the TF (order-3) tensor's hierarchical rank is reported
TF_TREE = ((0, 1), 2)
TARGET_RANK, TARGET_HT_RANKS = 5, (5, 5)
N_OBS, LR, INIT, STOP_LOSS = 2048, 1e-2, 1e-2, 5e-5
#: init std of the order-4 HTF: its end tensor is a product of 7 cores per entry (5 for the order-3 tree), so from
#: 1e-2 it did not leave the origin in 20 000 steps at width 48 (loss 0.93 of 1.0); from 3e-2 it converged in ~12 000
#: with 5-6 nonzero local components per node (measured, seed 0; 5e-2: 6-7, 1e-1: 22-40)
HTF_INIT = 3e-2
#: relative thresholds: a component is "nonzero" above NONZERO_REL × the largest; a singular value counts towards
#: a (numerical) rank above RANK_REL × the largest
NONZERO_REL, RANK_REL = 1e-2, 1e-3
#: (width, max steps, record every) of the quick and full versions
SETTINGS = {True: (48, 20_000, 50), False: (512, 60_000, 100)}
MODELS = ("MF", "TF", "HTF")


def matricization_spectra(tensor, tree, k: int = 8) -> dict[str, list[float]]:
    """The ``k`` largest singular values of ``[[W]]_ν`` over the largest, for every tree node except the root."""
    w = tensor.detach().cpu().double().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    root = tuple(range(w.ndim))
    out = {}
    for b in tree_nodes(tree):
        if tuple(sorted(b)) != root:
            s = singular_values(matricization(w, b))
            out[",".join(map(str, b))] = (s[:k] / s[0]).tolist()
    return out


def hierarchical_ranks(tensor, tree, rel: float = RANK_REL) -> dict[str, int]:
    """Numerical rank of ``[[W]]_ν`` for every tree node ``ν`` except the root, keyed ``"0,1"`` etc. (singular
    values above ``rel`` × the largest of that matricization; :func:`tnml.dynamics.hierarchical_rank`)."""
    return {",".join(map(str, b)): r for b, r in hierarchical_rank(tensor, tree, rtol=rel).items()}


def make_target(kind: str, seed: int) -> torch.Tensor:
    """The float64 target of model ``kind``, Frobenius norm ``sqrt(#entries)``."""
    check_option("kind", kind, MODELS)
    if kind == "MF":
        t = random_cp_tensor(MF_SHAPE, TARGET_RANK, seed=seed, dtype=torch.float64)
    elif kind == "TF":
        t = random_cp_tensor(TENSOR_SHAPE, TARGET_RANK, seed=seed, dtype=torch.float64)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ht = HierarchicalTensorFactorization(
                HT_SHAPE, HT_TREE, TARGET_HT_RANKS, init_scale=1.0, dtype=torch.float64
            )
        with torch.no_grad():
            t = ht.tensor().detach().clone()
    return t * (t.numel() ** 0.5 / t.norm())


def make_model(
    kind: str, width: int, device: str = "cpu"
) -> DeepMatrixFactorization | TensorFactorization | HierarchicalTensorFactorization:
    """MF (depth 3, hidden ``width``, i.i.d. init), TF (``width`` components) or HTF (``width`` at every node)."""
    check_option("kind", kind, MODELS)
    if kind == "MF":
        return DeepMatrixFactorization(MF_SHAPE, MF_DEPTH, hidden=width, init_scale=INIT, balanced=False, device=device)
    if kind == "TF":
        return TensorFactorization(TENSOR_SHAPE, width, init_scale=INIT, device=device)
    return HierarchicalTensorFactorization(HT_SHAPE, HT_TREE, width, init_scale=HTF_INIT, device=device)


def make_tracker(kind: str, every: int):
    """Singular values (MF), CP component norms (TF) or local-component norms per node (HTF)."""
    check_option("kind", kind, MODELS)
    if kind == "MF":
        return SingularValueTracker(every=every)
    if kind == "TF":
        return ComponentNormTracker(every=every)
    return LocalComponentNormTracker(every=every)


def _series(kind: str, tracker) -> dict[str, np.ndarray]:
    """The tracked quantities over time, ``{panel name: (n_records, n_values)}``."""
    if kind == "HTF":
        return {",".join(map(str, b)): tracker.node(b) for b in tracker.records[0]}
    return {"": tracker.as_array()}


def _summarize(steps: np.ndarray, values: np.ndarray) -> dict:
    """Rise steps of the top ``TARGET_RANK``, nonzero count and the largest values at the end of one series."""
    final = values[-1]
    top = np.argsort(-final)[: 2 * TARGET_RANK]
    return {
        "rise_steps": rise_steps(steps, values, TARGET_RANK),
        "n_nonzero": numerical_rank(final, NONZERO_REL),
        "final_top": final[top].tolist(),
        "top_history": values[:, top].tolist(),
    }


def train_one(
    kind: str,
    width: int,
    max_steps: int,
    every: int,
    seed: int,
    device: str = "cpu",
    checkpointer: Checkpointer | None = None,
) -> dict:
    """Fit one model to its target; returns the JSON-able record (rise steps, counts, errors, ranks).

    ``checkpointer`` (optional) makes the training resumable: :func:`tnml.dynamics.tasks.fit` saves the model,
    optimizer and tracker history every ``checkpointer.every * CHECKPOINT_STEPS`` steps and at the end.
    """
    target = make_target(kind, seed).to(torch.get_default_dtype())
    task = random_completion_task(target, N_OBS, seed=seed + 1)
    assert task.target is not None  # a completion task built from a target keeps it
    task.indices, task.values, task.target = (a.to(device) for a in (task.indices, task.values, task.target))
    torch.manual_seed(seed)
    model = make_model(kind, width, device)
    tracker = make_tracker(kind, every)
    t0 = time.perf_counter()
    opt = GroupRMSprop(model.parameters(), lr=LR)
    out = fit(model, task, opt, max_steps, STOP_LOSS, [tracker], progress=kind, checkpointer=checkpointer)
    if tracker.steps[-1] != out["steps"]:
        tracker.record(out["steps"], model, out["loss"])
    seconds = time.perf_counter() - t0
    steps = np.array(tracker.steps)
    with torch.no_grad():
        learned = model.tensor().detach()
    rec = {
        "width": width,
        "steps": out["steps"],
        "stopped": out["stopped"],
        "final_loss": out["loss"],
        "reconstruction_error": task.reconstruction_error(model),
        "seconds": seconds,
        "record_steps": steps.tolist(),
        "loss_history": tracker.losses,
        "series": {name: _summarize(steps, v) for name, v in _series(kind, tracker).items()},
    }
    if kind == "MF":
        rec["learned_rank"] = numerical_rank(singular_values(learned), RANK_REL)
        rec["target_rank"] = numerical_rank(singular_values(target), RANK_REL)
    else:
        tree = HT_TREE if kind == "HTF" else TF_TREE
        rec["learned_hierarchical_rank"] = hierarchical_ranks(learned, tree)
        rec["learned_matricization_spectra"] = matricization_spectra(learned, tree)
        rec["target_hierarchical_rank"] = hierarchical_ranks(target, tree)
    return rec


def _fmt_rises(r: list) -> str:
    return ", ".join("-" if s is None else str(s) for s in r)


@register_experiment(
    "htf-dynamics",
    "P3: matrix vs CP vs hierarchical tensor factorization completing rank-5 targets: singular values, component "
    "norms and local-component norms rise one at a time; learned hierarchical rank vs the target's",
)
def run(cfg: RunConfig) -> ExperimentResult:
    width, max_steps, every = SETTINGS[cfg.quick]
    with one_thread():  # small dense ops
        runs = {
            kind: train_one(
                kind,
                width,
                max_steps,
                every,
                cfg.seed,
                cfg.device,
                checkpointer=cfg.checkpointer(
                    kind, width=width, every=every, lr=LR, init=HTF_INIT if kind == "HTF" else INIT, device=cfg.device
                ),
            )
            for kind in MODELS
        }
    metrics = {
        "mf": {"shape": MF_SHAPE, "depth": MF_DEPTH, "target_rank": TARGET_RANK},
        "tf": {"shape": TENSOR_SHAPE, "target_cp_rank": TARGET_RANK},
        "htf": {"shape": HT_SHAPE, "tree": HT_TREE, "target_ht_ranks_per_level": TARGET_HT_RANKS},
        "width": width,
        "n_observed": N_OBS,
        "init_std": INIT,
        "htf_init_std": HTF_INIT,
        "lr": LR,
        "optimizer": "GroupRMSprop",
        "loss": "mean squared error on observed entries",
        "stop_loss": STOP_LOSS,
        "max_steps": max_steps,
        "target_fro_norm": "sqrt(#entries) = 64",
        "nonzero_rel": NONZERO_REL,
        "rank_rel": RANK_REL,
        "runs": runs,
    }
    shrunk = (
        f" --quick: widths {width} (full: 512), at most {max_steps} steps (full: {SETTINGS[False][1]})."
        if cfg.quick
        else ""
    )
    label = {"MF": "singular values", "TF": "component norms", "HTF": "local-component norms at node {%s}"}
    short = {"MF": "singular values", "TF": "CP norms", "HTF": "local norms at {%s}"}
    comparisons = []
    for kind in MODELS:
        r = runs[kind]
        for name, s in r["series"].items():
            what = label[kind] % name if kind == "HTF" else label[kind]
            rises = [x for x in s["rise_steps"] if x is not None]
            comparisons.append(
                Comparison(
                    f"{kind}: rise steps of the top {short[kind] % name if kind == 'HTF' else short[kind]}",
                    _fmt_rises(s["rise_steps"]),
                    "one at a time",
                    f"steps at which the 5 largest {what} reach half their final value; "
                    f"{len(set(rises))} distinct rise steps, min gap "
                    f"{int(min(np.diff(rises))) if len(rises) > 1 else 'n/a'} steps (records every {every})." + shrunk,
                )
            )
            comparisons.append(
                Comparison(
                    f"{kind}: {short[kind] % name if kind == 'HTF' else short[kind]} above {NONZERO_REL:g}× max",
                    s["n_nonzero"],
                    TARGET_RANK,
                    f"{what} above {NONZERO_REL:g} × the largest at the end; largest: "
                    + ", ".join(f"{v:.3g}" for v in s["final_top"][: TARGET_RANK + 2]),
                )
            )
        if kind == "MF":
            comparisons.append(
                Comparison(
                    "MF: rank of the learned matrix",
                    r["learned_rank"],
                    r["target_rank"],
                    f"σ > {RANK_REL:g} σ_max; thesis column: the target's rank",
                )
            )
        else:
            nodes = ", ".join("{" + b + "}" for b in r["learned_hierarchical_rank"])
            comparisons.append(
                Comparison(
                    f"{kind}: hierarchical rank of the learned tensor",
                    str(tuple(r["learned_hierarchical_rank"].values())),
                    str(tuple(r["target_hierarchical_rank"].values())),
                    f"nodes {nodes}; σ > {RANK_REL:g} σ_max; thesis column: the target's. "
                    "σ/σ_max of the learned tensor's matricizations, 6th and 7th: "
                    + "; ".join(
                        f"{{{b}}} " + ", ".join(f"{v:.1e}" for v in sv[TARGET_RANK : TARGET_RANK + 2])
                        for b, sv in r["learned_matricization_spectra"].items()
                    ),
                )
            )
        comparisons.append(
            Comparison(
                f"{kind}: reconstruction error ‖W − W*‖/‖W*‖",
                round(r["reconstruction_error"], 4),
                None,
                f"after {r['steps']} steps ({'reached' if r['stopped'] else 'did not reach'} loss < {STOP_LOSS:g}), "
                f"train loss {r['final_loss']:.2e}, {r['seconds']:.0f} s",
            )
        )
    claims = []
    for kind in MODELS:
        r = runs[kind]
        ok = all(
            len(rs := [x for x in s["rise_steps"] if x is not None]) > 1 and len(set(rs)) == len(rs)
            for s in r["series"].values()
        )
        if kind == "MF":
            low = r["learned_rank"] <= r["target_rank"]
            rank_txt = f"rank {r['learned_rank']} (target {r['target_rank']})"
        else:
            learned, target = r["learned_hierarchical_rank"], r["target_hierarchical_rank"]
            low = all(learned[b] <= target[b] for b in target if b in learned)
            rank_txt = f"rank {tuple(learned.values())} (target {tuple(target.values())})"
        claims.append(
            Claim(
                f"{kind}: learned incrementally, to low rank",
                "reproduced" if ok and low else ("reproduced with differences" if ok or low else "not reproduced"),
                rank_txt,
            )
        )
    _plot(runs, cfg.out_dir / "htf_dynamics.png")
    return ExperimentResult(
        metrics,
        comparisons,
        ["htf_dynamics.png"],
        claims=claims,
        about="Matrix, CP tensor and hierarchical tensor factorizations, each far wider than its target's rank, "
        "complete a low-rank target from a small init: singular values, component norms and local-component norms "
        "rise one at a time, so the learned tensor has low (hierarchical) rank — P3's dynamics (Razin, Maman & "
        "Cohen, ICML 2022).",
    )


def _plot(runs: dict, path) -> None:
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    panels = []
    for kind in MODELS:
        for name, s in runs[kind]["series"].items():
            ylabel = {"MF": "singular values", "TF": "component norms", "HTF": "local component norms"}[kind]
            title = {"MF": "matrix factorization", "TF": "tensor factorization"}.get(kind, f"HTF node {{{name}}}")
            panels.append((runs[kind], s, title, ylabel))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.5), squeeze=False)
    for ax, (r, s, title, ylabel) in zip(axes[0], panels):
        steps = np.array(r["record_steps"])
        ax.plot(steps, np.array(s["top_history"]), lw=1.3)
        ax.set(xlabel="iteration", ylabel=ylabel, title=title)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax2 = ax.twinx()
        ax2.plot(steps, r["loss_history"], "k--", lw=0.7)
        ax2.set(yscale="log")
    ax2.set_ylabel("train loss (dashed)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
