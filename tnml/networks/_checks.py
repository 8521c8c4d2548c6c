"""Architecture-specific argument handling (feature-map sizing, output-site and TTN size checks); the generic
checks and their messages are in :mod:`tnml.validation`."""

from __future__ import annotations

import math

from tnml.validation import is_int, positive_int


def sized_feature_map(feature_map, phys_dim: int):
    """Give name-only feature maps whose size is free (polynomial, onehot, linear, identity) the model's
    ``phys_dim``; anything else passes through unchanged."""
    sizes = {
        "polynomial": {"degree": phys_dim - 1},
        "onehot": {"k": phys_dim},
        "linear": {"dim": phys_dim},
        "identity": {"dim": phys_dim},
    }
    if isinstance(feature_map, str) and feature_map in sizes:
        return (feature_map, sizes[feature_map])
    return feature_map


def output_site_needs_out_dim(output_site, out_dim: int | None):
    """Refuse an ``output_site`` given without ``out_dim`` (there is no output leg to place); integers of any kind
    become Python ints, other values pass through for the caller's range check."""
    if output_site is not None and out_dim is None:
        raise ValueError(
            f"output_site={output_site!r} is given but out_dim is None, so the network has no output leg to place; "
            "pass out_dim=K, or drop output_site"
        )
    return int(output_site) if is_int(output_site) else output_site


def ttn_size_guard(n_sites, shape, tree, phys_dim: int, bond_dim, arity: int, out_dim: int | None, dtype, device):
    """O(1) parameter / tensor-count guard of a TTN from its hyperparameters, before the tree is built."""
    from tnml.validation import check_model_size

    if tree is not None or (shape is None and n_sites is None):
        n = None
    elif shape is not None:
        if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 2:
            return  # the constructor's own check names the problem
        h, w = (positive_int(f"shape[{k}]", shape[k]) for k in range(2))
        n = h * w
    else:
        n = positive_int("n_sites", n_sites, 2)
    if n is None:
        check_model_size("TTN", n_params=0, n_tensors=0, dtype=dtype, device=device)
        return
    bonds = [bond_dim] if is_int(bond_dim) else list(bond_dim) if hasattr(bond_dim, "__iter__") else [bond_dim]
    b = max((int(v) for v in bonds if is_int(v)), default=1)
    # level by level (exact integers): a node pools c children (arity in 1-D, an arity x arity window in 2-D); the
    # first level's nodes take c inputs of phys_dim, the others c bonds, each node passes one bond up (the root
    # its out_dim)
    c = max(2, int(arity) ** 2 if shape is not None else int(arity))
    up = [b] * (c + 1)  # a level-1 node's legs: c inputs and its bond
    up[:c] = [phys_dim] * c
    level, nodes, n_params, n_tensors = up, -(-n // c), 0, 0
    while True:
        last = nodes == 1
        n_params += nodes * math.prod(level[:c]) * ((out_dim or 1) if last else b)  # the root carries out_dim
        n_tensors += nodes
        if last:
            break
        level, nodes = [b] * (c + 1), -(-nodes // c)
    check_model_size(
        f"TTN(n_sites={n}, phys_dim={phys_dim}, bond_dim={bond_dim}, arity={arity})",
        n_params=min(n_params, 2**1000), n_tensors=n_tensors,  # capped: the message formats it as a float
        dtype=dtype, device=device, fix="fewer sites or a smaller bond_dim",
    )
