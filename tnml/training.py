"""One training loop: checkpoint / resume, progress bar and per-epoch metrics around the caller's epoch.

:func:`fit` owns everything that every training loop repeats: it records the loop's settings in the checkpointer's
``meta["loop"]`` (so a checkpoint of another loop is refused), restores a checkpoint of this loop (model, optimizer,
scheduler, the ``torch.Generator`` s the loop draws from, the global RNG states, the partial history and any
best-so-far values) and says so on stderr, runs the remaining epochs under an optional progress bar, steps the
scheduler, appends the per-epoch values to the history and saves at the checkpointer's interval and after the last
epoch. What one epoch does (mini-batches, full-batch steps, a regularizer's double backprop) is the caller's
``train_epoch``; :func:`minibatches` and :func:`minibatch_epoch` are the usual ones.

Saving draws no random numbers, so a run with checkpoints gives the numbers of a run without them, and a run killed
after a save and continued from it is bit-identical on CPU to an uninterrupted one (same history, parameters,
optimizer and RNG states).

Examples
--------
>>> import torch
>>> from torch import nn
>>> from tnml.training import fit, minibatch_epoch
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> x, y = torch.randn(64, 3), torch.randint(2, (64,))
>>> model = nn.Linear(3, 2)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> g = torch.Generator().manual_seed(0)
>>> def epoch(k):
...     return {"loss": minibatch_epoch(model, opt, nn.functional.cross_entropy, x, y, batch_size=16, generator=g).mean}
>>> hist = fit(model, opt, epoch, epochs=3, generators=[g], history={"loss": []}, progress=False)
>>> len(hist["loss"])
3
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from tnml.checkpoint import Checkpointer, restore_training_state, training_state
from tnml.validation import as_int, positive_int

__all__ = ["STOP", "EpochLoss", "fit", "minibatch_epoch", "minibatches", "progress_bar", "progress_mode"]


_PROGRESS: ContextVar[bool | None] = ContextVar("tnml_progress", default=None)


@contextmanager
def progress_mode(progress: bool | None) -> Iterator[None]:
    """Within the block, :func:`progress_bar` shows bars when ``progress`` is True, never when False, and only
    on a terminal when None (the default outside any block).

    Parameters
    ----------
    progress : bool or None
    """
    token = _PROGRESS.set(progress)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def progress_bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """A tqdm progress bar that follows :func:`progress_mode`: by default shown only when stderr is a terminal,
    so logs, CI output and captured notebook output get no stream of ``\\r`` updates.

    Parameters
    ----------
    iterable : iterable, optional
    **kwargs
        Passed to ``tqdm`` (``total``, ``desc``, ``leave``, …); ``disable`` is set here.

    Returns
    -------
    tqdm
        The bar (a disabled one still iterates and accepts ``update``/``set_postfix``).
    """
    mode = _PROGRESS.get()
    on_terminal = bool(getattr(sys.stderr, "isatty", lambda: False)())
    kwargs["disable"] = (not on_terminal) if mode is None else not mode
    return tqdm(iterable, **kwargs)


class Stateful(Protocol):
    """An object ``fit`` can carry through checkpoints (e.g. an optimizer-like state holder)."""

    def state_dict(self) -> dict[str, Any]:
        """The state to save with the checkpoint."""

    def load_state_dict(self, state: dict[str, Any]) -> Any:
        """Restore the state :meth:`state_dict` returned."""


class _Stop:
    def __repr__(self) -> str:
        return "STOP"


#: returned by a ``train_epoch`` of :func:`fit` whose stopping condition holds: training ends before that epoch
STOP = _Stop()


#: keys of the state :func:`fit` saves beside its ``carry`` (a carry may not use them)
_SAVED_KEYS = frozenset({"progress", "model", "optimizer", "scheduler", "generators", "rng", "extra", "history",
                         "result"})


def _check_carry_keys(extra: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    taken = sorted(set(extra) & _SAVED_KEYS)
    if taken:
        raise ValueError(f"{what} uses the key(s) {taken}, which the checkpoint's own state takes; rename them "
                         f"(reserved: {sorted(_SAVED_KEYS)})")
    return extra


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    train_epoch: Callable[[int], Mapping[str, Any] | None],
    *,
    epochs: int,
    metrics: Callable[[int], Mapping[str, Any] | None] | None = None,
    scheduler: Any = None,
    generators: Sequence[torch.Generator] = (),
    history: dict[str, list] | None = None,
    carry: dict[str, Any] | Stateful | None = None,
    checkpointer: Checkpointer | None = None,
    loop: Mapping[str, Any] | None = None,
    save_unit: int = 1,
    finish: Callable[[int, bool], Any] | None = None,
    desc: str = "train",
    unit: str = "epoch",
    loop_key: str = "loop",
    progress: bool | str = False,
    postfix: Callable[[dict[str, list]], Mapping[str, str]] | None = None,
) -> Any:
    """Run ``train_epoch(epoch)`` for ``epoch = start, ..., epochs - 1`` with checkpoint / resume and a history.

    An "epoch" is whatever unit the caller counts (an epoch of mini-batches, one full-batch step, ...).

    Parameters
    ----------
    model : Module
        Saved and restored with the checkpoint (its ``state_dict``).
    optimizer : Optimizer or None
        Saved and restored with the checkpoint.
    train_epoch : callable(epoch) -> mapping, None or STOP
        One epoch of training (0-based ``epoch``). The values it returns are appended to ``history`` under their
        keys; None: nothing logged this epoch; :data:`STOP`: the loop's stopping condition held before this epoch
        trained anything (e.g. the loss fell below a threshold), so training ends after ``epoch`` epochs.
    epochs : int
        Total number of epochs (a resumed run does the ones its checkpoint has not done).
    metrics : callable(epoch) -> mapping or None, optional
        Per-epoch evaluation, called after ``train_epoch`` and the scheduler step; its values are appended like
        ``train_epoch``'s.
    scheduler : optional
        A learning-rate scheduler: stepped once after every epoch, saved and restored.
    generators : sequence of torch.Generator
        The generators the epoch draws from (shuffling, ...): their states are saved and restored.
    history : dict of str to list, optional
        The lists the per-epoch values go into (updated in place; a resumed run replaces them with the saved ones).
    carry : dict or object with ``state_dict()`` / ``load_state_dict(d)``, optional
        Other state the loop keeps between epochs (best-so-far values, trackers, ...): saved with every checkpoint
        and, on resume, restored in place (a dict is updated; an object gets ``load_state_dict``). Numbers,
        strings, tensors and containers of those.
    checkpointer : Checkpointer, optional
        Where the state goes. ``checkpointer.meta["loop"]`` is set to ``loop``, so that a checkpoint written by
        another loop or other settings is refused; a finished run's checkpoint makes a second call return at once
        with the final model loaded.
    loop : mapping, optional
        What identifies this loop (sizes, hyper-parameters, seed); required with a ``checkpointer``.
    save_unit : int, default 1
        Save after every ``checkpointer.every * save_unit``-th epoch and when training ends (``save_unit > 1`` for
        loops whose epochs are cheap full-batch steps).
    finish : callable(done, stopped) -> result, optional
        Called once when training ends (``done`` epochs, ``stopped``: whether ``train_epoch`` returned
        :data:`STOP`); its result is saved with the final checkpoint and returned. A run whose checkpoint holds a
        result is finished: resuming it returns that result at once (with the final model loaded).
    desc : str, default "train"
        Label of the progress bar and of the "resumed from" message.
    unit : str, default "epoch"
        The unit named in the "resumed from" message (e.g. "step").
    loop_key : str, default "loop"
        The key of ``checkpointer.meta`` that holds ``loop``.
    progress : bool or str, default False
        Show a tqdm bar over the epochs (it starts at the resumed epoch), labelled ``desc`` (True) or this string;
        :func:`progress_mode` decides whether it is drawn (by default only on a terminal).
    postfix : callable(history) -> mapping of str to str, optional
        The bar's postfix after each epoch.

    Returns
    -------
    dict of str to list, or finish's result
        ``history`` (one value per logged epoch and key), or, with ``finish``, its result.

    Raises
    ------
    ValueError
        ``epochs`` or ``save_unit`` is not a non-negative / positive integer, or ``checkpointer`` comes without
        ``loop``.
    """
    epochs = as_int("epochs", epochs, 0)
    save_unit = positive_int("save_unit", save_unit)
    history = {} if history is None else history
    carry = {} if carry is None else carry
    if isinstance(carry, dict):  # a Stateful carry's keys are known at its first save
        _check_carry_keys(carry, "carry")
    start = 0
    if checkpointer is not None:
        if loop is None:
            raise ValueError("loop is required with a checkpointer: pass the settings that identify this loop")
        checkpointer.meta[loop_key] = dict(loop)
        state = checkpointer.load()
        if state is not None:
            start, extra = restore_training_state(
                state,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                generators=list(generators),
                source=repr(str(checkpointer.path)),
            )
            saved = extra.pop("history", {})
            result = extra.pop("result", None)
            history.clear()
            history.update({k: list(v) for k, v in saved.items()})
            if isinstance(carry, dict):
                carry.update(extra)
            else:
                carry.load_state_dict(extra)
            if result is not None:
                return result if finish is not None else history
            if start < epochs:
                tqdm.write(f"{desc}: resumed from {checkpointer.path} at {unit} {start}/{epochs}", file=sys.stderr)
            elif finish is None:
                return history

    def save(done: int, result: Any = None) -> None:
        extra = carry if isinstance(carry, dict) else _check_carry_keys(carry.state_dict(), "carry.state_dict()")
        state = training_state(
            done,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            generators=list(generators),
            history=history,
            **extra,
            result=result,
        )
        assert checkpointer is not None
        checkpointer.save(state)

    epoch_range = range(start, epochs)
    bar = None
    if progress:
        label = progress if isinstance(progress, str) else desc
        bar = progress_bar(epoch_range, initial=start, total=epochs, desc=label, leave=False, dynamic_ncols=True)
        epoch_range = bar
    done, stopped = start, False
    for epoch in epoch_range:
        logged = train_epoch(epoch)
        if logged is STOP:
            stopped = True
            break
        _append(history, logged)
        if scheduler is not None:
            scheduler.step()
        if metrics is not None:
            _append(history, metrics(epoch))
        if bar is not None and postfix is not None:
            bar.set_postfix(**postfix(history))
        done = epoch + 1
        if checkpointer is not None and done % (checkpointer.every * save_unit) == 0 and done < epochs:
            save(done)
    if bar is not None:
        bar.close()
    result = None if finish is None else finish(done, stopped)
    if checkpointer is not None and (finish is not None or done > start):
        save(done, result)
    return history if finish is None else result


def _append(history: dict[str, list], values: Mapping[str, Any] | None) -> None:
    for key, value in (values or {}).items():
        history.setdefault(key, []).append(value)


def minibatches(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Index tensors of the mini-batches of one epoch over ``n`` samples.

    Parameters
    ----------
    n : int
        Number of samples.
    batch_size : int
        Samples per batch (the last one may be smaller).
    generator : torch.Generator, optional
        Shuffle with ``torch.randperm(n, generator=generator)``; None: the samples in order (no random draw).

    Yields
    ------
    Tensor of int64, shape (≤ batch_size,)
    """
    batch_size = positive_int("batch_size", batch_size)
    order = torch.arange(n) if generator is None else torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


