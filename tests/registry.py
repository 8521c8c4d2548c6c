"""One registry of architectures (in the style of torch's ``module_db``); the generic tests select from it by tag.

Every entry is a :class:`Case`: a name, the architecture class, a factory taking the factory kwargs (``dtype``,
``device``, and for TNModels ``plan`` / ``stack_cores``), and tags. Generic tests parametrize over
``names(<tags>)``; :func:`inputs` and :func:`reference` give each case seeded inputs and its brute-force reference
(the dense einsum of :func:`tnml.testing.dense_forward` for a TNModel, the contraction of the computation-tree
network for a ProductGNN). ``tests/networks/test_registry.py`` checks that every tensor-network architecture of
``tnml.networks.__all__`` is registered or listed in :data:`SKIPPED` with a reason, and that every tag says
something true about its case.

Tags
----
``tnmodel``  a :class:`tnml.TNModel` (structure, plans, one open leg per site, ``to_dense``)
``gnn``      a :class:`tnml.networks.ProductGNN` (message passing; its network is the unrolled computation tree)
``tree``     no cycle and no hyper-index: the tree plan's geometry (ProductGNN: its computation tree, with
             explicit COPY tensors)
``loop``     the network has a cycle (parallel bonds included): contracted by the generic plan
``hyper``    no cycle, but indices shared by more than two tensors: CP's one hyper-index (the star plan's
             geometry), the hierarchical factorization's tree of them
``output``   an output leg (``out_dim`` is set)
``complex``  builds with ``dtype=torch.complex128`` and matches its reference there
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import quimb.tensor as qtn
import torch
from torch import nn

from tnml import TNModel
from tnml.networks import (
    CP,
    MPS,
    PEPS,
    TTN,
    DeepMatrixFactorization,
    HierarchicalTensorFactorization,
    NormalizedLogits,
    PeriodicMPS,
    ProductGNN,
    TensorFactorization,
)
from tnml.testing import dense_forward, sample_input

TAGS = frozenset({"tnmodel", "gnn", "tree", "loop", "hyper", "output", "complex"})

#: classes of ``tnml.networks.__all__`` that are nn.Modules but not registered, with the reason
SKIPPED: dict[type, str] = {
    NormalizedLogits: "a classification head wrapping another model's output, not a tensor network of its own",
}


@dataclass(frozen=True)
class Case:
    """One registered architecture instance: ``make(**factory_kwargs)`` builds it (seed the global RNG first, or
    use :meth:`build`)."""

    name: str
    arch: type[nn.Module]
    make: Callable[..., nn.Module]
    tags: frozenset[str]

    def build(self, seed: int = 0, **kw) -> nn.Module:
        torch.manual_seed(seed)
        return self.make(**kw)


def _peps_2x2(dtype=None, device=None):
    """A loop of 4 tensors (2x2 grid), one open leg each, from a fixed quimb network: exercises the generic plan
    and ``TNModel.from_quimb``."""
    rng = torch.Generator().manual_seed(7)
    bonds = {(0, 1): "h0", (2, 3): "h1", (0, 2): "v0", (1, 3): "v1"}
    ts = []
    for k in range(4):
        inds = [f"x{k}"] + [b for e, b in bonds.items() if k in e]
        if k == 3:
            inds.append("y")
        shape = [2] + [3] * (len(inds) - 1 - (k == 3)) + ([4] if k == 3 else [])
        ts.append(
            qtn.Tensor(torch.randn(*shape, generator=rng, dtype=torch.float64).numpy(), inds=inds, tags={f"t{k}"})
        )
    tn = qtn.TensorNetwork(ts)
    return TNModel.from_quimb(tn, [f"x{k}" for k in range(4)], "y", feature_map="trig", dtype=dtype, device=device)


def _case(name: str, arch: type[nn.Module], make: Callable[..., nn.Module], tags: str) -> Case:
    kind = "gnn" if arch is ProductGNN else "tnmodel"
    return Case(name, arch, make, frozenset({kind, *tags.split()}))


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        # chains (MPS)
        _case("mps-out-mid", MPS, lambda **kw: MPS(6, 2, 3, out_dim=4, **kw), "tree output complex"),
        _case("mps-out-end", MPS, lambda **kw: MPS(5, 3, 2, out_dim=2, output_site=4, feature_map="polynomial", **kw),
              "tree output complex"),
        _case("mps-scalar", MPS, lambda **kw: MPS(7, 2, 3, init="normal", init_std=0.5, **kw), "tree complex"),
        # trees (TTN)
        _case("ttn-binary", TTN, lambda **kw: TTN(n_sites=8, bond_dim=3, out_dim=3, **kw), "tree output complex"),
        _case("ttn-ternary-ragged", TTN, lambda **kw: TTN(n_sites=7, arity=3, bond_dim=[3], out_dim=2, **kw),
              "tree output complex"),
        _case("ttn-2d", TTN, lambda **kw: TTN(shape=(4, 4), bond_dim=3, out_dim=2, **kw), "tree output complex"),
        _case("ttn-user-tree", TTN, lambda **kw: TTN(tree=((0, (1, 2)), (3, 4, 5)), bond_dim=[2, 3], **kw),
              "tree complex"),
        # hyper-indices: stars (CP)
        _case("cp-out", CP, lambda **kw: CP(6, 2, 4, out_dim=3, **kw), "hyper output complex"),
        _case("cp-onehot", CP, lambda **kw: CP(5, 3, 3, feature_map="onehot", **kw), "hyper complex"),
        # loops: grids (PEPS) and rings (periodic MPS)
        _case("peps-2x2-loop", TNModel, _peps_2x2, "loop output complex"),
        _case("peps-2x3", PEPS, lambda **kw: PEPS(shape=(2, 3), phys_dim=2, bond_dim=2, out_dim=2, **kw),
              "loop output complex"),
        _case("peps-2x2-out", PEPS, lambda **kw: PEPS((2, 2), 2, 2, out_dim=3, **kw), "loop output complex"),
        _case("peps-2x3-scalar", PEPS, lambda **kw: PEPS((2, 3), 2, 3, **kw), "loop complex"),
        _case("peps-3x3-out-corner", PEPS, lambda **kw: PEPS((3, 3), 2, 2, out_dim=2, output_site=(0, 0), **kw),
              "loop output complex"),
        _case("peps-2x2-poly", PEPS, lambda **kw: PEPS((2, 2), 3, 2, feature_map="polynomial", **kw), "loop complex"),
        _case("peps-1x4-chain", PEPS, lambda **kw: PEPS((1, 4), 2, 2, out_dim=2, **kw), "tree output complex"),
        _case("ring-2-parallel", PeriodicMPS, lambda **kw: PeriodicMPS(2, 2, 2, **kw), "loop complex"),
        _case("ring-3", PeriodicMPS, lambda **kw: PeriodicMPS(3, 2, 2, out_dim=2, **kw), "loop output complex"),
        _case("ring-5", PeriodicMPS, lambda **kw: PeriodicMPS(5, 2, 3, **kw), "loop complex"),
        _case("ring-5-out", PeriodicMPS, lambda **kw: PeriodicMPS(5, 2, 3, out_dim=4, output_site=2, **kw),
              "loop output complex"),
        _case("ring-6-poly", PeriodicMPS, lambda **kw: PeriodicMPS(6, 3, 2, feature_map="polynomial", **kw),
              "loop complex"),
        # factorizations (implicit-rank dynamics)
        _case("dmf", DeepMatrixFactorization, lambda **kw: DeepMatrixFactorization((4, 5), depth=3, init_scale=0.5,
              **kw), "tree output complex"),
        _case("tf-cp", TensorFactorization, lambda **kw: TensorFactorization((3, 3, 3), rank=4, init_scale=0.5, **kw),
              "hyper complex"),
        _case("htf", HierarchicalTensorFactorization, lambda **kw: HierarchicalTensorFactorization(
              (2, 2, 2, 2), ranks=[3, 3], init_scale=0.5, **kw), "hyper complex"),
        # product-aggregation GNN (message passing; a tensor network through its computation tree)
        _case("gnn-graph-cycle", ProductGNN, lambda **kw: ProductGNN(nx.cycle_graph(4), 2, 3, 2, out_dim=2, **kw),
              "tree output complex"),
        _case("gnn-vertex-path", ProductGNN, lambda **kw: ProductGNN(nx.path_graph(4), 3, 2, 2, output="vertex",
              target=1, **kw), "tree output complex"),
    ]
}

#: name -> factory of every registered TNModel (the plan, storage, DDP and GPU tests build these)
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {n: c.make for n, c in CASES.items() if "tnmodel" in c.tags}


def names(*tags: str, exclude: tuple[str, ...] | str = ()) -> list[str]:
    """Sorted names of the cases carrying every tag in ``tags`` and none in ``exclude``."""
    exclude = (exclude,) if isinstance(exclude, str) else exclude
    unknown = (set(tags) | set(exclude)) - TAGS
    if unknown:
        raise ValueError(f"unknown tags {sorted(unknown)}; the registry's tags are {sorted(TAGS)}")
    return sorted(n for n, c in CASES.items() if set(tags) <= c.tags and not set(exclude) & c.tags)


def build(name: str, seed: int = 0, **kw) -> nn.Module:
    """The case ``name`` built after ``torch.manual_seed(seed)``."""
    return CASES[name].build(seed, **kw)


def inputs(model: nn.Module, batch: int = 5, seed: int = 0) -> torch.Tensor:
    """Seeded inputs valid for ``model`` (the global RNG is not touched): :func:`tnml.testing.sample_input` for a
    TNModel, ``(batch, n_vertices, in_dim)`` standard normals in the parameters' dtype for a ProductGNN."""
    if isinstance(model, ProductGNN):
        g = torch.Generator().manual_seed(seed)
        dtype = model.head.dtype
        x = torch.randn(batch, model.n_vertices, model.in_dim, generator=g, dtype=torch.float64)
        return x.to(dtype)
    return sample_input(model, batch=batch, seed=seed)


def reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The brute-force reference of ``model(x)``: the dense einsum (TNModel; differentiable) or the contraction of
    the computation-tree network with ``x`` attached (ProductGNN; quimb, no gradient)."""
    if isinstance(model, ProductGNN):
        data = model.to_quimb(x=x).contract(output_inds=("batch", "y"), optimize="auto").data
        return torch.as_tensor(data).to(model.head.dtype)
    return dense_forward(model, x)
