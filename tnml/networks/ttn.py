"""Tree tensor network = hierarchical tensor network = deep convolutional arithmetic circuit (product pooling)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from tnml.init import default_calibrate_, feature_log_norm, log_neutral_std, neutral_direction, passthrough_node
from tnml.io import read_input_bytes
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
from tnml.options import FeatureMapLike, NetworkInit, PlanKind
from tnml.structure import TensorSpec, TNStructure
from tnml.validation import as_float, check_option, is_int, optional_positive_int, positive_int


def ttn_structure(
    tree: ModeTree,
    n_sites: int,
    phys_dim: int,
    bond_dims: Sequence[int] | Mapping[tuple[int, ...], int],
    out_dim: int | None,
) -> TNStructure:
    """One tensor per internal node of ``tree``, named ``n{level}_{k}`` with indices
    ``(children..., parent)``; a child that is a site contributes its input index ``x{site}``, an internal child
    its bond ``e{child name}``; the root's last index is the output ``y``.

    ``bond_dims`` is either one width per level (``bond_dims[l - 1]`` above the nodes at level ``l``) or a mapping
    from each non-root internal node's sorted leaf tuple to the width of the bond above it."""
    tensors: list[TensorSpec] = []
    counters: dict[int, int] = {}
    per_level = None if isinstance(bond_dims, Mapping) else list(bond_dims)

    def width(node, lvl: int) -> int:
        if per_level is not None:
            return per_level[lvl - 1]
        assert isinstance(bond_dims, Mapping)
        return bond_dims[tuple(sorted(tree_leaves(node)))]

    def build(node, is_root: bool) -> tuple[str, int]:
        child_inds, child_dims = [], []
        for c in node:
            if isinstance(c, int):
                child_inds.append(f"x{c}")
                child_dims.append(phys_dim)
            else:
                name, lvl = build(c, False)
                child_inds.append(f"e{name}")
                child_dims.append(width(c, lvl))
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
            dims.append(width(node, lvl))
        tensors.append(TensorSpec(name, tuple(inds), tuple(dims)))
        return name, lvl

    build(tree, True)
    return TNStructure(tuple(tensors), tuple(f"x{i}" for i in range(n_sites)), "y" if out_dim is not None else None)


def inner_edges(tree: ModeTree) -> list[tuple[int, ...]]:
    """The sorted leaf tuples of the non-root internal nodes of ``tree`` (post-order): the keys of a TTN's
    per-edge widths, one per bond between two tensors.

    Examples
    --------
    >>> inner_edges(((0, 2), ((1, 4), 3)))
    [(0, 2), (1, 4), (1, 3, 4)]
    """
    out: list[tuple[int, ...]] = []

    def visit(t, is_root: bool) -> list[int]:
        if isinstance(t, int):
            return [t]
        leaves: list[int] = []
        for c in t:
            leaves.extend(visit(c, False))
        if not is_root:
            out.append(tuple(sorted(leaves)))
        return leaves

    visit(tree, True)
    return out


