r"""Norm-neutral initialization: the formulas every architecture's default init is built from.

A tensor network's output is a product over its tensors, so its log-magnitude is a *sum* of per-tensor log-gains:
an init that is off by a factor ``g`` per tensor gives ``ln|f| ≈ n ln g``, which overflows float32 at a few hundred
sites (the old MPS identity init: ``+185`` nats at 784 sites). The rule here is that every tensor's expected
log-gain is zero, so ``E ln ||f(x)|| ≈ 0`` at any size.

**Reference inputs.** Expectations over inputs are taken over raw values uniform on ``[0, 1]`` embedded by the
model's feature map (a midpoint grid of :data:`N_REFERENCE` points, so the numbers are deterministic); for
``onehot`` the ``k`` categories are uniform; pre-embedded inputs (``identity`` map) are assumed to have unit norm.
Data far from the reference (e.g. images that are mostly 0) can have another mean log-norm *unless* the map admits
an exact constant component (see :func:`neutral_direction`) or has constant norm (trig) and the init is Gaussian.

**Gaussian nodes** (trees). A node with i.i.d. ``N(0, s²)`` entries maps a message ``u`` to ``k`` outputs with
``||W u||² / ||u||² ~ s² χ²_k`` exactly (rotation invariance), so ``E ln`` of the gain is
``ln s + (ψ(k/2) + ln 2)/2`` (ψ: digamma). :func:`log_neutral_std` returns the ``s`` that makes it zero,
``s² = exp(-ψ(k/2)) / 2``; a node that also absorbs inputs divides ``s`` by ``exp(E ln ||φ(x)||)`` per input leg
(:func:`feature_log_norm`). In a tree the gains of different nodes are independent, so ``E ln ||f|| = 0`` exactly;
its spread over draws is ``sqrt(Σ ψ'(k/2)) / 2`` nats (about 6.6 for a 784-site chain at bond 10 — which is why
chains default to the identity init below).

**Identity nodes** (chains, CP factors). A core equal to the identity over its bonds for the embedded direction
``c`` (``A[l, s, r] = δ_lr c_s``) multiplies the message by ``c·φ(x)``. :func:`neutral_direction` picks ``c`` by
least squares ``c·φ(x) ≈ 1`` on the reference and rescales it so ``E ln |c·φ(x)| = 0``; when the fit is exact
(``polynomial``: ``c = e_0``; ``onehot``: ``c = 1``; the initial ``linear`` map) the gain is 1 for *every* input.
Small Gaussian noise ``σ`` on such a core shifts ``E ln`` of its gain by about ``σ² ||φ||² (D - 2) / (2 m²)``
(to second order; ``m = c·φ``, ``D`` the bond); :func:`identity_log_gain` computes the exact shift from the
noncentral chi-square law and the core is divided by it.

**Pass-through nodes** (trees). The tree analogue of the identity core: a node ``W[c_1, ..., c_P, p]`` that maps
its children's reference messages ``z_j`` (``c`` for an input leg, ``e_0`` for a bond) to its parent's reference
``u`` (``e_0``; ``1/√K`` in every component at a root with ``K`` outputs) and passes each child's deviation from
its reference through to the parent: with messages ``z_j + δ_j``, the parent gets ``u + Σ_j Q_j δ_j`` to first
order (:func:`passthrough_node`; ``Q_j`` an isometry from ``z_j``'s complement into ``u``'s). Small noise on every
node then makes the network start as a nearly constant function whose input dependence is a *sum* of per-leaf
terms; training adds interactions from there. A Gaussian tree instead starts maximally sensitive to every input:
on Statlog DNA (180 binary features) a bond-8 TTN from the Gaussian init memorized the training set (train 0.91,
test 0.40 after 8 epochs, lr 1e-3) or stayed at chance (lr 1e-2), from the pass-through init it reached test
0.95 (measured).

References: the Gaussian chain argument is the one behind "log-norm preserving" inits of deep linear and tensor
networks (e.g. Saxe et al. 2014; Barratt et al. 2021); the identity init of MPS classifiers is Stoudenmire & Schwab
(2016).
"""

from __future__ import annotations

import copy
import math

import torch

from tnml.feature_maps import FeatureMap, IdentityMap, OneHotMap
from tnml.validation import check_dense_bytes, positive_int

