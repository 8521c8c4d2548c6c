"""A GCN node classifier (Kipf & Welling) in plain torch, with sparse matmul; torch_geometric is never needed.

Each layer computes ``H ← σ(Â H W)`` with the symmetric-normalized adjacency with self-loops
``Â = D^{-1/2} (A + I) D^{-1/2}`` (``D`` the degrees of ``A + I``); the last layer has no activation and returns
logits. Used by the experiment ``wis-sparsification`` (P4's GCN: depth 3, hidden 64). :class:`GraphGCN` is
the graph-prediction variant on one fixed graph (experiment ``gnn-interactions``).
"""

from __future__ import annotations

import warnings
from typing import cast

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from tnml.graphs import as_indexed_graph
from tnml.options import AdjacencyLayout
from tnml.validation import check_option, positive_int

__all__ = ["GCN", "GraphGCN", "normalized_adjacency"]


def _edge_array(graph, n: int | None) -> tuple[np.ndarray, int]:
    """Undirected simple edges as an (E, 2) int array of vertex indices 0..n-1, and n."""
    if isinstance(graph, torch.Tensor):
        if graph.dim() != 2 or graph.shape[0] != 2:
            raise ValueError(f"edge_index must have shape (2, E), got {tuple(graph.shape)}")
        if graph.dtype.is_floating_point or graph.dtype == torch.bool:
            raise TypeError(f"edge_index must hold integers, got dtype {graph.dtype}")
        e = graph.detach().cpu().numpy().astype(np.int64).T
        n_min = int(e.max()) + 1 if e.size else 0
    else:
        g = as_indexed_graph(graph)
        if g.labels and not all(isinstance(lab, (int, np.integer)) for lab in g.labels):
            # non-integer labels: vertices are numbered in the graph's (sorted) vertex order
            e = np.asarray(g.edges, dtype=np.int64).reshape(-1, 2)
            n_min = len(g.labels)
        else:
            lab = np.asarray(g.labels, dtype=np.int64)
            e = lab[np.asarray(g.edges, dtype=np.int64).reshape(-1, 2)] if len(lab) else np.zeros((0, 2), np.int64)
            n_min = int(lab.max()) + 1 if len(lab) else 0
    if e.size and e.min() < 0:
        raise ValueError(f"vertex indices must be >= 0, got {int(e.min())}")
    if n is None:
        n = n_min
    elif n < n_min:
        raise ValueError(f"n = {n} but the graph has vertex index {n_min - 1}")
    return e.reshape(-1, 2), int(n)


def normalized_adjacency(
    graph, n: int | None = None, dtype=torch.float32, device=None, layout: AdjacencyLayout = "csr"
) -> torch.Tensor:
    """``Â = D^{-1/2} (A + I) D^{-1/2}`` as a torch sparse tensor of shape (n, n) (CSR by default).

    Parameters
    ----------
    graph : torch edge_index (2, E), networkx graph, or edge list
        Read as a simple undirected graph: both directions are added, repeats and self-loops are dropped (the
        self-loop of ``A + I`` is always added once). Integer vertex labels are used as indices; other labels are
        numbered in sorted vertex order.
    n : int, optional
        Number of vertices (isolated trailing vertices included); default: the largest index + 1.
    dtype, device : torch dtype and device of the result.
    layout : {"csr", "coo"}
        ``"csr"`` (default; several times faster in training on CPU) or a coalesced ``"coo"``.

    Returns
    -------
    torch.Tensor
        Sparse (n, n); entry (u, v) is ``1/sqrt((deg u + 1)(deg v + 1))`` for every edge and ``u = v``.

    Examples
    --------
    >>> a = normalized_adjacency(torch.tensor([[0], [1]]), n=3).to_dense()
    >>> [round(x, 3) for x in a[0].tolist()], a[2, 2].item()
    ([0.5, 0.5, 0.0], 1.0)
    """
    check_option("layout", layout, AdjacencyLayout)
    e, n = _edge_array(graph, n)
    e = e[e[:, 0] != e[:, 1]]
    if e.size:
        und = np.unique(np.sort(e, axis=1), axis=0)
        rows = np.concatenate([und[:, 0], und[:, 1], np.arange(n)])
        cols = np.concatenate([und[:, 1], und[:, 0], np.arange(n)])
    else:
        rows = cols = np.arange(n)
    deg = np.bincount(rows, minlength=n).astype(np.float64)  # degree in A + I
    dinv = 1.0 / np.sqrt(deg)
    vals = dinv[rows] * dinv[cols]
    if layout == "coo":
        idx = torch.from_numpy(np.stack([rows, cols]).astype(np.int64))
        adj = torch.sparse_coo_tensor(idx, torch.from_numpy(vals).to(dtype), (n, n), check_invariants=True)
        return adj.coalesce().to(device)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    m.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data).to(dtype),
            (n, n),
            device=device,
            check_invariants=True,
        )


