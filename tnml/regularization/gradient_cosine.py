"""Gradient-cosine regularizer against the locality bias of convolutional networks (P3: Razin, Maman, Cohen, ICML 2022).

For two disjoint patches ``I`` and ``J`` of the input, a model whose output is *separable* across them,
``f(x) = a(x_I) · b(x_J)``, has an input gradient over ``I`` that changes only by a scalar factor when ``x_J`` is
replaced: ``∇_{x_I} f(x) = b(x_J) ∇a(x_I)``. The regularizer measures how far the model is from that case,

.. math::

    R = \\frac{1}{B} \\sum_b \\left| \\cos\\left(g(x_b), g(\\tilde x_b)\\right) \\right|,
    \\qquad g(x) = \\nabla_{x_I} f(x),

where ``x̃_b`` is ``x_b`` with patch ``J`` taken from ``x_{b+1}`` (cyclic shift by one in the batch) and ``f`` is the
true-class logit ``f_y`` of a multi-class model, or the single logit of a one-output (binary, ``BCEWithLogitsLoss``)
model. ``R`` is computed with ``create_graph=True``, so ``loss + λ R`` trains by double backpropagation; lowering
``R`` pushes the model towards interactions between ``I`` and ``J`` (higher separation rank).

Facts carried over from the authors' released code [code] (``asafmaman101/imp_reg_htf``,
``locality_bias/train/input_grad_change_regularization_trainer.py``; no code copied):

- the gradient is of the true-class output ``y_pred[b, y_b]`` for multi-class models and of the single output logit
  (``y`` unused) when the loss is ``BCEWithLogitsLoss``, which is what their IsSameClass model uses (one output);
- ``x̃`` is a detached copy of ``x`` whose patch ``J`` holds the patch of the *next* sample (cyclic shift by one);
- each gradient is divided by its norm, the absolute value of the dot product is averaged over the whole batch;
- each step draws which of the preset patches plays ``I`` and which ``J`` (with two patches: the order at random),
  which :meth:`GradientCosineRegularizer.forward` exposes as ``swap``.

Unlike the authors' code (plain division by the norm, NaN on an all-zero gradient), the cosine here is guarded by
``eps`` (an all-zero gradient gives cosine 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

#: a patch: ints (positions along the last input dim), equal-length tuples of ints (positions over the last k
#: dims, e.g. ``(row, col)`` for images, all channels included), or a boolean mask over the last k dims
Patch = Iterable[int] | Iterable[tuple[int, ...]] | np.ndarray | torch.Tensor


def rect_patch(rows: range | slice | Iterable[int], cols: range | slice | Iterable[int]) -> list[tuple[int, int]]:
    """All ``(row, col)`` positions of a rectangle, as a patch over the last two input dims.

    Parameters
    ----------
    rows, cols : range or iterable of int (a slice needs explicit start and stop)

    Returns
    -------
    list of (int, int)
        The positions, row-major.

    Examples
    --------
    >>> rect_patch(range(2), range(1, 3))
    [(0, 1), (0, 2), (1, 1), (1, 2)]
    """

    def as_range(r):
        if isinstance(r, slice):
            if r.start is None or r.stop is None:
                raise ValueError(f"rect_patch: a slice needs explicit start and stop, got {r}; pass range(a, b)")
            return range(r.start, r.stop, r.step or 1)
        return list(r)

    return [(int(i), int(j)) for i in as_range(rows) for j in as_range(cols)]


class _PatchSpec:
    """A validated patch: either explicit positions ``(n, k)`` or a boolean mask of ``k`` dims."""

    def __init__(self, patch: Patch, name: str):
        self.name = name
        if isinstance(patch, (np.ndarray, torch.Tensor)) and torch.as_tensor(patch).dtype == torch.bool:
            mask = torch.as_tensor(patch).detach().cpu()
            if mask.ndim == 0:
                raise ValueError(
                    f"{name}: a boolean mask needs at least one dim, got a scalar; pass a mask over the "
                    "input's trailing dims"
                )
            if not mask.any():
                raise ValueError(f"{name} is empty (the mask has no True entry); a patch needs at least one position")
            self.mask, self.positions, self.k = mask, None, mask.ndim
            return
        try:
            items = list(patch)
        except TypeError:
            raise TypeError(
                f"{name} must be an iterable of ints, of equal-length int tuples, or a boolean mask; got "
                f"{type(patch).__name__}"
            ) from None
        if not items:
            raise ValueError(f"{name} is empty; a patch needs at least one position")
        rows = []
        for it in items:
            t = tuple(int(v) for v in (it if isinstance(it, (tuple, list, np.ndarray, torch.Tensor)) else (it,)))
            rows.append(t)
        ks = {len(t) for t in rows}
        if len(ks) != 1 or 0 in ks:
            raise ValueError(f"{name}: all positions must have the same (nonzero) length, got lengths {sorted(ks)}")
        pos = torch.tensor(rows, dtype=torch.long)
        if (pos < 0).any():
            bad = rows[int((pos < 0).any(1).nonzero()[0])]
            raise ValueError(f"{name} has a negative position {bad}; use 0-based non-negative indices")
        if len(set(rows)) != len(rows):
            raise ValueError(f"{name} repeats positions; give each position once")
        self.mask, self.positions, self.k = None, pos, pos.shape[1]

    def build(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Boolean mask over ``shape`` (the input's trailing ``k`` dims)."""
        if self.mask is not None:
            if tuple(self.mask.shape) != tuple(shape):
                raise ValueError(
                    f"{self.name}: mask shape {tuple(self.mask.shape)} does not match the input's trailing dims "
                    f"{tuple(shape)}"
                )
            return self.mask
        lim = torch.tensor(shape, dtype=torch.long)
        over = (self.positions >= lim).any(1)
        if over.any():
            bad = tuple(self.positions[int(over.nonzero()[0])].tolist())
            raise ValueError(
                f"{self.name} position {bad} is out of range for the input's trailing dims {tuple(shape)}; "
                "positions index the last dims of x (batch excluded), 0-based"
            )
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[tuple(self.positions.T)] = True
        return mask


