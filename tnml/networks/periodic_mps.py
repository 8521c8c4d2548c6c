"""Periodic MPS: a matrix product state on a ring (the last core bonds to the first); generic-plan contraction."""

from __future__ import annotations

import math

import torch

from tnml.init import default_calibrate_, feature_log_norm, log_neutral_std
from tnml.model import TNModel
from tnml.networks._checks import output_site_needs_out_dim, sized_feature_map
from tnml.options import FeatureMapLike, PlanKind
from tnml.structure import TensorSpec, TNStructure
from tnml.validation import as_float, as_int, check_model_size, is_int, optional_positive_int, positive_int

__all__ = ["PeriodicMPS", "periodic_mps_structure"]


def periodic_mps_structure(
    n_sites: int, phys_dim: int, bond_dim: int, out_dim: int | None, output_site: int
) -> TNStructure:
    """Tensors ``site{i}`` with indices ``(b{i-1 mod N}, x{i}, b{i}[, y])``: bond ``b{i}`` joins sites ``i`` and
    ``i + 1 mod N`` (so ``b{N-1}`` closes the ring); the output index ``y`` sits on ``site{output_site}``. With
    ``n_sites = 2`` the two sites share two parallel bonds."""
    tensors = []
    for i in range(n_sites):
        inds = [f"b{(i - 1) % n_sites}", f"x{i}", f"b{i}"]
        shape = [bond_dim, phys_dim, bond_dim]
        if out_dim is not None and i == output_site:
            inds.append("y")
            shape.append(out_dim)
        tensors.append(TensorSpec(f"site{i}", tuple(inds), tuple(shape)))
    return TNStructure(tuple(tensors), tuple(f"x{i}" for i in range(n_sites)), "y" if out_dim is not None else None)


class PeriodicMPS(TNModel):
    r"""Matrix product state with periodic boundary (a ring):
    :math:`f(x) = \mathrm{Tr}\big(A^{(0)}_{s_0} \cdots A^{(N-1)}_{s_{N-1}}\big) \prod_i \phi(x_i)_{s_i}`.

    The ring is a loop, so the generic plan contracts it (cost ``O(N D^3)`` per sample along the ring). Its
    min-cut bound across a contiguous block is ``bond_dim ** 2`` (two bonds cross), which random cores do not
    always reach: see :func:`tnml.entanglement.mincut_bound`.

    Parameters
    ----------
    n_sites : int
        Number of sites (>= 2; with 2 the sites share two parallel bonds).
    phys_dim : int
        Dimension of the embedded input at each site (must equal the feature map's dim).
    bond_dim : int
    out_dim : int or None
        Size of the output leg; None for a scalar model.
    output_site : int, optional
        Site carrying the output leg; default 0.
    feature_map : str, (str, dict) or FeatureMap
        Default ``"trig"`` (theta=0.5).
    init_std : float, optional
        Std of an i.i.d. normal init. Default (norm-neutral, see :mod:`tnml.init`): i.i.d. ``N(0, s²)`` with
        ``s = exp(-ψ(D/2)/2) / sqrt(2) / exp(E ln ||φ||)`` — the std that makes the top Lyapunov exponent of the
        ring's transfer matrices ``Σ_s φ_s A[:, s, :]`` zero (``E ln ||v M|| = ln s + (ψ(D/2) + ln 2)/2`` for
        Gaussian ``M``) — then one common rescaling of all cores so that ``mean ln ||f|| = 0`` on up to 64
        reference inputs (:func:`tnml.init.default_calibrate_`, within a compute budget; a trace over a loop has
        no closed-form log-moment, and the draw's own offset, ≈ ``sqrt(n ψ'(D/2))/2`` nats, would otherwise
        remain).
    plan, stack_cores, device, dtype : see :class:`tnml.TNModel`.

    Examples
    --------
    >>> m = PeriodicMPS(n_sites=6, phys_dim=2, bond_dim=3, out_dim=2)
    >>> m(torch.rand(4, 6)).shape
    torch.Size([4, 2])
    >>> m.plan().kind
    'generic'
    """

    def __init__(
        self,
        n_sites: int,
        phys_dim: int = 2,
        bond_dim: int = 10,
        out_dim: int | None = None,
        output_site: int = 0,
        feature_map: FeatureMapLike = "trig",
        *,
        init_std: float | None = None,
        plan: PlanKind = "auto",
        stack_cores: bool | None = None,
        device=None,
        dtype=None,
    ) -> None:
        n_sites, phys_dim = positive_int("n_sites", n_sites, 2), positive_int("phys_dim", phys_dim)
        bond_dim, out_dim = positive_int("bond_dim", bond_dim), optional_positive_int("out_dim", out_dim)
        check_model_size(
            f"PeriodicMPS(n_sites={n_sites}, phys_dim={phys_dim}, bond_dim={bond_dim}, out_dim={out_dim})",
            n_params=(n_sites + (out_dim or 1)) * phys_dim * bond_dim**2, n_tensors=n_sites, dtype=dtype,
            device=device, fix="a smaller n_sites or bond_dim",
        )
        output_site = int(output_site) if is_int(output_site) else output_site
        output_site = as_int("output_site", output_site, 0, n_sites - 1)
        if out_dim is None and output_site != 0:  # 0 is the default: a different site was asked for
            output_site_needs_out_dim(output_site, out_dim)
        if init_std is not None:
            init_std = as_float("init_std", init_std, positive=True, fix="or None (scaled default)")
        self.bond_dim = bond_dim
        self.output_site = output_site
        self.init_std = None if init_std is None else float(init_std)
        feature_map = sized_feature_map(feature_map, phys_dim)
        super().__init__(
            periodic_mps_structure(n_sites, phys_dim, bond_dim, out_dim, output_site),
            feature_map,
            plan=plan,
            stack_cores=stack_cores,
            device=device,
            dtype=dtype,
        )

    def reset_parameters(self) -> None:
        """I.i.d. normal cores; see ``init_std``."""
        default = self.init_std is None
        if self.init_std is None:
            std = log_neutral_std(self.bond_dim) * math.exp(-feature_log_norm(self.feature_map))
        else:
            std = self.init_std
        with torch.no_grad():
            for p in self.cores.values():
                p.normal_(0.0, std)
        if default:
            default_calibrate_(self)

    def extra_repr(self) -> str:
        return (
            f"n_sites={self.n_sites}, phys_dim={self.phys_dim}, bond_dim={self.bond_dim}, out_dim={self.out_dim}, "
            f"output_site={self.output_site}"
        )
