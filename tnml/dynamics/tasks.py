"""Completion (observed entries) and sensing (linear measurements) tasks for factorization dynamics."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from tnml.checkpoint import Checkpointer, CheckpointError
from tnml.options import LossReduction, choices
from tnml.training import STOP
from tnml.training import fit as train
from tnml.validation import ArgumentTypeError, as_int, check_dense_bytes, check_option, positive_int

__all__ = [
    "CHECKPOINT_STEPS",
    "CompletionTask",
    "SensingTask",
    "completion_loss",
    "fit",
    "random_completion_task",
    "random_cp_tensor",
    "random_sensing_task",
    "sensing_loss",
]

_REDUCTIONS = choices(LossReduction)
#: optimizer steps per checkpoint interval of :func:`fit`: ``--checkpoint-every N`` saves every
#: ``N * CHECKPOINT_STEPS`` steps (the factorization dynamics take thousands to millions of cheap full-batch steps,
#: ~0.1-10 ms each; a save costs a few ms plus the tracker histories)
CHECKPOINT_STEPS = 500


def _reduce(sq: torch.Tensor, reduction: LossReduction) -> torch.Tensor:
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.sum()
    check_option("reduction", reduction, _REDUCTIONS)  # raises unless "half_sum" (checked last: a hot path)
    return 0.5 * sq.sum()


def _end_tensor(model_or_tensor) -> torch.Tensor:
    return model_or_tensor if isinstance(model_or_tensor, torch.Tensor) else model_or_tensor.tensor()


def completion_loss(
    tensor: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, reduction: LossReduction = "mean"
) -> torch.Tensor:
    r"""Squared error on observed entries: ``reduce((W[idx_k] - y_k)²)``.

    Parameters
    ----------
    tensor : Tensor, shape (d_1, ..., d_N)
    indices : LongTensor, shape (n_obs, N)
    values : Tensor, shape (n_obs,)
    reduction : {"mean", "sum", "half_sum"}
        ``"half_sum"`` is P1's :math:`\frac12 \sum_{(i,j)\in\Omega} (W_{ij} - b_{ij})^2`.

    Returns
    -------
    Tensor, shape ()
        The reduced squared error (differentiable in ``tensor``).

    Examples
    --------
    >>> w = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> completion_loss(w, torch.tensor([[0, 1], [1, 1]]), torch.tensor([1.0, 1.0]))
    tensor(0.5000)
    """
    indices, values = _checked_observations(tensor.shape, indices, values)
    return _completion_loss(tensor, indices, values, reduction)


def _completion_loss(
    tensor: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, reduction: LossReduction
) -> torch.Tensor:
    """:func:`completion_loss` without the checks (observations validated once, e.g. by :class:`CompletionTask`)."""
    pred = tensor[tuple(indices.T)]
    return _reduce((pred - values.to(pred.dtype)) ** 2, reduction)


def _checked_observations(shape, indices, values) -> tuple[torch.Tensor, torch.Tensor]:
    """``indices`` (n_obs, N) integer positions inside ``shape`` and ``values`` (n_obs,), or a clear error."""
    indices = torch.as_tensor(indices)
    values = torch.as_tensor(values)
    order = len(shape)
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise ArgumentTypeError(f"indices must be an integer tensor (n_obs, N), got dtype {indices.dtype}")
    if indices.dim() != 2 or indices.shape[1] != order:
        raise ValueError(
            f"indices must have shape (n_obs, {order}) for a tensor of order {order}, got {tuple(indices.shape)}"
        )
    if indices.shape[0] == 0:
        raise ValueError("indices holds no observed entry (n_obs = 0); the loss of no observations is undefined")
    if values.shape != (indices.shape[0],):
        raise ValueError(
            f"values must have shape ({indices.shape[0]},), one per row of indices, got {tuple(values.shape)}"
        )
    sizes = torch.tensor(tuple(shape), device=indices.device)
    bad = (indices < 0) | (indices >= sizes)
    if bool(bad.any()):
        row = int(bad.any(1).nonzero()[0, 0])
        raise ValueError(
            f"indices row {row} = {indices[row].tolist()} is outside the tensor's shape {tuple(shape)} "
            "(entries must be in 0..d_n - 1; negative indices are not wrapped)"
        )
    return indices, values


def sensing_loss(
    tensor: torch.Tensor, measurements: torch.Tensor, values: torch.Tensor, reduction: LossReduction = "mean"
) -> torch.Tensor:
    """Squared error of linear measurements: ``reduce((<A_k, W> - y_k)²)``.

    Parameters
    ----------
    tensor : Tensor, shape (d_1, ..., d_N)
    measurements : Tensor, shape (m, d_1, ..., d_N)
    values : Tensor, shape (m,)
    reduction : {"mean", "sum", "half_sum"}

    Returns
    -------
    Tensor, shape ()
        The reduced squared error (differentiable in ``tensor``).
    """
    if tuple(measurements.shape[1:]) != tuple(tensor.shape):
        raise ValueError(
            f"measurements must have shape (m, {', '.join(map(str, tensor.shape))}), got "
            f"{tuple(measurements.shape)}"
        )
    _check_values(measurements, values)
    pred = measurements.reshape(measurements.shape[0], -1).to(tensor.dtype) @ tensor.reshape(-1)
    return _reduce((pred - values.to(pred.dtype)) ** 2, reduction)


def _check_values(measurements: torch.Tensor, values: torch.Tensor) -> None:
    if tuple(values.shape) != (measurements.shape[0],):
        raise ValueError(f"values must have shape ({measurements.shape[0]},), one per measurement, got "
                         f"{tuple(values.shape)}")


@dataclass
class CompletionTask:
    """Fit the entries ``values`` at ``indices`` of a tensor of shape ``shape``.

    ``task(model_or_tensor)`` is the loss; ``target`` (optional) is the full ground truth for
    :meth:`reconstruction_error`.

    Parameters
    ----------
    shape : tuple of int
        Shape ``(d_1, ..., d_N)`` of the tensor to complete.
    indices : LongTensor, shape (n_obs, N)
        The observed positions.
    values : Tensor, shape (n_obs,)
        The observed entries.
    target : Tensor, shape (d_1, ..., d_N), optional
        The full ground truth.
    reduction : {"mean", "sum", "half_sum"}
        See :func:`completion_loss`.
    """

    shape: tuple[int, ...]
    indices: torch.Tensor
    values: torch.Tensor
    target: torch.Tensor | None = None
    reduction: LossReduction = "mean"

    def __post_init__(self) -> None:  # checked once here, not at every step of a training loop
        self.indices, self.values = _checked_observations(tuple(self.shape), self.indices, self.values)

    def __call__(self, model_or_tensor) -> torch.Tensor:
        return _completion_loss(_end_tensor(model_or_tensor), self.indices, self.values, self.reduction)

    def reconstruction_error(self, model_or_tensor) -> float:
        """``‖W − target‖_F / ‖target‖_F`` (needs ``target``)."""
        return _relative_error(_end_tensor(model_or_tensor), self.target)


@dataclass
class SensingTask:
    """Fit ``y_k = <A_k, W>`` for measurement tensors ``A`` of shape ``(m, *shape)``.

    Parameters
    ----------
    shape : tuple of int
        Shape ``(d_1, ..., d_N)`` of the unknown tensor.
    measurements : Tensor, shape (m, d_1, ..., d_N)
        The measurement tensors ``A_k``.
    values : Tensor, shape (m,)
        The measured values ``y_k``.
    target : Tensor, shape (d_1, ..., d_N), optional
        The ground truth, for :meth:`reconstruction_error`.
    reduction : {"mean", "sum", "half_sum"}
        See :func:`sensing_loss`.
    """

    shape: tuple[int, ...]
    measurements: torch.Tensor
    values: torch.Tensor
    target: torch.Tensor | None = None
    reduction: LossReduction = "mean"

    def __post_init__(self) -> None:
        _check_values(self.measurements, self.values)

    def __call__(self, model_or_tensor) -> torch.Tensor:
        return sensing_loss(_end_tensor(model_or_tensor), self.measurements, self.values, self.reduction)

    def reconstruction_error(self, model_or_tensor) -> float:
        """``‖W − target‖_F / ‖target‖_F`` (needs ``target``)."""
        return _relative_error(_end_tensor(model_or_tensor), self.target)


def _relative_error(w: torch.Tensor, target: torch.Tensor | None) -> float:
    if target is None:
        raise ValueError("this task has no target; build it with target=... to measure reconstruction error")
    with torch.no_grad():
        t = target.to(w.dtype)
        return float((w.detach() - t).norm() / t.norm())


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


def random_cp_tensor(
    shape: Sequence[int], rank: int, seed: int | torch.Generator | None = 0, normalize: bool = True, dtype=None
) -> torch.Tensor:
    """Sum of ``rank`` outer products of standard normal vectors (P2's synthetic targets), scaled to unit
    Frobenius norm when ``normalize``.

    Parameters
    ----------
    shape : sequence of int
        The tensor's shape ``(d_1, ..., d_N)``.
    rank : int
        Number of rank-one terms.
    seed : int, torch.Generator or None, default 0
        Seed or generator of the normal draws (drawn in float64).
    normalize : bool, default True
        Scale to unit Frobenius norm.
    dtype : torch.dtype, optional
        Dtype of the result (default: torch's default dtype).

    Returns
    -------
    Tensor, shape (d_1, ..., d_N)
        The tensor, of CP rank at most ``rank``.

    Examples
    --------
    >>> t = random_cp_tensor((4, 4, 4), rank=2, dtype=torch.float64)
    >>> t.shape, round(float(t.norm()), 6)
    (torch.Size([4, 4, 4]), 1.0)
    """
    rank = positive_int("rank", rank, fix="the number of rank-one terms")
    shape = tuple(positive_int("shape entries", d) for d in shape)
    if not shape:
        raise ValueError("shape is empty; give the tensor's shape (d_1, ..., d_N)")
    check_dense_bytes(8 * (math.prod(shape) + rank * sum(shape)), f"a random CP tensor of shape {shape}",
                      "use a smaller shape")
    g = _generator(seed)
    letters = "abcdefghijklmnopqstuvwxyz"[: len(shape)]
    fs = [torch.randn(d, rank, generator=g, dtype=torch.float64) for d in shape]
    t = torch.einsum(",".join(f"{c}r" for c in letters) + "->" + letters, *fs)
    if normalize:
        t = t / t.norm()
    return t.to(dtype or torch.get_default_dtype())


def random_completion_task(
    target: torch.Tensor, n_observed: int, seed: int | torch.Generator | None = 0, reduction: LossReduction = "mean"
) -> CompletionTask:
    """Observe ``n_observed`` entries of ``target`` chosen uniformly without replacement.

    Parameters
    ----------
    target : Tensor, shape (d_1, ..., d_N)
        The ground truth.
    n_observed : int
        Number of observed entries, in ``1..target.numel()``.
    seed : int, torch.Generator or None, default 0
        Seed or generator of the draw.
    reduction : {"mean", "sum", "half_sum"}
        The task's loss reduction (:func:`completion_loss`).

    Returns
    -------
    CompletionTask
        The observed entries, with ``target`` attached.
    """
    total = target.numel()
    n_observed = as_int("n_observed", n_observed, 1, total, fix="at most the number of entries")
    flat = torch.randperm(total, generator=_generator(seed))[:n_observed]
    idx = torch.stack(torch.unravel_index(flat, target.shape), dim=1)
    return CompletionTask(tuple(target.shape), idx, target.reshape(-1)[flat].clone(), target, reduction)


def random_sensing_task(
    target: torch.Tensor, n_measurements: int, seed: int | torch.Generator | None = 0, reduction: LossReduction = "mean"
) -> SensingTask:
    """Gaussian measurements ``A_k`` with i.i.d. ``N(0, 1/m)`` entries.

    Parameters
    ----------
    target : Tensor, shape (d_1, ..., d_N)
        The ground truth.
    n_measurements : int
        Number of measurements ``m`` (at least 1).
    seed : int, torch.Generator or None, default 0
        Seed or generator of the draw.
    reduction : {"mean", "sum", "half_sum"}
        The task's loss reduction (:func:`sensing_loss`).

    Returns
    -------
    SensingTask
        The measurements ``A`` of shape ``(m, d_1, ..., d_N)`` and values ``y_k = <A_k, target>``.
    """
    n_measurements = positive_int("n_measurements", n_measurements)
    check_dense_bytes(
        n_measurements * target.numel() * target.element_size(),
        f"{n_measurements} Gaussian measurements of a tensor of {target.numel()} entries",
        "use fewer measurements",
    )
    a = torch.randn(n_measurements, *target.shape, generator=_generator(seed), dtype=target.dtype)
    a = a / math.sqrt(n_measurements)
    y = a.reshape(n_measurements, -1) @ target.reshape(-1)
    return SensingTask(tuple(target.shape), a, y, target, reduction)


def fit(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    max_steps: int,
    stop_loss: float | None = None,
    callbacks: Sequence[Callable] = (),
    progress: str | None = None,
    checkpointer: Checkpointer | None = None,
) -> dict:
    """Full-batch training: ``loss_fn(model)`` → backward → ``optimizer.step()``, calling every callback as
    ``cb(step, model, loss)`` before each step and once after the last.

    Parameters
    ----------
    model : Module
    loss_fn : callable(model) -> scalar Tensor
        E.g. a :class:`CompletionTask`.
    optimizer : Optimizer
    max_steps : int
    stop_loss : float, optional
        Stop as soon as the loss falls below this.
    callbacks : sequence of callables ``(step, model, loss: float)``
        E.g. the trackers of :mod:`tnml.dynamics.trackers`. With a ``checkpointer``, the state of those with
        ``state_dict``/``load_state_dict`` (every tracker) is saved and restored; any other callback must keep no
        state that the rest of the run needs.
    progress : str, optional
        Description for a tqdm progress bar (none when None).
    checkpointer : Checkpointer, optional
        Saves the model, the optimizer, the callbacks' states (tracker histories), the global RNG states and the
        step every ``checkpointer.every * CHECKPOINT_STEPS`` steps and when training ends (stop loss reached or
        ``max_steps`` done); if it holds a checkpoint of this loop, training continues from it (bit-identical on
        CPU), and a finished one returns at once with the model and callbacks as they were at the end. Its
        ``meta["fit"]`` records ``max_steps``, ``stop_loss``, the optimizer and the parameter shapes, so another
        loop's file is refused (:class:`~tnml.checkpoint.CheckpointError`).

    Returns
    -------
    dict
        ``{"steps": steps taken, "loss": final loss, "stopped": whether stop_loss was reached}``.
    """
    loss_val = float("nan")

    def step(k: int):
        nonlocal loss_val
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model)
        loss_val = float(loss.detach())
        for cb in callbacks:
            cb(k, model, loss_val)
        if not math.isfinite(loss_val):
            raise FloatingPointError(f"loss became {loss_val} at step {k}; lower the learning rate")
        if stop_loss is not None and loss_val < stop_loss:
            return STOP
        loss.backward()
        optimizer.step()
        return None

    def finish(done: int, stopped: bool) -> dict:
        nonlocal loss_val
        if not stopped:
            with torch.no_grad():
                loss_val = float(loss_fn(model))
            for cb in callbacks:
                cb(done, model, loss_val)
        return {"steps": done, "loss": loss_val, "stopped": stopped}

    loop = {
        "max_steps": int(max_steps),
        "stop_loss": None if stop_loss is None else float(stop_loss),
        "optimizer": type(optimizer).__name__,
        "hyperparameters": [
            {k: v for k, v in g.items() if k != "params" and isinstance(v, (bool, int, float, str))}
            for g in optimizer.param_groups
        ],
        "parameters": {k: list(v.shape) for k, v in model.state_dict().items()},
        "callbacks": [type(cb).__name__ for cb in callbacks],
    }
    result = train(model, optimizer, step, epochs=max_steps, carry=_CallbackStates(callbacks, checkpointer),
                   checkpointer=checkpointer, loop=loop, save_unit=CHECKPOINT_STEPS, finish=finish, desc="fit",
                   unit="step", loop_key="fit", progress=False if progress is None else progress)  # fmt: skip
    return {"steps": int(result["steps"]), "loss": float(result["loss"]), "stopped": bool(result["stopped"])}


class _CallbackStates:
    """The states of :func:`fit`'s callbacks (those with ``state_dict``) as :func:`tnml.training.fit`'s carry."""

    def __init__(self, callbacks: Sequence[Callable], checkpointer: Checkpointer | None) -> None:
        self.callbacks = callbacks
        self.source = None if checkpointer is None else repr(str(checkpointer.path))

    def state_dict(self) -> dict:
        return {"callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in self.callbacks]}

    def load_state_dict(self, extra: dict) -> None:
        try:
            saved = extra["callbacks"]
            if len(saved) != len(self.callbacks):
                raise ValueError(f"{len(saved)} callback states saved, {len(self.callbacks)} callbacks given")
            for cb, cs in zip(self.callbacks, saved):
                if cs is not None:
                    cb.load_state_dict(cs)
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            raise CheckpointError(
                f"{self.source} does not fit this training loop's callbacks ({type(e).__name__}: {e}); "
                "delete it or run without --resume"
            ) from None
