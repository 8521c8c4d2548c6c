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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from tnml.baselines import CNN1D, CNN2D
from tnml.checkpoint import Checkpointer
from tnml.datasets.synthetic import planted_pairs
from tnml.entanglement import DataEntanglementResult, data_entanglement
from tnml.experiments._common import pyplot
from tnml.experiments.exact_fit import exact_fit_rows, plot_window
from tnml.experiments.registry import Claim, Comparison, ExperimentResult, RunConfig, register_experiment
from tnml.experiments.training import train_classifier
from tnml.io import save_figure
from tnml.networks import TTN, NormalizedLogits
from tnml.preprocessing import FeatureRearrangement, IGTDRearrangement
from tnml.validation import check_option

#: ``tag -> Checkpointer | None`` (``RunConfig.checkpointer``)
CheckpointerFactory = Callable[[str], Checkpointer | None]

ORDERS = ("original", "random", "rearranged", "igtd")
#: the tasks :func:`load_task` builds
TASKS = ("dna", "digits-1d", "digits-2d", "breast-cancer", "wine", "planted")


@dataclass(frozen=True)
class Settings:
    seeds: int
    epochs: int
    #: CNN channels per block; None: pool down to one position (:func:`~tnml.baselines.local_cnn.tree_channels`
    #: with ``cnn_width`` / ``cnn_max_width``)
    channels: tuple[int, ...] | None
    qe_batch: int
    qe_batches: int
    qe_all_seeds: bool
    swap_ks: tuple[int, ...]
    swap_seeds: int
    tabular: bool
    #: tasks on which the tensor network (TTN) is trained too (it is slower than the CNN on 64 features)
    ttn_tasks: tuple[str, ...] = ("planted",)
    ttn_epochs: int = 15
    ttn_bond: int = 8
    ttn_lr: float = 1e-2
    #: samples and features of the planted data set (``planted_features`` even; 2/3 train, 1/3 test)
    planted_samples: int = 3000
    planted_features: int = 32
    #: seeds of the planted task (None: all ``seeds``)
    planted_seeds: int | None = None
    #: tasks run besides digits-1d, digits-2d, planted (and breast-cancer, wine when ``tabular``)
    extra_tasks: tuple[str, ...] = ()
    cnn_width: int = 32
    cnn_max_width: int = 128
    #: Statlog DNA, the headline rows (P5's dna row): run it, with these CNN settings
    dna: bool = False
    dna_epochs: int = 12
    dna_lr: float = 2e-3
    #: seeds of the secondary tasks (digits, planted, tabular); None: all ``seeds``
    secondary_seeds: int | None = None
    #: task of the feature-swap curve
    swap_task: str = "digits-2d"
    #: ranks of the exact window analysis (best-found error vs max QE on a 16-feature DNA window); () skips it
    window_ranks: tuple[int, ...] = ()
    window_random_orders: int = 6
    #: the TTN bond sweep (:mod:`~tnml.experiments.ttn_order_sweep`): None skips it; True / False runs
    #: ``ttn_order_sweep.SWEEP_SETTINGS[True / False]`` (its quick / full size)
    sweep: bool | None = None
    #: tasks whose whole training split's QE is measured too (first QE seed, every order; :func:`measure_qe_whole`):
    #: ``data_entanglement(method="auto")`` takes the exact route up to its sample threshold, the sketch beyond
    qe_whole_tasks: tuple[str, ...] = ()
    #: landmarks of the sketch route when ``"auto"`` takes it
    qe_whole_sketch_size: int = 256


SETTINGS = {
    True: Settings(3, 12, None, 200, 1, False, (0, 16, 64), 1, False,
                   ttn_tasks=(), ttn_epochs=10, ttn_bond=8, ttn_lr=1e-2,
                   planted_samples=3000, planted_features=32, extra_tasks=("wine",), cnn_width=16, cnn_max_width=64,
                   dna=True, dna_epochs=8, dna_lr=2e-3, secondary_seeds=1, swap_task="dna", window_ranks=(2, 4, 8),
                   window_random_orders=6, sweep=True, qe_whole_tasks=("dna",), qe_whole_sketch_size=256),
    False: Settings(5, 40, None, 500, 2, True, (0, 8, 16, 32, 64), 3, True,
                    ttn_tasks=("planted", "digits-1d", "digits-2d", "breast-cancer", "wine", "dna"), ttn_epochs=40,
                    ttn_bond=8, ttn_lr=1e-2, planted_samples=3000, planted_features=32, dna=True, dna_epochs=12,
                    dna_lr=2e-3, swap_task="dna", window_ranks=(2, 4, 8, 16), window_random_orders=20, sweep=False,
                    qe_whole_tasks=("dna",), qe_whole_sketch_size=512),
}


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


