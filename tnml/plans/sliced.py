"""Sliced contraction through cotengra, slices evaluated by any ``concurrent.futures.Executor``.

Slicing fixes the values of a few indices (``tree.sliced_inds``) so that each of the ``tree.nslices`` slices is an
independent, smaller contraction; the full result is the sum of the slices (stacked along sliced output indices).
Each slice's arrays are cut out here and submitted with the contraction tree to ``executor.submit`` (a
``ThreadPoolExecutor``, a ``ProcessPoolExecutor``, a ``dask.distributed.Client``, ...), at most ``max_pending``
at a time, and the results are gathered by ``ContractionTree.gather_slices``. ``executor=None`` contracts the
slices one after the other in this process.

The largest intermediate of each slice is bounded by ``target_size`` entries; by default it is what
``tnml.settings.max_dense_bytes`` allows for the arrays' dtype, so a network whose plain contraction would exceed
the memory limit is sliced until every slice fits.

Gradients: with ``executor=None`` or a ``ThreadPoolExecutor`` torch results carry autograd history. Other
executors serialize the slices: their inputs are detached first and the result carries no gradient.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor

import cotengra as ctg
import numpy as np
import torch

from tnml import settings
from tnml.io import format_bytes
from tnml.network_form import NetworkForm, as_network
from tnml.validation import optional_positive_int, positive_int

__all__ = ["SlicedContraction", "contract_sliced"]

_BATCH = "__tnml_batch__"


def _contract_one(tree: ctg.ContractionTree, arrays: list, strip_exponent: bool):
    """Contract one slice (module level, so process executors can pickle it)."""
    return tree.contract_core(arrays, strip_exponent=strip_exponent)


def _itemsize(arrays: Sequence) -> int:
    a = arrays[0]
    return a.element_size() if isinstance(a, torch.Tensor) else np.asarray(a).dtype.itemsize


class SlicedContraction:
    """A cotengra contraction tree for fixed inputs, sliced so every slice's intermediates fit a size.

    Parameters
    ----------
    inputs : sequence of tuple of str
        Index names of each array.
    output : tuple of str
        Indices of the result, in order.
    size_dict : dict str -> int
    target_size : int, optional
        Largest intermediate of a slice, in entries (default: ``tnml.settings.max_dense_bytes // itemsize``).
    target_slices : int, optional
        Slice until there are at least this many slices (e.g. a multiple of the number of workers).
    optimize : str or cotengra optimizer
        Path search for the unsliced tree (default ``"greedy"``).
    itemsize : int
        Bytes per entry, for the default ``target_size`` (8: float64).
    seed : int
        Seed of cotengra's slice search (deterministic slicing).

    Attributes
    ----------
    tree : cotengra.ContractionTree
        The sliced tree; ``tree.sliced_inds``, ``tree.nslices``, ``tree.max_size()``.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    >>> sc = SlicedContraction([("i", "j"), ("j", "k")], ("i", "k"), {"i": 2, "j": 3, "k": 4}, target_slices=3)
    >>> sc.nslices >= 3, np.allclose(sc([a, b]), a @ b)
    (True, True)
    """

    def __init__(
        self,
        inputs: Sequence[Sequence[str]],
        output: Sequence[str],
        size_dict: dict[str, int],
        *,
        target_size: int | None = None,
        target_slices: int | None = None,
        optimize="greedy",
        itemsize: int = 8,
        seed: int = 0,
    ) -> None:
        inputs = [tuple(ix) for ix in inputs]
        output = tuple(output)
        known = {i for ix in inputs for i in ix}
        missing = [i for i in output if i not in known]
        if missing:
            raise ValueError(f"output indices {missing} appear in no input; choose output among the inputs' indices")
        if target_size is None:
            target_size = max(1, settings.max_dense_bytes // itemsize)
        target_size = positive_int("target_size", target_size, fix="the largest intermediate, in entries")
        target_slices = optional_positive_int("target_slices", target_slices)
        out_size = math.prod(size_dict[i] for i in output)
        if out_size * itemsize > settings.max_dense_bytes:
            raise settings.MemoryLimitError(
                f"the result alone has {out_size:,} entries ({format_bytes(out_size * itemsize)}), over "
                f"tnml.settings.max_dense_bytes = {format_bytes(settings.max_dense_bytes)}; keep fewer output indices "
                "open (contract them with vectors), or raise tnml.settings.max_dense_bytes"
            )
        tree = ctg.array_contract_tree(inputs, output, size_dict, optimize=optimize)
        opts = {}
        if tree.max_size() > target_size:
            opts["target_size"] = target_size
        if target_slices is not None and tree.nslices < target_slices:
            opts["target_slices"] = target_slices
        if opts:
            tree = tree.slice(**opts, seed=seed)
        if tree.max_size() > target_size:
            raise settings.MemoryLimitError(
                f"slicing left an intermediate of {int(tree.max_size()):,} entries, over target_size = "
                f"{target_size:,}; raise target_size (or tnml.settings.max_dense_bytes) or contract a smaller network"
            )
        self.tree = tree
        self.inputs, self.output = inputs, output
        self.size_dict = {i: int(size_dict[i]) for ix in inputs for i in ix}
        # cotengra renames indices canonically; map its names back to ours
        self._names = {c: i for cix, ix in zip(tree.inputs, inputs) for c, i in zip(cix, ix)}

    @property
    def nslices(self) -> int:
        return int(self.tree.nslices)

    @property
    def sliced_inds(self) -> tuple[str, ...]:
        """The sliced indices, by the names of ``inputs``."""
        return tuple(self._names.get(i, i) for i in self.tree.sliced_inds)

    def __call__(self, arrays: Sequence, executor: Executor | None = None, *, max_pending: int = 32,
                 strip_exponent: bool = False):
        """Contract ``arrays`` (numpy or torch, one per input), slice by slice.

        Parameters
        ----------
        arrays : sequence of arrays
            Axes in the order of ``inputs``.
        executor : concurrent.futures.Executor, optional
            Runs the slices (``executor.submit(fn, tree, slice_arrays, strip_exponent)``); None: serially here.
        max_pending : int
            Most slices submitted and not yet finished (bounds the memory held by in-flight slice arrays).
        strip_exponent : bool
            Return ``(mantissa, exponent)`` with ``result = mantissa * 10**exponent`` (cotengra's convention), so
            results beyond the dtype's range stay finite.

        Returns
        -------
        array, shape ``[size_dict[i] for i in output]``
            Same array type as the inputs; or ``(mantissa, exponent)`` with ``strip_exponent``.
        """
        arrays = list(arrays)
        if len(arrays) != len(self.inputs):
            raise ValueError(f"got {len(arrays)} arrays for {len(self.inputs)} inputs; pass one array per input")
        for k, (a, ix) in enumerate(zip(arrays, self.inputs)):
            if tuple(a.shape) != tuple(self.size_dict[i] for i in ix):
                want = tuple(self.size_dict[i] for i in ix)
                raise ValueError(f"arrays[{k}] has shape {tuple(a.shape)}, expected {want} for indices {ix}")
        max_pending = positive_int("max_pending", max_pending)
        if executor is None:
            parts = [self.tree.contract_slice(arrays, i, strip_exponent=strip_exponent) for i in range(self.nslices)]
            return self.tree.gather_slices(parts)
        threads = isinstance(executor, ThreadPoolExecutor)
        if not threads:  # serialized to another process or machine: no autograd history travels
            arrays = [a.detach() if isinstance(a, torch.Tensor) else a for a in arrays]
        results: list = [None] * self.nslices
        pending: deque = deque()
        for i in range(self.nslices):
            piece = self.tree.slice_arrays(arrays, i)
            if not threads:  # send only the slice (a torch view would pickle its whole storage)
                piece = [p.contiguous().clone() if isinstance(p, torch.Tensor) else np.ascontiguousarray(p)
                         for p in piece]
            pending.append((i, executor.submit(_contract_one, self.tree, piece, strip_exponent)))
            if len(pending) >= max_pending:
                j, fut = pending.popleft()
                results[j] = fut.result()
        while pending:
            j, fut = pending.popleft()
            results[j] = fut.result()
        return self.tree.gather_slices(results)


def _from_model(form: NetworkForm, x):
    """Inputs, output, sizes and arrays of a TNModel's network with batch ``x`` attached (batch as a hyper-index)."""
    s = form.structure
    inputs = [tuple(t.inds) for t in s.tensors]
    arrays: list = list(form.arrays or ())
    sizes = dict(s.size_dict)
    output: tuple[str, ...]
    if x is None:
        output = tuple(s.input_inds) + ((s.output_ind,) if s.output_ind is not None else ())
        return inputs, output, sizes, arrays
    if _BATCH in sizes:  # pragma: no cover - a reserved name
        raise ValueError(f"the network uses the reserved index name {_BATCH!r}")
    phi = form.source.embed(x)  # (batch, n_sites, d): validated and embedded
    sizes[_BATCH] = phi.shape[0]
    for site, ind in enumerate(s.input_inds):
        inputs.append((_BATCH, ind))
        arrays.append(phi[:, site, :])
    output = (_BATCH,) + ((s.output_ind,) if s.output_ind is not None else ())
    return inputs, output, sizes, arrays


def contract_sliced(
    obj,
    x=None,
    *,
    output_inds: Sequence[str] | None = None,
    executor: Executor | None = None,
    target_size: int | None = None,
    target_slices: int | None = None,
    optimize="greedy",
    max_pending: int = 32,
    seed: int = 0,
):
    """Contract a quimb TensorNetwork, or a TNModel's network, with cotengra slicing and an optional executor.

    Parameters
    ----------
    obj : quimb.tensor.TensorNetwork or TNModel
        A quimb network is contracted to ``output_inds`` (default: its outer indices, sorted); its arrays may be
        numpy or torch. A TNModel is contracted with inputs ``x`` attached, giving ``model(x)``; without ``x``,
        its dense coefficient tensor (inputs in site order, then the output).
    x : Tensor, optional
        TNModel only: raw ``(batch, n_sites)`` or embedded ``(batch, n_sites, phys_dim)`` inputs. The batch index
        joins every input vector (a hyper-index), so slicing may also split the batch.
    output_inds : sequence of str, optional
        quimb only: indices of the result, in order.
    executor : concurrent.futures.Executor, optional
        Evaluates the slices (see :class:`SlicedContraction`); None: serially.
    target_size, target_slices, optimize, seed
        Slicing (see :class:`SlicedContraction`).
    max_pending : int
        Most slices in flight at once.

    Returns
    -------
    array
        quimb: numpy or torch like the network's arrays, axes in ``output_inds`` order (a scalar network gives a
        0-d array). TNModel: a Tensor ``(batch, out_dim)`` or ``(batch,)`` with ``x``. No per-sample rescaling is
        done, so values beyond the dtype's range overflow (use ``TNModel.log_forward`` for those).

    Examples
    --------
    >>> import quimb.tensor as qtn
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> tn = qtn.TN2D_rand(3, 3, D=2, seed=0, dist="uniform")
    >>> with ThreadPoolExecutor(2) as ex:
    ...     val = contract_sliced(tn, executor=ex, target_slices=4)
    >>> bool(np.isclose(val, tn.contract(all)))
    True
    """
    form = as_network(obj, accept=("quimb", "model"))
    if form.kind == "model":
        if output_inds is not None:
            raise ValueError("output_inds applies to quimb networks; a TNModel's output is fixed by its structure")
        inputs, output, sizes, arrays = _from_model(form, x)
    else:
        if x is not None:
            raise ValueError("x applies to TNModels; attach input vectors to a quimb network as tensors instead")
        inputs = [tuple(t.inds) for t in form.structure.tensors]
        arrays = list(form.arrays or ())
        sizes = dict(form.structure.size_dict)
        output = tuple(sorted(form.structure.input_inds)) if output_inds is None else tuple(output_inds)
    plan = SlicedContraction(inputs, output, sizes, target_size=target_size, target_slices=target_slices,
                             optimize=optimize, itemsize=_itemsize(arrays), seed=seed)
    return plan(arrays, executor, max_pending=max_pending)
