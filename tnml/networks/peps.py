"""PEPS: a 2-D grid tensor network (one tensor per pixel, bonds to its grid neighbours); exact contraction for
small grids through the generic (cotengra path) plan."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from tnml.init import default_calibrate_
from tnml.model import TNModel
from tnml.networks._checks import output_site_needs_out_dim, sized_feature_map
from tnml.options import FeatureMapLike, PlanKind
from tnml.structure import TensorSpec, TNStructure
from tnml.validation import as_float, check_model_size, is_int, optional_positive_int, positive_int

__all__ = ["PEPS", "peps_structure"]


def peps_structure(
    shape: tuple[int, int], phys_dim: int, bond_dim: int, out_dim: int | None, output_site: int
) -> TNStructure:
    """Grid network over a row-major ``(h, w)`` grid (site ``k = r * w + c``).

    Tensor ``site{k}`` has indices ``(x{k}, [up], [left], [right], [down][, y])``: ``h{r}_{c}`` joins ``(r, c)``
    and ``(r, c + 1)``, ``v{r}_{c}`` joins ``(r, c)`` and ``(r + 1, c)``; missing neighbours at the border drop
    their bond; the output index ``y`` sits on ``site{output_site}``.
    """
    h, w = shape
    tensors = []
    for r in range(h):
        for c in range(w):
            k = r * w + c
            inds, dims = [f"x{k}"], [phys_dim]
            for present, ind in (
                (r > 0, f"v{r - 1}_{c}"),
                (c > 0, f"h{r}_{c - 1}"),
                (c < w - 1, f"h{r}_{c}"),
                (r < h - 1, f"v{r}_{c}"),
            ):
                if present:
                    inds.append(ind)
                    dims.append(bond_dim)
            if out_dim is not None and k == output_site:
                inds.append("y")
                dims.append(out_dim)
            tensors.append(TensorSpec(f"site{k}", tuple(inds), tuple(dims)))
    n = h * w
    return TNStructure(tuple(tensors), tuple(f"x{k}" for k in range(n)), "y" if out_dim is not None else None)


class PEPS(TNModel):
    r"""Projected entangled pair state on an ``h × w`` grid: one tensor per site with its input leg and a bond of
    size ``bond_dim`` to each grid neighbour, optionally an output leg on one site.

    The network has loops (for ``h, w >= 2``), so it is contracted exactly by the generic plan (a cotengra path
    found once, replayed with ``torch.einsum``); the cost grows like ``bond_dim ** min(h, w)`` — fine for small
    grids (say up to 5×5 with ``bond_dim <= 3``), exponential beyond.

    Parameters
    ----------
    shape : (int, int)
        Grid ``(h, w)``; site ``k = r * w + c`` (row-major), so inputs are ``(batch, h * w)`` (images:
        ``x.reshape(batch, -1)``).
    phys_dim : int
        Dimension of the embedded input at each site (must equal the feature map's dim).
    bond_dim : int
        Size of every grid bond.
    out_dim : int or None
        Size of the output leg; None for a scalar model.
    output_site : int or (int, int), optional
        Site carrying the output leg, as a site id or ``(row, col)``; default the centre
        ``(h // 2, w // 2)``.
    feature_map : str, (str, dict) or FeatureMap
        Default ``"trig"`` (theta=0.5).
    init_std : float, optional
        Std of an i.i.d. normal init. Default (norm-neutral, see :mod:`tnml.init`): per tensor
        ``prod(bond dims of the tensor) ** -1/4`` — then ``E[f(x)^2] = prod_i |phi(x_i)|^2`` exactly over random
        cores, whatever the grid size — followed by one common rescaling of all cores so that
        ``mean ln ||f|| = 0`` on up to 64 reference inputs
        (:func:`tnml.init.default_calibrate_`, within a compute budget): the second moment is exact
        but ``E ln |f|`` of a contraction with loops has no closed form (it drifts below ``ln E[f²]/2``).
    plan, stack_cores, device, dtype : see :class:`tnml.TNModel`.

    Examples
    --------
    >>> m = PEPS(shape=(3, 3), phys_dim=2, bond_dim=2, out_dim=4)
    >>> m(torch.rand(5, 9)).shape
    torch.Size([5, 4])
    >>> m.plan().kind
    'generic'
    """

    def __init__(
        self,
        shape: Sequence[int] = (3, 3),
        phys_dim: int = 2,
        bond_dim: int = 2,
        out_dim: int | None = None,
        output_site: int | Sequence[int] | None = None,
        feature_map: FeatureMapLike = "trig",
        *,
        init_std: float | None = None,
        plan: PlanKind = "auto",
        stack_cores: bool | None = None,
        device=None,
        dtype=None,
    ) -> None:
        if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 2:
            raise ValueError(f"shape must be a pair (h, w) of positive integers, got {shape!r}; e.g. shape=(3, 3)")
        h, w = positive_int("shape[0]", shape[0]), positive_int("shape[1]", shape[1])
        if h * w < 2:
            raise ValueError(f"shape={tuple(shape)} has a single site; a PEPS needs at least 2 sites")
        phys_dim, bond_dim = positive_int("phys_dim", phys_dim), positive_int("bond_dim", bond_dim)
        out_dim = optional_positive_int("out_dim", out_dim)
        check_model_size(
            f"PEPS(shape=({h}, {w}), phys_dim={phys_dim}, bond_dim={bond_dim}, out_dim={out_dim})",
            n_params=(h * w + (out_dim or 1)) * phys_dim * bond_dim**4, n_tensors=h * w, dtype=dtype,
            device=device, fix="a smaller shape or bond_dim",
        )
        given, output_site = output_site, int(output_site) if is_int(output_site) else output_site
        n = h * w
        if output_site is None:
            output_site = (h // 2) * w + w // 2
        elif isinstance(output_site, Sequence) and not isinstance(output_site, (str, bytes)):
            if len(output_site) != 2 or not all(is_int(v) and not isinstance(v, (bool, np.bool_)) for v in output_site):
                raise ValueError(f"output_site must be a site id or a (row, col) pair of ints, got {output_site!r}")
            r, c = (int(v) for v in output_site)
            if not (0 <= r < h and 0 <= c < w):
                raise ValueError(
                    f"output_site={tuple(output_site)!r} is outside the grid {h}x{w}; rows 0..{h - 1}, cols 0..{w - 1}"
                )
            output_site = r * w + c
        if isinstance(output_site, bool) or not isinstance(output_site, int) or not 0 <= output_site < n:
            raise ValueError(
                f"output_site must be an integer in [0, {n - 1}] or a (row, col) pair, got {output_site!r}"
            )
        output_site_needs_out_dim(given, out_dim)
        if init_std is not None:
            init_std = as_float("init_std", init_std, positive=True, fix="or None (scaled default)")
        self.shape = (h, w)
        self.bond_dim = bond_dim
        self.output_site = output_site
        self.init_std = None if init_std is None else float(init_std)
        feature_map = sized_feature_map(feature_map, phys_dim)
        super().__init__(
            peps_structure((h, w), phys_dim, bond_dim, out_dim, output_site),
            feature_map,
            plan=plan,
            stack_cores=stack_cores,
            device=device,
            dtype=dtype,
        )

    def reset_parameters(self) -> None:
        """I.i.d. normal cores; see ``init_std``."""
        with torch.no_grad():
            for t in self.structure.tensors:
                std = self.init_std
                if std is None:
                    bonds = math.prod(s for i, s in zip(t.inds, t.shape) if i[0] in "hv")
                    std = bonds**-0.25
                self.core(t.name).normal_(0.0, std)
        if self.init_std is None:
            default_calibrate_(self)

    def extra_repr(self) -> str:
        return (
            f"shape={self.shape}, n_sites={self.n_sites}, phys_dim={self.phys_dim}, bond_dim={self.bond_dim}, "
            f"out_dim={self.out_dim}, output_site={self.output_site}"
        )
