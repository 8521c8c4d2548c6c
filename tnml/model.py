"""``TNModel``: an ``nn.Module`` that *is* a tensor network."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import networkx as nx
import torch
from torch import nn

from tnml.dense import contract_dense
from tnml.feature_maps import FeatureMap, IdentityMap, get_feature_map
from tnml.plans.base import Plan, traced
from tnml.plans.compile import PLAN_KINDS, PlanKind, compile_plan
from tnml.plans.star import is_star
from tnml.plans.tree import is_tree
from tnml.quimb_interop import structure_from_quimb, to_quimb, torch_dtype_of
from tnml.storage import CoreStacks
from tnml.structure import TNStructure
from tnml.validation import check_device, check_model_size


class OutputScaleWarning(UserWarning):
    """A model's outputs are too large or too small to train on with ``forward`` (issued once per model)."""


#: ``forward`` warns when every output of a batch is below ``2**TINY_OUTPUT_LOG2`` (≈ 1.5e-8, Adam's default eps):
#: the gradients, proportional to ``|f|``, then do not move Adam (seen: a TTN over binary DNA features with the trig
#: map starts near e^-41 and its cross-entropy never leaves ln 3)
TINY_OUTPUT_LOG2 = -26


def _key(name: str) -> str:
    return name.replace(".", "_")


