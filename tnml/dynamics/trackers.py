"""Trackers: callbacks ``cb(step, model, loss)`` that record spectra and component norms during training."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from tnml.dynamics.rank_measures import matricization, singular_values
from tnml.validation import positive_int

__all__ = ["ComponentNormTracker", "LocalComponentNormTracker", "SingularValueTracker", "Tracker"]


class Tracker:
    """Record ``fn(model)`` (an array) with the step and loss every ``every`` steps.

    Parameters
    ----------
    fn : callable(model) -> array-like
    every : int
        Record when ``step % every == 0``.

    Attributes
    ----------
    steps : list of int
    losses : list of float
    values : list of ndarray

    Examples
    --------
    >>> tr = Tracker(lambda m: m.weight.detach().abs().sum(), every=2)
    >>> lin = torch.nn.Linear(2, 1)
    >>> for step in range(5):
    ...     tr(step, lin, 0.0)
    >>> tr.steps
    [0, 2, 4]
    """

    def __init__(self, fn: Callable[[torch.nn.Module], object], every: int = 1) -> None:
        every = positive_int("every", every, fix="record every this many steps")
        self.fn = fn
        self.every = every
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.values: list[np.ndarray] = []

    def __call__(self, step: int, model: torch.nn.Module, loss: float = float("nan")) -> None:
        if step % self.every == 0 and (not self.steps or self.steps[-1] != step):
            self.record(step, model, loss)

    def record(self, step: int, model: torch.nn.Module, loss: float = float("nan")) -> None:
        """Record now, whatever the step."""
        with torch.no_grad():
            v = self.fn(model)
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().double().numpy()
        self.steps.append(int(step))
        self.losses.append(float(loss))
        self.values.append(np.asarray(v, dtype=np.float64))

    def state_dict(self) -> dict:
        """The recorded history as tensors, numbers and lists (what :func:`tnml.dynamics.tasks.fit` checkpoints;
        ``torch.load(..., weights_only=True)`` reads it back)."""
        return {
            "kind": type(self).__name__,
            "every": self.every,
            "steps": list(self.steps),
            "losses": list(self.losses),
            "values": _stack(self.values),
        }

    def load_state_dict(self, state: dict) -> None:
        """Replace the history with that of :meth:`state_dict` (of a tracker of the same class and ``every``)."""
        if state["kind"] != type(self).__name__ or state["every"] != self.every:
            raise ValueError(
                f"the saved history is of a {state['kind']}(every={state['every']}), this tracker is a "
                f"{type(self).__name__}(every={self.every})"
            )
        if not len(state["steps"]) == len(state["losses"]) == len(state["values"]):
            raise ValueError("the saved steps, losses and values have different lengths")
        self.steps = [int(s) for s in state["steps"]]
        self.losses = [float(v) for v in state["losses"]]
        self.values = [v.numpy().astype(np.float64) for v in state["values"]]  # rows of a stacked tensor or a list

    def as_array(self) -> np.ndarray:
        """Values stacked, shape ``(n_records, *value shape)``."""
        return np.stack(self.values) if self.values else np.empty((0,))


def _stack(arrays: list[np.ndarray]) -> torch.Tensor | list[torch.Tensor]:
    """Records as one tensor ``(n_records, *shape)`` when they share a shape (one entry in a checkpoint file
    instead of one per record: 5-10x faster saves), else a list of tensors."""
    if arrays and all(a.shape == arrays[0].shape for a in arrays):
        return torch.from_numpy(np.stack(arrays))
    return [torch.from_numpy(a.copy()) for a in arrays]


class SingularValueTracker(Tracker):
    """Singular values of the model's end matrix (``model.tensor()``), or of its matricization ``rows``.

    Parameters
    ----------
    every : int
    rows : iterable of int, optional
        For a tensor: the modes that index rows.
    """

    def __init__(self, every: int = 1, rows: Iterable[int] | None = None) -> None:
        self.rows = None if rows is None else tuple(rows)

        def fn(model) -> np.ndarray:
            w = model.tensor()
            return singular_values(w if self.rows is None else matricization(w, self.rows))

        super().__init__(fn, every)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rows": None if self.rows is None else list(self.rows)}

    def load_state_dict(self, state: dict) -> None:
        rows = state.get("rows")
        if (None if rows is None else tuple(rows)) != self.rows:
            raise ValueError(f"the saved history is of the matricization rows={rows}, this tracker has {self.rows}")
        super().load_state_dict(state)


class ComponentNormTracker(Tracker):
    r"""Norms of the CP components :math:`\prod_n \lVert w_r^n \rVert`, shape ``(R,)`` per record
    (:meth:`tnml.networks.TensorFactorization.component_norms`).

    Parameters
    ----------
    every : int, default 1
        Record when ``step % every == 0``.
    """

    def __init__(self, every: int = 1) -> None:
        super().__init__(lambda model: model.component_norms(), every)

    def top(self, k: int) -> np.ndarray:
        """The ``k`` components largest at the last record, over time: shape ``(n_records, k)``."""
        a = self.as_array()
        order = np.argsort(-a[-1])[:k]
        return a[:, order]


class LocalComponentNormTracker(Tracker):
    """Local-component norms of a :class:`tnml.networks.HierarchicalTensorFactorization`: one record is
    ``{node block: norms (width,)}``; :meth:`node` stacks one node over time.

    Parameters
    ----------
    every : int, default 1
        Record when ``step % every == 0``.
    """

    def __init__(self, every: int = 1) -> None:
        super().__init__(lambda model: 0.0, every)
        self.records: list[dict[tuple[int, ...], np.ndarray]] = []

    def record(self, step: int, model: torch.nn.Module, loss: float = float("nan")) -> None:
        norms = model.local_component_norms()
        self.records.append({b: v.detach().cpu().double().numpy() for b, v in norms.items()})
        self.steps.append(int(step))
        self.losses.append(float(loss))
        self.values.append(np.asarray([float(v.max()) for v in norms.values()]))

    def state_dict(self) -> dict:
        blocks = list(self.records[0]) if self.records else []
        norms = [_stack([r[b] for r in self.records]) for b in blocks]  # per node: (n_records, width)
        return {**super().state_dict(), "blocks": [list(b) for b in blocks], "records": norms}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        blocks = [tuple(int(i) for i in b) for b in state["blocks"]]
        norms = [[v.numpy().astype(np.float64) for v in node] for node in state["records"]]
        if any(len(node) != len(self.steps) for node in norms):
            raise ValueError("the saved local-component norms and steps have different lengths")
        self.records = [{b: node[k] for b, node in zip(blocks, norms)} for k in range(len(self.steps))]

    def node(self, block: Iterable[int]) -> np.ndarray:
        """Norms of the local components at node ``block`` over time, shape ``(n_records, width)``."""
        b = tuple(block)
        if self.records and b not in self.records[0]:
            raise KeyError(f"node {b} is not an internal node; choose one of {list(self.records[0])}")
        return np.stack([r[b] for r in self.records])
