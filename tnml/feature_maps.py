"""Feature maps: embed raw per-site values ``(batch, n_sites)`` into vectors ``(batch, n_sites, dim)``.

Maps are ``nn.Module``s registered by name; :func:`get_feature_map` turns a name, a ``(name, kwargs)`` pair or
an instance into a module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tnml.validation import as_float, check_option, positive_int

_REGISTRY: dict[str, Callable[..., FeatureMap]] = {}


def register_feature_map(name: str, *, replace: bool = False) -> Callable[[type], type]:
    """Class decorator that makes a :class:`FeatureMap` available by ``name``.

    Parameters
    ----------
    name : str
        The registry name (``feature_map="name"`` in the models).
    replace : bool, default False
        Allow replacing a map already registered under ``name`` (the change applies to every later model of the
        process; without it, registering a taken name is refused).

    Returns
    -------
    callable
        The decorator: registers the class and returns it unchanged (with ``registry_name`` set).

    Raises
    ------
    TypeError
        ``name`` is not a string, or the decorated object is not a :class:`FeatureMap` subclass.
    ValueError
        ``name`` is empty or already registered to another class and ``replace`` is False.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string such as 'mymap', got {name!r}")

    def deco(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, FeatureMap)):
            raise TypeError(f"register_feature_map({name!r}) decorates FeatureMap subclasses, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls and not replace:
            raise ValueError(
                f"feature map name {name!r} is already registered (to {_REGISTRY[name].__name__}); choose another "
                "name, or pass replace=True to replace it for every later model"
            )
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return deco


def available_feature_maps() -> list[str]:
    return sorted(_REGISTRY)


class FeatureMap(nn.Module):
    """Base class. Subclasses set ``dim`` and implement ``forward(x) -> (batch, n_sites, dim)``."""

    dim: int
    registry_name = "custom"
    #: number of trailing input features per site (1: scalar raw values given as (batch, n_sites))
    in_features: int = 1

    def config(self) -> dict[str, Any]:
        return {}

    def indices(self, x: torch.Tensor) -> torch.Tensor | None:
        """For a map that embeds every value as a one-hot vector: the validated indices of the ones; None (the
        default) for every other map.

        Plans that gather (:attr:`tnml.plans.base.Plan.takes_indices`, e.g. the star plan of a CP) contract these
        instead of the dense vectors, the same function at a fraction of the cost.

        Parameters
        ----------
        x : Tensor, shape (batch, n_sites)
            Raw values.

        Returns
        -------
        LongTensor of shape (batch, n_sites) with ``forward(x) == one_hot(indices(x))``, or None.
        """
        return None


@register_feature_map("trig")
class TrigMap(FeatureMap):
    r"""Trigonometric map :math:`\phi(x) = (\cos(\pi\theta x), \sin(\pi\theta x))`.

    ``theta=0.5`` is the choice of Stoudenmire & Schwab (2016) for x in [0, 1]; P5 uses ``theta=0.085`` for
    data entanglement. Each embedded vector has unit norm.

    Examples
    --------
    >>> TrigMap(0.5)(torch.tensor([[0.0, 1.0]])).abs().round(decimals=4)
    tensor([[[1., 0.],
             [0., 1.]]])
    """

    dim = 2

    def __init__(self, theta: float = 0.5) -> None:
        super().__init__()
        theta = as_float("theta", theta, fix="e.g. 0.5 for inputs in [0, 1]")
        if theta == 0:
            raise ValueError(f"theta must be a finite non-zero number, got {theta!r}")
        self.theta = theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype not in (torch.float32, torch.float64) or torch.compiler.is_compiling():
            a = math.pi * self.theta * x
            return torch.stack((torch.cos(a), torch.sin(a)), dim=-1)
        # the same values, interleaved as the real and imaginary parts of a complex tensor (7 aten ops, against 9 with
        # a stack; at (256, 64) on one CPU thread the interleaving ran ~20 us, torch.stack 60-100 us)
        a = x * self._factor(x)
        return torch.view_as_real(torch.complex(torch.cos(a), torch.sin(a)))

    def _factor(self, x: torch.Tensor) -> torch.Tensor:
        """``pi * theta`` as a 0-d tensor of ``x``'s (float32 or float64) dtype and device, cached: multiplying by it
        is one aten op, by a Python float five (the scalar is wrapped and copied each call); the product is the same,
        since the float scalar is rounded to the tensor's dtype either way."""
        f = math.pi * self.theta
        key = (x.dtype, x.device, f)  # keyed by theta too: a theta set after the first call takes effect
        cache = self.__dict__.setdefault("_factors", {})
        if key not in cache:
            # a normal tensor even when first built under inference mode (an inference tensor could not be saved
            # for a later backward)
            with torch.inference_mode(False):
                cache[key] = torch.tensor(f, dtype=x.dtype, device=x.device)
        return cache[key]

    def config(self) -> dict[str, Any]:
        return {"theta": self.theta}

    def extra_repr(self) -> str:
        return f"theta={self.theta}"


@register_feature_map("polynomial")
class PolynomialMap(FeatureMap):
    """Polynomial map ``(1, x, x**2, ..., x**degree)``; ``dim = degree + 1``."""

    def __init__(self, degree: int = 1) -> None:
        super().__init__()
        degree = positive_int("degree", degree)
        self.degree = degree
        self.dim = degree + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        powers = torch.arange(self.dim, device=x.device)  # integer exponents: any x dtype, complex included
        return x.unsqueeze(-1) ** powers

    def config(self) -> dict[str, Any]:
        return {"degree": self.degree}

    def extra_repr(self) -> str:
        return f"degree={self.degree}"


@register_feature_map("onehot")
class OneHotMap(FeatureMap):
    """One-hot map for discrete values in ``{0, ..., k-1}``; ``dim = k``.

    Models whose plan gathers (:attr:`tnml.plans.base.Plan.takes_indices`: the star plan of
    :class:`tnml.networks.CP`) never build these vectors: their forward contracts :meth:`indices` directly.

    Examples
    --------
    >>> OneHotMap(3)(torch.tensor([[2, 0]])).tolist()
    [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]
    >>> OneHotMap(3).indices(torch.tensor([[2.0, 0.0]])).tolist()
    [[2, 0]]
    """

    def __init__(self, k: int = 2) -> None:
        super().__init__()
        k = positive_int("k", k, fix="the number of categories")
        self.k = k
        self.dim = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype if x.is_floating_point() or x.is_complex() else torch.get_default_dtype()
        return nn.functional.one_hot(self.indices(x), self.k).to(dtype)

    def indices(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as int64 indices, after checking that every value is an integer in ``[0, k - 1]``.

        Raises
        ------
        ValueError
            Naming the range of values found and the fix.
        """
        if x.dtype == torch.bool:
            x = x.to(torch.uint8)
        if x.is_complex():  # a complex model's input: the categories are its real parts, the imaginary parts 0
            if bool((x.imag != 0).any()):
                raise ValueError(
                    f"onehot(k={self.k}) needs integer values in [0, {self.k - 1}], got complex values with a nonzero "
                    "imaginary part; pass the category indices as real numbers"
                )
            x = x.real
        xi = x.round() if x.is_floating_point() else x
        # one reduction and one host sync for the range
        lo, hi = torch.stack(torch.aminmax(xi.detach())).tolist() if xi.numel() else (0, 0)
        if (xi is not x and not torch.equal(xi, x)) or lo < 0 or hi >= self.k:
            raise ValueError(
                f"onehot(k={self.k}) needs integer values in [0, {self.k - 1}], got values in "
                f"[{x.min().item()}, {x.max().item()}]; discretize the data or raise k"
            )
        return xi.long()

    def config(self) -> dict[str, Any]:
        return {"k": self.k}

    def extra_repr(self) -> str:
        return f"k={self.k}"


@register_feature_map("identity")
class IdentityMap(FeatureMap):
    """Pre-embedded input: ``x`` is already ``(batch, n_sites, dim)`` and passes through unchanged."""

    def __init__(self, dim: int = 2) -> None:
        super().__init__()
        self.dim = positive_int("dim", dim, fix="the size of each pre-embedded input vector")
        self.in_features = self.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


@register_feature_map("linear")
class LinearMap(FeatureMap):
    """Learned affine map shared by all sites: ``phi(x) = W x + b`` with ``W`` of shape ``(dim, in_features)``.

    Raw values are ``(batch, n_sites)`` when ``in_features == 1``, else ``(batch, n_sites, in_features)``.
    """

    def __init__(self, dim: int = 2, in_features: int = 1, *, device=None, dtype=None) -> None:
        super().__init__()
        dim, in_features = positive_int("dim", dim), positive_int("in_features", in_features)
        self.dim = int(dim)
        self.in_features = int(in_features)
        self.linear = nn.Linear(in_features, dim, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # start near (1, x, 0, ...): a polynomial map of degree 1 plus small noise
        with torch.no_grad():
            self.linear.weight.normal_(0.0, 0.1)
            self.linear.bias.normal_(0.0, 0.1)
            self.linear.bias[0] += 1.0
            if self.dim > 1:
                self.linear.weight[1, 0] += 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_features == 1:
            x = x.unsqueeze(-1)
        return self.linear(x)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "in_features": self.in_features}


def get_feature_map(spec: str | tuple[str, dict] | FeatureMap | None, **kwargs: Any) -> FeatureMap:
    """Resolve a feature map from a name (``"trig"``), a ``(name, kwargs)`` pair, or an instance.

    Raises
    ------
    ValueError
        If the name is not registered; the message lists the registered names.
    """
    if isinstance(spec, FeatureMap):
        if kwargs:
            raise ValueError(
                f"feature_map is an instance ({spec!r}) but options {sorted(kwargs)} were given too; they would be "
                "ignored: build the instance with them, or pass the map's name with the options"
            )
        return spec
    if spec is None:
        spec = "identity"
    if isinstance(spec, tuple):
        spec, extra = spec
        kwargs = {**extra, **kwargs}
    check_option(
        "feature_map", spec, available_feature_maps(),
        fix="or pass a FeatureMap instance (register new ones with tnml.register_feature_map)",
    )
    return _REGISTRY[spec](**kwargs)