__all__ = [
    "N_REFERENCE",
    "CALIBRATION_BUDGET",
    "calibrate_",
    "contraction_cost",
    "default_calibrate_",
    "feature_log_norm",
    "gaussian_network_init_",
    "identity_log_gain",
    "log_neutral_std",
    "mean_log_norm",
    "neutral_direction",
    "noncentral_chi2_log_mean",
    "passthrough_node",
    "reference_embeddings",
    "reference_sample",
]

#: number of midpoint-grid points of the reference input distribution (uniform on [0, 1])
N_REFERENCE = 1024

#: significant digits kept of every init constant computed from data (directions, gains, calibration factors)
_DIGITS = 12


#: embedded reference inputs of fixed (parameter-free) feature maps, keyed by (class, config)
_REFERENCE_CACHE: dict[tuple, torch.Tensor] = {}


def _stable(x: float) -> float:
    """``x`` rounded to :data:`_DIGITS` significant digits: BLAS reductions may differ in the last bit between two
    calls (memory alignment), and an init must give bit-identical parameters for the same seed."""
    return float(f"{x:.{_DIGITS}g}")


def log_neutral_std(k: int) -> float:
    """The std ``s`` with ``E[ln(s² χ²_k)] = 0``: ``s² = exp(-ψ(k/2)) / 2`` (ψ: digamma).

    A node with i.i.d. ``N(0, s²)`` entries that maps a unit message to ``k`` outputs then leaves the log-norm
    unchanged on average.

    Parameters
    ----------
    k : int
        Number of outputs of the node (its parent bond, or the output dim at the root).

    Returns
    -------
    float
        The std ``s``.

    Examples
    --------
    >>> round(log_neutral_std(8) ** 2, 4)  # vs 1/8 = 0.125
    0.1424
    """
    k = positive_int("k", k)
    psi = torch.special.digamma(torch.tensor(k / 2, dtype=torch.float64)).item()
    return math.sqrt(math.exp(-psi) / 2)


def reference_embeddings(feature_map: FeatureMap) -> torch.Tensor | None:
    """Embedded reference inputs ``(n, dim)`` in float64, or None for pre-embedded inputs (``identity`` map).

    Raw values: a midpoint grid of :data:`N_REFERENCE` points on ``[0, 1]`` (per input feature when the map takes
    several); ``onehot``: its ``k`` categories.

    Parameters
    ----------
    feature_map : FeatureMap

    Returns
    -------
    Tensor of shape (n, dim), float64, or None
    """
    if isinstance(feature_map, IdentityMap):
        return None
    learned = next(iter(feature_map.parameters()), None) is not None
    # tnml's own fixed maps are fully described by (class, config): computed once per process (several inits ask);
    # a user's map may keep state its config() does not list, so it is never cached
    cacheable = not learned and type(feature_map).__module__ == FeatureMap.__module__
    key = (type(feature_map), tuple(sorted(feature_map.config().items())))
    if cacheable and key in _REFERENCE_CACHE:
        return _REFERENCE_CACHE[key]
    n_ref = feature_map.k if isinstance(feature_map, OneHotMap) else N_REFERENCE
    check_dense_bytes(
        8 * n_ref * int(feature_map.dim),
        f"the reference embeddings of the {feature_map.registry_name!r} feature map ({n_ref} inputs of dimension "
        f"{feature_map.dim})",
        "use a smaller feature dimension (k, degree) or init='normal'",
    )
    if isinstance(feature_map, OneHotMap):
        raw = torch.arange(feature_map.k, dtype=torch.float64)
    else:
        raw = (torch.arange(N_REFERENCE, dtype=torch.float64) + 0.5) / N_REFERENCE
    raw = raw.view(-1, 1)  # (n, 1) = (batch, n_sites=1)
    if feature_map.in_features > 1:
        g = torch.Generator().manual_seed(0)
        raw = torch.rand(N_REFERENCE, 1, feature_map.in_features, generator=g, dtype=torch.float64)
    fm = copy.deepcopy(feature_map).to(dtype=torch.float64, device="cpu") if learned else feature_map
    with torch.no_grad():
        phi = fm(raw).reshape(raw.shape[0], -1).to(torch.float64)
    if cacheable:
        _REFERENCE_CACHE[key] = phi
    return phi


def feature_log_norm(feature_map: FeatureMap) -> float:
    """``E ln ||φ(x)||`` over the reference inputs (0 for unit-norm maps such as trig and onehot).

    Parameters
    ----------
    feature_map : FeatureMap

    Returns
    -------
    float
    """
    phi = reference_embeddings(feature_map)
    if phi is None:
        return 0.0
    return _stable(float(torch.log(phi.norm(dim=1).clamp_min(1e-300)).mean()))


