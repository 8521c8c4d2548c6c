"""One registry of architectures; the generic tests run over all of it."""

from __future__ import annotations

import quimb.tensor as qtn
import torch

from tnml import TNModel
from tnml.networks import (
    CP,
    MPS,
    PEPS,
    TTN,
    DeepMatrixFactorization,
    HierarchicalTensorFactorization,
    PeriodicMPS,
    TensorFactorization,
)
from tnml.testing import dense_forward, sample_input  # noqa: F401  (the generic tests import them from here)


def _peps_2x2(dtype=None, device=None):
    """A loop of 4 tensors (2x2 grid), one open leg each: exercises the generic plan."""
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


ARCHITECTURES = {
    "mps-out-mid": lambda **kw: MPS(6, 2, 3, out_dim=4, **kw),
    "mps-out-end": lambda **kw: MPS(5, 3, 2, out_dim=2, output_site=4, feature_map="polynomial", **kw),
    "mps-scalar": lambda **kw: MPS(7, 2, 3, init="normal", init_std=0.5, **kw),
    "ttn-binary": lambda **kw: TTN(n_sites=8, bond_dim=3, out_dim=3, **kw),
    "ttn-ternary-ragged": lambda **kw: TTN(n_sites=7, arity=3, bond_dim=[3], out_dim=2, **kw),
    "ttn-2d": lambda **kw: TTN(shape=(4, 4), bond_dim=3, out_dim=2, **kw),
    "ttn-user-tree": lambda **kw: TTN(tree=((0, (1, 2)), (3, 4, 5)), bond_dim=[2, 3], **kw),
    "cp-out": lambda **kw: CP(6, 2, 4, out_dim=3, **kw),
    "cp-onehot": lambda **kw: CP(5, 3, 3, feature_map="onehot", **kw),
    "peps-2x2-loop": _peps_2x2,
    "peps-2x3": lambda **kw: PEPS(shape=(2, 3), phys_dim=2, bond_dim=2, out_dim=2, **kw),
    "ring-5": lambda **kw: PeriodicMPS(5, 2, 3, **kw),
    "dmf": lambda **kw: DeepMatrixFactorization((4, 5), depth=3, init_scale=0.5, **kw),
    "tf-cp": lambda **kw: TensorFactorization((3, 3, 3), rank=4, init_scale=0.5, **kw),
    "htf": lambda **kw: HierarchicalTensorFactorization((2, 2, 2, 2), ranks=[3, 3], init_scale=0.5, **kw),
}
