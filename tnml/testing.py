"""Checks for people writing their own architectures: is my ``TNModel`` subclass right?

Three properties every tensor-network model should have, each a function that raises ``AssertionError`` with
the numbers when it fails (use them in your own tests):

- :func:`assert_matches_dense` — the compiled forward pass equals the brute-force reference, the einsum of the
  coefficient tensor :meth:`~tnml.TNModel.to_dense` with every embedded input (in float64);
- :func:`assert_gradcheck` — ``torch.autograd.gradcheck`` (finite differences, float64) of the model's output
  with respect to every parameter, so every core's gradient is right, on a small batch;
- :func:`assert_norm_neutral` — the initialization gives outputs of order one, ``|mean ln ||f(x)||| <= tol`` on
  reference inputs (:func:`tnml.init.mean_log_norm`).

:func:`sample_input` draws valid raw inputs for any model and :func:`dense_forward` computes the reference.
"""

from __future__ import annotations

import copy

import torch
from torch.autograd import gradcheck
from torch.func import functional_call

from tnml.feature_maps import IdentityMap, OneHotMap
from tnml.init import mean_log_norm, reference_sample
from tnml.model import TNModel

__all__ = [
    "assert_gradcheck",
    "assert_matches_dense",
    "assert_norm_neutral",
    "dense_forward",
    "random_binary_tree_network",
    "sample_input",
]

#: torch.einsum's sublist format numbers axes 0..51: the dense reference handles up to 50 sites
_MAX_EINSUM_SITES = 50


def _check_model(model) -> None:
    if not isinstance(model, TNModel):
        raise TypeError(f"model must be a tnml.TNModel, got {type(model).__name__}; wrap your network with "
                        "TNModel(structure, ...) or TNModel.from_quimb(tn, input_inds, output_ind)")


