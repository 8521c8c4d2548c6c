"""Embedded graphs for node classification: seeded contextual stochastic block models (a plain one, and a
degree-corrected one that matches a real graph's statistics) and Zachary's karate club."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from tnml.options import KarateFeatures
from tnml.validation import as_float, check_option, positive_int

__all__ = ["GRAPH_STATISTICS", "contextual_sbm", "edge_homophily", "graph_like", "karate_club", "statistics_csbm"]

#: Statistics of the real graphs of P4's sparsification experiments (vertices, undirected edges, classes, edge
#: homophily, feature dimension, class sizes where known). Cora: Sen et al. 2008 as used by Kipf & Welling 2017
#: (2 708 papers, 5 278 undirected citation edges, 7 classes, 1 433-word binary bag of words); DBLP: Bojchevski &
#: Günnemann 2018 (17 716 vertices, 52 867 edges, 4 classes, 1 639 features); ogbn-arxiv: Hu et al. 2020
#: (169 343 vertices, 1 166 243 edges, 40 classes, 128 features). Edge homophily: Cora 0.81, DBLP 0.83,
#: ogbn-arxiv 0.65 (the fraction of edges joining same-class vertices; the CSBMs generated here use these values).
GRAPH_STATISTICS: dict[str, dict[str, Any]] = {
    "cora": dict(
        n=2708, n_edges=5278, n_classes=7, homophily=0.81, feature_dim=1433,
        class_sizes=(818, 426, 418, 351, 298, 217, 180),
    ),
    "dblp": dict(n=17716, n_edges=52867, n_classes=4, homophily=0.83, feature_dim=1639, class_sizes=None),
    "arxiv": dict(n=169343, n_edges=1166243, n_classes=40, homophily=0.65, feature_dim=128, class_sizes=None),
}  # fmt: skip


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
    signal = as_float("signal", signal, minimum=0.0, fix="the distance of the class means from 0")
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


def karate_club(features: KarateFeatures = "onehot", feature_dim: int = 8, seed: int = 0):
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
    check_option("features", features, KarateFeatures)
    g = nx.karate_club_graph()
    y = np.array([0 if g.nodes[v]["club"] == "Mr. Hi" else 1 for v in sorted(g.nodes)], dtype=np.int64)
    n = g.number_of_nodes()
    if features == "onehot":
        x = np.eye(n, dtype=np.float32)
    else:
        feature_dim = positive_int("feature_dim", feature_dim, fix="the width of the random features")
        x = np.random.default_rng(seed).standard_normal((n, feature_dim)).astype(np.float32)
    return nx.Graph(g.edges()), x, y


def edge_homophily(graph, y) -> float:
    """Fraction of edges whose endpoints share a label (nan for an edgeless graph)."""
    y = np.asarray(y)
    edges = list(graph.edges())
    if not edges:
        return float("nan")
    return float(np.mean([y[u] == y[v] for u, v in edges]))


def _class_sizes(n: int, n_classes: int, class_sizes) -> np.ndarray:
    if class_sizes is None:
        return np.bincount(np.arange(n) % n_classes, minlength=n_classes)
    sizes = np.asarray(class_sizes, dtype=np.int64)
    if sizes.ndim != 1 or sizes.size != n_classes or (sizes < 1).any() or sizes.sum() != n:
        raise ValueError(
            f"class_sizes must be {n_classes} positive integers summing to n = {n}, got {list(class_sizes)!r}; "
            "pass None for balanced classes"
        )
    return sizes


def _probability(name: str, value) -> float:
    v = as_float(name, value, minimum=0.0)
    if v > 1.0:
        raise ValueError(f"{name}={value!r} must be a probability in [0, 1]")
    return v


def statistics_csbm(
    n: int,
    n_edges: int,
    n_classes: int,
    homophily: float,
    *,
    class_sizes=None,
    degree_exponent: float = 2.5,
    feature_dim: int = 128,
    words: float = 18.0,
    signal: float = 0.3,
    seed: int = 0,
) -> tuple[nx.Graph, np.ndarray, np.ndarray]:
    """Degree-corrected contextual SBM with a given vertex count, edge count, class sizes and edge homophily, and
    bag-of-words features.

    Every vertex ``v`` gets a weight ``θ_v`` from a Pareto law with tail ``P(θ > t) = t^{-(γ-1)}`` (``γ`` =
    ``degree_exponent``), so degrees are heavy-tailed as in citation graphs. Edges are drawn one endpoint at a
    time: first every vertex (in a seeded order) draws one partner, so no vertex is isolated; then until the graph
    has ``n_edges`` distinct edges, an endpoint ``u`` is drawn with probability ∝ ``θ_u``. A partner is drawn
    from ``u``'s class with probability ``homophily``, otherwise from another class (chosen ∝ its total weight),
    ∝ ``θ`` inside the class; self-loops and repeated edges are redrawn. So the expected edge homophily is
    ``homophily`` and the edge count is exact.

    Features are binary bags of words over a vocabulary of ``feature_dim`` words split into one topic per class:
    vertex ``v`` draws ``1 + Poisson(words - 1)`` words, each from its class's topic with probability ``signal`` and
    uniformly from the whole vocabulary otherwise (``signal = 0``: features carry no class information).

    Parameters
    ----------
    n : int
        Number of vertices (>= n_classes).
    n_edges : int
        Number of undirected edges (>= n, at most a quarter of all pairs).
    n_classes : int
        Number of classes (>= 2).
    homophily : float
        Expected fraction of edges joining vertices of one class, in [0, 1].
    class_sizes : sequence of int, optional
        Class sizes (sum ``n``); default balanced.
    degree_exponent : float
        Tail exponent ``γ > 2`` of the degree weights (smaller: heavier tail).
    feature_dim : int
        Vocabulary size (>= n_classes).
    words : float
        Mean number of word draws per vertex (>= 1).
    signal : float
        Probability that a word is drawn from the vertex's class topic, in [0, 1].
    seed : int
        Everything is a function of the seed.

    Returns
    -------
    graph : networkx.Graph
        Vertices ``0..n-1``, undirected, no self-loops, exactly ``n_edges`` edges, every vertex of degree >= 1.
    x : ndarray of float32, shape (n, feature_dim)
        Binary word indicators.
    y : ndarray of int64, shape (n,)

    Examples
    --------
    >>> g, x, y = statistics_csbm(300, 600, 3, 0.8, feature_dim=30, seed=0)
    >>> g.number_of_edges(), min(d for _, d in g.degree()) >= 1, x.shape
    (600, True, (300, 30))
    """
    n_classes = positive_int("n_classes", n_classes, 2)
    n = positive_int("n", n, n_classes, fix=f"at least one vertex per class (n_classes = {n_classes})")
    max_edges = n * (n - 1) // 8
    n_edges = positive_int("n_edges", n_edges, n, fix="at least one edge per vertex")
    if n_edges > max_edges:
        raise ValueError(f"n_edges must be <= n(n-1)/8 = {max_edges} for n = {n}, got {n_edges}; use a larger n")
    homophily, signal = _probability("homophily", homophily), _probability("signal", signal)
    words = as_float("words", words, minimum=1.0)
    degree_exponent = as_float("degree_exponent", degree_exponent, minimum=2.0)
    if degree_exponent == 2.0:
        raise ValueError("degree_exponent must be > 2 (a finite mean degree), got 2.0")
    feature_dim = positive_int("feature_dim", feature_dim, n_classes, fix="at least one topic word per class")
    sizes = _class_sizes(n, n_classes, class_sizes)
    within = sum(int(k) * (int(k) - 1) // 2 for k in sizes)
    if homophily == 1.0 and (min(sizes) < 2 or within < n_edges):
        raise ValueError(f"homophily=1 puts every edge inside a class, but class_sizes={list(map(int, sizes))} "
                         f"{'has a class of one vertex (no partner)' if min(sizes) < 2 else f'hosts only {within}'} "
                         f"for {n_edges} edges; use homophily < 1 or other class sizes")
    if homophily == 0.0 and n * (n - 1) // 2 - within < n_edges:
        raise ValueError(f"homophily=0 puts every edge between classes, but class_sizes={list(map(int, sizes))} "
                         f"allow only {n * (n - 1) // 2 - within} such pairs for {n_edges} edges; use homophily > 0 "
                         "or more balanced class sizes")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(n_classes), sizes)).astype(np.int64)
    theta = (1.0 - rng.random(n)) ** (-1.0 / (degree_exponent - 1.0))
    members = [np.flatnonzero(y == c) for c in range(n_classes)]
    cum = [np.cumsum(theta[m]) for m in members]
    class_weight = np.array([c[-1] for c in cum])
    all_cum = np.cumsum(theta)

    def partners(u: np.ndarray) -> np.ndarray:
        cu = y[u]
        same = rng.random(u.size) < homophily
        # another class, chosen proportionally to its total weight
        w = np.broadcast_to(class_weight, (u.size, n_classes)).copy()
        w[np.arange(u.size), cu] = 0.0
        w_cum = np.cumsum(w, axis=1)
        other = (rng.random(u.size)[:, None] * w_cum[:, -1:] > w_cum).sum(1)
        c = np.where(same, cu, other)
        out = np.empty(u.size, dtype=np.int64)
        for k in range(n_classes):
            sel = np.flatnonzero(c == k)
            if sel.size:
                pos = np.searchsorted(cum[k], rng.random(sel.size) * cum[k][-1], side="right")
                out[sel] = members[k][np.minimum(pos, members[k].size - 1)]
        return out

    keys: set[int] = set()
    edges: list[tuple[int, int]] = []

    def add(us: np.ndarray, vs: np.ndarray) -> None:
        for a, b in zip(us.tolist(), vs.tolist()):
            if a == b or len(edges) == n_edges:
                continue
            a, b = (a, b) if a < b else (b, a)
            if a * n + b not in keys:
                keys.add(a * n + b)
                edges.append((a, b))

    first = rng.permutation(n)
    pending = first
    while pending.size:  # one partner per vertex (redrawn on a self-loop)
        vs = partners(pending)
        add(pending[vs != pending], vs[vs != pending])
        pending = pending[vs == pending]
    while len(edges) < n_edges:
        batch = max(64, 2 * (n_edges - len(edges)))
        us = np.minimum(np.searchsorted(all_cum, rng.random(batch) * all_cum[-1], side="right"), n - 1)
        add(us, partners(us))
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    # bag of words: one topic (a block of the vocabulary) per class
    topic = np.array_split(rng.permutation(feature_dim), n_classes)
    counts = 1 + rng.poisson(words - 1.0, size=n)
    owner = np.repeat(np.arange(n), counts)
    from_topic = rng.random(owner.size) < signal
    word = rng.integers(0, feature_dim, size=owner.size)
    t_sizes = np.array([t.size for t in topic])
    t_pick = (rng.random(owner.size) * t_sizes[y[owner]]).astype(np.int64)
    t_words = np.array([topic[c][i] for c, i in zip(y[owner].tolist(), t_pick.tolist())], dtype=np.int64)
    word = np.where(from_topic, t_words, word)
    x = np.zeros((n, feature_dim), dtype=np.float32)
    x[owner, word] = 1.0
    return g, x, y


def graph_like(name: str, seed: int = 0, **overrides) -> tuple[nx.Graph, np.ndarray, np.ndarray]:
    """A :func:`statistics_csbm` with the vertex count, edge count, classes (sizes where known) and edge homophily
    of a real graph of :data:`GRAPH_STATISTICS` (``"cora"``, ``"dblp"``, ``"arxiv"``); ``overrides`` go to
    :func:`statistics_csbm` (e.g. ``feature_dim``, ``signal``; the real feature dimension is not the default).

    Examples
    --------
    >>> g, x, y = graph_like("cora", feature_dim=64)
    >>> g.number_of_nodes(), g.number_of_edges(), int(y.max()) + 1
    (2708, 5278, 7)
    """
    check_option("name", name, sorted(GRAPH_STATISTICS), fix="or call statistics_csbm with your own counts")
    st = {k: v for k, v in GRAPH_STATISTICS[name].items() if k != "feature_dim"}
    return statistics_csbm(**{**st, **overrides, "seed": seed})
