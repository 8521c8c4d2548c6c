"""Product-aggregation GNN (P4): fast message passing in torch, and the same function as a tensor network.

The model (P4, Razin, Verbin, Cohen, NeurIPS 2023). ``N(i)`` is the neighbourhood of vertex ``i`` *including*
``i`` (self-loops are always added).

    h^{(0,i)} = x^{(i)}                                              (in_dim = D_x)
    h^{(l,i)} = ⊙_{j ∈ N(i)} ( W^{(l)} h^{(l-1,j)} )                 (l = 1..L, width D_h; ⊙ = Hadamard product)
    graph output:  W^o ( ⊙_{i ∈ V} h^{(L,i)} )
    vertex output: W^o h^{(L,t)}                                     (t = the target vertex)

There are no biases and no nonlinearity besides the products, so the output is a multilinear polynomial in the
*copies* of the inputs: ``x^{(v)}`` enters ``ρ_L(T, {v})`` times (``T = V`` for graph prediction, ``{t}`` for
vertex prediction; ``ρ`` counts walks on ``Â = A + I``, see :mod:`tnml.entanglement.walk_index`).

Tensor network (:meth:`ProductGNN.to_quimb`). Unroll the *computation tree*: its root is the readout, the root's
children are the vertices ``i ∈ V`` at layer ``L`` (graph output) or the target ``t`` at layer ``L`` (vertex output),
and a node for vertex ``i`` at layer ``l ≥ 1`` has one child per ``j ∈ N(i)`` at layer ``l − 1``. Every tree edge
from a layer-``l`` node ``p`` to its child ``c`` becomes a copy of the matrix ``W^{(l)}`` with indices
``(state of p, state of c)``; the state of a layer-0 node of vertex ``v`` is an open leg ``x{v}_{k}`` (the
``k``-th copy of vertex ``v``'s input, ``v`` its position in the vertex order). The Hadamard product at ``p`` is a
COPY (delta) tensor joining the matrices of all its children and its own parent: by default a quimb *hyper-index*
(all those matrices share the index ``h{p}``; a hyper-index sums over its value once and multiplies the entries,
which is exactly ``⊙``), or with ``copy_tensors=True`` an explicit dense delta tensor ``δ_{a a ... a}``. The readout
is ``W^o`` with indices ``("y", state of root)``; for graph output the product over vertices is one more hyper-index
(or delta tensor) joining the ``n`` layer-``L`` states. Contracting the network with ``x^{(v)}`` attached to every
leg ``x{v}_{k}`` gives ``forward(x)``. The tree has ``Σ_{l=0..L} ρ_{L-l}(T, V)`` nodes — exponential in ``L`` —
so building it is refused beyond ``max_tensors``.
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import torch
from torch import nn

from tnml.graphs import IndexedGraph, as_indexed_graph, augmented_adjacency, propagate, vertex_set
from tnml.options import GNNInit, GNNOutput
from tnml.validation import as_float, check_model_size, check_option, positive_int

__all__ = ["ProductGNN"]

#: default cap on the number of tensors of :meth:`ProductGNN.to_quimb`
DEFAULT_MAX_TENSORS = 20_000
#: cap on the entries of one explicit COPY tensor (``copy_tensors=True``)
MAX_COPY_ENTRIES = 2**22


class ProductGNN(nn.Module):
    r"""Product-aggregation GNN of P4 over a fixed graph.

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
        Read by :func:`tnml.entanglement.walk_index.as_indexed_graph` (simple undirected; vertices ordered by sorted
        label). Self-loops are always added. ``x[:, k]`` is the input of vertex ``self.labels[k]``.
    in_dim : int
        ``D_x``, size of each vertex's input vector.
    hidden_dim : int
        ``D_h``, the width.
    depth : int
        ``L >= 1``, the number of layers.
    output : {"graph", "vertex"}
        Graph prediction (product over all vertices) or prediction at ``target``.
    target : vertex label, optional
        Required for (and only for) ``output="vertex"``.
    out_dim : int
        Size of the output (rows of ``W^o``).
    init : {"normal", "orthogonal"}
        ``"normal"``: weights N(0, init_std²). ``"orthogonal"``: every matrix (and the head) has orthonormal rows
        or columns (QR of a Gaussian) — products of many factors stay well conditioned, which makes numerical
        separation ranks sharp.
    init_std : float, optional
        Std of ``init="normal"``; default ``1/sqrt(fan_in)``.
    device, dtype :
        Of the parameters (default: torch's default dtype).

    Attributes
    ----------
    weights : nn.ParameterList
        ``weights[l-1] = W^{(l)}``, shape ``(D_h, D_x)`` for ``l = 1`` and ``(D_h, D_h)`` after.
    head : nn.Parameter
        ``W^o``, shape ``(out_dim, D_h)``.

    Examples
    --------
    >>> m = ProductGNN([(0, 1), (1, 2)], in_dim=2, hidden_dim=3, depth=2, dtype=torch.float64)
    >>> m(torch.randn(5, 3, 2, dtype=torch.float64)).shape
    torch.Size([5, 1])
    >>> x = torch.rand(3, 2, dtype=torch.float64)
    >>> tn = m.to_quimb(x=x)            # inputs attached: a closed network but for "y"
    >>> ref = m(x.unsqueeze(0))[0, 0].item()
    >>> bool(abs(tn.contract(output_inds=("y",)).data[0] - ref) <= 1e-9 * max(1.0, abs(ref)))
    True
    """

    neighbour_index: torch.Tensor  # a buffer: (n_vertices, max degree + 1), padded with n_vertices

    def __init__(
        self,
        graph,
        in_dim: int,
        hidden_dim: int,
        depth: int,
        output: GNNOutput = "graph",
        target=None,
        out_dim: int = 1,
        *,
        init: GNNInit = "normal",
        init_std: float | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.in_dim = positive_int("in_dim", in_dim)
        self.hidden_dim = positive_int("hidden_dim", hidden_dim)
        self.depth = positive_int("depth", depth)
        self.out_dim = positive_int("out_dim", out_dim)
        check_model_size(
            f"ProductGNN(in_dim={self.in_dim}, hidden_dim={self.hidden_dim}, depth={self.depth})",
            n_params=self.hidden_dim * (self.in_dim + (self.depth - 1) * self.hidden_dim + self.out_dim),
            n_tensors=self.depth + 1, dtype=dtype, device=device, fix="a smaller hidden_dim or depth",
        )
        self.ig: IndexedGraph = as_indexed_graph(graph)
        check_option("output", output, GNNOutput, fix="'graph': product over all vertices, 'vertex': at target")
        if output == "vertex" and target is None:
            raise ValueError("output='vertex' needs target=<vertex label>, the vertex whose prediction is read out")
        if output == "graph" and target is not None:
            raise ValueError(f"target={target!r} is only used with output='vertex'; drop it or set output='vertex'")
        self.output = output
        self.target = target
        self.target_index = None if target is None else vertex_set(self.ig, [target], "target")[0]
        check_option("init", init, GNNInit)
        self.init = init
        self.init_std = None if init_std is None else as_float("init_std", init_std, positive=True)
        kw = {"device": device, "dtype": dtype if dtype is not None else torch.get_default_dtype()}
        dims = [self.in_dim] + [self.hidden_dim] * (self.depth - 1)
        self.weights = nn.ParameterList([nn.Parameter(torch.empty(self.hidden_dim, d, **kw)) for d in dims])
        self.head = nn.Parameter(torch.empty(self.out_dim, self.hidden_dim, **kw))
        # neighbourhoods with self-loops, padded with index n (a row of ones) for the batched product
        nbrs = [sorted(s | {i}) for i, s in enumerate(self.ig.adjacency_sets())]
        self._nbrs = nbrs
        k = max(len(s) for s in nbrs)
        n = self.ig.n_vertices
        pad = torch.full((n, k), n, dtype=torch.long)
        for i, s in enumerate(nbrs):
            pad[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        self.register_buffer("neighbour_index", pad.to(device), persistent=False)
        self.reset_parameters()

    # ------------------------------------------------------------------ basics
    @property
    def labels(self) -> list:
        """Vertex labels; ``x[:, k]`` belongs to ``labels[k]``."""
        return self.ig.labels

    @property
    def n_vertices(self) -> int:
        return self.ig.n_vertices

    @property
    def n_sites(self) -> int:
        """Same as :attr:`n_vertices` (the sites of :func:`tnml.entanglement.separation_rank`)."""
        return self.ig.n_vertices

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for p in [*self.weights, self.head]:
                if self.init == "orthogonal":
                    nn.init.orthogonal_(p)
                    continue
                std = self.init_std if self.init_std is not None else p.shape[1] ** -0.5
                p.normal_(0.0, std)

    def extra_repr(self) -> str:
        t = f", target={self.target!r}" if self.target is not None else ""
        return (
            f"n_vertices={self.n_vertices}, n_edges={self.ig.n_edges}, in_dim={self.in_dim}, "
            f"hidden_dim={self.hidden_dim}, depth={self.depth}, output={self.output!r}{t}, out_dim={self.out_dim}"
        )

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, n_vertices, in_dim)`` -> ``(batch, out_dim)``."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x)
        if x.dim() != 3 or x.shape[1] != self.n_vertices or x.shape[2] != self.in_dim:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; expected (batch, n_vertices={self.n_vertices}, in_dim={self.in_dim})"
            )
        ref = self.head
        h = x.to(dtype=ref.dtype, device=ref.device)
        idx = self.neighbour_index
        for w in self.weights:
            m = h @ w.T  # (B, n, D_h)
            m = torch.cat([m, torch.ones_like(m[:, :1])], dim=1)  # padding row of ones
            h = m[:, idx].prod(dim=2)  # (B, n, K, D_h) -> (B, n, D_h)
        z = h.prod(dim=1) if self.output == "graph" else h[:, self.target_index]
        return z @ self.head.T

    # ------------------------------------------------------------------ tensor network
    def input_multiplicities(self) -> dict:
        """Vertex label -> how many times its input enters the network, ``ρ_L(T, {v})`` (= its degree as a
        polynomial; the number of legs ``x{k}_{c}`` of :meth:`to_quimb`)."""
        return {self.labels[i]: int(c) for i, c in enumerate(self._walks(self.depth))}

    def _walks(self, k: int) -> np.ndarray:
        """``y[v] = ρ_k(T, {v})`` (T = V or {t})."""
        n = self.n_vertices
        src = np.ones(n, dtype=np.int64) if self.output == "graph" else np.eye(n, dtype=np.int64)[self.target_index]
        return propagate(augmented_adjacency(self.ig), src, k)

    def n_tree_tensors(self, copy_tensors: bool = False) -> int:
        """Number of tensors :meth:`to_quimb` would build (without input tensors)."""
        # matrices: one per tree edge = nodes of layers 0..L-1; head: 1
        n = sum(int(sum(int(v) for v in self._walks(k))) for k in range(1, self.depth + 1)) + 1
        if copy_tensors:  # one delta per node of layers 1..L, one for the graph readout
            n += sum(int(sum(int(v) for v in self._walks(k))) for k in range(0, self.depth))
            n += 1 if self.output == "graph" else 0
        return n

    def to_quimb(self, x=None, *, copy_tensors: bool = False, max_tensors: int = DEFAULT_MAX_TENSORS):
        """The GNN as a ``quimb.tensor.TensorNetwork`` over its computation tree (see the module docstring).

        Parameters
        ----------
        x : array-like, shape (n_vertices, in_dim) or (batch, n_vertices, in_dim), optional
            Attach these inputs (tensors tagged ``"input"``) to every leg ``x{k}_{c}``; a batch adds the hyper-index
            ``"batch"``. Without ``x`` the legs stay open.
        copy_tensors : bool
            Explicit dense COPY tensors (tags ``"copy"``) instead of hyper-indices for the products.
        max_tensors : int
            Refuse to build more tensors than this (the tree grows exponentially with depth).

        Returns
        -------
        quimb.tensor.TensorNetwork
            Open indices: ``"y"`` (size ``out_dim``), plus the input legs when ``x`` is None, ``"batch"`` when ``x``
            is batched. Matrices are tagged ``"W{l}"`` (layer) and ``"W{l}_{node}"``; the head ``"head"``.
        """
        import quimb.tensor as qtn

        total = self.n_tree_tensors(copy_tensors)
        if total > max_tensors:
            raise ValueError(
                f"the computation tree of depth {self.depth} needs {total:,} tensors, above max_tensors={max_tensors:,}"
                "; use a smaller graph or depth, or raise max_tensors"
            )
        ws = [w.detach().cpu().numpy() for w in self.weights]
        tensors = []
        counter = itertools.count()
        legs: dict[int, list[str]] = {i: [] for i in range(self.n_vertices)}

        def delta(order: int, dim: int) -> np.ndarray:
            if dim**order > MAX_COPY_ENTRIES:
                raise ValueError(
                    f"a COPY tensor of order {order} and dim {dim} has {dim**order:,} entries; use copy_tensors=False"
                )
            d = np.zeros((dim,) * order, dtype=ws[0].dtype)
            d[(np.arange(dim),) * order] = 1
            return d

        def build(vertex: int, layer: int, parent_ind: str) -> None:
            """Tensors computing ``h^{(layer, vertex)}`` into index ``parent_ind`` (the Hadamard product's index)."""
            kids = self._nbrs[vertex]
            if copy_tensors:
                ms = [f"m{next(counter)}" for _ in kids]
                dt = delta(len(kids) + 1, self.hidden_dim)
                tensors.append(qtn.Tensor(dt, inds=(parent_ind, *ms), tags={"copy"}))
            else:
                ms = [parent_ind] * len(kids)
            for j, m in zip(kids, ms):
                node = next(counter)
                if layer == 1:
                    child = f"x{j}_{len(legs[j])}"
                    legs[j].append(child)
                else:
                    child = f"h{node}"
                tensors.append(
                    qtn.Tensor(ws[layer - 1].copy(), inds=(m, child), tags={f"W{layer}", f"W{layer}_{node}"})
                )
                if layer > 1:
                    build(j, layer - 1, child)

        head = self.head.detach().cpu().numpy().copy()
        tensors.append(qtn.Tensor(head, inds=("y", "g"), tags={"head"}))
        if self.target_index is not None:  # output="vertex"
            build(self.target_index, self.depth, "g")
        elif copy_tensors:
            roots = [f"r{i}" for i in range(self.n_vertices)]
            tensors.append(qtn.Tensor(delta(self.n_vertices + 1, self.hidden_dim), inds=("g", *roots), tags={"copy"}))
            for i in range(self.n_vertices):
                build(i, self.depth, roots[i])
        else:
            for i in range(self.n_vertices):
                build(i, self.depth, "g")
        if x is not None:
            xa = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=ws[0].dtype)
            batched = xa.ndim == 3
            if xa.shape[-2:] != (self.n_vertices, self.in_dim) or xa.ndim not in (2, 3):
                raise ValueError(
                    f"x has shape {xa.shape}; expected (n_vertices={self.n_vertices}, in_dim={self.in_dim}) or "
                    "(batch, n_vertices, in_dim)"
                )
            for v, names in legs.items():
                for name in names:
                    if batched:
                        tensors.append(qtn.Tensor(xa[:, v].copy(), inds=("batch", name), tags={"input"}))
                    else:
                        tensors.append(qtn.Tensor(xa[v].copy(), inds=(name,), tags={"input"}))
        return qtn.TensorNetwork(tensors, virtual=True)

    def input_legs(self) -> dict:
        """Vertex label -> the names of its input legs in :meth:`to_quimb` (in build order)."""
        counts = self._walks(self.depth)
        return {self.labels[i]: [f"x{i}_{c}" for c in range(int(counts[i]))] for i in range(self.n_vertices)}

    def graph(self, *, copy_tensors: bool = False, max_tensors: int = DEFAULT_MAX_TENSORS) -> nx.MultiGraph:
        """The tensor network of :meth:`to_quimb` as a networkx multigraph (:meth:`tnml.TNStructure.graph`
        conventions: tensor nodes, ``"input:<leg>"`` terminals with ``site`` = position among all legs and
        ``vertex`` = the vertex label, ``"output:y"``, ``"hyper:<ind>"`` nodes for the hyper-indices)."""
        from tnml.quimb_interop import structure_from_quimb

        tn = self.to_quimb(copy_tensors=copy_tensors, max_tensors=max_tensors)
        legs = self.input_legs()
        order = [leg for v in self.labels for leg in legs[v]]
        g = structure_from_quimb(tn, order, "y")[0].graph()
        for v in self.labels:
            for leg in legs[v]:
                g.nodes[f"input:{leg}"]["vertex"] = v
        return g