#: trig-map parameter of the TTN input: ``φ(x) = (cos πθx, sin πθx)`` on ``[0, 1]`` (Stoudenmire–Schwab's choice, the
#: one ``digits-classifiers`` uses)
TTN_THETA = 0.5


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


# ---------------------------------------------------------------------------------------------- experiment
def _fmt(o: dict, key: str) -> str:
    return " / ".join(f"{100 * o[k][key + '_mean']:.1f} ± {100 * o[k][key + '_std']:.1f}" for k in ORDERS)


def _means(o: dict, key: str) -> str:
    """Table cell: the four orders' means in %, original / random / rearranged / IGTD."""
    return " / ".join(f"{100 * o[k][key + '_mean']:.1f}" for k in ORDERS)


#: table label of the four orders
ORDER_LABEL = "orig/rand/rear/IGTD"


def _stalls(o: dict) -> str:
    """Note on stalled TTN runs (see :func:`stall_threshold`) with the mean over the other runs."""
    if not any(o[k]["ttn_stalled"] for k in ORDERS):
        return "no TTN run stalled; "
    per = " / ".join(str(o[k]["ttn_stalled"]) for k in ORDERS)
    rest = " / ".join(f"{100 * o[k]['ttn_acc_mean_not_stalled']:.1f}" for k in ORDERS)
    return (f"stalled TTN runs (train acc below halfway from chance to 1) per order: {per}; mean test acc over the "
            f"other runs: {rest} (nan: all stalled); ")


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
    for name, r in metrics["tasks"].items():
        o = r["orders"]
        n_seeds = len(r["seeds"])
        if name == "dna":
            continue
        if name == "planted":
            comparisons.append(Comparison(
                f"planted pairs adjacent/same half % ({ORDER_LABEL})",
                " ; ".join(f"{100 * o[k]['pairs_adjacent']:.0f}/{100 * o[k]['pairs_same_half']:.0f}" for k in ORDERS),
                None, "Pairs (i, i+N/2) placed in one bottom block (adjacent) and in one half, in %. Designed: the "
                "original order has 0/0; rearrangement should find the pairs (by absolute Pearson correlation only)."))
            for model, key in (("CNN", "acc"), ("TTN", "ttn_acc")):
                if model == "TTN" and not r["ttn"]:
                    continue
                best = max(o[k][key + "_mean"] for k in ORDERS)
                chance = (" At chance in every order: this model did not learn the label in the epochs given, so "
                          "it says nothing about the order here (docs/science/p5-evidence.md: why the planted label "
                          "is hard to learn from min-max scaled inputs).")
                chance = chance if best < 0.6 else ""
                comparisons.append(Comparison(
                    f"planted {model} acc % ({ORDER_LABEL})", _means(o, key), None,
                    f"planted {model}, mean ± std over {n_seeds} seeds: {_fmt(o, key)}. "
                    + (_stalls(o) if model == "TTN" else "")
                    + f"From the random order (P5's start): random → rearranged "
                    f"{100 * o['random'][key + '_mean']:.1f} → {100 * o['rearranged'][key + '_mean']:.1f}, "
                    f"{_igtd_vs_rearranged(o, key)}; "
                    "the original order is the bad one here (pairs at distance N/2; the label is chance for any sum "
                    f"of single-feature functions): rearranged − original = "
                    f"{100 * (o['rearranged'][key + '_mean'] - o['original'][key + '_mean']):+.1f} points." + chance))
        else:
            for model, key, pre in (("CNN", "acc", ""), ("TTN", "ttn_acc", "ttn_")):
                if model == "TTN" and not r["ttn"]:
                    continue
                lost = r[pre + "accuracy_lost_by_permutation"]
                # below 2 points or 2 seed std: too small to judge (with one seed the std is 0)
                noise = max(0.02, 2 * max(o["original"][key + "_std"], o["random"][key + "_std"]))
                small = (" Negative result: the loss is below 2 points or within 2 seed std, too small to judge "
                         "restoration (unlike DNA, the headline rows); docs/science/p5-evidence.md discusses why."
                         if lost <= noise else "")
                comparisons.append(Comparison(
                    f"{name} {model} acc % ({ORDER_LABEL})", _means(o, key), None,
                    f"{name} {model}, mean ± std over {n_seeds} seeds: {_fmt(o, key)}. "
                    + (_stalls(o) if model == "TTN" else "")
                    + f"Accuracy lost by the permutation: {100 * lost:.1f} points; "
                    f"fraction restored by rearrangement: {r[pre + 'fraction_restored_rearranged']:.2f}, by IGTD: "
                    f"{r[pre + 'fraction_restored_igtd']:.2f} (NaN: nothing lost); {_igtd_vs_rearranged(o, key)}. "
                    "P5's numbers are for other data "
                    "sets (e.g. semeion CNN 77.73 → 79.93, dna 82.55 → 91.23): context only." + small))
        comparisons.append(Comparison(
            f"{name} mean canonical QE ({ORDER_LABEL})",
            " / ".join(f"{o[k]['qe_mean']:.3f}" for k in ORDERS), None,
            f"{name}: P5's claim is that rearrangement lowers the QE of randomly permuted data. Route: "
            f"{route_text(r['qe_routes']['p5_protocol'])}."))
        if "whole_data" in r["qe_routes"]:
            comparisons.append(_whole_comparison(r, name))
    rows = swap["rows"]
    k_max = rows[-1]["k"]
    comparisons.append(Comparison(
        f"swap curve ({swap['task']}): mean QE, k = 0 → {k_max} swaps",
        f"{rows[0]['qe_mean']:.3f} → {rows[-1]['qe_mean']:.3f}", "QE .31 → 1.0",
        "P5 Fig. 4 swaps k random pairs of features of the original order; its numbers are for another data set "
        "and normalization: the trend is what compares."
        + (f" Route: {route_text(swap['qe_route'])}." if swap.get("qe_route") else "")))
    comparisons.append(Comparison(
        f"swap curve ({swap['task']}): CNN acc %, k = 0 → {k_max} swaps",
        f"{100 * rows[0]['acc_mean']:.1f} → {100 * rows[-1]['acc_mean']:.1f}", "91.7 → 55"))
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


