"""Tree tensor network = hierarchical tensor network = deep convolutional arithmetic circuit (product pooling)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from tnml.init import default_calibrate_, feature_log_norm, log_neutral_std, neutral_direction, passthrough_node
from tnml.mode_trees import (
    ModeTree,
    contiguous_tree,
    tree_height,
    tree_leaves,
    validate_tree,
    window_tree,
)
from tnml.model import TNModel
from tnml.networks._checks import sized_feature_map, ttn_size_guard
from tnml.structure import TensorSpec, TNStructure
from tnml.validation import as_float, is_int, optional_positive_int, positive_int


def ttn_structure(
    tree: ModeTree, n_sites: int, phys_dim: int, bond_dims: Sequence[int], out_dim: int | None
) -> TNStructure:
    """One tensor per internal node of ``tree``, named ``n{level}_{k}`` with indices
    ``(children..., parent)``; a child that is a site contributes its input index ``x{site}``, an internal child
    its bond ``e{child name}`` of size ``bond_dims[child level - 1]``; the root's last index is the output ``y``."""
    tensors: list[TensorSpec] = []
    counters: dict[int, int] = {}
    sd_bond = list(bond_dims)

    def build(node, is_root: bool) -> tuple[str, int]:
        child_inds, child_dims = [], []
        for c in node:
            if isinstance(c, int):
                child_inds.append(f"x{c}")
                child_dims.append(phys_dim)
            else:
                name, lvl = build(c, False)
                child_inds.append(f"e{name}")
                child_dims.append(sd_bond[lvl - 1])
        lvl = tree_height(node)
        k = counters.get(lvl, 0)
        counters[lvl] = k + 1
        name = f"n{lvl}_{k}"
        inds = list(child_inds)
        dims = list(child_dims)
        if is_root:
            if out_dim is not None:
                inds.append("y")
                dims.append(out_dim)
        else:
            inds.append(f"e{name}")
            dims.append(sd_bond[lvl - 1])
        tensors.append(TensorSpec(name, tuple(inds), tuple(dims)))
        return name, lvl

    build(tree, True)
    return TNStructure(tuple(tensors), tuple(f"x{i}" for i in range(n_sites)), "y" if out_dim is not None else None)


def _unit(d: int) -> torch.Tensor:
    e = torch.zeros(d, dtype=torch.float64)
    e[0] = 1.0
    return e