class TNModel(nn.Module):
    """A neural model whose computation is the contraction of a tensor network.

    The structure (tensors with named indices, which open indices take data, which is the output) is fixed at
    construction. ``self.cores`` maps each tensor's key (its name, ``.`` replaced by ``_``) to its values; with
    ``stack_cores=True`` (the default) tensors of equal shape are rows of a stacked ``nn.Parameter``
    (:class:`tnml.storage.CoreStacks`: one optimizer entry and one gradient per stack, not per tensor; a
    784-site MPS has four; a tree's shape class spanning few levels, like a TTN's inner nodes, gets one stack per
    level, see :func:`tnml.storage.stack_layout`), with ``stack_cores=False`` each tensor is its own
    ``nn.Parameter`` in an ``nn.ParameterDict`` (what per-tensor optimizers such as GroupRMSprop need). Either
    way :meth:`core` reads and writes one tensor and :meth:`core_grad` gives its gradient. The forward pass
    embeds each input value with a feature map and contracts the network with a plan compiled once per
    (structure, device) — batch kept out of path search, identical contractions stacked, and a per-sample
    power-of-two exponent carried so long chains neither overflow nor underflow. Raw inputs of the one-hot feature
    map skip the embedding where the plan gathers (``plan().takes_indices``: a CP's star plan): the core rows
    the indices select are multiplied directly (:meth:`contract_input`).

    Parameters
    ----------
    structure : TNStructure
    feature_map : str, (str, dict) or FeatureMap
        How raw values ``(batch, n_sites)`` become vectors ``(batch, n_sites, phys_dim)``; see
        :func:`tnml.feature_maps.get_feature_map`. ``"identity"`` means inputs arrive already embedded.
    plan : {"auto", "tree", "star", "generic"}
        Which contraction plan to compile (``"auto"`` picks by structure).
    stack_cores : bool, optional
        Store tensors of equal shape as one stacked parameter (default: the class attribute
        :attr:`stack_cores`, True for TNModel).
    device, dtype : factory kwargs for the parameters.

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> m = MPS(n_sites=6, phys_dim=2, bond_dim=3, out_dim=4, dtype=torch.float64)
    >>> m(torch.rand(5, 6)).shape
    torch.Size([5, 4])
    """

    #: default storage: stacked parameters (one per shape class, or per tree level; subclasses whose optimizers
    #: treat every tensor as its own group, like the factorizations, set False)
    stack_cores: bool = True

    def __init__(
        self,
        structure: TNStructure,
        feature_map: str | tuple | FeatureMap | None = "identity",
        *,
        plan: PlanKind = "auto",
        stack_cores: bool | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": check_device(device), "dtype": dtype}
        if not isinstance(structure, TNStructure):
            raise TypeError(f"structure must be a TNStructure, got {type(structure).__name__}")
        if plan not in PLAN_KINDS:
            raise ValueError(f"plan={plan!r} is unknown; choose one of {PLAN_KINDS}")
        self.structure = structure
        self.plan_kind = plan
        dims = set(structure.phys_dims)
        if len(dims) > 1:
            raise ValueError(
                f"input indices have different sizes {sorted(dims)}; a TNModel needs one phys_dim for all sites "
                "(pad the smaller legs, or split the model)"
            )
        self.phys_dim = dims.pop() if dims else 0
        if feature_map is None or feature_map == "identity":
            feature_map = IdentityMap(self.phys_dim)
        self.feature_map = get_feature_map(feature_map)
        if any(True for _ in self.feature_map.parameters()):  # a learned map follows the model's dtype and device
            self.feature_map.to(**{k: v for k, v in factory.items() if v is not None})
        if self.feature_map.dim != self.phys_dim:
            raise ValueError(
                f"feature_map {self.feature_map.registry_name!r} gives vectors of dim {self.feature_map.dim} but "
                f"phys_dim is {self.phys_dim}; make them equal"
            )
        keys = [_key(t.name) for t in structure.tensors]
        if len(set(keys)) != len(keys):
            raise ValueError("tensor names must stay unique after replacing '.' with '_'")
        if stack_cores is None:
            stack_cores = type(self).stack_cores
        if not isinstance(stack_cores, bool):
            raise TypeError(f"stack_cores must be True or False, got {stack_cores!r}")
        self.stack_cores = stack_cores
        if stack_cores:
            self.cores = CoreStacks(structure, keys, **factory)
        else:
            self.cores = nn.ParameterDict(  # type: ignore[assignment]
                {_key(t.name): nn.Parameter(torch.empty(t.shape, **factory)) for t in structure.tensors}
            )
        self._names = structure.tensor_names
        self._scale_warned = False
        self.reset_parameters()
        if plan != "generic" and (is_tree(structure) or is_star(structure)):
            # the plan is built now (cheap for trees and stars; a generic plan's path search waits for the first
            # forward), so that torch.compile finds it cached instead of tracing its construction
            self.plan()

    # ------------------------------------------------------------------ parameters
    def reset_parameters(self) -> None:
        """Default initialization: i.i.d. normal with variance 1/(fan-in) per tensor. Subclasses override."""
        with torch.no_grad():
            for t in self.structure.tensors:
                fan_in = max(1, math.prod(t.shape) // max(t.shape))
                self.cores[_key(t.name)].normal_(0.0, 1.0 / math.sqrt(fan_in))

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_plan_cache", None)  # rebuilt (from the process's plan cache) on first use
        return state

    def core(self, name: str) -> torch.Tensor:
        """The values of tensor ``name`` (axes in the order of ``structure.tensor(name).inds``): its parameter,
        or with stacked storage a view of its row (in-place writes under ``torch.no_grad()`` reach the
        parameter)."""
        return self.cores[_key(name)]

    def core_grad(self, name: str) -> torch.Tensor | None:
        """The gradient of tensor ``name`` after a backward pass (None before one), whatever the storage."""
        if self.stack_cores:
            return self.cores.grad(_key(name))
        return self.cores[_key(name)].grad

    def core_dict(self) -> dict[str, torch.Tensor]:
        """``{tensor name: tensor}`` in structure order (per-tensor storage: read straight from the ParameterDict's
        storage, since ``ParameterDict.__getitem__`` costs microseconds per call; stacked storage: one ``unbind``
        per stack)."""
        if self.stack_cores:
            views = self.cores.unbound()
            return {nm: views[_key(nm)] for nm in self._names}
        params = self.cores._parameters
        return {nm: params[_key(nm)] for nm in self._names}  # type: ignore[misc]

    @property
    def n_sites(self) -> int:
        return self.structure.n_sites

    @property
    def out_dim(self) -> int | None:
        return self.structure.out_dim

    def _ref(self) -> torch.Tensor:
        if self.stack_cores:
            return self.cores.stack_list()[0]
        return next(iter(self.cores.values()))

    # ------------------------------------------------------------------ forward
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Validate ``x`` and embed it: ``(batch, n_sites)`` raw or ``(batch, n_sites, phys_dim)`` embedded.

        Returns
        -------
        Tensor, shape (batch, n_sites, phys_dim), in the parameters' dtype and device.
        """
        x, raw = self._checked_input(x)
        x = self._converted(x)
        return self.feature_map(x) if raw else x

    def _checked_input(self, x) -> tuple[torch.Tensor, bool]:
        """``x`` as a tensor after the shape and finiteness checks, and whether it is raw (not embedded)."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x)
        n, d, fin = self.n_sites, self.phys_dim, self.feature_map.in_features
        raw_shape = (n,) if fin == 1 else (n, fin)
        if x.dim() >= 1 and tuple(x.shape[1:]) == raw_shape and not isinstance(self.feature_map, IdentityMap):
            raw = True
        elif x.dim() == 3 and tuple(x.shape[1:]) == (n, d):
            raw = False
        else:
            expect = f"(batch, {n}, {d}) embedded"
            if not isinstance(self.feature_map, IdentityMap):
                expect = f"(batch, {', '.join(map(str, raw_shape))}) raw or " + expect
            raise ValueError(
                f"x has shape {tuple(x.shape)}; this model expects {expect}; reshape the data "
                "(images: x.reshape(batch, -1))"
            )
        if not (x.is_floating_point() or x.is_complex()):
            return x, raw
        if x.is_complex() and not self._ref().is_complex():
            raise ValueError(
                f"x is complex ({x.dtype}) but the model's parameters are real ({self._ref().dtype}): the imaginary "
                "part would be dropped; pass x.real (or x.abs()) explicitly, or build the model with a complex dtype"
            )
        if traced(x):
            # torch.compile: an asynchronous assertion (no graph break, no host sync); inside torch.func transforms
            # (vmap) a value check cannot be read per sample, so it is skipped there
            if torch.compiler.is_compiling():
                torch._assert_async(torch.isfinite(x).all(), "x contains NaN or inf; clean or impute the data first")
            return x, raw
        # one reduction on the common path; the elementwise check only if the sum is not finite (NaN/inf in x,
        # or finite values whose sum overflows)
        total = (x.detach() if x.requires_grad else x).sum()
        if not math.isfinite(abs(complex(total))) and not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).nonzero()[0].tolist()
            raise ValueError(f"x contains NaN or inf (first at index {bad}); clean or impute the data first")
        return x, raw

    def _converted(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the parameters' dtype and on their device."""
        ref = self._ref()
        if x.dtype == ref.dtype and x.device == ref.device:  # the common case: no aten call at all
            return x
        if not x.is_floating_point():
            x = x.to(ref.dtype)
        return x.to(device=ref.device, dtype=ref.dtype)

    def plan(self) -> Plan:
        """The compiled contraction plan for the current device (cached; the model keeps its own reference, so that
        ``torch.compile`` reads it as a constant instead of tracing the plan's construction; tree and star plans are
        built with the model, others at the first call: after moving a model to another device, call the model or
        ``plan()`` once before compiling)."""
        device = str(self._ref().device)
        cached = self.__dict__.get("_plan_cache")
        if cached is not None and cached[0] == device:
            return cached[1]
        plan = compile_plan(self.structure, device, self.plan_kind)
        self.__dict__["_plan_cache"] = (device, plan)
        return plan

    def contract(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract with embedded inputs ``phi`` (batch, n_sites, phys_dim).

        Returns
        -------
        values : Tensor, shape (batch, out_dim) or (batch,)
        log2_scale : Tensor, shape (batch,)
            The model output is ``values * 2**log2_scale[:, None]``.
        """
        if phi.shape[0] == 0:  # an empty batch: empty outputs (kept in the autograd graph, like nn.Linear's)
            shape = (0,) if self.out_dim is None else (0, self.out_dim)
            anchor = sum(p.sum() for p in self.parameters()) * 0.0  # every parameter gets a (zero) gradient
            return phi.new_zeros(shape) + anchor, phi.new_zeros(0)
        plan = self.plan()
        return plan.run_stacks(self._stacks(plan), phi)

    def contract_indices(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contract with one-hot inputs given as their indices: the same as ``contract(one_hot(idx))``, computed
        by gathering the core slices the indices select (plans with ``takes_indices``, e.g. a CP's star plan).

        Parameters
        ----------
        idx : LongTensor, shape (batch, n_sites)
            Values in ``[0, phys_dim - 1]`` (checked, with one host read, outside ``torch.compile`` / ``torch.func``
            transforms).

        Returns
        -------
        values, log2_scale : as :meth:`contract`.

        Raises
        ------
        ValueError
            If the plan does not gather, ``idx`` is not ``(batch, n_sites)`` integers, or a value is out of range.
        """
        plan = self.plan()
        if not plan.takes_indices:
            raise ValueError(
                f"the {plan.kind} plan of this model does not take one-hot indices; call "
                "contract(torch.nn.functional.one_hot(idx, phys_dim)) instead, or build the model with plan='star' "
                "where the structure is a star (a CP)"
            )
        if idx.dim() != 2 or idx.shape[1] != self.n_sites or idx.is_floating_point() or idx.is_complex():
            raise ValueError(
                f"idx must be integer indices of shape (batch, {self.n_sites}), got {idx.dtype} of shape "
                f"{tuple(idx.shape)}; use feature_map.indices(x)"
            )
        idx = idx.to(device=self._ref().device, dtype=torch.long)
        if idx.numel() and not traced(idx):
            lo, hi = torch.stack(torch.aminmax(idx)).tolist()
            if lo < 0 or hi >= self.phys_dim:
                raise ValueError(
                    f"idx holds values in [{lo}, {hi}] but one-hot indices must lie in [0, {self.phys_dim - 1}] "
                    f"(phys_dim={self.phys_dim}); an index out of range would read another site's core row"
                )
        return self._gather(plan, idx)

    def _gather(self, plan: Plan, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gather route on indices already checked (shape, dtype, device and range)."""
        return plan.run_stacks_indices(self._stacks(plan), idx)

    def _stacks(self, plan: Plan) -> list[torch.Tensor]:
        """The cores in the one form plans contract (:meth:`tnml.plans.base.Plan.run_stacks`): the stacked
        parameters as they are, or per-tensor parameters stacked into the plan's layout."""
        if self.stack_cores:
            return self.cores.stack_list()
        return plan.stack(self.core_dict())

    def contract_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``x`` (as :meth:`embed`) and contract it: what :meth:`forward` and :meth:`log_forward` compute.

        Raw inputs of a one-hot feature map go the gather route (:meth:`contract_indices`) where the plan takes
        indices (a CP's star plan): no one-hot vectors are built; any other input is embedded and contracted
        (:meth:`contract`). Both routes give the same values to round-off.

        Returns
        -------
        values, log2_scale : as :meth:`contract`.
        """
        x, raw = self._checked_input(x)
        if raw and x.shape[0] and self.plan().takes_indices:
            ref = self._ref()
            if x.is_floating_point() and not ref.is_complex():  # validate what the dense route would embed
                x = x.to(device=ref.device, dtype=ref.dtype)
            idx = self.feature_map.indices(x)
            if idx is not None and getattr(self.feature_map, "k", None) == self.phys_dim:
                # the map validated every value against its own k = phys_dim: no second host read of the range
                return self._gather(self.plan(), idx.to(device=ref.device, dtype=torch.long))
            if idx is not None:
                return self.contract_indices(idx)
        x = self._converted(x)
        return self.contract(self.feature_map(x) if raw else x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Model output, shape ``(batch, out_dim)`` (or ``(batch,)`` without output index).

        Values too large for the dtype become inf; use :meth:`log_forward` for those.
        """
        values, exp = self.contract_input(x)
        if not self._scale_warned and exp.numel() and not traced(values):
            self._warn_if_out_of_range(values, exp)
        scale = torch.exp2(exp)
        # half-precision models carry the exponent in float32; the output keeps the parameters' dtype
        out = values * (scale.unsqueeze(-1) if values.dim() == 2 else scale)
        return out if out.dtype == values.dtype else out.to(values.dtype)

    def _warn_if_out_of_range(self, values: torch.Tensor, log2_scale: torch.Tensor) -> None:
        """Warn once per model when outputs leave the range where ``forward`` + a loss can train: some sample
        beyond ``2**±(0.75 · max exponent of the dtype)`` (``2**±96`` in float32: overflow or underflow), or every
        sample of the batch below ``2**`` :data:`TINY_OUTPUT_LOG2` (``≈ 1.5e-8``, Adam's default ``eps``: the
        gradients, proportional to ``|f|``, no longer move Adam, and plain SGD steps shrink with them)."""
        if log2_scale.is_complex():  # complex networks: the scale is real (imaginary part 0)
            log2_scale = log2_scale.real
        limit = 0.75 * math.log2(torch.finfo(log2_scale.dtype).max)
        # the true log2 |f| per sample (largest component): plans need not return values with max-abs in [0.5, 1)
        # (e.g. the star plan's head-less sum can reach R); an exactly-zero output counts as 2**0
        with torch.no_grad():
            # abs + amax: vector_norm(ord=inf) ran 5x slower at (256, 10) on one CPU thread
            mag = values.abs() if values.dim() == 1 else values.abs().amax(-1)
            # log2(0) = -inf: an exactly-zero output counts as 2**0 (NaN likewise; inf stays beyond the limit)
            mag = mag if mag.dtype == log2_scale.dtype else mag.to(log2_scale.dtype)
            lg = torch.log2(mag).add_(log2_scale).nan_to_num_(0.0, None, 0.0)
            lo, hi = torch.cat((lg.amin(0, keepdim=True), lg.amax(0, keepdim=True))).tolist()  # one host sync
        if -limit <= lo and hi <= limit and hi >= TINY_OUTPUT_LOG2:
            return
        self._scale_warned = True
        if hi > limit:
            e, why = hi, f"outside what {log2_scale.dtype} and a loss on forward() can train with"
        elif lo < -limit:
            e, why = lo, f"outside what {log2_scale.dtype} and a loss on forward() can train with"
        else:
            e, why = hi, "every output of the batch below Adam's default eps (1e-8): gradients, proportional to |f|, " \
                "do not move the parameters"
        side = f"up to 2**{e:.0f}" if e > 0 else f"down to 2**{e:.0f}"
        warnings.warn(
            f"{type(self).__name__} outputs reach {side} (ln|f| = {e * math.log(2):.0f}), {why}. Use log_forward() "
            "for the value, wrap the model in tnml.networks.NormalizedLogits for classification, or re-initialize: "
            "the default inits are norm-neutral on uniform [0, 1] inputs (init='identity' / 'normal'), and "
            "tnml.init.calibrate_(model, x) rescales any model to |f| ~ 1 on your data. (Warned once per model.)",
            OutputScaleWarning,
            stacklevel=5,  # _warn_if_out_of_range <- forward <- Module._call_impl <- _wrapped_call_impl <- caller
        )

    def log_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Natural log of the output's magnitude and its sign: finite even where ``forward`` overflows.

        Returns
        -------
        log_abs, sign : Tensors of the output's shape.
        """
        values, exp = self.contract_input(x)
        e = exp.unsqueeze(-1) if values.dim() == 2 else exp
        sign = torch.sgn(values) if values.is_complex() else torch.sign(values)  # complex: the unit phase
        return torch.log(values.abs()) + e * math.log(2.0), sign

    # ------------------------------------------------------------------ interop
    def to_quimb(self):
        """A ``quimb.tensor.TensorNetwork`` with the current values; index names as in ``structure``."""
        return to_quimb(self.structure, self.core_dict())

    @classmethod
    def from_quimb(
        cls,
        tn,
        input_inds: Sequence[str],
        output_ind: str | None = None,
        feature_map: str | tuple | FeatureMap | None = "identity",
        *,
        plan: PlanKind = "auto",
        init: str | None = None,
        device=None,
        dtype=None,
    ) -> TNModel:
        """Make any quimb network a trainable model initialized with its values.

        Parameters
        ----------
        tn : quimb.tensor.TensorNetwork
        input_inds : sequence of str
            Outer indices that take data, in site order.
        output_ind : str, optional
            Outer index that carries the output.
        init : {None, "normal"}
            None (default): the network's values. ``"normal"``: only the geometry is taken; the tensors get the
            norm-neutral Gaussian init of :func:`tnml.init.gaussian_network_init_` (``E ln ||f|| ≈ 0`` on
            reference inputs, any geometry).
        dtype : torch.dtype, optional
            Default: the network's own (float64 and complex stay so; see :func:`tnml.quimb_interop.torch_dtype_of`).
        """
        if init not in (None, "normal"):
            raise ValueError(f"init={init!r} is unknown; use None (keep the network's values) or 'normal'")
        structure, arrays = structure_from_quimb(tn, input_inds, output_ind)
        if dtype is None:
            dtype = torch_dtype_of(arrays)
        complex_values = [t.name for t, a in zip(structure.tensors, arrays) if a.dtype.kind == "c"]
        if complex_values and not dtype.is_complex:
            raise ValueError(
                f"dtype={dtype} is real but tensors {complex_values[:4]} of the network are complex; their imaginary "
                "parts would be dropped: pass a complex dtype (e.g. torch.complex128) or dtype=None"
            )
        check_model_size(
            "TNModel.from_quimb", n_params=sum(a.size for a in arrays), n_tensors=len(arrays), dtype=dtype,
            device=device, fix="a smaller network",
        )
        model = TNModel(structure, feature_map, plan=plan, device=device, dtype=dtype)
        if init == "normal":
            from tnml.init import gaussian_network_init_

            gaussian_network_init_(model)
            return model
        with torch.no_grad():
            for t, a in zip(structure.tensors, arrays):
                model.core(t.name).copy_(torch.as_tensor(a))
        return model

    def to_dense(self, max_bytes: int | None = None) -> torch.Tensor:
        """The coefficient tensor, shape ``(*phys_dims[, out_dim])``, so that
        ``forward(x) = einsum(dense, phi(x_0), ..., phi(x_{N-1}))``.

        Raises ``MemoryLimitError`` beyond ``max_bytes`` (default ``tnml.settings.max_dense_bytes``).
        """
        return contract_dense(self.structure, self.core_dict(), max_bytes)

    def graph(self) -> nx.MultiGraph:
        """The network's geometry as a networkx multigraph (see :meth:`TNStructure.graph`)."""
        return self.structure.graph()

    def extra_repr(self) -> str:
        s = self.structure
        return (
            f"n_sites={s.n_sites}, phys_dim={self.phys_dim}, out_dim={s.out_dim}, tensors={len(s.tensors)}, "
            f"params={s.n_params()}"
        )