def route_text(route: dict) -> str:
    """One route record (:func:`qe_route`) in words."""
    m = route["n_samples"]
    if route["method"] == "sketch":
        return (f"streaming Nyström sketch of all {m} samples with {route['sketch_size']} landmarks (largest residual "
                f"{route['residual_max']:.3g}, 0 = exact; error estimate up to {route['error_estimate_max']:.3g} nats "
                "per partition)")
    if route["method"] == "exact":
        return f"exact, all {m} samples"
    b = route["tensor_samples"]
    return (f"{route['batches']} batch(es) of {b} of the {m} samples, averaged (P5's estimator; a batch's tensor: QE "
            f"at most ln {b} = {np.log(b):.2f})")


def routes_note(metrics: dict, swap: dict, window: dict | None, sweep: dict | None) -> str:
    """The summary note that states the route of every QE the run measured."""
    parts = []
    for name, r in metrics["tasks"].items():
        routes = r.get("qe_routes", {})
        text = "; ".join(f"{label} {route_text(routes[key])}" for key, label in
                         (("p5_protocol", "P5's protocol (θ = 0.085):"), ("ttn_inputs", "the TTN's inputs (θ = 0.5):"),
                          ("whole_data", "whole training split (method='auto' chose):")) if key in routes)
        parts.append(f"{name} — {text}")
    if swap.get("qe_route") is not None:
        parts.append(f"swap curve ({swap['task']}) — {route_text(swap['qe_route'])}")
    if window is not None:
        parts.append(f"DNA window — exact dense tensor of all {window.get('n_samples', 'training')} training samples")
    if sweep is not None:
        for name, t in sweep["tasks"].items():
            first = next(iter(t["orders"].values()))
            parts.append(f"TTN sweep ({name}) — one batch of {first['qe'][0]['n_samples']} training samples, "
                         "exact on them")
    return "QE routes of this run: " + "; ".join(parts) + "."


