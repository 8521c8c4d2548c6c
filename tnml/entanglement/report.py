"""Architecture report: per partition, the min-cut bound of the geometry next to the rank and entropy of the
current instance (network route, nothing densified), as a pandas-free table with a markdown view and a plot."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tnml import settings
from tnml.entanglement.mincut import mincut_bounds
from tnml.entanglement.partitions import (
    Partition,
    canonical_partitions,
    contiguous_partitions,
    interleaved_partitions,
    tree_partitions,
    validate_partition,
)
from tnml.entanglement.spectra import _spectra
from tnml.model import TNModel
from tnml.network_form import as_network
from tnml.options import NamedPartitions
from tnml.spectrum import numerical_rank, renyi_entropy
from tnml.validation import check_option

__all__ = ["PartitionRecord", "Report", "entanglement_report"]

@dataclass(frozen=True)
class PartitionRecord:
    """One row of a :class:`Report`.

    Attributes
    ----------
    sites : tuple of int
        Side A of the split.
    level : int or None
        Tree level of the partition (1 = a child of the root); None for partitions without a tree.
    bound_rank : int
        Min-cut bound on the rank (product of the cut's bond dims).
    bound_log : float
        ``ln(bound_rank)``: the bound on the entanglement entropy.
    cut : tuple of str
        Index names of the minimum cut's edges.
    rank : int
        Numerical rank of the instance's matricization (default tolerance of :func:`cut_rank`).
    entropy : float
        Von Neumann entanglement entropy of the instance (natural log).
    reached : bool
        ``rank == bound_rank``.
    """

    sites: tuple[int, ...]
    level: int | None
    bound_rank: int
    bound_log: float
    cut: tuple[str, ...]
    rank: int
    entropy: float
    reached: bool

    @property
    def size(self) -> int:
        return len(self.sites)


class Report(list):
    """A list of :class:`PartitionRecord` (one per partition) with table and plot views.

    Attributes
    ----------
    records : iterable of PartitionRecord
        The rows (the list's items), one per partition.
    n_sites : int
    shape : (int, int) or None
        Grid shape of a 2-D model (enables the heat-map plot).
    output : int or None
        The output component whose coefficient tensor was measured.
    model_name : str
    """

    def __init__(
        self,
        records: Iterable[PartitionRecord] = (),
        *,
        n_sites: int,
        shape: tuple[int, int] | None = None,
        output: int | None = None,
        model_name: str = "",
    ) -> None:
        super().__init__(records)
        self.n_sites = n_sites
        self.shape = shape
        self.output = output
        self.model_name = model_name

    def to_dicts(self) -> list[dict]:
        """One plain dict per record (JSON-serializable: tuples become lists)."""
        out = []
        for r in self:
            d = asdict(r)
            d["sites"] = list(d["sites"])
            d["cut"] = list(d["cut"])
            d["size"] = r.size
            out.append(d)
        return out

    def to_markdown(self) -> str:
        """A markdown table, one row per partition.

        Examples
        --------
        >>> from tnml.networks import MPS
        >>> print(entanglement_report(MPS(n_sites=4, bond_dim=2, init="normal", init_std=1.0)).to_markdown())
        ... # doctest: +NORMALIZE_WHITESPACE, +ELLIPSIS
        | partition | level | size | bound rank | bound ln | rank | entropy | reached |
        |---|---|---|---|---|---|---|---|
        | 0-1 | 1 | 2 | 2 | 0.693 | 2 | ... | yes |
        ...
        """
        head = "| partition | level | size | bound rank | bound ln | rank | entropy | reached |\n"
        head += "|---|---|---|---|---|---|---|---|\n"
        rows = [
            f"| {Partition(r.sites).compact()} | {'-' if r.level is None else r.level} | {r.size} | {r.bound_rank} | "
            f"{r.bound_log:.3f} | {r.rank} | {r.entropy:.3f} | {'yes' if r.reached else 'no'} |"
            for r in self
        ]
        return head + "\n".join(rows) + ("\n" if rows else "")

    def plot(self, path: str | os.PathLike | None = None, *, title: str | None = None):
        """Plot the report (matplotlib, Agg canvas; pyplot's global state is not touched).

        1-D (``shape`` None): one bar per partition, grouped by tree level — the min-cut ``bound ln`` (outline)
        over the instance's entropy (filled), with ``ln rank`` as a tick. 2-D: one heat map per tree level, each
        site coloured by the entropy of its block at that level, blocks annotated ``rank/bound``.

        Parameters
        ----------
        path : str or PathLike, optional
            Also save the figure there, atomically (format from the suffix).
        title : str, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if not len(self):
            raise ValueError("the report has no rows to plot")
        title = title if title is not None else f"entanglement of {self.model_name or 'model'}"
        if self.shape is not None:
            fig = self._heatmaps(Figure, title, self.shape)
        else:
            fig = self._bars(Figure, title)
        FigureCanvasAgg(fig)
        if path is not None:
            from tnml.io import save_figure

            save_figure(fig, Path(path), bbox_inches="tight")
        return fig

    def _bars(self, figure_cls, title: str):
        fig = figure_cls(figsize=(max(4.0, 0.25 * len(self) + 2), 3.2))
        ax = fig.add_subplot()
        pos_list: list[float] = []
        pos, last = 0.0, object()
        starts = {}
        for r in self:
            if r.level != last and pos_list:
                pos += 1.0
            if r.level not in starts:
                starts[r.level] = pos
            pos_list.append(pos)
            last = r.level
            pos += 1.0
        xs = np.asarray(pos_list)
        ax.bar(xs, [r.bound_log for r in self], width=0.8, fill=False, edgecolor="0.3", label="min-cut bound (ln)")
        ax.bar(xs, [r.entropy for r in self], width=0.6, color="C0", label="entropy")
        ax.scatter(
            xs,
            [math.log(r.rank) if r.rank > 0 else 0.0 for r in self],
            marker="_",
            s=120,
            color="C3",
            label="ln rank",
            zorder=3,
        )
        ends: dict = {}
        for x, r in zip(xs, self):
            ends[r.level] = x
        ax.set_xticks([(starts[k] + ends[k]) / 2 for k in starts])
        ax.set_xticklabels([f"level {k}" if k is not None else "-" for k in starts])
        ax.set_ylabel("nats")
        ax.set_title(title)
        ax.legend(fontsize="small", frameon=False)
        return fig

    def _heatmaps(self, figure_cls, title: str, shape: tuple[int, int]):
        h, w = shape
        levels = sorted({r.level for r in self}, key=lambda v: (v is None, v or 0))
        fig = figure_cls(figsize=(2.6 * len(levels) + 0.8, 2.8))
        vmax = max(max(r.bound_log for r in self), 1e-12)
        axes = fig.subplots(1, len(levels), squeeze=False)[0]
        im = None
        for ax, lvl in zip(axes, levels):
            img = np.full((h, w), np.nan)
            for r in (r for r in self if r.level == lvl):
                rows, cols = np.divmod(np.asarray(r.sites), w)
                img[rows, cols] = r.entropy
                if h * w <= 64:
                    ax.text(
                        cols.mean(),
                        rows.mean(),
                        f"{r.rank}/{r.bound_rank}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="k" if r.entropy > 0.5 * vmax else "w",
                    )
            im = ax.imshow(img, vmin=0.0, vmax=vmax, cmap="viridis")
            ax.set_title(f"level {lvl}" if lvl is not None else "no level", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, ax=list(axes), label="entropy (nats)", shrink=0.8)
        fig.suptitle(title + " (rank/bound per block)", fontsize=10)
        return fig


def _resolve_partitions(model: TNModel, partitions: NamedPartitions | Iterable[Iterable[int]] | None, shape) -> list:
    n = model.n_sites
    # the string test comes first: ``partitions == "canonical"`` on an array would compare element-wise
    if partitions is None or (isinstance(partitions, str) and partitions == "canonical"):
        return canonical_partitions(shape=shape) if shape is not None else canonical_partitions(n)
    if isinstance(partitions, str):
        check_option("partitions", partitions, NamedPartitions, fix="or give a list of site lists")
        if partitions == "contiguous":
            return contiguous_partitions(n)
        if partitions == "interleaved":
            return interleaved_partitions(n)
        tree = getattr(model, "tree", None)  # partitions == "tree"
        if tree is None:
            raise ValueError(
                f"partitions='tree' needs a model with a mode tree (a TTN); {type(model).__name__} has none"
            )
        return tree_partitions(tree, n)
    out = []
    for p in partitions:
        sites = validate_partition(p, n)
        out.append(Partition(sites, getattr(p, "level", None)))
    if not out:
        raise ValueError("partitions is empty; give at least one partition (or None for the canonical ones)")
    return out


def _resolve_shape(model: TNModel, shape) -> tuple[int, int] | None:
    if shape is None:
        s = getattr(model, "shape", None)
        if isinstance(s, tuple) and len(s) == 2 and all(isinstance(v, int) for v in s):
            shape = s
    if shape is None:
        return None
    if len(shape) != 2 or shape[0] * shape[1] != model.n_sites:
        raise ValueError(f"shape={tuple(shape)!r} must be a pair (h, w) with h * w = n_sites = {model.n_sites}")
    return (int(shape[0]), int(shape[1]))


def entanglement_report(
    model: TNModel,
    partitions: NamedPartitions | Iterable[Iterable[int]] | None = None,
    *,
    output: int | None = None,
    shape: tuple[int, int] | None = None,
) -> Report:
    """Min-cut bound vs. actual rank and entropy of ``model`` across each partition.

    Parameters
    ----------
    model : TNModel
    partitions : None, {"canonical", "contiguous", "interleaved", "tree"} or iterable of parts
        None / ``"canonical"``: :func:`canonical_partitions` — 2-D (quad-tree over ``shape``) when a grid shape is
        known, 1-D otherwise; ``"tree"``: the blocks of the model's own mode tree (TTN); or any site lists
        (:class:`Partition` objects keep their level).
    output : int, optional
        Output component whose coefficient tensor is measured (models with an output leg); default 0.
    shape : (int, int), optional
        Grid shape of a 2-D model (inferred from ``model.shape`` for :class:`~tnml.networks.PEPS`).

    Returns
    -------
    Report
        A list of :class:`PartitionRecord` with ``to_markdown()``, ``to_dicts()`` and ``plot(path=None)``.

    Raises
    ------
    tnml.MemoryLimitError
        Before any work, when ``len(partitions) × (number of tensors)`` exceeds ``tnml.settings.max_report_work``.

    Notes
    -----
    Ranks and entropies come from the network routes of :func:`schmidt_spectra` (tree QR messages shared across
    partitions, or Gram matrices over a minimum cut), never from the dense tensor. The bound is the min-cut bound
    with the output leg unconstrained (it bounds every output component). ``reached`` compares integers exactly:
    random cores reach the bound on trees; loops and tensors carrying legs of both sides may fall short.

    Examples
    --------
    >>> from tnml.networks import TTN
    >>> rep = entanglement_report(TTN(n_sites=8, bond_dim=2, out_dim=3))
    >>> len(rep), all(r.rank <= r.bound_rank for r in rep)
    (13, True)
    """
    form = as_network(model, accept=("model",), name="model")  # read once, for the bounds and the spectra
    shape = _resolve_shape(model, shape)
    parts = _resolve_partitions(model, partitions, shape)
    n_tensors = len(model.structure.tensors)
    work = len(parts) * n_tensors
    if work > settings.max_report_work:
        raise settings.MemoryLimitError(
            f"an entanglement report of {len(parts)} partitions over a network of {n_tensors} tensors needs about "
            f"{work:.3g} (partition, tensor) contractions, more than tnml.settings.max_report_work = "
            f"{settings.max_report_work:.3g} (minutes of work); use fewer sites or partitions, or raise "
            "tnml.settings.max_report_work"
        )
    if model.out_dim is not None and output is None:
        output = 0
    records = []
    bounds = mincut_bounds(form, parts)  # one batch: the tree dynamic program runs vectorized over the parts
    for p, b, sp in zip(parts, bounds, _spectra(form, parts, output, "auto")):
        rank = numerical_rank(sp.values, sp.rtol)
        entropy = float(renyi_entropy((sp.values * sp.values).detach()))
        records.append(
            PartitionRecord(
                sites=tuple(p),
                level=getattr(p, "level", None),
                bound_rank=b.rank_bound,
                bound_log=b.log_bound,
                cut=tuple(c[2] for c in b.cut),
                rank=rank,
                entropy=entropy,
                reached=rank == b.rank_bound,
            )
        )
    return Report(records, n_sites=model.n_sites, shape=shape, output=output, model_name=type(model).__name__)