class GCN(nn.Module):
    """Graph convolutional network for node classification.

    Parameters
    ----------
    in_dim, hidden_dim, out_dim : int
        Feature, hidden and class dimensions.
    depth : int
        Number of graph-convolution layers (>= 1); ``depth - 1`` hidden layers of width ``hidden_dim``.
    dropout : float
        Dropout before every layer (training mode only).

    Examples
    --------
    >>> model = GCN(5, 8, 3, depth=3)
    >>> adj = normalized_adjacency(torch.tensor([[0, 1], [1, 2]]), n=4)
    >>> model(torch.randn(4, 5), adj).shape
    torch.Size([4, 3])
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, depth: int = 3, dropout: float = 0.5):
        super().__init__()
        in_dim, hidden_dim, out_dim, depth = (
            positive_int(n, v) for n, v in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim),
                                            ("depth", depth))
        )  # fmt: skip
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        dims = [in_dim] + [hidden_dim] * (depth - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = float(dropout)
        self.depth = int(depth)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Logits (n, out_dim) from features ``x`` (n, in_dim) and ``adj`` = :func:`normalized_adjacency`."""
        if x.dim() != 2 or x.shape[1] != self.layers[0].in_features:
            raise ValueError(f"x must have shape (n, {self.layers[0].in_features}), got {tuple(x.shape)}")
        if adj.shape != (x.shape[0], x.shape[0]):
            raise ValueError(f"adj must have shape ({x.shape[0]}, {x.shape[0]}), got {tuple(adj.shape)}")
        h = x
        for k, layer in enumerate(self.layers):
            h = nn.functional.dropout(h, self.dropout, self.training)
            h = layer(h)
            h = adj @ h  # sparse (CSR / COO) or dense
            if k < len(self.layers) - 1:
                h = torch.relu(h)
        return h


class GraphGCN(nn.Module):
    """GCN for graph prediction on one fixed graph (every sample has the same graph, different vertex features).

    ``depth`` layers ``H ← LayerNorm(ReLU(Â H W + b))`` (``Â`` = :func:`normalized_adjacency`),
    then the mean over vertices and a linear head.

    Parameters
    ----------
    edges : edge list on vertices ``0 .. n_vertices-1``
    n_vertices, in_dim, hidden_dim, out_dim, depth : int

    Examples
    --------
    >>> m = GraphGCN([(0, 1), (1, 2)], 3, in_dim=4, hidden_dim=8, out_dim=2, depth=2)
    >>> m(torch.randn(5, 3, 4)).shape
    torch.Size([5, 2])
    """

    adj: torch.Tensor  # the dense normalized adjacency (a non-persistent buffer)

    def __init__(self, edges, n_vertices: int, in_dim: int, hidden_dim: int, out_dim: int = 2, depth: int = 3):
        super().__init__()
        n_vertices, in_dim, hidden_dim, out_dim, depth = (
            positive_int(n, v) for n, v in (("n_vertices", n_vertices), ("in_dim", in_dim), ("hidden_dim", hidden_dim),
                                            ("out_dim", out_dim), ("depth", depth))
        )  # fmt: skip
        ei = torch.tensor(list(edges), dtype=torch.long).reshape(-1, 2).T
        self.register_buffer("adj", normalized_adjacency(ei, n_vertices).to_dense(), persistent=False)
        dims = [in_dim] + [hidden_dim] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim) for _ in range(depth))
        self.head = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (batch, n_vertices, in_dim) -> logits (batch, out_dim)."""
        in_dim = cast(nn.Linear, self.layers[0]).in_features
        if x.dim() != 3 or x.shape[1] != self.adj.shape[0] or x.shape[2] != in_dim:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (batch, {self.adj.shape[0]}, {in_dim})")
        n, b = x.shape[1], x.shape[0]
        h = x.transpose(0, 1)  # vertex-major (n, batch, features): Â acts as one (n, n) @ (n, batch * features) mm
        for module, norm in zip(self.layers, self.norms):
            layer = cast(nn.Linear, module)
            z = nn.functional.linear(h, layer.weight)  # Â (H W) + b, as torch_geometric's GCNConv
            z = (self.adj @ z.reshape(n, -1)).reshape(n, b, -1) + layer.bias
            h = norm(torch.relu(z))
        return self.head(h.mean(dim=0))