def neutral_direction(feature_map: FeatureMap) -> tuple[torch.Tensor, bool]:
    """The embedded direction ``c`` (shape ``(dim,)``) that an identity core is attached to.

    ``c`` solves ``c·φ(x) ≈ 1`` by least squares over the reference inputs and is then rescaled so that
    ``E ln |c·φ(x)| = 0``. Returns ``(c, exact)`` where ``exact`` says that ``c·φ(x) = 1`` for every reference
    input (the map has a constant component), i.e. the gain is 1 whatever the data.

    Parameters
    ----------
    feature_map : FeatureMap

    Returns
    -------
    c : Tensor, shape (dim,), float64
    exact : bool

    Examples
    --------
    >>> from tnml.feature_maps import PolynomialMap, TrigMap
    >>> c, exact = neutral_direction(PolynomialMap(2)); exact, float((c - torch.tensor([1.0, 0, 0])).abs().max()) < 1e-9
    (True, True)
    >>> c, exact = neutral_direction(TrigMap(0.5)); exact, round(float(c[0] - c[1]), 6)
    (False, 0.0)
    """
    phi = reference_embeddings(feature_map)
    d = feature_map.dim
    if phi is None:  # pre-embedded, unit norm assumed: the all-ones direction scaled to unit gain on average
        return torch.ones(d, dtype=torch.float64) / math.sqrt(d), False
    c = torch.linalg.lstsq(phi, torch.ones(phi.shape[0], 1, dtype=torch.float64)).solution.view(-1)
    m = phi @ c
    if m.abs().max() > 1e-12 and float((m - 1).abs().max()) < 1e-9:
        return torch.tensor([_stable(float(v)) for v in c], dtype=torch.float64), True
    if float(m.min()) <= 1e-3 * float(m.abs().max()):  # the fit changes sign: fall back to the all-ones direction
        c = torch.ones(d, dtype=torch.float64)
        m = phi @ c
        if float(m.abs().min()) <= 1e-12:
            raise ValueError(
                f"feature map {feature_map.registry_name!r} has no direction c with c·phi(x) != 0 on the reference "
                "inputs; use init='normal'"
            )
    c = c / math.exp(float(torch.log(m.abs()).mean()))
    return torch.tensor([_stable(float(v)) for v in c], dtype=torch.float64), False


#: above this noncentrality :func:`noncentral_chi2_log_mean` uses ``ln λ + (k - 2)/λ`` (error O(k²/λ²): 1e-7 for
#: k <= 3, 3e-5 for k = 32 at the switch) instead of the Poisson sum, whose length grows like λ/2
CHI2_ASYMPTOTE_LAMBDA = 4e3


def noncentral_chi2_log_mean(k: int, lam: torch.Tensor) -> torch.Tensor:
    """``E ln X`` for ``X ~ χ'²_k(λ)`` (noncentral chi-square), elementwise over ``lam``.

    A noncentral χ² is a Poisson(λ/2) mixture of central ``χ²_{k+2j}``, so ``E ln X = ln 2 + Σ_j
    Pois(j; λ/2) ψ(k/2 + j)`` (ψ: digamma); the sum is truncated 12 standard deviations past the Poisson mean.

    Parameters
    ----------
    k : int
        Degrees of freedom.
    lam : Tensor
        Noncentrality parameters ``λ >= 0``, any shape (flattened).

    Returns
    -------
    Tensor, shape (lam.numel(),), float64

    Examples
    --------
    >>> round(float(noncentral_chi2_log_mean(1, torch.tensor([0.0]))), 6)  # ln 2 + ψ(1/2) = E ln z², z ~ N(0, 1)
    -1.270363
    """
    k = positive_int("k", k)
    lam = torch.as_tensor(lam, dtype=torch.float64).reshape(-1)
    if lam.numel() == 0:
        return lam.clone()
    if not bool(torch.isfinite(lam).all()) or bool((lam < 0).any()):
        raise ValueError("lam must hold finite noncentralities >= 0, got NaN, infinite or negative entries")
    big = lam > CHI2_ASYMPTOTE_LAMBDA
    if bool(big.any()):  # the Poisson sum would need ~λ/2 terms per entry: use the expansion there
        out = torch.empty_like(lam)
        # E ln χ'²_k(λ) = ln λ + (k - 2)/λ + O(λ⁻²) (delta method on X = λ + k + O(sqrt λ) noise)
        out[big] = torch.log(lam[big]) + (k - 2) / lam[big]
        if bool((~big).any()):
            out[~big] = noncentral_chi2_log_mean(k, lam[~big])
        return out
    half = lam / 2
    jmax = int(float(half.max()) + 12 * math.sqrt(float(half.max())) + 40)
    j = torch.arange(jmax + 1, dtype=torch.float64)
    logpmf = j.view(1, -1) * torch.log(half.clamp_min(1e-300)).view(-1, 1) - half.view(-1, 1) - torch.lgamma(j + 1)
    logpmf = torch.where(half.view(-1, 1) > 0, logpmf, torch.where(j == 0, 0.0, -math.inf).view(1, -1))
    psi = torch.special.digamma(k / 2 + j)
    return math.log(2.0) + (logpmf.exp() * psi.view(1, -1)).sum(1)