def _edge_widths(tree: ModeTree, bond_dim) -> dict[tuple[int, ...], int]:
    """Per-edge widths from a mapping (keys: any iterable of the node's sites) or a callable ``f(leaves) -> int``."""
    edges = inner_edges(tree)
    if callable(bond_dim):
        return {e: positive_int(f"bond_dim({list(e)})", bond_dim(e)) for e in edges}
    given: dict[tuple[int, ...], int] = {}
    for key, w in bond_dim.items():
        k = (int(key),) if is_int(key) else tuple(sorted(int(s) for s in key))
        given[k] = positive_int(f"bond_dim[{key!r}]", w)
    missing = [e for e in edges if e not in given]
    extra = [k for k in given if k not in set(edges)]
    if missing or extra:
        raise ValueError(
            f"bond_dim as a mapping needs one width per inner edge of the tree, keyed by the node's sites "
            f"(tnml.networks.ttn.inner_edges(tree) lists the {len(edges)} keys); "
            + (f"missing {[list(e) for e in missing[:3]]}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"not an inner node {[list(e) for e in extra[:3]]}" if extra else "")
        )
    return {e: given[e] for e in edges}


def _level_widths(tree: ModeTree, bonds: Sequence[int]) -> dict[tuple[int, ...], int]:
    """Per-edge widths of per-level ``bonds`` (``bonds[l - 1]`` above each node at level ``l``), one pass."""
    out: dict[tuple[int, ...], int] = {}

    def visit(t, is_root: bool) -> tuple[list[int], int]:
        if isinstance(t, int):
            return [t], 0
        leaves, h = [], 0
        for c in t:
            lv, hc = visit(c, False)
            leaves.extend(lv)
            h = max(h, hc)
        if not is_root:
            out[tuple(sorted(leaves))] = bonds[h]
        return leaves, h + 1

    visit(tree, True)
    return out


#: the ``"format"`` of :meth:`TTN.to_spec` dictionaries / JSON files
SPEC_FORMAT = "tnml-ttn-spec"


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
    bond_dim : int, sequence of int, mapping or callable
        Width of the bond above each level: ``bond_dim[l-1]`` for nodes at level ``l`` (an int: all levels). Or one
        width per inner edge: a mapping from each non-root inner node's sites (any order) to the width of the bond
        above it (:func:`inner_edges` lists the keys), or a callable ``f(sites) -> int`` given the sorted sites.
        The widths are kept in ``edge_widths``. Mixed widths cost speed: the compiled plan batches equal-shaped
        nodes into one einsum, so every distinct node shape is a separate op. Widths fitted to data:
        :func:`tnml.workflows.design_ttn`.
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
        sensitive to every input: on Statlog DNA a bond-8 TTN from it memorized without generalizing (train 0.91,
        test 0.40) where the identity init reached 0.95 (the data-suitability experiment's DNA task).
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
        bond_dim: int | Sequence[int] | Mapping[tuple[int, ...], int] | Callable[[tuple[int, ...]], int] = 8,
        out_dim: int | None = None,
        feature_map: FeatureMapLike = "trig",
        *,
        arity: int = 2,
        shape: tuple[int, int] | None = None,
        tree=None,
        init: NetworkInit = "identity",
        init_std: float | None = None,
        plan: PlanKind = "auto",
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
        check_option("init", init, NetworkInit)
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
        if isinstance(bond_dim, str):
            raise ValueError(
                f"bond_dim={bond_dim!r}: a TTN takes an int, one int per level, a mapping from each inner node's "
                "sites to its width, or a callable; widths chosen from data come from "
                "tnml.workflows.design_ttn(X, y, bond_dim='auto')"
            )
        if is_int(bond_dim):
            bonds = [positive_int("bond_dim", bond_dim)] * max(height - 1, 0)
        elif isinstance(bond_dim, Mapping) or callable(bond_dim):
            bonds = None
            widths = _edge_widths(tree, bond_dim)
        else:
            bonds = [positive_int(f"bond_dim[{k}]", int(b)) for k, b in enumerate(bond_dim)]
            if len(bonds) != height - 1:
                raise ValueError(
                    f"bond_dim has {len(bonds)} entries but the tree has {height - 1} levels of bonds "
                    f"(height {height}); give one width per level or a single int"
                )
        if bonds is not None:
            widths = _level_widths(tree, bonds)
        self.tree = tree
        #: grid shape ``(h, w)`` for 2-D window pooling, else None (entanglement reports use it for 2-D partitions)
        self.shape = tuple(shape) if shape is not None else None
        #: width of the bond above each level (``bond_dims[l - 1]`` above level ``l``); None when the widths were
        #: given per edge (see ``edge_widths``)
        self.bond_dims = tuple(bonds) if bonds is not None else None
        #: width of the bond above every non-root inner node, keyed by the node's sorted sites
        self.edge_widths: dict[tuple[int, ...], int] = widths
        self.arity = arity
        self.init = init
        self.init_std = init_std
        feature_map = sized_feature_map(feature_map, phys_dim)
        super().__init__(
            ttn_structure(tree, n, phys_dim, widths, out_dim),
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

    def to_spec(self) -> dict:
        """The architecture (not the trained values) as a JSON-ready dict that :meth:`from_spec` rebuilds.

        Keys: ``format`` (``"tnml-ttn-spec"``), ``version``, ``tree`` (nested lists of site ids), ``edges`` (a list
        of ``{"sites": [...], "width": w}``, one per inner edge), ``phys_dim``, ``out_dim``, ``feature_map``
        (``[name, config]``), ``shape``, ``arity``, ``init``, ``init_std``, ``n_params``.
        """

        def as_lists(t):
            return t if isinstance(t, int) else [as_lists(c) for c in t]

        return {
            "format": SPEC_FORMAT,
            "version": 1,
            "tree": as_lists(self.tree),
            "edges": [{"sites": list(e), "width": int(w)} for e, w in self.edge_widths.items()],
            "phys_dim": self.phys_dim,
            "out_dim": self.out_dim,
            "feature_map": [self.feature_map.registry_name, self.feature_map.config()],
            "shape": list(self.shape) if self.shape is not None else None,
            "arity": self.arity,
            "init": self.init,
            "init_std": self.init_std,
            "n_params": sum(p.numel() for p in self.parameters()),
        }

    @classmethod
    def from_spec(cls, spec: Mapping | str | Path, *, device=None, dtype=None, **overrides) -> TTN:
        """Build the TTN a spec describes (a dict from :meth:`to_spec`, or the path of its JSON file, e.g. the one
        ``tnml design`` writes). ``overrides`` replace constructor arguments (e.g. ``init="normal"``).

        Examples
        --------
        >>> m = TTN(tree=((0, 2), (1, 3, 4)), bond_dim={(0, 2): 3, (1, 3, 4): 5}, out_dim=2)
        >>> TTN.from_spec(m.to_spec()).edge_widths == m.edge_widths
        True
        """
        where = "spec"
        if isinstance(spec, (str, Path)):
            where = f"spec file {str(spec)!r}"
            try:
                spec = json.loads(read_input_bytes(spec, "a TTN spec (JSON)").decode("utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"cannot read the {where}: {e}; give the JSON written by `tnml design` or "
                                 "TTN.to_spec()") from e
        if not isinstance(spec, Mapping) or spec.get("format") != SPEC_FORMAT:
            raise ValueError(f"the {where} is not a TTN spec (no \"format\": \"{SPEC_FORMAT}\"); give the output of "
                             "TTN.to_spec() or `tnml design`")
        for key in ("tree", "edges", "phys_dim"):
            if key not in spec:
                raise ValueError(
                    f"the {where} lacks the key {key!r}; write it again with TTN.to_spec() or `tnml design`"
                )
        try:
            widths = {tuple(int(s) for s in e["sites"]): e["width"] for e in spec["edges"]}
        except (TypeError, KeyError, ValueError) as e:
            raise ValueError(f"the {where}'s \"edges\" must be a list of {{\"sites\": [...], \"width\": w}}") from e
        fm = spec.get("feature_map") or "trig"
        if isinstance(fm, list):
            fm = (fm[0], dict(fm[1] or {}))
        kwargs = {
            "phys_dim": spec["phys_dim"], "bond_dim": widths, "out_dim": spec.get("out_dim"), "feature_map": fm,
            "tree": spec["tree"], "arity": spec.get("arity", 2), "init": spec.get("init", "identity"),
            "init_std": spec.get("init_std"), "device": device, "dtype": dtype,
        }
        kwargs.update(overrides)
        model = cls(**kwargs)
        if spec.get("shape") is not None:
            model.shape = tuple(int(v) for v in spec["shape"])
        return model

    def extra_repr(self) -> str:
        if self.bond_dims is not None:
            bonds = f"bond_dims={self.bond_dims}"
        else:
            w = list(self.edge_widths.values())
            bonds = f"edge widths {min(w)}..{max(w)} over {len(w)} edges"
        return (
            f"n_sites={self.n_sites}, phys_dim={self.phys_dim}, {bonds}, out_dim={self.out_dim}, "
            f"tensors={len(self.structure.tensors)}"
        )
