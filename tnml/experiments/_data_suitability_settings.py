"""Settings, tasks and feature orders of the ``data-suitability`` experiment
(:mod:`tnml.experiments.data_suitability`), shared by its measurements and its report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tnml.checkpoint import Checkpointer

#: ``tag -> Checkpointer | None`` (``RunConfig.checkpointer``)
CheckpointerFactory = Callable[[str], Checkpointer | None]

ORDERS = ("original", "random", "rearranged", "igtd")
#: the tasks :func:`~tnml.experiments.data_suitability.load_task` builds
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
    #: tasks whose whole training split's QE is measured too (first QE seed, every order;
    #: :func:`~tnml.experiments.data_suitability.measure_qe_whole`):
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


#: trig-map parameter of the TTN input: ``φ(x) = (cos πθx, sin πθx)`` on ``[0, 1]`` (Stoudenmire–Schwab's choice, the
#: one ``digits-classifiers`` uses)
TTN_THETA = 0.5


#: table label of the four orders
ORDER_LABEL = "orig/rand/rear/IGTD"