def _whole_comparison(r: dict, name: str) -> Comparison:
    """The row of the whole training split's QE of task ``name`` (its route and error estimate in the note)."""
    o, route = r["orders"], r["qe_routes"]["whole_data"]
    short = {"sketch": f"sketch k={route.get('sketch_size')}", "exact": "exact"}.get(route["method"], route["method"])
    levels = list(o["random"]["qe_whole_levels"])
    note = (f"{name}: QE of the tensor of all {route['n_samples']} training samples of seed {r['seeds'][0]} "
            "(z-scored, θ = 0.085, P5's levels), the route chosen by data_entanglement(method='auto'): "
            f"{route_text(route)}. Per level: "
            + "; ".join(f"{k} " + ", ".join(f"{o[k]['qe_whole_levels'][lv]:.2f}" for lv in levels) for k in ORDERS)
            + ".")
    if route["method"] == "sketch":
        est = route["error_estimate_levels"]
        diff = {lv: o["random"]["qe_whole_levels"][lv] - o["rearranged"]["qe_whole_levels"][lv] for lv in levels}
        beyond = [lv for lv in levels if abs(diff[lv]) > est[lv]]
        note += (" Error estimate per level (largest over partitions and orders): "
                 + ", ".join(f"{est[lv]:.3f}" for lv in levels) + " nats; random − rearranged per level: "
                 + ", ".join(f"{diff[lv]:+.3f}" for lv in levels) + f" — beyond the level's estimate at "
                 f"{len(beyond)} of {len(levels)} levels" + (f" ({', '.join(map(str, beyond))})" if beyond else "")
                 + ". These are sketch estimates, not exact values.")
    return Comparison(f"{name} whole-data QE, {short} ({ORDER_LABEL})",
                      " / ".join(f"{o[k]['qe_whole_mean']:.3f}" for k in ORDERS), None, note)


def _igtd_vs_rearranged(o: dict, key: str) -> str:
    d = o["igtd"][key + "_mean"] - o["rearranged"][key + "_mean"]
    noise = max(o["igtd"][key + "_std"], o["rearranged"][key + "_std"])
    verdict = "matches" if abs(d) <= noise else ("beats" if d > 0 else "falls behind")
    return f"IGTD {verdict} rearrangement ({100 * d:+.1f} points; seed std {100 * noise:.1f})"