class GradientCosineRegularizer(nn.Module):
    """Mean absolute cosine between true-class input gradients on patch ``I`` before and after swapping patch ``J``.

    Parameters
    ----------
    patch_i, patch_j : Patch
        Disjoint, non-empty index sets over the input's trailing dims: ints for ``(batch, n)`` inputs; tuples such
        as ``(row, col)`` for ``(batch, C, H, W)`` inputs (a tuple of length ``k`` addresses the last ``k`` dims, so
        every channel at that pixel is included; see :func:`rect_patch`); or boolean masks over the trailing dims.
        Both patches must address the same number of trailing dims.
    eps : float
        Guards the cosine's denominator (``torch.nn.functional.cosine_similarity``); an all-zero gradient gives
        cosine 0.

    Notes
    -----
    ``forward(model, x, y)`` evaluates ``model`` once on the concatenation ``[x, x̃]`` of shape ``(2B, ...)`` and
    reads per-sample gradients from one ``autograd.grad`` of the summed true-class (or single) logits. That is exact
    when samples do not interact inside the model: put batch-coupled layers (``BatchNorm`` in training mode) in eval
    mode or avoid them (the authors' ResNet18 kept BatchNorm in training mode, so their gradients mixed samples).
    The regularizer has no parameters.

    ``|cos| = 1`` is the maximum of each term, so at a model that is separable across ``I`` and ``J`` (additively,
    ``a(x_I) + b(x_J)``, or multiplicatively) the parameter gradient of ``R`` vanishes: the regularizer gives no
    first-order push away from exact separability, only from near it.

    References
    ----------
    N. Razin, "Analyses of Deep Learning via Tensor Networks", thesis (2024), Part 3: anti-locality regularization.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> reg = GradientCosineRegularizer(patch_i=[0, 1, 2], patch_j=[3, 4, 5])
    >>> x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 0, 1])
    >>> r = reg(model, x, y)
    >>> bool(0 <= r.item() <= 1), r.requires_grad
    (True, True)
    """

    def __init__(self, patch_i: Patch, patch_j: Patch, eps: float = 1e-12):
        super().__init__()
        self._pi = _PatchSpec(patch_i, "patch_i")
        self._pj = _PatchSpec(patch_j, "patch_j")
        if self._pi.k != self._pj.k:
            raise ValueError(
                f"patch_i addresses the last {self._pi.k} dims but patch_j the last {self._pj.k}; "
                "give both patches positions of the same length"
            )
        if self._pi.positions is not None and self._pj.positions is not None:
            common = {tuple(r) for r in self._pi.positions.tolist()} & {tuple(r) for r in self._pj.positions.tolist()}
            if common:
                raise ValueError(
                    f"patch_i and patch_j overlap at {len(common)} position(s), e.g. {min(common)}; "
                    "the patches must be disjoint"
                )
        elif self._pi.mask is not None and self._pj.mask is not None and self._pi.mask.shape == self._pj.mask.shape:
            self._check_disjoint(self._pi.mask, self._pj.mask)
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.eps = float(eps)
        self._cache: dict = {}

    @property
    def patch_ndim(self) -> int:
        """How many trailing input dims the patches address."""
        return self._pi.k

    @staticmethod
    def _check_disjoint(mi: torch.Tensor, mj: torch.Tensor) -> None:
        both = mi & mj
        if both.any():
            at = tuple(both.nonzero()[0].tolist())
            raise ValueError(
                f"patch_i and patch_j overlap at {int(both.sum())} position(s), e.g. {at}; the patches must be disjoint"
            )

    def masks(self, x_shape: tuple[int, ...] | torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
        """Boolean masks of patches ``I`` and ``J`` over the trailing ``patch_ndim`` dims of an input shape."""
        k = self.patch_ndim
        if len(x_shape) < k + 1:
            raise ValueError(
                f"x has shape {tuple(x_shape)} but the patches address {k} trailing dim(s) besides the batch dim; "
                f"pass x of at least {k + 1} dims"
            )
        shape = tuple(x_shape[-k:])
        if shape not in self._cache:
            mi, mj = self._pi.build(shape), self._pj.build(shape)
            self._check_disjoint(mi, mj)
            self._cache[shape] = (mi, mj)
        return self._cache[shape]

    def gradients(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, swap: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``g(x)`` and ``g(x̃)``, each of shape ``(batch, |I| · prod(leading non-batch dims))``, with graph.

        With ``swap=True`` the roles of the patches are exchanged (gradient over ``J``, patch ``I`` replaced).
        """
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        b = x.shape[0] if x.ndim else 0
        if b < 2:
            raise ValueError(
                f"x has batch size {b}; the regularizer swaps patch J between samples and needs a batch of >= 2"
            )
        if y is not None:
            y = torch.as_tensor(y, device=x.device)
            if y.shape != (b,) or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
                raise ValueError(
                    f"y must be integer class labels of shape ({b},), got {y.dtype} of shape {tuple(y.shape)}"
                )
        mi, mj = (m.to(x.device) for m in self.masks(x.shape))
        if swap:
            mi, mj = mj, mi
        x = x.detach()
        x_tilde = torch.where(mj, x.roll(-1, dims=0), x)  # x̃_b takes patch J from x_{b+1} (cyclic), as in [code]
        build_graph = torch.is_grad_enabled()  # under torch.no_grad() (monitoring): R's value, no graph
        with torch.enable_grad():
            xx = torch.cat([x, x_tilde]).requires_grad_(True)
            logits = model(xx)
        single = logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1)
        if logits.shape[0] != 2 * b or not (single or logits.ndim == 2):
            raise ValueError(
                f"model output has shape {tuple(logits.shape)}; expected logits of shape (batch, n_classes) or "
                "(batch,) / (batch, 1) for a single-logit binary model"
            )
        with torch.enable_grad():
            if single:  # one logit (BCE): its gradient, whatever the label ([code], BCEWithLogitsLoss branch)
                f = logits.reshape(2 * b).sum()
            else:
                if y is None:
                    raise ValueError(
                        f"y is None but the model has {logits.shape[1]} outputs; pass the true classes, shape ({b},)"
                    )
                if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
                    raise ValueError(f"y has labels outside 0..{logits.shape[1] - 1} (the model's n_classes)")
                yy = torch.cat([y, y]).long()
                f = logits.gather(1, yy[:, None]).sum()
            (grad,) = torch.autograd.grad(f, xx, create_graph=build_graph)
        g = grad[..., mi].reshape(2 * b, -1)
        return g[:b], g[b:]

    def forward(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, swap: bool = False
    ) -> torch.Tensor:
        """Compute ``R``.

        Parameters
        ----------
        model : nn.Module or callable
            Maps ``(batch, ...)`` to logits ``(batch, n_classes)``, or to one logit ``(batch,)`` / ``(batch, 1)``
            (a binary model trained with ``BCEWithLogitsLoss``).
        x : Tensor, shape ``(batch, ..., *trailing)``
            Inputs; the patches index the trailing dims. Gradients w.r.t. ``x`` itself are not propagated.
        y : Tensor of int, shape (batch,), optional
            True classes; ``f_y`` is the logit of class ``y_b``. Needed for multi-output models; ignored for a
            single-logit model, whose one output is differentiated for every sample (as in [code]).
        swap : bool
            Exchange the roles of ``I`` and ``J``: the authors draw the order at random at every step.

        Returns
        -------
        Tensor, scalar
            ``mean_b |cos(g(x_b), g(x̃_b))|`` in [0, 1], differentiable w.r.t. the model's parameters.
        """
        g, g_tilde = self.gradients(model, x, y, swap=swap)
        cos = nn.functional.cosine_similarity(g, g_tilde, dim=1, eps=self.eps)
        return cos.abs().mean()

    def extra_repr(self) -> str:
        def size(p: _PatchSpec) -> str:
            return f"mask{tuple(p.mask.shape)}" if p.mask is not None else f"{len(p.positions)} positions"

        return f"patch_i={size(self._pi)}, patch_j={size(self._pj)}, patch_ndim={self.patch_ndim}"