@dataclass(frozen=True)
class EpochLoss:
    """The training loss of one epoch of :func:`minibatch_epoch`.

    Attributes
    ----------
    mean : float
        Sample-weighted mean of the batch losses.
    last : float
        The last batch's loss.
    """

    mean: float
    last: float


def minibatch_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator | None = None,
    desc: str = "train",
) -> EpochLoss:
    """One epoch of ``zero_grad → loss_fn(model(x[idx]), y[idx]) → backward → step`` over :func:`minibatches`.

    Parameters
    ----------
    model : Module
    optimizer : Optimizer
    loss_fn : callable(output, target) -> scalar Tensor
        E.g. ``nn.functional.cross_entropy``.
    x : Tensor, shape (n, ...)
    y : Tensor, shape (n, ...)
    batch_size : int
    generator : torch.Generator, optional
        Shuffles the samples (see :func:`minibatches`).
    desc : str
        Names the loop in the error raised when the loss is not finite.

    Returns
    -------
    EpochLoss

    Raises
    ------
    FloatingPointError
        The loss became NaN or infinite (lower the learning rate).
    """
    if len(x) != len(y):
        raise ValueError(f"{desc}: x has length {len(x)} but y has length {len(y)}; pass one target per sample")
    total, loss = 0.0, None
    for idx in minibatches(len(x), batch_size, generator):
        optimizer.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"{desc}: loss_fn must return a scalar tensor, got {shape}; reduce it (e.g. "
                             "reduction='mean')")
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss.item()}; lower the learning rate")
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    if loss is None:
        raise ValueError(f"{desc}: no training samples (x has length 0); pass at least one sample")
    return EpochLoss(mean=total / len(x), last=loss.item())
