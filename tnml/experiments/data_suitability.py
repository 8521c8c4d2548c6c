"""Experiment ``data-suitability`` (P5): feature order, data entanglement and the accuracy of locally connected
models (CNNs and the locally connected tensor network).

**Headline: Statlog DNA** (:func:`~tnml.datasets.load_dna`, 3 186 × 180 binary features, 3 classes, 80/20 split),
P5's dna row. Secondary rows: scikit-learn digits as 64 features in 1-D and as an 8×8 grid in 2-D (where a
permutation costs the CNN little: a negative result kept in the summary), a synthetic 1-D data set with planted
long-range pairs (:func:`~tnml.datasets.planted_pairs`), wine (and in the full version breast cancer) as 1-D tabular
data.
For each data set and seed, four feature orders are compared:

* ``original``   — the data's own order;
* ``random``     — a uniformly random permutation of it, a new one per seed (the starting point of P5's experiments);
* ``rearranged`` — :class:`~tnml.preprocessing.FeatureRearrangement` fitted on the *training split of the
  permuted data* (P5, Algorithm 1);
* ``igtd``       — :class:`~tnml.preprocessing.IGTDRearrangement` fitted the same way (baseline).

For every order: the QE per canonical level of the empirical data tensor (:func:`data_entanglement`, P5's protocol:
θ = 0.085 on standardized training features), the test accuracy of a CNN that pools down to one position (as P5's
networks do; :class:`~tnml.baselines.CNN1D`/``CNN2D`` defaults) and, on the tasks listed in
``Settings.ttn_tasks``, of the locally connected tensor network of P5 — a :class:`~tnml.networks.TTN` with
contiguous binary pooling over the feature order (1-D) or 2×2 windows over the grid (2-D), trig map — with the QE of
*the data the TTN sees* (its min–max inputs under its own map, θ = 1/2) beside P5's. On DNA also the QE of the
*whole* training split (:func:`measure_qe_whole`): ``data_entanglement(method="auto")`` picks the route — exact up to
its sample threshold, the streaming sketch beyond it (DNA's training split is beyond), whose error estimate the row
states. The summary's notes name the route of every QE the run measured (:func:`qe_route`). Then the feature-swap
curve of P5 Fig. 4 on DNA (swap ``k`` random pairs of the original order: QE should rise and accuracy fall), and the
theorem on an exact case from real data (:func:`window_fit_curve`): for a 16-bit DNA window, best-found error of a
width-R tree against max QE, sandwiched by the two-sided bounds of :mod:`tnml.entanglement.fit_bounds`.

P5 on the tensor network itself: :mod:`tnml.experiments.ttn_order_sweep` sweeps the TTN's bond over the four
orders on DNA and on digits upsampled to 16 × 16 (accuracy vs bond, the smallest bond that fits, QE per level with
its distance from the ``ln M`` ceiling, and the rank correlation of QE with that bond).

Versions. ``--quick`` (about 4–5 minutes on 2 cores): DNA with 3 seeds (CNN width 16 → 64, 8 epochs), the
secondary tasks with 1 seed, QE on the first seed, the swap curve (k = 0, 16, 64), the window at R = 2, 4, 8 and the
TTN bond sweep at its quick size (bonds 2–4, 2 seeds). Full: 5 seeds everywhere, the CNN of P5's DNA row (channels
32 → 128, 12 epochs), breast cancer added, the bond-8 TTN on every task, QE on every seed, the sweep at bonds 1–6
with 5 seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from tnml.baselines import CNN1D, CNN2D
from tnml.checkpoint import Checkpointer
from tnml.datasets.synthetic import planted_pairs
from tnml.entanglement import DataEntanglementResult, data_entanglement
from tnml.experiments._data_suitability_report import (
    _claims,
    _dna_comparisons,
    _plot_orders,
    _plot_swap,
    _task_comparisons,
    route_text,
    routes_note,
)
from tnml.experiments._data_suitability_settings import (
    ORDER_LABEL,
    ORDERS,
    SETTINGS,
    TASKS,
    TTN_THETA,
    CheckpointerFactory,
    Settings,
)
from tnml.experiments.exact_fit import exact_fit_rows, plot_window
from tnml.experiments.registry import ExperimentResult, RunConfig, register_experiment
from tnml.experiments.training import train_classifier
from tnml.networks import TTN, NormalizedLogits
from tnml.preprocessing import FeatureRearrangement, IGTDRearrangement
from tnml.validation import check_option

__all__ = ["ORDER_LABEL", "ORDERS", "SETTINGS", "TASKS", "TTN_THETA", "CheckpointerFactory", "Settings", "Task",
           "apply_order", "build_orders", "cnn_kwargs", "compare_orders", "load_task", "make_ttn", "measure_qe",
           "measure_qe_route", "measure_qe_ttn", "measure_qe_whole", "pair_placement", "qe_route", "route_text",
           "routes_note", "run", "stall_threshold", "swap_curve", "swap_pairs", "train_cnn", "train_ttn",
           "ttn_inputs", "window_fit_curve"]


# ---------------------------------------------------------------------------------------------- data
@dataclass
class Task:
    name: str
    x_train: np.ndarray  # (n, N) float
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    dims: int
    shape: tuple[int, int] | None
    n_classes: int


def _digits(seed: int, dims: int) -> Task:
    from tnml.datasets import digits

    xtr, xte, ytr, yte = digits(seed=seed, dtype=torch.float64)
    return Task(f"digits-{dims}d", xtr.numpy(), xte.numpy(), ytr.numpy(), yte.numpy(), dims,
                (8, 8) if dims == 2 else None, 10)


def _tabular(name: str, seed: int) -> Task:
    from sklearn.datasets import load_breast_cancer, load_wine
    from sklearn.model_selection import train_test_split

    d = {"breast-cancer": load_breast_cancer, "wine": load_wine}[name]()
    xtr, xte, ytr, yte = train_test_split(d.data.astype(np.float64), d.target, test_size=0.25, random_state=seed,
                                          stratify=d.target)
    mu, sd = xtr.mean(0), xtr.std(0)
    sd[sd == 0] = 1.0
    return Task(name, (xtr - mu) / sd, (xte - mu) / sd, ytr, yte, 1, None, int(np.unique(d.target).size))


def _planted(seed: int, n_samples: int, n_features: int) -> Task:
    from sklearn.model_selection import train_test_split

    x, y = planted_pairs(n_samples, n_features, seed=seed)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=1 / 3, random_state=seed, stratify=y)
    return Task("planted", xtr, xte, ytr, yte, 1, None, 2)


def _dna(seed: int) -> Task:
    from sklearn.model_selection import train_test_split

    from tnml.datasets import load_dna

    x, y = load_dna()
    xtr, xte, ytr, yte = train_test_split(x.astype(np.float64), y, test_size=0.2, random_state=seed, stratify=y)
    return Task("dna", xtr, xte, ytr, yte, 1, None, 3)


def load_task(name: str, seed: int, s: Settings | None = None) -> Task:
    """``dna``, ``digits-1d``, ``digits-2d``, ``breast-cancer``, ``wine`` or ``planted`` with a seeded stratified
    split (``dna``: 80/20, P5's protocol; ``planted`` takes its size from ``s``, default the quick settings)."""
    check_option("task", name, TASKS)
    if name == "dna":
        return _dna(seed)
    if name == "digits-1d":
        return _digits(seed, 1)
    if name == "digits-2d":
        return _digits(seed, 2)
    if name == "planted":
        s = SETTINGS[True] if s is None else s
        return _planted(seed, s.planted_samples, s.planted_features)
    return _tabular(name, seed)  # "breast-cancer" or "wine"


# ---------------------------------------------------------------------------------------------- orders
def _fit_rearrangement(x: np.ndarray, dims: int, shape, seed: int) -> tuple[np.ndarray, str]:
    """FeatureRearrangement's permutation; falls back to the Kernighan–Lin backend if METIS fails here."""
    try:
        return FeatureRearrangement(dims=dims, random_state=seed, shape=shape).fit(x).permutation_, "auto"
    except Exception:  # noqa: BLE001 - a partitioner binding failure must not sink the experiment
        return FeatureRearrangement(dims=dims, random_state=seed, shape=shape, backend="kl").fit(x).permutation_, "kl"


def build_orders(x_train: np.ndarray, dims: int = 1, shape=None, seed: int = 0,
                 orders=ORDERS) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Feature orders for one seed, each a permutation ``p`` of the original features (apply: ``X[:, p]``).

    ``random`` is a seeded uniform permutation; ``rearranged`` and ``igtd`` are fitted on ``x_train[:, random]``
    (training split of the permuted data only) and composed with it, so they never see the original order.

    Returns
    -------
    orders : dict name -> ndarray (n_features,) of int
    info : dict with the partitioner backend used (``"auto"`` or ``"kl"``)
    """
    for name in orders:
        check_option("order", name, ORDERS)
    x_train = np.asarray(x_train, dtype=np.float64)
    n = x_train.shape[1]
    rand = np.random.default_rng(seed).permutation(n)
    xp = x_train[:, rand]
    out: dict[str, np.ndarray] = {}
    info: dict[str, str] = {}
    for name in orders:
        if name == "original":
            out[name] = np.arange(n)
        elif name == "random":
            out[name] = rand
        elif name == "rearranged":
            p, info["backend"] = _fit_rearrangement(xp, dims, shape, seed)
            out[name] = rand[p]
        else:  # "igtd"
            out[name] = rand[IGTDRearrangement(dims=dims, random_state=seed, shape=shape).fit(xp).permutation_]
    return out, info


def apply_order(x: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """``x[:, perm]`` (rows kept)."""
    return np.asarray(x)[:, np.asarray(perm)]


def swap_pairs(n: int, k: int, seed: int = 0) -> np.ndarray:
    """The identity order of ``n`` features with ``k`` random disjoint pairs of positions swapped."""
    if 2 * k > n:
        raise ValueError(f"cannot swap {k} disjoint pairs among {n} features")
    perm = np.arange(n)
    pos = np.random.default_rng(seed).permutation(n)[: 2 * k].reshape(k, 2) if k else np.empty((0, 2), int)
    for a, b in pos:
        perm[a], perm[b] = perm[b], perm[a]
    return perm


# ---------------------------------------------------------------------------------------------- measurements
def _standardize(x_train: np.ndarray) -> np.ndarray:
    mu, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x_train - mu) / sd


def _qe_levels(task: Task) -> tuple[int, ...]:
    """Canonical levels whose QE is measured: 1-4 in 1-D, 1-2 in 2-D (fewer when the tree is shallower)."""
    n = task.x_train.shape[1]
    if task.dims == 1:
        return tuple(range(1, min(4, int(np.ceil(np.log2(n)))) + 1))
    assert task.shape is not None
    return tuple(range(1, min(2, int(np.ceil(np.log2(max(task.shape))))) + 1))


def qe_route(res: DataEntanglementResult) -> dict:
    """How a QE was measured, from its result: ``method`` (``"batches"``, ``"exact"`` or ``"sketch"``),
    ``n_samples`` (M), ``tensor_samples`` (samples per data tensor: its QE is at most ``ln`` of this), ``batches``
    (``"batches"`` only) and, for the sketch, ``sketch_size``, ``residual_max`` and ``error_estimate_max`` with its
    largest value per level ``error_estimate_levels`` (nats; an empirical estimate, not a bound: see
    :attr:`~tnml.entanglement.data_entanglement.DataEntanglementResult.error_estimate`)."""
    out: dict = {"method": res.method, "n_samples": int(res.n_samples), "tensor_samples": res.tensor_samples}
    if res.method == "batches":
        out["batches"] = len(res.batch_sizes)
    if res.method == "sketch":
        assert res.error_estimate is not None and res.residual is not None
        per_level: dict[int, float] = {}
        for p, e in zip(res.partitions, res.error_estimate):
            if p.level is not None:
                per_level[int(p.level)] = max(per_level.get(int(p.level), 0.0), float(e))
        out.update(sketch_size=res.sketch_size, residual_max=float(np.max(res.residual)),
                   error_estimate_max=float(np.max(res.error_estimate)), error_estimate_levels=per_level)
    return out


def _levels_and_route(res: DataEntanglementResult) -> tuple[dict[int, float], dict]:
    return {int(k): float(v) for k, v in res.levels.items()}, qe_route(res)


def measure_qe_route(task: Task, perm: np.ndarray, batch_size: int, n_batches: int, seed: int,
                     ttn: bool = False) -> tuple[dict[int, float], dict]:
    """:func:`measure_qe` (``ttn=False``) or :func:`measure_qe_ttn` (``ttn=True``) with the route it took
    (:func:`qe_route`: P5's batches of ``batch_size`` samples)."""
    if ttn:
        x, theta = apply_order(ttn_inputs(task.x_train, task.x_train), perm), TTN_THETA
    else:
        x, theta = apply_order(_standardize(task.x_train), perm), 0.085
    res = data_entanglement(x, task.y_train, theta=theta, batch_size=min(batch_size, len(x)), n_batches=n_batches,
                            levels=_qe_levels(task), seed=seed, shape=task.shape, method="batches")
    return _levels_and_route(res)


def measure_qe(task: Task, perm: np.ndarray, batch_size: int, n_batches: int, seed: int) -> dict[int, float]:
    """Mean QE per canonical level (θ = 0.085) of the standardized training data in order ``perm``, P5's
    protocol: the mean over ``n_batches`` batches of ``batch_size`` samples (a batch's tensor: its QE is at most
    ``ln batch_size``)."""
    return measure_qe_route(task, perm, batch_size, n_batches, seed)[0]


def measure_qe_ttn(task: Task, perm: np.ndarray, batch_size: int, n_batches: int, seed: int) -> dict[int, float]:
    """Mean QE per canonical level of the data *the TTN sees*: its inputs (:func:`ttn_inputs`, min–max to
    ``[0, 1]``) under its own trig map (θ = :data:`TTN_THETA`), same levels and batches as :func:`measure_qe`. This
    is the tensor P5's theorem speaks about for the TTN (a network of the canonical tree over that feature map)."""
    return measure_qe_route(task, perm, batch_size, n_batches, seed, ttn=True)[0]


def measure_qe_whole(task: Task, perm: np.ndarray, seed: int, sketch_size: int) -> tuple[dict[int, float], dict]:
    """QE per canonical level (θ = 0.085, standardized features, the levels of :func:`measure_qe`) of the tensor of
    the *whole* training split in order ``perm``, with its route (:func:`qe_route`).

    ``data_entanglement(method="auto")`` decides: exact for at most
    :data:`~tnml.entanglement.data_entanglement.AUTO_EXACT_MAX_SAMPLES` samples, else the streaming Nyström
    sketch with ``sketch_size`` landmarks (seeded by ``seed``), whose error estimate the route records. Unlike P5's
    batches, this quantity does not saturate at ``ln`` of a batch size."""
    x = apply_order(_standardize(task.x_train), perm)
    res = data_entanglement(x, task.y_train, levels=_qe_levels(task), shape=task.shape, method="auto",
                            sketch_size=sketch_size, random_state=seed)
    return _levels_and_route(res)


def _merge_routes(routes: list[dict]) -> dict:
    """One route record for several measurements of the same route (largest error estimates over them)."""
    out = dict(routes[0])
    if out["method"] == "sketch":
        out["residual_max"] = max(r["residual_max"] for r in routes)
        out["error_estimate_max"] = max(r["error_estimate_max"] for r in routes)
        out["error_estimate_levels"] = {lv: max(r["error_estimate_levels"][lv] for r in routes)
                                        for lv in out["error_estimate_levels"]}
    return out


def train_cnn(task: Task, perm: np.ndarray, *, epochs: int, channels, seed: int, device: str = "cpu",
              lr: float = 3e-3, batch_size: int = 64, checkpointer: Checkpointer | None = None, width: int = 32,
              max_width: int = 128) -> dict:
    """Train the task's CNN on features in order ``perm``; returns final test accuracy, train accuracy, seconds and
    the channels used. ``channels=None``: the CNN pools down to one position (``width``, ``max_width`` of its
    default schedule). ``checkpointer`` makes the training loop resumable (see
    :func:`~tnml.experiments.training.train_classifier`)."""
    torch.manual_seed(seed)
    t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    xtr, xte = t(apply_order(task.x_train, perm), torch.float32), t(apply_order(task.x_test, perm), torch.float32)
    ytr, yte = t(task.y_train, torch.long), t(task.y_test, torch.long)
    model: CNN1D | CNN2D
    if task.dims == 2:
        assert task.shape is not None  # 2-D tasks carry their grid
        model = CNN2D(task.shape, task.n_classes, channels=channels, width=width, max_width=max_width).to(device)
    else:
        model = CNN1D(xtr.shape[1], task.n_classes, channels=channels, width=width, max_width=max_width).to(device)
    t0 = time.perf_counter()
    hist = train_classifier(model, xtr, ytr, xte, yte, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                            weight_decay=1e-4, desc=f"{task.name}", checkpointer=checkpointer)
    return {"test_acc": hist["test_acc"][-1], "train_acc": hist["train_acc"][-1],
            "seconds": time.perf_counter() - t0, "channels": list(model.channels),
            "pools_to_one": bool(model.pools_to_one)}


def cnn_kwargs(task_name: str, s: Settings) -> dict:
    """Keyword arguments of :func:`train_cnn` for ``task_name`` under settings ``s`` (DNA: its own epochs and lr)."""
    kw: dict = dict(epochs=s.epochs, channels=s.channels, width=s.cnn_width, max_width=s.cnn_max_width)
    if task_name == "dna":
        kw.update(epochs=s.dna_epochs, lr=s.dna_lr)
    return kw




def ttn_inputs(x_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The TTN's input: each feature min–max scaled to ``[0, 1]`` with the training split's range (test values
    clipped; constant features become 0). Digits pixels (already ``x / 16``) are unchanged up to their range."""
    lo, hi = x_train.min(0), x_train.max(0)
    out = np.clip((np.asarray(x) - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
    return np.where(hi > lo, out, 0.0)


def make_ttn(task: Task, bond: int, device: str = "cpu") -> TTN:
    """The locally connected tensor network of P5 for ``task``: contiguous binary pooling over the ``N``
    features (1-D) or 2×2 windows over the grid (2-D), inner bonds ``bond``, trig map, one output per class."""
    fm = ("trig", {"theta": TTN_THETA})
    if task.dims == 2:
        return TTN(shape=task.shape, bond_dim=bond, out_dim=task.n_classes, feature_map=fm, device=device)
    return TTN(n_sites=task.x_train.shape[1], bond_dim=bond, out_dim=task.n_classes, feature_map=fm, device=device)


def train_ttn(task: Task, perm: np.ndarray, *, epochs: int, bond: int, seed: int, lr: float = 1e-2,
              device: str = "cpu", batch_size: int = 64, checkpointer: Checkpointer | None = None) -> dict:
    """Train the task's TTN (:func:`make_ttn`) on features in order ``perm`` (inputs from :func:`ttn_inputs`)
    through :class:`~tnml.networks.NormalizedLogits` (per-sample normalized logits: with raw outputs 5 of 12 1-D
    digits runs stayed at chance, 0 of 12 with the head); returns final test accuracy, train accuracy and seconds."""
    torch.manual_seed(seed)
    t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    xtr = t(apply_order(ttn_inputs(task.x_train, task.x_train), perm), torch.float32)
    xte = t(apply_order(ttn_inputs(task.x_train, task.x_test), perm), torch.float32)
    ytr, yte = t(task.y_train, torch.long), t(task.y_test, torch.long)
    model = NormalizedLogits(make_ttn(task, bond, device))
    t0 = time.perf_counter()
    hist = train_classifier(model, xtr, ytr, xte, yte, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                            desc=f"{task.name} TTN", checkpointer=checkpointer)
    return {"test_acc": hist["test_acc"][-1], "train_acc": hist["train_acc"][-1],
            "seconds": time.perf_counter() - t0}


def pair_placement(perm: np.ndarray, n_features: int | None = None) -> dict[str, float]:
    """Where an order puts the planted pairs ``(i, i + N/2)``: the fraction of pairs inside one level-1 block (one
    half of the sequence) and inside one bottom block (positions ``2k, 2k + 1``)."""
    perm = np.asarray(perm)
    n = len(perm) if n_features is None else n_features
    pos = np.argsort(perm)
    a, b = pos[: n // 2], pos[n // 2:]
    half = n - n // 2  # array_split puts the extra feature in the first half
    return {"same_half": float(np.mean((a < half) == (b < half))), "adjacent": float(np.mean(a // 2 == b // 2))}


def stall_threshold(n_classes: int) -> float:
    """A run *stalled* when its final training accuracy is below halfway from chance ``1/C`` to 1: the optimizer
    never left the initial plateau (raw TTN logits did this often: see :class:`~tnml.networks.NormalizedLogits`)."""
    return 0.5 * (1.0 + 1.0 / n_classes)


def _summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))} if values else \
        {"mean": float("nan"), "std": float("nan")}


def compare_orders(task_name: str, seeds, s: Settings, device: str = "cpu", qe_seeds=None,
                   checkpointer: CheckpointerFactory | None = None) -> dict:
    """Core loop: for each seed build the orders, measure QE (on ``qe_seeds``), CNN accuracy and, if ``task_name``
    is in ``s.ttn_tasks``, TTN accuracy; if it is in ``s.qe_whole_tasks``, the whole training split's QE on the
    first QE seed (:func:`measure_qe_whole`). ``qe_routes`` records the route of each QE (:func:`qe_route`).
    ``checkpointer(tag)`` (e.g. ``RunConfig.checkpointer``) gives each training loop its checkpoint, tagged
    ``TASK_ORDER_MODEL_seedS``."""
    ck = checkpointer or (lambda tag: None)
    qe_seeds = list(seeds) if qe_seeds is None else list(qe_seeds)
    with_ttn = task_name in s.ttn_tasks
    with_whole = task_name in s.qe_whole_tasks
    qe_whole: dict[str, dict[int, float]] = {}
    routes: dict[str, list[dict]] = {"p5_protocol": [], "ttn_inputs": [], "whole_data": []}
    acc: dict[str, list[float]] = {o: [] for o in ORDERS}
    ttn_acc: dict[str, list[float]] = {o: [] for o in ORDERS}
    ttn_stalled: dict[str, list[bool]] = {o: [] for o in ORDERS}
    qe: dict[str, list[dict[int, float]]] = {o: [] for o in ORDERS}
    qe_ttn: dict[str, list[dict[int, float]]] = {o: [] for o in ORDERS}
    placement: dict[str, list[dict[str, float]]] = {o: [] for o in ORDERS}
    cnn_info: dict = {}
    backends = []
    for seed in seeds:
        task = load_task(task_name, seed, s)
        orders, info = build_orders(task.x_train, task.dims, task.shape, seed)
        backends.append(info.get("backend"))
        for name, perm in orders.items():
            cnn_ck = ck(f"{task_name}_{name}_cnn_seed{seed}")
            r = train_cnn(task, perm, seed=seed, device=device, checkpointer=cnn_ck, **cnn_kwargs(task_name, s))
            acc[name].append(r["test_acc"])
            cnn_info = {"channels": r["channels"], "pools_to_one": r["pools_to_one"]}
            if with_ttn:
                r = train_ttn(task, perm, epochs=s.ttn_epochs, bond=s.ttn_bond, lr=s.ttn_lr, seed=seed, device=device,
                              checkpointer=ck(f"{task_name}_{name}_ttn_seed{seed}"))
                ttn_acc[name].append(r["test_acc"])
                ttn_stalled[name].append(bool(r["train_acc"] < stall_threshold(task.n_classes)))
            if seed in qe_seeds:
                lv, route = measure_qe_route(task, perm, s.qe_batch, s.qe_batches, seed)
                qe[name].append(lv)
                routes["p5_protocol"].append(route)
                if with_ttn:
                    lv, route = measure_qe_route(task, perm, s.qe_batch, s.qe_batches, seed, ttn=True)
                    qe_ttn[name].append(lv)
                    routes["ttn_inputs"].append(route)
                if with_whole and seed == qe_seeds[0]:
                    qe_whole[name], route = measure_qe_whole(task, perm, seed, s.qe_whole_sketch_size)
                    routes["whole_data"].append(route)
            if task_name == "planted":
                placement[name].append(pair_placement(perm))
    out: dict = {"seeds": list(seeds), "partitioner_backend": backends, "orders": {}, "ttn": with_ttn,
                 "cnn": cnn_info, "qe_routes": {k: _merge_routes(v) for k, v in routes.items() if v}}
    for name in ORDERS:
        levels = sorted(qe[name][0]) if qe[name] else []
        qe_lv = {lv: float(np.mean([q[lv] for q in qe[name]])) for lv in levels}
        cnn, ttn = _summary(acc[name]), _summary(ttn_acc[name])
        out["orders"][name] = {
            "acc": acc[name],
            "acc_mean": cnn["mean"],
            "acc_std": cnn["std"],
            "ttn_acc": ttn_acc[name],
            "ttn_acc_mean": ttn["mean"],
            "ttn_acc_std": ttn["std"],
            "ttn_stalled": int(sum(ttn_stalled[name])),
            "ttn_acc_mean_not_stalled": _summary([a for a, st in zip(ttn_acc[name], ttn_stalled[name])
                                                  if not st])["mean"],
            "qe_levels": qe_lv,
            "qe_mean": float(np.mean(list(qe_lv.values()))) if qe_lv else float("nan"),
        }
        if qe_ttn[name]:
            lv_t = {lv: float(np.mean([q[lv] for q in qe_ttn[name]])) for lv in sorted(qe_ttn[name][0])}
            out["orders"][name]["qe_ttn_levels"] = lv_t
            out["orders"][name]["qe_ttn_mean"] = float(np.mean(list(lv_t.values())))
        if name in qe_whole:
            out["orders"][name]["qe_whole_levels"] = qe_whole[name]
            out["orders"][name]["qe_whole_mean"] = float(np.mean(list(qe_whole[name].values())))
        if placement[name]:
            out["orders"][name]["pairs_same_half"] = float(np.mean([p["same_half"] for p in placement[name]]))
            out["orders"][name]["pairs_adjacent"] = float(np.mean([p["adjacent"] for p in placement[name]]))
    o = out["orders"]
    # only meaningful when the permutation actually cost accuracy (NaN otherwise)
    for model, key in (("", "acc_mean"), ("ttn_", "ttn_acc_mean")):
        lost = o["original"][key] - o["random"][key]
        out[f"{model}accuracy_lost_by_permutation"] = lost
        for k in ("rearranged", "igtd"):
            out[f"{model}fraction_restored_{k}"] = (o[k][key] - o["random"][key]) / lost \
                if lost > 1e-3 else float("nan")
    return out


def swap_curve(task_name: str, ks, seeds, s: Settings, device: str = "cpu",
               checkpointer: CheckpointerFactory | None = None) -> dict:
    """QE and CNN accuracy after swapping ``k`` random pairs of the original order (P5 Fig. 4); ``checkpointer`` as
    in :func:`compare_orders` (tags ``swap_TASK_kK_seedS``)."""
    ck = checkpointer or (lambda tag: None)
    rows = []
    routes = []
    for k in ks:
        accs, qes = [], []
        for seed in seeds:
            task = load_task(task_name, seed, s)
            perm = swap_pairs(task.x_train.shape[1], k, seed=1000 + seed)
            accs.append(train_cnn(task, perm, seed=seed, device=device,
                                  checkpointer=ck(f"swap_{task_name}_k{k}_seed{seed}"),
                                  **cnn_kwargs(task_name, s))["test_acc"])
            lv, route = measure_qe_route(task, perm, s.qe_batch, s.qe_batches, seed)
            qes.append(float(np.mean(list(lv.values()))))
            routes.append(route)
        rows.append({"k": int(k), "acc_mean": float(np.mean(accs)), "acc_std": float(np.std(accs)),
                     "qe_mean": float(np.mean(qes)), "qe_std": float(np.std(qes))})
    return {"task": task_name, "rows": rows, "qe_route": _merge_routes(routes) if routes else None}


# ---------------------------------------------------------------------------------------------- exact window
def window_fit_curve(task: Task, ranks, n_random: int, seed: int, start: int = 84, width: int = 16) -> dict:
    """P5's theorem on an exact case from real data: the dense data tensor of a ``width``-feature window of DNA
    (bits ``start .. start + width − 1``, around the splice junction; labels junction vs ``n``; the TTN's inputs
    and map) in the original order, a rearranged order (fitted on a random permutation of the window) and
    ``n_random`` random orders, through :func:`~tnml.experiments.exact_fit.exact_fit_rows`: per order the exact QE
    across every canonical block and per width ``R`` the best-found error (truncated hierarchical SVD), the
    necessary-side lower bound and the sufficient bound (lower <= best <= HSVD <= sufficient)."""
    x01 = ttn_inputs(task.x_train, task.x_train)[:, start:start + width]
    signs = np.where(task.y_train == 2, 1.0, -1.0)
    rng = np.random.default_rng(seed)
    rand0 = rng.permutation(width)
    orders = {"original": np.arange(width),
              "rearranged": rand0[_fit_rearrangement(x01[:, rand0], 1, None, seed)[0]]}
    for i in range(n_random):
        orders[f"random{i}"] = rand0 if i == 0 else rng.permutation(width)
    rows = exact_fit_rows(x01, signs, orders, ranks, theta=TTN_THETA)
    return {"start": start, "width": width, "ranks": [int(r) for r in ranks], "rows": rows}




@register_experiment(
    "data-suitability",
    "P5: original vs random vs rearranged vs IGTD feature orders -- data QE per level and CNN accuracy on DNA, digits "
    "1-D/2-D, planted long-range pairs (and tabular data in full); the TTN's accuracy vs bond per order with QE / ln M "
    "per level; feature-swap curve",
)
def run(cfg: RunConfig) -> ExperimentResult:
    s = SETTINGS[cfg.quick]
    t0 = time.perf_counter()
    seeds = [cfg.seed + i for i in range(s.seeds)]
    qe_seeds = seeds if s.qe_all_seeds else seeds[:1]
    tasks = (["dna"] if s.dna else []) + ["digits-1d", "digits-2d", "planted"]
    tasks += (["breast-cancer", "wine"] if s.tabular else [])
    tasks += [t for t in s.extra_tasks if t not in tasks]
    metrics: dict = {"settings": s.__dict__ | {"channels": None if s.channels is None else list(s.channels),
                                               "ttn_tasks": list(s.ttn_tasks)},
                     "ttn_theta": TTN_THETA, "tasks": {}}
    # wall and CPU seconds per part under "seconds" keys (CPU time of this process: comparable across loaded and
    # idle machines; "seconds" keys are what resume tests leave out)
    c0 = time.process_time()
    for name in tasks:
        task_seeds = seeds if name == "dna" or s.secondary_seeds is None else seeds[: s.secondary_seeds]
        if name == "planted" and s.planted_seeds is not None:
            task_seeds = task_seeds[: s.planted_seeds]
        t1, c1 = time.perf_counter(), time.process_time()
        metrics["tasks"][name] = compare_orders(name, task_seeds, s, cfg.device,
                                                [q for q in qe_seeds if q in task_seeds] or task_seeds[:1],
                                                cfg.checkpointer)
        metrics["tasks"][name]["seconds"] = {"wall": time.perf_counter() - t1, "cpu": time.process_time() - c1}
    t1, c1 = time.perf_counter(), time.process_time()
    swap = swap_curve(s.swap_task, s.swap_ks, seeds[: s.swap_seeds], s, cfg.device, cfg.checkpointer)
    metrics["swap_curve"] = swap
    swap["seconds"] = {"wall": time.perf_counter() - t1, "cpu": time.process_time() - c1}
    window = None
    if s.window_ranks:
        t1, c1 = time.perf_counter(), time.process_time()
        dna = load_task("dna", cfg.seed)
        window = window_fit_curve(dna, s.window_ranks, s.window_random_orders, cfg.seed)
        window["n_samples"] = len(dna.y_train)  # the exact dense tensor's samples: the whole training split
        metrics["window_fit"] = window
        window["seconds"] = {"wall": time.perf_counter() - t1, "cpu": time.process_time() - c1}
    sweep = None
    if s.sweep is not None:
        # imported here: the sweep module builds on this one (its tasks, orders and TTN)
        from tnml.experiments import ttn_order_sweep

        t1, c1 = time.perf_counter(), time.process_time()
        sweep = ttn_order_sweep.run_sweep(ttn_order_sweep.SWEEP_SETTINGS[s.sweep], cfg.seed, cfg.device,
                                          cfg.checkpointer)
        metrics["ttn_sweep"] = sweep
        sweep["seconds"] = {"wall": time.perf_counter() - t1, "cpu": time.process_time() - c1}
    metrics["seconds"] = time.perf_counter() - t0
    metrics["cpu"] = {"seconds": time.process_time() - c0}  # CPU seconds of the whole run

    plots = ["orders.png", "swap_curve.png"] + (["window_fit.png"] if window is not None else [])
    plots += ["ttn_bond_sweep.png"] if sweep is not None else []
    _plot_orders(metrics["tasks"], cfg.out_dir / plots[0])
    _plot_swap(swap, cfg.out_dir / plots[1])
    if window is not None:
        plot_window(window, cfg.out_dir / plots[2])
    if sweep is not None:
        ttn_order_sweep.plot_sweep(sweep, cfg.out_dir / plots[-1])

    comparisons = _dna_comparisons(metrics, window) if "dna" in metrics["tasks"] else []
    comparisons += ttn_order_sweep.sweep_comparisons(sweep) if sweep is not None else []
    comparisons += _task_comparisons(metrics, swap)
    claims = _claims(metrics, swap, window, sweep)
    about = ("Does a locally connected network fit data whose entanglement across its canonical partitions is low, "
             "and does rearranging the features to lower it help? P5 (Alexander, De La Vega, Razin, Cohen, NeurIPS "
             "2023) on Statlog DNA: a CNN that pools down to one position and the locally connected tensor network "
             "itself (a TTN swept over bond dimensions), on original, randomly permuted, rearranged and IGTD orders, "
             "with the data's QE per canonical level.")
    notes = ["Orders: original (the data's own), random (a new uniformly random permutation per seed: P5's start), "
             "rearranged (FeatureRearrangement, P5's Algorithm 1, fitted on the training split of the permuted "
             "data), IGTD (the baseline). Every table row lists the four orders in that order.",
             routes_note(metrics, swap, window, sweep)]
    return ExperimentResult(metrics, comparisons, plots, claims=claims, about=about, notes=notes)