def identity_log_gain(feature_map: FeatureMap, c: torch.Tensor, noise_std: float, k: int) -> float:
    """``E ln`` of the gain of a core that is the identity on the direction ``c`` plus i.i.d. ``N(0, σ²)`` noise,
    for a message of ``k`` outputs (``k = 1``: a CP factor ``<w, φ>``), over the reference inputs.

    The message is ``m e + σ||φ|| g`` with ``m = c·φ(x)``, ``g ~ N(0, I_k)``; its squared norm over
    ``σ²||φ||²`` is ``χ'²_k(λ = m² / (σ²||φ||²))``, so ``E ln gain = E_x[ln(σ||φ||) + E ln χ'²_k(λ) / 2]``
    (:func:`noncentral_chi2_log_mean`); with ``σ = 0`` it is ``E ln |c·φ(x)|`` (0 for :func:`neutral_direction`).
    Dividing the core by ``exp`` of this makes its expected log-gain zero.

    Parameters
    ----------
    feature_map : FeatureMap
    c : Tensor, shape (dim,)
        The direction the identity is attached to (:func:`neutral_direction`).
    noise_std : float
        Std ``σ`` of the i.i.d. noise.
    k : int
        Size of the message the core produces (its bond towards the output; 1 for a CP factor).

    Returns
    -------
    float
        ``E ln`` of the core's gain.
    """
    phi = reference_embeddings(feature_map)
    if phi is None:  # pre-embedded: unit-norm inputs with c·φ = 1 assumed
        phi = torch.ones(1, 1, dtype=torch.float64)
        m = torch.ones(1, dtype=torch.float64)
    else:
        m = phi @ c
    norm = phi.norm(dim=1)
    if noise_std == 0.0:
        return _stable(float(torch.log(m.abs()).mean()))
    sig = noise_std * norm
    lam = (m / sig) ** 2
    if float(lam.min()) > CHI2_ASYMPTOTE_LAMBDA:  # large λ: E ln χ'²_k(λ) = ln λ + (k - 2)/λ + O(λ⁻²)
        return _stable(float((torch.log(m.abs()) + (k - 2) / (2 * lam)).mean()))
    # group equal lambdas (constant-norm maps, exact directions) to keep the Poisson sums few
    uniq, inv = torch.unique(lam.round(decimals=9), return_inverse=True)
    e = noncentral_chi2_log_mean(k, uniq)[inv]
    return _stable(float((torch.log(sig) + e / 2).mean()))


def reference_sample(model, n: int = 64) -> torch.Tensor:
    """``n`` reference inputs for ``model`` (a :class:`~tnml.TNModel`), drawn from a fixed generator (the global
    RNG is not touched): raw values uniform on ``[0, 1]``, uniform categories for ``onehot``, non-negative
    unit vectors for pre-embedded inputs.

    Parameters
    ----------
    model : TNModel
    n : int
        Number of samples.

    Returns
    -------
    Tensor, shape (n, n_sites) raw or (n, n_sites, phys_dim) pre-embedded, float64
    """
    n = positive_int("n", n)
    fm, sites, d = model.feature_map, model.n_sites, model.phys_dim
    width = d if isinstance(fm, IdentityMap) else max(getattr(fm, "in_features", 1), 1)
    check_dense_bytes(8 * n * sites * width, f"reference_sample of {n} inputs over {sites} sites", "use a smaller n")
    g = torch.Generator().manual_seed(12345)
    if isinstance(fm, IdentityMap):
        x = torch.rand(n, sites, d, generator=g, dtype=torch.float64)
        return x / x.norm(dim=-1, keepdim=True)
    if isinstance(fm, OneHotMap):
        return torch.randint(0, fm.k, (n, sites), generator=g).to(torch.float64)
    shape = (n, sites) if fm.in_features == 1 else (n, sites, fm.in_features)
    return torch.rand(shape, generator=g, dtype=torch.float64)