def _dna_comparisons(metrics: dict, window: dict | None) -> list[Comparison]:
    """The headline rows: Statlog DNA, P5's dna row."""
    r = metrics["tasks"]["dna"]
    o = r["orders"]
    n_seeds = len(r["seeds"])
    lost, frac = r["accuracy_lost_by_permutation"], r["fraction_restored_rearranged"]
    cnn = r["cnn"]
    s = metrics["settings"]
    arch = (f"CNN1D channels {tuple(cnn['channels'])}, "
            + ("pools down to one position" if cnn["pools_to_one"] else "shallow: global mean over positions")
            + f"; Adam {s['dna_lr']:g}, {s['dna_epochs']} epochs, batch 64, 80/20 split, a new permutation per seed")
    out = [
        Comparison(
            "DNA CNN acc %, random → rearranged",
            f"{100 * o['random']['acc_mean']:.1f} ± {100 * o['random']['acc_std']:.1f} → "
            f"{100 * o['rearranged']['acc_mean']:.1f} ± {100 * o['rearranged']['acc_std']:.1f}",
            "82.55 → 91.23",
            f"Mean ± std over {n_seeds} seeds. {arch}. Original order {100 * o['original']['acc_mean']:.1f} ± "
            f"{100 * o['original']['acc_std']:.1f}; IGTD {100 * o['igtd']['acc_mean']:.1f} ± "
            f"{100 * o['igtd']['acc_std']:.1f} ({_igtd_vs_rearranged(o, 'acc')})."
            f" Permutation cost {100 * lost:.1f} points, rearrangement restored {100 * frac:.0f} % of it "
            f"(per seed: random {', '.join(f'{100 * a:.1f}' for a in o['random']['acc'])}; rearranged "
            f"{', '.join(f'{100 * a:.1f}' for a in o['rearranged']['acc'])}).", key=True),
        Comparison("DNA CNN acc %, original order",
                   f"{100 * o['original']['acc_mean']:.1f} ± {100 * o['original']['acc_std']:.1f}"),
        Comparison(
            f"DNA mean canonical QE, P5's protocol ({ORDER_LABEL})",
            " / ".join(f"{o[k]['qe_mean']:.3f}" for k in ORDERS), None,
            "P5's protocol: z-scored features, θ = 0.085, levels 1-4, on the first seed's training split. Per level: "
            + "; ".join(f"{k} " + ", ".join(f"{v:.2f}" for v in o[k]["qe_levels"].values()) for k in ORDERS)
            + f". Route: {route_text(r['qe_routes']['p5_protocol'])}."),
    ]
    if "whole_data" in r.get("qe_routes", {}):
        out.append(_whole_comparison(r, "DNA"))
    if r["ttn"]:
        out.append(Comparison(
            f"DNA TTN bond {s['ttn_bond']} acc % ({ORDER_LABEL})", _means(o, "ttn_acc"), None,
            f"Mean ± std over {n_seeds} seeds: {_fmt(o, 'ttn_acc')}. "
            + _stalls(o) + f"Bond {s['ttn_bond']}, {s['ttn_epochs']} epochs, lr {s['ttn_lr']:g}, inputs min-max to "
            f"[0, 1] (DNA bits unchanged), trig map θ = {TTN_THETA} (one-hot on 0/1). Chance (majority class n) "
            "is 51.9 %: a value near or below it means this TTN did not learn DNA in the epochs given, whatever the "
            "order."))
        out.append(Comparison(
            f"DNA QE of the TTN's inputs, θ = 0.5 ({ORDER_LABEL})",
            " / ".join(f"{o[k].get('qe_ttn_mean', float('nan')):.3f}" for k in ORDERS), None,
            "P5's theorem concerns the tensor a network fits, i.e. this one for the TTN (levels 1-4); the z-scored "
            "θ = 0.085 row is P5's measurement protocol (the one their plots use, and a proxy for the CNN). On "
            "binary DNA the θ = 0.5 map is one-hot, so the top levels saturate near ln(batch size)."))
    if window is not None:
        rows = window["rows"]
        big = max(window["ranks"])
        rand = [w for w in rows if w["order"].startswith("random")]
        get = {w["order"]: w for w in rows}
        note = (f"Exact dense data tensor of a {window['width']}-bit DNA window (bits {window['start']}-"
                f"{window['start'] + window['width'] - 1}), labels junction vs n, the TTN's map; error = relative "
                "error of the truncated hierarchical SVD (a width-R canonical tree); per order and R the "
                "necessary-side lower bound <= best <= HSVD error <= sufficient bound holds (window_fit.png); the "
                "sufficient bound is loose ("
                + ", ".join(f"R={rk}: {np.mean([w['fits'][rk]['sufficient_bound'] for w in rows]):.2f}"
                            for rk in window["ranks"]) + " on average).")
        out.append(Comparison(
            f"DNA {window['width']}-bit window: max QE (orig/rear/random)",
            f"{get['original']['max_qe']:.3f} / {get['rearranged']['max_qe']:.3f} / "
            f"{np.mean([w['max_qe'] for w in rand]):.3f}", None, note))
        out.append(Comparison(
            f"DNA {window['width']}-bit window: error at R = {big} (orig/rear/random)",
            f"{get['original']['fits'][big]['hsvd_error']:.3f} / {get['rearranged']['fits'][big]['hsvd_error']:.3f}"
            f" / {np.mean([w['fits'][big]['hsvd_error'] for w in rand]):.3f}"))
    return out


def _verdict(ok: bool, partly: bool = False) -> str:
    return "reproduced" if ok else ("reproduced with differences" if partly else "not reproduced")


