"""Embedded graphs for node classification: a seeded contextual stochastic block model and Zachary's karate club."""

from __future__ import annotations

import networkx as nx
import numpy as np

from tnml.validation import positive_int

__all__ = ["contextual_sbm", "edge_homophily", "karate_club"]


def contextual_sbm(
    n: int = 600,
    n_classes: int = 3,
    p_in: float = 0.03,
    p_out: float = 0.005,
    feature_dim: int = 16,
    signal: float = 1.0,
    seed: int = 0,
) -> tuple[nx.Graph, np.ndarray, np.ndarray]:
    """Contextual stochastic block model: SBM edges and Gaussian features with class-dependent means.

    Classes are balanced (vertex ``i`` gets class ``i mod n_classes`` before a seeded shuffle, so class sizes differ
    by at most one). Each pair ``u < v`` is an edge with probability ``p_in`` (same class) or ``p_out``. Features
    ``x_v = μ_{y_v} + ε_v`` with ``ε_v ~ N(0, I)`` and class means ``μ_c`` drawn ``N(0, I)`` then scaled to norm
    ``signal`` (so ``signal`` sets how informative features are on their own).

    Parameters
    ----------
    n : int
        Number of vertices (>= n_classes).
    n_classes : int
        Number of classes (>= 2).
    p_in, p_out : float
        Edge probabilities within and between classes, in [0, 1].
    feature_dim : int
        Feature dimension (>= 1).
    signal : float
        Norm of each class mean (>= 0).
    seed : int
        Everything is a function of the seed.

    Returns
    -------
    graph : networkx.Graph
        Vertices ``0..n-1`` (all present, isolated ones included), undirected, no self-loops.
    x : ndarray of float32, shape (n, feature_dim)
    y : ndarray of int64, shape (n,)

    Examples
    --------
    >>> g, x, y = contextual_sbm(60, 3, 0.2, 0.02, feature_dim=4, seed=1)
    >>> g.number_of_nodes(), x.shape, sorted(np.bincount(y).tolist())
    (60, (60, 4), [20, 20, 20])
    """
    n_classes = positive_int("n_classes", n_classes, 2)
    n = positive_int("n", n, n_classes, fix=f"at least one vertex per class (n_classes = {n_classes})")
    for name, p in (("p_in", p_in), ("p_out", p_out)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    feature_dim = positive_int("feature_dim", feature_dim)
    if signal < 0:
        raise ValueError(f"signal must be >= 0, got {signal!r}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    iu, ju = np.triu_indices(n, k=1)
    prob = np.where(y[iu] == y[ju], p_in, p_out)
    keep = rng.random(iu.size) < prob
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(iu[keep].tolist(), ju[keep].tolist()))
    mu = rng.standard_normal((n_classes, feature_dim))
    mu *= signal / np.maximum(np.linalg.norm(mu, axis=1, keepdims=True), 1e-12)
    x = (mu[y] + rng.standard_normal((n, feature_dim))).astype(np.float32)
    return g, x, y


def karate_club(features: str = "onehot", feature_dim: int = 8, seed: int = 0):
    """Zachary's karate club (networkx built-in, 34 vertices, 78 edges) labelled by its ``'club'`` attribute.

    Parameters
    ----------
    features : {"onehot", "random"}
        ``"onehot"``: the identity (34 × 34); ``"random"``: seeded standard normal (34 × feature_dim).
    feature_dim : int
        Width of random features.
    seed : int

    Returns
    -------
    graph : networkx.Graph
    x : ndarray of float32
    y : ndarray of int64 (0 = "Mr. Hi", 1 = "Officer")
    """
    g = nx.karate_club_graph()
    y = np.array([0 if g.nodes[v]["club"] == "Mr. Hi" else 1 for v in sorted(g.nodes)], dtype=np.int64)
    n = g.number_of_nodes()
    if features == "onehot":
        x = np.eye(n, dtype=np.float32)
    elif features == "random":
        x = np.random.default_rng(seed).standard_normal((n, feature_dim)).astype(np.float32)
    else:
        raise ValueError(f"features must be 'onehot' or 'random', got {features!r}")
    return nx.Graph(g.edges()), x, y


def edge_homophily(graph, y) -> float:
    """Fraction of edges whose endpoints share a label (nan for an edgeless graph)."""
    y = np.asarray(y)
    edges = list(graph.edges())
    if not edges:
        return float("nan")
    return float(np.mean([y[u] == y[v] for u, v in edges]))