def mean_log_norm(model, x: torch.Tensor) -> float:
    """Mean over the batch of ``ln ||f(x)||`` (the norm over the output leg), computed with ``log_forward`` so it
    is finite however large or small the outputs are.

    Parameters
    ----------
    model : TNModel
    x : Tensor
        Raw ``(batch, n_sites)`` or embedded ``(batch, n_sites, phys_dim)`` inputs.

    Returns
    -------
    float
    """
    with torch.no_grad():
        log_abs, _ = model.log_forward(x)
    per_sample = torch.logsumexp(2 * log_abs, dim=-1) / 2 if log_abs.dim() == 2 else log_abs
    if per_sample.is_complex():  # a complex network's log-magnitude: real, stored with imaginary part 0
        per_sample = per_sample.real
    return float(per_sample.double().mean())


def calibrate_(model, x: torch.Tensor | None = None) -> float:
    """Rescale every tensor of ``model`` by one common factor so that ``mean ln ||f(x)|| = 0`` on ``x``.

    Scaling all ``T`` tensors by ``a`` scales the output by ``a**T``, so the factor is ``exp(-mean / T)``; the
    function a network computes is unchanged up to that global scale. The loopy networks (PEPS, periodic MPS)
    use it at construction on :func:`reference_sample` (their contraction has no closed-form log-moment); call
    it with your own data to start any model at ``|f| ≈ 1`` on that data (e.g. mostly-0 images with the trig
    map, where the reference-based identity init of an MPS starts far from 1).

    Parameters
    ----------
    model : TNModel
    x : Tensor, optional
        Raw ``(batch, n_sites)`` or embedded ``(batch, n_sites, phys_dim)`` inputs; default
        :func:`reference_sample`.

    Returns
    -------
    float
        The mean log-norm before rescaling.

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> m = MPS(12, 2, 3, out_dim=2, init="normal", init_std=1.0)
    >>> _ = calibrate_(m, torch.rand(8, 12)); abs(mean_log_norm(m, torch.rand(8, 12))) < 2
    True
    """
    if x is None:
        x = reference_sample(model)
    mu = mean_log_norm(model, x)
    if not math.isfinite(mu):
        raise ValueError(
            f"the model's mean log-norm on x is {mu}; some outputs are exactly 0 or not finite — re-initialize "
            "(reset_parameters) or pass other inputs"
        )
    tensors = list(model.structure.tensors)
    factor = _stable(math.exp(-mu / len(tensors)))
    with torch.no_grad():
        for p in model.cores.parameters():
            p.mul_(factor)
    return mu


def passthrough_node(refs: list[torch.Tensor], parent_ref: torch.Tensor, through: list[bool]) -> torch.Tensor:
    """The pass-through tensor of a tree node (see "Pass-through nodes" above), without noise.

    ``W = (⊗_j z_j) ⊗ u + Σ_{j: through[j]} (⊗_{i≠j} z_i) ⊗ Q_j`` with ``Q_j = Σ_k a_k ⊗ b_k`` over orthonormal
    bases ``a_k`` of ``z_j``'s complement and ``b_k`` of ``u``'s (``min`` of their sizes), so a child's deviation
    ``δ_j ⊥ z_j`` reaches the parent as ``Q_j δ_j``. A scalar parent (``D = 1``, a root without outputs) has no
    complement; there ``Q_j = a_1 ⊗ u``.

    Parameters
    ----------
    refs : list of Tensor, shapes (d_j,)
        The children's reference messages, unit norm for the legs that pass through.
    parent_ref : Tensor, shape (D,)
        The parent's reference message, unit norm.
    through : list of bool
        Which children pass their deviations through (bonds; not inputs, whose embeddings are not small
        deviations from ``c``).

    Returns
    -------
    Tensor, shape (d_1, ..., d_P, D)

    Examples
    --------
    >>> e0 = torch.tensor([1.0, 0.0, 0.0])
    >>> w = passthrough_node([e0, e0], e0, [True, True])
    >>> torch.einsum("abp,a,b->p", w, e0 + 0.01 * torch.tensor([0.0, 1.0, 0.0]), e0)
    tensor([1.0000, 0.0100, 0.0000])
    """
    u = parent_ref
    w = refs[0]
    for z in refs[1:] + [u]:
        w = torch.tensordot(w, z, dims=0)
    u_perp = _complement(u)
    for j, (z, on) in enumerate(zip(refs, through)):
        if not on:
            continue
        z_perp = _complement(z)
        if z_perp.shape[1] == 0:  # a 1-dim child has no deviation to pass
            continue
        if u_perp.shape[1]:
            k = min(z_perp.shape[1], u_perp.shape[1])
            q = z_perp[:, :k] @ u_perp[:, :k].T  # (d_j, D)
        else:  # a scalar parent (D = 1) has no complement: one deviation channel feeds the value itself
            q = z_perp[:, :1] @ u[None, :]
        term = torch.ones((), dtype=u.dtype, device=u.device)
        for i, zi in enumerate(refs):
            if i != j:
                term = torch.tensordot(term, zi, dims=0)
        term = torch.movedim(torch.tensordot(term, q, dims=0), len(refs) - 1, j)
        w = w + term
    return w