class TTN(TNModel):
    """Tree tensor network over a mode tree: each internal node multiplies its children (product pooling) through
    a full tensor ``W[c_1, ..., c_P, parent]``.

    Parameters
    ----------
    n_sites : int, optional
        Number of sites for 1-D contiguous pooling (exclusive with ``shape`` and ``tree``).
    phys_dim : int
    bond_dim : int or sequence of int
        Width of the bond above each level: ``bond_dim[l-1]`` for nodes at level ``l`` (an int: all levels).
    out_dim : int or None
    arity : int
        Children per node for 1-D pooling; for 2-D, the window side (``arity=2`` ⇒ 2×2 windows).
    shape : (int, int), optional
        2-D inputs on a row-major ``(h, w)`` grid pooled by square windows.
    tree : nested sequences of site ids, optional
        A user-given mode tree, e.g. ``((0, 1), (2, 3))``.
    feature_map, plan, stack_cores, device, dtype : see :class:`tnml.TNModel`.
    init : {"identity", "normal"}
        ``"identity"`` (default): every node is the pass-through tensor of :func:`tnml.init.passthrough_node`
        (children's reference messages — the neutral direction ``c`` of :func:`tnml.init.neutral_direction` for an
        input, ``e_0`` for a bond — map to the parent's reference, ``e_0`` or ``1/√K`` at a root with ``K``
        outputs, and each child's deviation passes through to the parent), plus ``N(0, init_std²)`` noise
        (default ``1e-2``), then one common rescaling on reference inputs (:func:`tnml.init.default_calibrate_`).
        The tree starts as a nearly constant function whose input dependence is a sum of per-leaf terms — the
        tree analogue of the MPS's identity init. ``"normal"``: i.i.d. Gaussian nodes, below; a generic instance
        (e.g. for rank and entanglement studies of random networks), but as a classifier it starts maximally
        sensitive to every input: on Statlog DNA a bond-8 TTN from it memorized without generalizing (test 0.40)
        where the identity init reached 0.95 (issue 18 note).
    init_std : float or None
        ``init="identity"``: the noise std (default 1e-2). ``init="normal"``: std of the i.i.d. normal init.
        Default: per node, with ``k`` its parent dim (the output dim at the root, 1
        for a scalar root), ``s² = exp(-ψ(k/2)) / 2`` (ψ the digamma function). For a node ``W`` with i.i.d.
        ``N(0, s²)`` entries and children messages ``v_c``, ``‖W(v_1 ⊗ … ⊗ v_P)‖² / Π‖v_c‖²`` is ``s²·χ²_k``; this
        ``s`` makes its log zero-mean, so the log-norm of the output does not drift with depth and unit-norm feature
        maps (trig) give O(1) outputs for deep trees. (``s² = 1/k`` preserves the mean but still drifts by about
        ``-1/k`` in log per node; the earlier ``1/sqrt(prod of child dims)`` shrank a 64-leaf bond-8 tree's output to
        ~1e-11, below Adam's ``eps``, and 1-D digits TTNs never trained.) A node that absorbs ``m`` inputs also
        divides ``s`` by ``exp(m E ln ||φ(x)||)`` over the reference inputs (:func:`tnml.init.feature_log_norm`;
        0 for trig and one-hot), so ``E ln ||f|| = 0`` exactly for any feature map. The draw's own offset (its
        spread is ``sqrt(Σ_nodes ψ'(k/2)) / 2`` nats: ≈ 8.5 for a 32×32 bond-8 tree) is then removed by one common
        rescaling of all nodes on up to 64 reference inputs
        (:func:`tnml.init.default_calibrate_`, within a compute budget).

    Examples
    --------
    >>> m = TTN(n_sites=8, bond_dim=4, out_dim=3)
    >>> m(torch.rand(2, 8)).shape
    torch.Size([2, 3])
    >>> TTN(shape=(8, 8), bond_dim=[4, 6], out_dim=2).n_sites
    64
    """

    def __init__(
        self,
        n_sites: int | None = None,
        phys_dim: int = 2,
        bond_dim: int | Sequence[int] = 8,
        out_dim: int | None = None,
        feature_map="trig",
        *,
        arity: int = 2,
        shape: tuple[int, int] | None = None,
        tree=None,
        init: str = "identity",
        init_std: float | None = None,
        plan: str = "auto",
        stack_cores: bool | None = None,
        device=None,
        dtype=None,
    ) -> None:
        given = [a is not None for a in (n_sites, shape, tree)]
        if sum(given) != 1:
            raise ValueError("give exactly one of n_sites (1-D pooling), shape=(h, w) (2-D windows) or tree=")
        phys_dim, arity = positive_int("phys_dim", phys_dim), positive_int("arity", arity, 2)
        out_dim = optional_positive_int("out_dim", out_dim)
        ttn_size_guard(n_sites, shape, tree, phys_dim, bond_dim, arity, out_dim, dtype, device)
        if init not in ("identity", "normal"):
            raise ValueError(f"init must be 'identity' or 'normal', got {init!r}")
        if init_std is not None:
            init_std = as_float("init_std", init_std, minimum=0.0, positive=init == "normal",
                                fix="or None (scaled default)")
        if tree is not None:
            tree = validate_tree(tree)
        elif shape is not None:
            if len(shape) != 2:
                raise ValueError(f"shape must be (h, w), got {shape!r}")
            tree = window_tree((positive_int("shape[0]", shape[0]), positive_int("shape[1]", shape[1])), arity)
        else:
            tree = contiguous_tree(positive_int("n_sites", n_sites, 2), arity)
        if isinstance(tree, int):
            raise ValueError("a TTN needs at least 2 sites")
        n = len(tree_leaves(tree))
        height = tree_height(tree)
        if is_int(bond_dim):
            bonds = [positive_int("bond_dim", bond_dim)] * max(height - 1, 0)
        else:
            bonds = [positive_int(f"bond_dim[{k}]", int(b)) for k, b in enumerate(bond_dim)]
            if len(bonds) != height - 1:
                raise ValueError(
                    f"bond_dim has {len(bonds)} entries but the tree has {height - 1} levels of bonds "
                    f"(height {height}); give one width per level or a single int"
                )
        self.tree = tree
        #: grid shape ``(h, w)`` for 2-D window pooling, else None (entanglement reports use it for 2-D partitions)
        self.shape = tuple(shape) if shape is not None else None
        self.bond_dims = tuple(bonds)
        self.arity = arity
        self.init = init
        self.init_std = init_std
        feature_map = sized_feature_map(feature_map, phys_dim)
        super().__init__(
            ttn_structure(tree, n, phys_dim, bonds, out_dim),
            feature_map,
            plan=plan,
            stack_cores=stack_cores,
            device=device,
            dtype=dtype,
        )

    def reset_parameters(self) -> None:
        """Norm-neutral init (see ``init``); the formulas are in :mod:`tnml.init`."""
        if self.init == "identity":
            self._passthrough_init()
            return
        with torch.no_grad():
            mu = feature_log_norm(self.feature_map) if self.init_std is None else 0.0
            for t in self.structure.tensors:
                has_parent = t.inds[-1] in (f"e{t.name}", "y")  # else: a root without an output leg
                parent_dim = t.shape[-1] if has_parent else 1
                n_inputs = sum(1 for i in t.inds if i.startswith("x"))
                std = self.init_std
                if std is None:
                    std = log_neutral_std(parent_dim) * math.exp(-mu * n_inputs)
                self.core(t.name).normal_(0.0, std)
        if self.init_std is None:
            default_calibrate_(self)

    def _passthrough_init(self) -> None:
        ref = self._ref()
        c = neutral_direction(self.feature_map)[0].to(dtype=torch.float64)
        noise = 1e-2 if self.init_std is None else self.init_std
        inputs = set(self.structure.input_inds)
        with torch.no_grad():
            for t in self.structure.tensors:
                has_parent = t.inds[-1] in (f"e{t.name}", "y")
                legs = t.inds[:-1] if has_parent else t.inds
                dims = t.shape[: len(legs)]
                refs = [c if i in inputs else _unit(d) for i, d in zip(legs, dims)]
                if not has_parent:
                    u = torch.ones(1, dtype=torch.float64)
                elif t.inds[-1] == "y":
                    u = torch.full((t.shape[-1],), t.shape[-1] ** -0.5, dtype=torch.float64)
                else:
                    u = _unit(t.shape[-1])
                w = passthrough_node(refs, u, [i not in inputs for i in legs]).reshape(t.shape)
                p = self.core(t.name)
                p.copy_(w.to(dtype=ref.dtype, device=ref.device))
                p.add_(torch.randn_like(p), alpha=noise)
        default_calibrate_(self)

    def extra_repr(self) -> str:
        return (
            f"n_sites={self.n_sites}, phys_dim={self.phys_dim}, bond_dims={self.bond_dims}, out_dim={self.out_dim}, "
            f"tensors={len(self.structure.tensors)}"
        )