def sample_input(model: TNModel, batch: int = 5, seed: int = 0, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Raw inputs valid for ``model``'s feature map, from a seeded generator (the global RNG is not touched).

    Parameters
    ----------
    model : TNModel
    batch : int
        Number of samples.
    seed : int
        Seed of the generator.
    dtype : torch.dtype, optional
        Default: the dtype of the model's parameters.

    Returns
    -------
    Tensor
        ``(batch, n_sites)`` uniform on [0, 1) (a feature map of scalars), ``(batch, n_sites, in_features)`` for a
        map of vectors, integer categories as floats for ``onehot``, or ``(batch, n_sites, phys_dim)`` embedded
        vectors uniform on [0, 1) for a model without a feature map.

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> sample_input(MPS(6, 2, 3), batch=4).shape
    torch.Size([4, 6])
    """
    _check_model(model)
    g = torch.Generator().manual_seed(seed)
    if dtype is None:
        dtype = next(model.parameters()).dtype
    fm = model.feature_map
    if isinstance(fm, IdentityMap):
        return torch.rand(batch, model.n_sites, model.phys_dim, generator=g, dtype=dtype)
    if isinstance(fm, OneHotMap):
        return torch.randint(0, fm.k, (batch, model.n_sites), generator=g).to(dtype)
    shape = (batch, model.n_sites) if fm.in_features == 1 else (batch, model.n_sites, fm.in_features)
    return torch.rand(shape, generator=g, dtype=dtype)


def dense_forward(model: TNModel, x: torch.Tensor, max_bytes: int | None = None) -> torch.Tensor:
    """The brute-force reference of ``model(x)``: ``einsum(W, phi(x_0), ..., phi(x_{N-1}))``.

    ``W = model.to_dense()`` is the coefficient tensor, shape ``(*phys_dims[, out_dim])``, and ``phi(x_n)`` the
    embedded input of site ``n``. No plan, no rescaling: in the model's own dtype.

    Parameters
    ----------
    model : TNModel
        At most 50 sites (and a dense tensor within ``max_bytes``).
    x : Tensor
        Raw ``(batch, n_sites)`` or embedded ``(batch, n_sites, phys_dim)`` inputs.
    max_bytes : int, optional
        Passed to :meth:`~tnml.TNModel.to_dense`.

    Returns
    -------
    Tensor, shape (batch, out_dim) or (batch,)

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> m = MPS(5, 2, 3, out_dim=2, dtype=torch.float64)
    >>> x = sample_input(m)
    >>> torch.allclose(dense_forward(m, x), m(x))
    True
    """
    _check_model(model)
    n = model.n_sites
    if n > _MAX_EINSUM_SITES:
        raise ValueError(f"model has n_sites={n}; the dense reference handles at most {_MAX_EINSUM_SITES} sites "
                         "(and a dense tensor of d**n_sites entries): check a smaller instance of the architecture")
    w = model.to_dense(max_bytes)
    phi = model.embed(x)
    batch_ax, out_ax = n, n + 1
    w_axes = list(range(n)) + ([out_ax] if model.out_dim is not None else [])
    operands: list = [w, w_axes]
    for s in range(n):
        operands += [phi[:, s], [batch_ax, s]]
    return torch.einsum(*operands, [batch_ax] + ([out_ax] if model.out_dim is not None else []))


def _float64_copy(model: TNModel) -> TNModel:
    m = copy.deepcopy(model)
    return m.to(torch.complex128) if next(m.parameters()).is_complex() else m.double()


def assert_matches_dense(
    model: TNModel, x: torch.Tensor | None = None, *, rtol: float = 1e-10, atol: float = 1e-12
) -> None:
    """Assert that the compiled forward pass equals :func:`dense_forward`, both on a float64 copy of ``model``.

    Parameters
    ----------
    model : TNModel
        Not modified (a float64 deep copy is checked).
    x : Tensor, optional
        Raw or embedded inputs; default :func:`sample_input` (5 samples).
    rtol, atol : float
        Tolerances of ``torch.testing.assert_close``.

    Raises
    ------
    AssertionError
        With the largest difference, if the two differ (or their shapes do).

    Examples
    --------
    >>> from tnml.networks import TTN
    >>> assert_matches_dense(TTN(n_sites=8, bond_dim=3, out_dim=2))
    """
    _check_model(model)
    m = _float64_copy(model)
    x = sample_input(m) if x is None else x.to(torch.float64) if x.is_floating_point() else x
    y, ref = m(x), dense_forward(m, x)
    if y.shape != ref.shape:
        raise AssertionError(f"forward gives shape {tuple(y.shape)}, the dense reference {tuple(ref.shape)}")
    torch.testing.assert_close(y, ref, rtol=rtol, atol=atol,
                               msg=lambda s: f"{type(model).__name__}: forward != dense einsum reference\n{s}")


class _LogForward(torch.nn.Module):
    """``model.log_forward(x)[0]`` as a module's forward (for ``functional_call``)."""

    def __init__(self, model: TNModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.log_forward(x)[0]


def assert_gradcheck(
    model: TNModel, x: torch.Tensor | None = None, *, batch: int = 2, eps: float = 1e-6, atol: float = 1e-7,
    rtol: float = 1e-3,
) -> None:
    """Assert that autograd's gradients of the model agree with finite differences, for every parameter.

    Runs ``torch.autograd.gradcheck`` on ``ln |f(x)|`` (:meth:`~tnml.TNModel.log_forward`: feature map, compiled
    plan and per-sample exponents, finite however large the outputs) as a function of *all* parameters of a
    float64 copy of ``model`` (stacked storage: every stack, so every core's rows; per-tensor storage: every
    core), and checks that a backward pass reaches every core with a finite gradient.

    Parameters
    ----------
    model : TNModel
        Keep it small: finite differences cost two forwards per parameter entry. Not modified.
    x : Tensor, optional
        Inputs; default :func:`sample_input` with ``batch`` samples.
    batch : int
        Samples when ``x`` is None.
    eps, atol, rtol : float
        Passed to ``torch.autograd.gradcheck``.

    Raises
    ------
    AssertionError
        Naming the core without gradient, or with gradcheck's report of the mismatching entries.

    Examples
    --------
    >>> from tnml.networks import CP
    >>> assert_gradcheck(CP(4, 2, 3, out_dim=2))
    """
    _check_model(model)
    m = _float64_copy(model)
    x = sample_input(m, batch=batch) if x is None else x.to(torch.float64) if x.is_floating_point() else x
    m.zero_grad(set_to_none=True)
    m.log_forward(x)[0].sum().backward()
    for t in m.structure.tensors:
        g = m.core_grad(t.name)
        if g is None or not bool(torch.isfinite(g).all()):
            raise AssertionError(f"{type(model).__name__}: core {t.name!r} gets "
                                 f"{'no' if g is None else 'a non-finite'} gradient")
    wrapper = _LogForward(m)
    keys = [k for k, _ in wrapper.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in wrapper.named_parameters())

    def f(*ps: torch.Tensor) -> torch.Tensor:
        return functional_call(wrapper, dict(zip(keys, ps)), (x,))

    try:
        gradcheck(f, params, eps=eps, atol=atol, rtol=rtol)
    except Exception as err:  # torch raises GradcheckError (a RuntimeError)
        raise AssertionError(f"{type(model).__name__}: gradients disagree with finite differences: {err}") from err


def assert_norm_neutral(model: TNModel, x: torch.Tensor | None = None, *, tol: float = 5.0) -> float:
    """Assert that the model's outputs start at order one: ``|mean ln ||f(x)||| <= tol``.

    A norm-neutral initialization keeps long chains and deep trees trainable (their outputs neither overflow
    nor vanish); see :mod:`tnml.init`.

    Parameters
    ----------
    model : TNModel
    x : Tensor, optional
        Inputs; default :func:`tnml.init.reference_sample` (64 samples, uniform on [0, 1]).
    tol : float
        Largest accepted ``|mean ln ||f(x)|||`` in nats.

    Returns
    -------
    float
        The mean log-norm (:func:`tnml.init.mean_log_norm`).

    Examples
    --------
    >>> from tnml.networks import MPS
    >>> abs(assert_norm_neutral(MPS(100, 2, 5, out_dim=3))) <= 5.0
    True
    """
    _check_model(model)
    if x is None:
        x = reference_sample(model).to(next(model.parameters()).dtype)
    value = mean_log_norm(model, x)
    if not abs(value) <= tol:
        raise AssertionError(f"{type(model).__name__}: mean ln ||f(x)|| = {value:.3g} nats, beyond tol={tol}; "
                             "initialize norm-neutrally (tnml.init) or call tnml.init.calibrate_(model, x)")
    return value


def random_binary_tree_network(seed: int, bond: int = 2, phys_dim: int = 2):
    """A perfect binary tree tensor network over 8 leaves built in quimb, with ``N(0, 1)`` entries from
    ``numpy.random.default_rng(seed)``: leaves ``(phys_dim, bond)`` with open indices ``p0..p7``, internal nodes
    ``(bond, bond, bond)``, root ``(bond, bond)``.

    The interleaved cut ``{p0, p2, p4, p6}`` of this network crosses several bonds: the case on which Gram-route
    Schmidt values once lost accuracy, shared by the tests and ``benchmarks/entanglement.py``.

    Parameters
    ----------
    seed : int
    bond : int
        Inner bond dimension ``R``.
    phys_dim : int
        Size of the open leaf indices.

    Returns
    -------
    quimb.tensor.TensorNetwork

    Examples
    --------
    >>> tn = random_binary_tree_network(0)
    >>> sorted(tn.outer_inds())
    ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']
    """
    import numpy as np
    import quimb.tensor as qtn

    from tnml.validation import check_dense_bytes, positive_int

    r = positive_int("bond", bond)
    phys_dim = positive_int("phys_dim", phys_dim)
    check_dense_bytes(8 * (8 * phys_dim * r + 6 * r**3 + r * r), "random_binary_tree_network", "use a smaller bond or "
                      "phys_dim")
    rng = np.random.default_rng(seed)
    ts = [qtn.Tensor(rng.normal(size=(phys_dim, r)), inds=(f"p{i}", f"l{i}")) for i in range(8)]
    ts += [qtn.Tensor(rng.normal(size=(r, r, r)), inds=(f"l{2 * j}", f"l{2 * j + 1}", f"a{j}")) for j in range(4)]
    ts += [qtn.Tensor(rng.normal(size=(r, r, r)), inds=(f"a{2 * j}", f"a{2 * j + 1}", f"b{j}")) for j in range(2)]
    ts.append(qtn.Tensor(rng.normal(size=(r, r)), inds=("b0", "b1")))
    return qtn.TensorNetwork(ts)
