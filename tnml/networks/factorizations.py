"""Factorizations studied for implicit regularization: deep matrix (P1), CP tensor (P2), hierarchical tensor (P3).

Each is a :class:`tnml.TNModel` whose *end tensor* -- the matrix or tensor the factorization represents -- is
:meth:`tensor`. The open indices of the network are the modes of that tensor (a matrix is a linear map: its
column index is the input ``x0`` and its row index the output ``y``; a tensor's modes are the inputs ``x{n}``
with the identity feature map), so ``to_dense()`` is the end tensor up to axis order and everything in
:mod:`tnml.entanglement` applies unchanged. Training fits the end tensor to observed entries or linear
measurements (:mod:`tnml.dynamics.tasks`).

References
----------
P1: Razin & Cohen, Implicit Regularization in Deep Learning May Not Be Explainable by Norms, NeurIPS 2020.
P2: Razin, Maman & Cohen, Implicit Regularization in Tensor Factorization, ICML 2021.
P3: Razin, Maman & Cohen, Implicit Regularization in Hierarchical Tensor Factorization and Deep CNNs, ICML 2022.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tnml.mode_trees import ModeTree, contiguous_tree, tree_height, tree_leaves, validate_tree
from tnml.model import TNModel
from tnml.structure import TensorSpec, TNStructure
from tnml.validation import as_float, check_model_size, is_int, positive_int

__all__ = ["DeepMatrixFactorization", "HierarchicalTensorFactorization", "TensorFactorization"]


def _tensor_shape(shape, min_order: int) -> tuple[int, ...]:
    if isinstance(shape, int) or not isinstance(shape, Sequence) or len(shape) < min_order:
        raise ValueError(f"shape must be a sequence of at least {min_order} mode sizes, got {shape!r}")
    dims = tuple(positive_int(f"shape[{k}]", d) for k, d in enumerate(shape))
    if len(set(dims)) > 1:
        raise ValueError(
            f"shape={dims} has modes of different sizes; TNModel needs one phys_dim for all input modes, so "
            "give equal mode sizes (zero-pad the smaller modes and leave the padding unobserved)"
        )
    return dims


# ---------------------------------------------------------------------------------------------------- matrix
def dmf_structure(shape: tuple[int, int], hidden: Sequence[int]) -> TNStructure:
    """Chain ``layer1 .. layerN``: ``layer{k}`` has indices ``(a{k-1}, a{k})`` = the transpose of ``W_k``, with
    ``a0 = "x0"`` (the end matrix's columns, an input) and ``aN = "y"`` (its rows, the output)."""
    d_out, d_in = shape
    dims = [d_in, *hidden, d_out]
    depth = len(dims) - 1
    names = ["x0"] + [f"a{k}" for k in range(1, depth)] + ["y"]
    tensors = [TensorSpec(f"layer{k + 1}", (names[k], names[k + 1]), (dims[k], dims[k + 1])) for k in range(depth)]
    return TNStructure(tuple(tensors), ("x0",), "y")


class DeepMatrixFactorization(TNModel):
    r"""Deep matrix factorization :math:`W = W_N W_{N-1} \cdots W_1` (a deep linear network).

    Parameters
    ----------
    shape : (int, int)
        Shape ``(d, d')`` of the end matrix ``W``.
    depth : int
        Number of factors ``N`` (1 = plain matrix parameterization).
    hidden : int or sequence of int, optional
        Hidden widths (``depth - 1`` of them); default ``min(d, d')`` each, so the rank is unconstrained.
    init_scale : float
        Standard deviation of the initialization (see ``balanced``).
    balanced : bool
        ``False``: every factor i.i.d. ``N(0, init_scale²)`` (the P1 experiments). ``True``: a *balanced* start,
        ``W_{j+1}^T W_{j+1} = W_j W_j^T``: the factors share the singular values ``s`` of an i.i.d.
        ``N(0, init_scale²)`` ``d × d'`` matrix ``U diag(s) V^T`` and are ``W_1 = O_1 S V^T``,
        ``W_j = O_j S O_{j-1}^T``, ``W_N = U S O_{N-1}^T`` with random orthonormal ``O_j``.
    device, dtype : factory kwargs.

    Notes
    -----
    The network is a chain; ``core("layer{k}")`` holds ``W_k^T`` (input index first), and :meth:`factors`
    returns the ``W_k`` themselves. ``forward(x)`` computes ``x @ W^T`` for ``x`` of shape ``(batch, 1, d')``.

    Examples
    --------
    >>> m = DeepMatrixFactorization((3, 4), depth=3, init_scale=0.1, dtype=torch.float64)
    >>> m.tensor().shape
    torch.Size([3, 4])
    >>> bool(torch.allclose(m.tensor(), m.to_dense().T))
    True
    """

    #: one parameter per factor: GroupRMSprop and the dynamics trackers treat every factor as its own group
    stack_cores = False

    def __init__(
        self,
        shape: tuple[int, int],
        depth: int,
        hidden: int | Sequence[int] | None = None,
        init_scale: float = 1e-2,
        balanced: bool = True,
        *,
        device=None,
        dtype=None,
    ) -> None:
        if isinstance(shape, int) or not isinstance(shape, Sequence) or len(shape) != 2:
            raise ValueError(f"shape must be (d, d') for a matrix, got {shape!r}")
        shape = (positive_int("shape[0]", shape[0]), positive_int("shape[1]", shape[1]))
        depth = positive_int("depth", depth)
        wide = max(shape) if hidden is None or not is_int(hidden) else max(*shape, int(hidden))
        check_model_size(
            f"DeepMatrixFactorization(shape={shape}, depth={depth})", n_params=depth * wide**2, n_tensors=depth,
            dtype=dtype, device=device, fix="a smaller shape, depth or hidden width",
        )
        if hidden is None:
            hidden = [min(shape)] * (depth - 1)
        elif is_int(hidden):
            hidden = [positive_int("hidden", hidden)] * (depth - 1)
        else:
            hidden = [positive_int(f"hidden[{k}]", int(h)) for k, h in enumerate(hidden)]
            if len(hidden) != depth - 1:
                raise ValueError(f"hidden has {len(hidden)} widths but depth={depth} needs depth - 1 = {depth - 1}")
        if balanced and any(h < min(shape) for h in hidden):
            raise ValueError(
                f"balanced=True needs hidden widths >= min(shape) = {min(shape)}, got {hidden}; widen them or "
                "pass balanced=False"
            )
        self.shape = shape
        self.depth = depth
        self.hidden = tuple(hidden)
        self.init_scale = as_float("init_scale", init_scale, positive=True)
        self.balanced = bool(balanced)
        super().__init__(dmf_structure(shape, self.hidden), "identity", device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if not self.balanced:
                for k in range(self.depth):
                    self.core(f"layer{k + 1}").normal_(0.0, self.init_scale)
                return
            ref = self._ref()
            d, dp = self.shape
            k = min(d, dp)
            g = torch.randn(d, dp, dtype=torch.float64) * self.init_scale
            u, s, vh = torch.linalg.svd(g, full_matrices=False)  # (d, k), (k,), (k, dp)
            s = torch.diag(s)
            # orthonormal frames O_j (hidden_j, k): O_0 = V, O_N = U
            frames = [vh.T]
            for h in self.hidden:
                q, _ = torch.linalg.qr(torch.randn(h, k, dtype=torch.float64))
                frames.append(q)
            frames.append(u)
            for j in range(self.depth):
                w = frames[j + 1] @ s @ frames[j].T  # (out_j, in_j)
                self.core(f"layer{j + 1}").copy_(w.T.to(ref.dtype))

    def factors(self) -> list[torch.Tensor]:
        """``[W_1, ..., W_N]``, ``W_k`` of shape ``(out_k, in_k)`` (views of the parameters, transposed)."""
        return [self.core(f"layer{k + 1}").T for k in range(self.depth)]

    def tensor(self) -> torch.Tensor:
        """End matrix ``W = W_N ... W_1``, shape ``(d, d')``."""
        cores = self.core_dict()
        out = cores["layer1"]
        for k in range(2, self.depth + 1):
            out = out @ cores[f"layer{k}"]
        return out.T

    def extra_repr(self) -> str:
        return (
            f"shape={self.shape}, depth={self.depth}, hidden={self.hidden}, init_scale={self.init_scale}, "
            f"balanced={self.balanced}"
        )


# ---------------------------------------------------------------------------------------------------- CP
def cp_factorization_structure(shape: tuple[int, ...], rank: int) -> TNStructure:
    """Factors ``factor{n}`` with indices ``(x{n}, r)`` joined by the hyper-index ``r``; no output index."""
    tensors = [TensorSpec(f"factor{n}", (f"x{n}", "r"), (d, rank)) for n, d in enumerate(shape)]
    return TNStructure(tuple(tensors), tuple(f"x{n}" for n in range(len(shape))), None)


class TensorFactorization(TNModel):
    r"""CP tensor factorization :math:`W = \sum_{r<R} w_r^1 \otimes \cdots \otimes w_r^N` (P2).

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(d_1, ..., d_N)``, ``N >= 2`` (equal sizes: see Notes).
    rank : int
        Number of components ``R`` (P2 uses ``R`` far above the target's rank: 1 000).
    init_scale : float
        Every factor entry starts i.i.d. ``N(0, init_scale²)``.
    balanced : bool
        ``True``: rescale the factors of each component to equal norms (product kept), so the conserved
        quantities ``‖w_r^n‖² − ‖w_r^{n'}‖²`` are zero. ``False`` (default, as in P2's code): left i.i.d.
    device, dtype : factory kwargs.

    Notes
    -----
    ``core(f"factor{n}")`` is the ``(d_n, R)`` matrix whose column ``r`` is ``w_r^n``. A TNModel takes one
    ``phys_dim`` for all its input indices, so the modes must have one size.

    Examples
    --------
    >>> m = TensorFactorization((3, 3, 3), rank=4, init_scale=0.5, dtype=torch.float64)
    >>> m.tensor().shape
    torch.Size([3, 3, 3])
    >>> m.component_norms().shape
    torch.Size([4])
    """

    #: one parameter per factor: GroupRMSprop and the dynamics trackers treat every factor as its own group
    stack_cores = False

    def __init__(
        self,
        shape: Sequence[int],
        rank: int,
        init_scale: float = 1e-2,
        balanced: bool = False,
        *,
        device=None,
        dtype=None,
    ) -> None:
        self.shape = _tensor_shape(shape, 2)
        self.rank = positive_int("rank", rank)
        check_model_size(
            f"TensorFactorization(shape={self.shape}, rank={self.rank})", n_params=sum(self.shape) * self.rank,
            n_tensors=len(self.shape), dtype=dtype, device=device, fix="a smaller shape or rank",
        )
        self.init_scale = as_float("init_scale", init_scale, positive=True)
        self.balanced = bool(balanced)
        super().__init__(cp_factorization_structure(self.shape, self.rank), "identity", device=device, dtype=dtype)

    @property
    def order(self) -> int:
        return len(self.shape)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            fs = [self.core(f"factor{n}") for n in range(len(self.shape))]
            for f in fs:
                f.normal_(0.0, self.init_scale)
            if self.balanced:
                norms = torch.stack([f.norm(dim=0) for f in fs])  # (N, R)
                target = norms.clamp_min(1e-300).log().mean(0).exp()
                for f, nrm in zip(fs, norms):
                    f.mul_(target / nrm.clamp_min(1e-300))

    def factors(self) -> list[torch.Tensor]:
        """``[A_1, ..., A_N]``, ``A_n`` of shape ``(d_n, R)`` with column ``r`` = ``w_r^n``."""
        cores = self.core_dict()
        return [cores[f"factor{n}"] for n in range(self.order)]

    def tensor(self) -> torch.Tensor:
        """End tensor, shape ``shape``: Khatri-Rao products of the two halves of the modes, then one matmul
        (``R`` times faster than an einsum that materializes ``(*shape, R)``)."""
        fs = self.factors()
        half = (self.order + 1) // 2

        def khatri_rao(mats: list[torch.Tensor]) -> torch.Tensor:
            out = mats[0]
            for m in mats[1:]:
                out = (out.unsqueeze(1) * m.unsqueeze(0)).reshape(-1, m.shape[1])
            return out

        return (khatri_rao(fs[:half]) @ khatri_rao(fs[half:]).T).reshape(self.shape)

    def component_norms(self) -> torch.Tensor:
        r"""``‖W_r‖ = \prod_n ‖w_r^n‖`` for each component, shape ``(R,)`` (detached)."""
        with torch.no_grad():
            return torch.stack([f.norm(dim=0) for f in self.factors()]).prod(0)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, rank={self.rank}, init_scale={self.init_scale}, balanced={self.balanced}"


# ---------------------------------------------------------------------------------------------------- HT
def _node_name(block: Sequence[int], up: int = 0) -> str:
    return "node_" + "_".join(map(str, block)) + (f"_up{up}" if up else "")


def _chain_above(node) -> int:
    """How many single-child levels sit above the innermost node with the same sites (0 for most nodes): a node
    whose only child is internal covers the same block as that child."""
    up = 0
    while not isinstance(node, int) and len(node) == 1 and not isinstance(node[0], int):
        node, up = node[0], up + 1
    return up


def ht_node_key(node) -> tuple[int, ...]:
    """Key of an internal node in ``widths`` and :meth:`HierarchicalTensorFactorization.local_component_norms`:
    its block of sites, followed by one ``-1`` per single-child level it sits above a node with the same block
    (e.g. ``(1, 2, -1)`` for the outer node of ``((1, 2),)``)."""
    return tuple(tree_leaves(node)) + (-1,) * _chain_above(node)


def ht_structure(
    tree: ModeTree, shape: tuple[int, ...], width: dict[tuple[int, ...], int]
) -> tuple[TNStructure, list[dict]]:
    """One matrix per tree node (P3's parameterization) and a vector at the root.

    Leaf ``n``: ``leaf{n}`` with indices ``(x{n}, h_parent)``. Internal non-root node with block ``B``:
    ``node_<B>`` with indices ``(h_B, h_parent)``. Root: ``root`` with index ``(h_root,)``. The hyper-index
    ``h_B`` (size ``width[B]``) joins node ``B``'s matrix rows with its children's matrix columns: its values
    are the node's *local components*. A node whose only child is internal covers the same block as that child;
    it is named ``node_<B>_up<k>`` / ``h_<B>_up<k>`` (``k`` levels above the innermost node of the block) and
    keyed by :func:`ht_node_key` in ``width``.

    Returns
    -------
    structure : TNStructure
    nodes : list of dict
        For every internal node (post-order): ``block``, ``key`` (:func:`ht_node_key`), ``index`` (its
        hyper-index), ``tensor`` (its own matrix/vector), ``children`` (the children's tensor names).
    """
    tensors: list[TensorSpec] = []
    nodes: list[dict] = []

    def visit(node, parent_ind: str | None, parent_dim: int | None) -> str:
        if isinstance(node, int):  # a leaf: the tree has >= 2 leaves, so every leaf has a parent
            assert parent_ind is not None and parent_dim is not None
            name = f"leaf{node}"
            tensors.append(TensorSpec(name, (f"x{node}", parent_ind), (shape[node], parent_dim)))
            return name
        block = tuple(tree_leaves(node))
        key = ht_node_key(node)
        up = _chain_above(node)
        ind = "h_root" if parent_ind is None else "h_" + "_".join(map(str, block)) + (f"_up{up}" if up else "")
        children = [visit(c, ind, width[key]) for c in node]
        if parent_ind is None:
            name = "root"
            tensors.append(TensorSpec(name, (ind,), (width[key],)))
        else:
            assert parent_dim is not None
            name = _node_name(block, up)
            tensors.append(TensorSpec(name, (ind, parent_ind), (width[key], parent_dim)))
        nodes.append({"block": block, "key": key, "index": ind, "tensor": name, "children": children})
        return name

    visit(tree, None, None)
    return TNStructure(tuple(tensors), tuple(f"x{n}" for n in range(len(shape))), None), nodes


def _contract_ht_node(
    kids: list[tuple[torch.Tensor, list[int]]], own: torch.Tensor
) -> tuple[torch.Tensor, list[int]]:
    r"""One HT node: :math:`T[a_1 \ldots a_k, s] = \sum_r \prod_c K_c[a_c, r] \, M[r, s]`.

    Parameters
    ----------
    kids : list of (tensor (*modes_c, w), list of int)
        The children's subtree tensors (last axis: this node's hyper-index of width ``w``) and their modes.
    own : tensor (w, s) or (w,)
        The node's matrix, or the root's vector.

    Returns
    -------
    tensor (prod of all modes, s) or (prod of all modes,) at the root, and its modes (in row-major order).

    Notes
    -----
    One child ``F`` (``B`` rows; the largest when there are 3+ children, else the last) is left out of the outer
    product ``P`` (``A`` rows) of the others and folded into a matmul instead; the flop count stays
    ``A·B·w·s`` but the ``(A·B, w)`` outer product is not materialized (nor gone through in backward):

    * root (``own`` a vector ``m``): ``P @ (F ⊙ m)^T``, shape ``(A, B)``;
    * ``s < A``: ``P @ G`` with ``G[r, (b, s)] = F[b, r] M[r, s]`` (``w·B·s`` entries instead of ``A·B·w``);
    * otherwise the full outer product times ``M`` (it is the smaller intermediate).
    """
    mats = [(arr.reshape(-1, arr.shape[-1]), list(m)) for arr, m in kids]
    if len(mats) == 1:  # a node with one child: its matrix times the node's
        return mats[0][0] @ own, mats[0][1]
    fold = len(mats) - 1 if len(mats) < 3 else max(range(len(mats)), key=lambda k: (mats[k][0].shape[0], k))
    f, f_modes = mats.pop(fold)
    acc, modes = mats[0]
    modes = list(modes)
    for arr, m in mats[1:]:
        acc = (acc.unsqueeze(1) * arr.unsqueeze(0)).reshape(-1, arr.shape[1])
        modes += m
    modes += f_modes
    if own.dim() == 1:
        return (acc @ (f * own).T).reshape(-1), modes
    w, s = own.shape
    if s < acc.shape[0]:
        g = (f.T.unsqueeze(2) * own.unsqueeze(1)).reshape(w, -1)  # (w, B·s)
        return (acc @ g).reshape(-1, s), modes
    return (acc.unsqueeze(1) * f.unsqueeze(0)).reshape(-1, w) @ own, modes


class HierarchicalTensorFactorization(TNModel):
    r"""Hierarchical tensor (HT) factorization over a mode tree (P3): deep ConvAC without inputs.

    Every tree node ``ν`` holds a matrix; at an internal node, the tensor of its subtree is
    :math:`\sum_{r} (\otimes_{c} \text{column}_r(W^{c})) \otimes \text{row}_r(W^{\nu})`, the sum running over
    the node's ``width`` local components. The root holds a vector (output of size 1).

    Parameters
    ----------
    shape : sequence of int
        Mode sizes (equal sizes, see :class:`TensorFactorization`).
    tree : nested sequences of mode ids, optional
        Mode tree; default: 1-D contiguous binary tree (``((0, 1), (2, 3))`` for order 4, ``((0, 1), 2)`` for 3).
    ranks : int or sequence of int
        Number of local components (hyper-index width) of the internal nodes of each level ``l = 1..height``
        (``ranks[l-1]``), or one int for all.
    init_scale : float
        Every entry i.i.d. ``N(0, init_scale²)``.
    device, dtype : factory kwargs.

    Notes
    -----
    The matricization rank of the end tensor at node ``ν`` (its modes vs. the rest) is at most
    ``min(width(ν), width(parent(ν)))`` (a leaf: ``min(d, width(parent))``), and at most the number of
    nonzero local components at ``ν``.

    Examples
    --------
    >>> m = HierarchicalTensorFactorization((2, 2, 2, 2), ranks=[2, 3], init_scale=0.5, dtype=torch.float64)
    >>> m.tensor().shape
    torch.Size([2, 2, 2, 2])
    >>> [tuple(n["block"]) for n in m.nodes]
    [(0, 1), (2, 3), (0, 1, 2, 3)]
    """

    #: one parameter per factor: GroupRMSprop and the dynamics trackers treat every factor as its own group
    stack_cores = False

    def __init__(
        self,
        shape: Sequence[int],
        tree=None,
        ranks: int | Sequence[int] = 8,
        init_scale: float = 1e-2,
        *,
        device=None,
        dtype=None,
    ) -> None:
        self.shape = _tensor_shape(shape, 2)
        n = len(self.shape)
        top = ranks if is_int(ranks) else max((int(r) for r in ranks if is_int(r)), default=1)
        check_model_size(
            f"HierarchicalTensorFactorization(shape={self.shape}, ranks={ranks})",
            n_params=n * (self.shape[0] * top + top**3), n_tensors=2 * n, dtype=dtype, device=device,
            fix="a smaller shape or ranks",
        )
        tree = contiguous_tree(n, 2) if tree is None else validate_tree(tree, n)
        if isinstance(tree, int):
            raise ValueError("tree must have at least 2 leaves")
        height = tree_height(tree)
        if is_int(ranks):
            ranks = [positive_int("ranks", ranks)] * height
        else:
            ranks = [positive_int(f"ranks[{k}]", int(r)) for k, r in enumerate(ranks)]
            if len(ranks) != height:
                raise ValueError(
                    f"ranks has {len(ranks)} entries but the tree has {height} levels of internal nodes; give one "
                    "width per level (level 1 = parents of leaves, last = root) or a single int"
                )
        self.tree = tree
        self.ranks = tuple(ranks)
        self.init_scale = as_float("init_scale", init_scale, positive=True)
        width: dict[tuple[int, ...], int] = {}

        def collect(node) -> None:
            if isinstance(node, int):
                return
            width[ht_node_key(node)] = self.ranks[tree_height(node) - 1]
            for c in node:
                collect(c)

        collect(tree)
        self.widths = width
        structure, self.nodes = ht_structure(tree, self.shape, width)
        super().__init__(structure, "identity", device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for p in self.cores.values():
                p.normal_(0.0, self.init_scale)

    def tensor(self) -> torch.Tensor:
        """End tensor, shape ``shape``, contracted bottom-up node by node (:func:`_contract_ht_node`: the
        outer product of a node's children is never formed in full where a matmul can absorb one child)."""
        cores = self.core_dict()
        sub: dict[str, tuple[torch.Tensor, list[int]]] = {}  # tensor name -> (array (*modes, parent), modes)
        for n in range(len(self.shape)):
            sub[f"leaf{n}"] = (cores[f"leaf{n}"], [n])
        for node in self.nodes:
            kids = [sub.pop(c) for c in node["children"]]
            sub[node["tensor"]] = _contract_ht_node(kids, cores[node["tensor"]])
        out, modes = sub.pop("root")
        out = out.reshape([self.shape[m] for m in modes])
        return out.permute([modes.index(k) for k in range(len(self.shape))])

    def local_component_norms(self) -> dict[tuple[int, ...], torch.Tensor]:
        r"""``{node block: norms}``: norm of local component ``(ν, r)`` = product of the norms of column ``r`` of
        each child's matrix and of row ``r`` of ``ν``'s matrix (entry ``r`` at the root), shape ``(width(ν),)``
        (detached). A node whose only child is internal is keyed by :func:`ht_node_key` (block, then ``-1``)."""
        with torch.no_grad():
            cores = self.core_dict()
            out = {}
            for node in self.nodes:
                own = cores[node["tensor"]]
                nrm = own.abs() if own.dim() == 1 else own.norm(dim=1)
                for c in node["children"]:
                    nrm = nrm * cores[c].norm(dim=0)
                out[node["key"]] = nrm
            return out

    def extra_repr(self) -> str:
        return f"shape={self.shape}, tree={self.tree}, ranks={self.ranks}, init_scale={self.init_scale}"
