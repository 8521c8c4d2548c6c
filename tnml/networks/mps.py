"""Matrix product state (tensor train) with open boundaries and an optional output leg at any site."""

from __future__ import annotations

import math

import torch

from tnml.init import feature_log_norm, identity_log_gain, log_neutral_std, neutral_direction
from tnml.model import TNModel
from tnml.networks._checks import output_site_needs_out_dim, sized_feature_map
from tnml.options import FeatureMapLike, NetworkInit, PlanKind
from tnml.structure import TensorSpec, TNStructure
from tnml.validation import (
    as_float,
    as_int,
    check_model_size,
    check_option,
    is_int,
    optional_positive_int,
    positive_int,
)


def mps_structure(n_sites: int, phys_dim: int, bond_dim: int, out_dim: int | None, output_site: int) -> TNStructure:
    """Tensors ``site{i}`` with indices ``(b{i-1}, x{i}, b{i}[, y])``; site 0 has no left bond, the last site no
    right bond; the output index ``y`` sits on ``site{output_site}``."""
    tensors = []
    for i in range(n_sites):
        inds, shape = [], []
        if i > 0:
            inds.append(f"b{i - 1}")
            shape.append(bond_dim)
        inds.append(f"x{i}")
        shape.append(phys_dim)
        if i < n_sites - 1:
            inds.append(f"b{i}")
            shape.append(bond_dim)
        if out_dim is not None and i == output_site:
            inds.append("y")
            shape.append(out_dim)
        tensors.append(TensorSpec(f"site{i}", tuple(inds), tuple(shape)))
    return TNStructure(tuple(tensors), tuple(f"x{i}" for i in range(n_sites)), "y" if out_dim is not None else None)