def _complement(z: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis ``(d, d - 1)`` of the complement of the unit vector ``z`` (``e_1, ..., e_{d-1}`` when
    ``z = e_0``)."""
    d = z.shape[0]
    if d == 1:
        return z.new_zeros(1, 0)
    if bool(z[0] == 1) and bool((z[1:] == 0).all()):
        return torch.eye(d, dtype=z.dtype, device=z.device)[:, 1:]
    q, _ = torch.linalg.qr(torch.cat([z[:, None], torch.eye(d, dtype=z.dtype, device=z.device)], dim=1))
    return q[:, 1:d]


def gaussian_network_init_(model) -> None:
    """Norm-neutral init of any network (what ``TNModel.from_quimb(..., init="normal")`` uses).

    Every tensor gets i.i.d. ``N(0, s_t²)`` entries with ``s_t = Π_{bonds e of t} χ_e^{-1/4}`` divided by
    ``exp(E ln ||φ||)`` per input leg: over random draws ``E ||f(x)||² = out_dim · Π_i ||φ(x_i)||²`` for any
    geometry (each bond's sum is shared by its two tensors); then one common rescaling on 64 reference inputs
    (:func:`default_calibrate_`) removes the log-drift of the draw, which has no closed form for networks with
    loops.

    Parameters
    ----------
    model : TNModel
        Re-initialized in place.
    """
    s = model.structure
    bonds = set(s.bonds)
    mu = feature_log_norm(model.feature_map)
    with torch.no_grad():
        for t in s.tensors:
            std = math.prod(d for i, d in zip(t.inds, t.shape) if i in bonds) ** -0.25
            std *= math.exp(-mu * sum(1 for i in t.inds if i in s.input_inds))
            model.core(t.name).normal_(0.0, std)
    default_calibrate_(model)


def contraction_cost(structure) -> float:
    """Multiply-adds of one sample's contraction of ``structure`` along a greedy cotengra path (the batch index
    left out), a cheap estimate of what one reference forward costs.

    Parameters
    ----------
    structure : TNStructure

    Returns
    -------
    float
    """
    import cotengra as ctg

    inputs = [t.inds for t in structure.tensors] + [(i,) for i in structure.input_inds]
    output = (structure.output_ind,) if structure.output_ind is not None else ()
    tree = ctg.array_contract_tree(inputs, output, structure.size_dict, optimize="greedy")
    return float(tree.contraction_cost())


#: default budget (multiply-adds) of the reference forward a default init may spend on calibration
CALIBRATION_BUDGET = 2e8


def default_calibrate_(model, budget: float = CALIBRATION_BUDGET) -> int:
    """The calibration step of the default inits: :func:`calibrate_` on up to 64 reference inputs, as many as
    ``budget`` multiply-adds allow (:func:`contraction_cost` per sample), none when fewer than 2 fit — a large
    loopy network (e.g. an 8×8 PEPS at bond 8: ~10⁸ per sample) then keeps its closed-form (second-moment) init
    rather than spending tens of seconds at construction.

    Parameters
    ----------
    model : TNModel
    budget : float
        Multiply-adds the reference forward may cost in all.

    Returns
    -------
    int
        The number of reference inputs used (0: not calibrated).
    """
    n = int(min(64, budget // max(contraction_cost(model.structure), 1.0)))
    if n < 2:
        return 0
    calibrate_(model, reference_sample(model, n))
    return n