def _claims(metrics: dict, swap: dict, window: dict | None, sweep: dict | None) -> list[Claim]:
    """The claims of P5 this run tested, each with the verdict its own numbers give."""
    claims = []
    if "dna" in metrics["tasks"]:
        r = metrics["tasks"]["dna"]
        o = r["orders"]
        lost, frac = r["accuracy_lost_by_permutation"], r["fraction_restored_rearranged"]
        claims.append(Claim("DNA: a random feature order costs the CNN >= 3 points", _verdict(lost >= 0.03),
                            f"{100 * lost:.1f} points lost"))
        claims.append(Claim("DNA: rearrangement restores >= 50 % of the CNN's loss", _verdict(frac >= 0.5),
                            f"{100 * frac:.0f} % restored (P5: 82.55 → 91.23)"))
        qe_r, qe_x = o["random"]["qe_mean"], o["rearranged"]["qe_mean"]
        claims.append(Claim("DNA: rearrangement lowers the canonical QE", _verdict(qe_x < qe_r),
                            f"mean QE {qe_r:.3f} → {qe_x:.3f}"))
    rows = swap["rows"]
    up, down = rows[-1]["qe_mean"] > rows[0]["qe_mean"], rows[-1]["acc_mean"] < rows[0]["acc_mean"]
    claims.append(Claim("Swapping features raises QE and lowers CNN accuracy", _verdict(up and down, up or down),
                        f"QE {rows[0]['qe_mean']:.2f} → {rows[-1]['qe_mean']:.2f}, acc "
                        f"{100 * rows[0]['acc_mean']:.0f} → {100 * rows[-1]['acc_mean']:.0f} %"))
    if window is not None:
        big = max(window["ranks"])
        get = {w["order"]: w for w in window["rows"]}
        rand = [w for w in window["rows"] if w["order"].startswith("random")]
        lower_qe = get["original"]["max_qe"] < np.mean([w["max_qe"] for w in rand])
        lower_err = get["original"]["fits"][big]["hsvd_error"] < np.mean([w["fits"][big]["hsvd_error"] for w in rand])
        claims.append(Claim("Exact DNA window: the lower-QE order fits with lower error",
                            _verdict(lower_qe and lower_err, lower_qe or lower_err),
                            f"original vs random orders at R = {big}"))
    if sweep is not None:
        signs = {name: t["correlation"].get("qe_vs_bond_strict", float("nan")) for name, t in sweep["tasks"].items()}
        pos = [n for n, v in signs.items() if v > 0]
        claims.append(Claim("TTN: lower QE, fitted at a smaller bond (Spearman > 0)",
                            _verdict(len(pos) == len(signs) and bool(signs), bool(pos)),
                            ", ".join(f"{n} {v:+.2f}" for n, v in signs.items())))
        gaps = {}
        for name, t in sweep["tasks"].items():
            o, bonds = t["orders"], t["bonds"]
            gaps[name] = max(o["rearranged"]["acc_mean"][i] - o["random"]["acc_mean"][i] for i in range(len(bonds)))
        wins = [n for n, g in gaps.items() if g >= 0.03]
        claims.append(Claim("TTN: rearrangement beats a random order at some small bond (>= 3 pts)",
                            _verdict(len(wins) == len(gaps) and bool(gaps), bool(wins)),
                            ", ".join(f"{n} {100 * g:+.1f} pts" for n, g in gaps.items())))
    return claims


def _plot_orders(tasks: dict, path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.6 * len(tasks), 6), squeeze=False)
    colors = ["tab:green", "tab:red", "tab:blue", "tab:orange"]
    x = np.arange(len(ORDERS))
    for j, (name, r) in enumerate(tasks.items()):
        o = r["orders"]
        ax = axes[0, j]
        width = 0.4 if r["ttn"] else 0.8
        ax.bar(x - (width / 2 if r["ttn"] else 0), [100 * o[k]["acc_mean"] for k in ORDERS], width,
               yerr=[100 * o[k]["acc_std"] for k in ORDERS], color=colors, capsize=3, label="CNN")
        lo = min(100 * o[k]["acc_mean"] for k in ORDERS)
        if r["ttn"]:
            ax.bar(x + width / 2, [100 * o[k]["ttn_acc_mean"] for k in ORDERS], width,
                   yerr=[100 * o[k]["ttn_acc_std"] for k in ORDERS], color=colors, capsize=3, hatch="//",
                   alpha=0.6, label="TTN (hatched)")
            lo = min(lo, *(100 * o[k]["ttn_acc_mean"] for k in ORDERS))
            ax.legend(fontsize=7)
        ax.set_xticks(x, ORDERS, rotation=20, fontsize=8)
        ax.set(title=name, ylabel="test accuracy %", ylim=(max(0.0, lo - 10), 100))
        ax = axes[1, j]
        for k, c in zip(ORDERS, colors):
            lv = o[k]["qe_levels"]
            ax.plot(list(lv), list(lv.values()), "o-", color=c, label=k)
            ax.set_xticks(list(lv))
        ax.set(xlabel="canonical level", ylabel="QE (nats)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _plot_swap(swap: dict, path) -> None:
    plt = pyplot()
    rows = swap["rows"]
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.errorbar(ks, [r["qe_mean"] for r in rows], yerr=[r["qe_std"] for r in rows], fmt="o-", color="tab:purple")
    ax.set(xlabel="swapped feature pairs k", ylabel="mean canonical QE", title=f"{swap['task']}: feature swaps")
    ax2 = ax.twinx()
    ax2.errorbar(ks, [100 * r["acc_mean"] for r in rows], yerr=[100 * r["acc_std"] for r in rows], fmt="s--",
                 color="tab:blue")
    ax2.set_ylabel("CNN test accuracy %", color="tab:blue")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)