class MPS(TNModel):
    r"""Matrix product state: :math:`f(x) = \sum A^{(0)}_{s_0} \cdots A^{(N-1)}_{s_{N-1}} \prod_i \phi(x_i)_{s_i}`.

    Parameters
    ----------
    n_sites : int
    phys_dim : int
        Dimension of the embedded input at each site (must equal the feature map's dim).
    bond_dim : int
    out_dim : int or None
        Size of the output leg (e.g. number of classes); None for a scalar model.
    output_site : int, optional
        Site carrying the output leg; default ``n_sites // 2``.
    feature_map : str, (str, dict) or FeatureMap
        Default ``"trig"`` (theta=0.5).
    init : {"identity", "normal"}
        Both are norm-neutral: ``E ln ||f(x)|| ≈ 0`` at any ``n_sites`` for inputs embedded by the feature map
        (raw values uniform on [0, 1] as the reference; see :mod:`tnml.init`).
        ``"identity"`` (default; what MPS classifiers are usually started from): each core is the identity over
        its bonds attached to the embedded direction ``c`` of :func:`tnml.init.neutral_direction`
        (``A[l, s, r] = δ_lr c_s``) plus N(0, init_std²) noise, divided by the exact mean gain of such a
        core (:func:`tnml.init.identity_log_gain`) so the noise does not shift the log-gain; the chain then starts near
        ``prod_i c·φ(x_i)`` (times a random output map) with ``E ln |c·φ(x)| = 0``. For maps with a constant
        component (``polynomial``: ``c = e_0``; ``onehot``) ``c·φ(x) = 1`` for *every* input, so any data set
        starts at ``|f| ≈ 1``; for ``trig`` the gain of one site ranges over ``[0.79, 1.11]`` (θ = 1/2), so data
        far from uniform (mostly-0 images) drift by up to ~0.24 nats per site — use ``polynomial`` or
        :class:`~tnml.networks.NormalizedLogits` there.
        ``"normal"``: i.i.d. ``N(0, s²)`` per core with, unless ``init_std`` is given,
        ``s² = exp(-ψ(k/2)) / 2 / exp(2 E ln ||φ||)`` (``k``: the bond towards the output site, or ``out_dim`` /
        1 at the output site; :func:`tnml.init.log_neutral_std`): ``E ln ||f|| = 0`` exactly, with a spread over
        draws of ``sqrt(n ψ'(k/2)) / 2`` nats (≈ 6.6 at 784 sites, bond 10).
    init_std : float, optional
        ``"identity"``: the noise std (default 1e-2); ``"normal"``: the std (default: the log-neutral formula).
    plan, stack_cores : see :class:`tnml.TNModel`.
    device, dtype : factory kwargs.

    Examples
    --------
    >>> m = MPS(n_sites=8, phys_dim=2, bond_dim=4, out_dim=3)
    >>> m(torch.rand(2, 8)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_sites: int,
        phys_dim: int = 2,
        bond_dim: int = 10,
        out_dim: int | None = None,
        output_site: int | None = None,
        feature_map: FeatureMapLike = "trig",
        *,
        init: NetworkInit = "identity",
        init_std: float | None = None,
        plan: PlanKind = "auto",
        stack_cores: bool | None = None,
        device=None,
        dtype=None,
    ) -> None:
        n_sites, phys_dim = positive_int("n_sites", n_sites), positive_int("phys_dim", phys_dim)
        bond_dim, out_dim = positive_int("bond_dim", bond_dim), optional_positive_int("out_dim", out_dim)
        check_model_size(
            f"MPS(n_sites={n_sites}, phys_dim={phys_dim}, bond_dim={bond_dim}, out_dim={out_dim})",
            n_params=(n_sites + (out_dim or 1)) * phys_dim * bond_dim**2, n_tensors=n_sites, dtype=dtype,
            device=device, fix="a smaller n_sites or bond_dim",
        )
        given, output_site = output_site, int(output_site) if is_int(output_site) else output_site
        if output_site is None:
            output_site = n_sites // 2
        output_site = as_int("output_site", output_site, 0, n_sites - 1)
        output_site_needs_out_dim(given, out_dim)
        check_option("init", init, NetworkInit)
        self.bond_dim = bond_dim
        self.output_site = output_site
        self.init = init
        self.init_std = None if init_std is None else as_float(
            "init_std", init_std, minimum=0.0, positive=init == "normal",
            fix="(init='normal' with std 0 is an all-zero model; use None for the scaled default)")
        feature_map = sized_feature_map(feature_map, phys_dim)
        super().__init__(
            mps_structure(n_sites, phys_dim, bond_dim, out_dim, output_site),
            feature_map,
            plan=plan,
            stack_cores=stack_cores,
            device=device,
            dtype=dtype,
        )

    def reset_parameters(self) -> None:
        """Norm-neutral init (see ``init``); the formulas are in :mod:`tnml.init`."""
        n, o = self.n_sites, self.output_site
        fm = self.feature_map
        with torch.no_grad():
            if self.init == "normal":
                shift = math.exp(-feature_log_norm(fm))
                for t in self.structure.tensors:
                    i = int(t.name[4:])
                    k = (self.out_dim or 1) if i == o else self.bond_dim
                    std = self.init_std if self.init_std is not None else log_neutral_std(k) * shift
                    self.core(t.name).normal_(0.0, std)
                return
            c, _ = neutral_direction(fm)
            noise = 1e-2 if self.init_std is None else self.init_std
            scale = math.exp(-identity_log_gain(fm, c, noise, self.bond_dim))
            for t in self.structure.tensors:
                p = self.core(t.name)
                p.normal_(0.0, noise)
                # identity over (left, right) bonds attached to the direction c (and every output); a boundary
                # core gets the unit vector e_0 on its single bond
                i = int(t.name[4:])
                view = p if i > 0 else p.unsqueeze(0)  # (left, phys, right[, y]) with left = 1 at site 0
                if i == n - 1:
                    view = view.unsqueeze(2)
                eye = torch.eye(view.shape[0], view.shape[2], dtype=p.dtype, device=p.device)
                cc = c.to(dtype=p.dtype, device=p.device)
                shape = (view.shape[0], view.shape[1], view.shape[2]) + (1,) * (view.dim() - 3)
                view += (eye.unsqueeze(1) * cc.view(1, -1, 1)).view(shape)
                if i != o:
                    p.mul_(scale)

    def to_quimb(self):
        """quimb's ``MatrixProductState`` (site tags ``site{i}``, indices ``x{i}``, bonds ``b{i}``) when the model
        has no output leg; with one, a plain ``quimb.tensor.TensorNetwork`` (the output index ``y`` on
        ``site{output_site}`` has no place in an MPS; ``tn.isel({"y": k})`` gives component ``k``'s network)."""
        from tnml.quimb_interop import mps_to_quimb

        return mps_to_quimb(self.structure, self.core_dict())

    def extra_repr(self) -> str:
        return (
            f"n_sites={self.n_sites}, phys_dim={self.phys_dim}, bond_dim={self.bond_dim}, out_dim={self.out_dim}, "
            f"output_site={self.output_site}"
        )
