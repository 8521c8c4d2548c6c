"""Bounds on the separation rank of a product-aggregation GNN (:class:`tnml.networks.ProductGNN`) across a
partition ``(I, I^c)`` of the vertices, each with its status.

- ``"proved"``: follows from an argument given here (in the record's ``reference``) and checked numerically in
  the tests on small graphs.
- ``"recalled"``: a bound recalled from P4, not re-derived here; it held in every small case checked.
- ``"unverified"``: a conjecture that fits small cases; do not rely on it.

Check any of them on your own case with :func:`tnml.entanglement.separation_rank` (exact on small graphs: the rank
of the grid tensor over enough template points).

P4's own lower bound. P4 (Razin, Verbin, Cohen, NeurIPS 2023, arXiv 2211.16494) pairs its walk-index
upper bound with a lower bound. Its exact statement could not be read from any source reachable in this project
(the stored copy of the paper ends at the introduction; the authors' repository ``noamrazin/gnn_interactions`` holds
code, not the theorem), so tnml does not state it and offers no record named after it. Two facts are established
instead, each checked in ``tests/test_gnn_bounds.py``:

- The form ``D^{ρ_{L−1}(C_I, V)}`` with the whole boundary ``C_I`` (once recalled as P4's) is **false** for
  :class:`~tnml.networks.ProductGNN`: edge 0–1, ``D = 2``, ``L = 3``, graph prediction has ``ρ = 8`` but the proved
  ``degree`` bound gives ``sep ≤ 9 < 2^8`` (measured: 9).
- Whatever form the paper gives can be checked with random weights, for "there exists an assignment" and for
  "almost all assignments" alike. The grid matrix of a product-aggregation GNN is polynomial in the weights and the
  template points, so the set where its rank is ``≥ B`` is the complement of an algebraic set (all ``B × B``
  minors vanish): if one choice of weights and templates reaches ``B``, almost every choice does. A random draw
  therefore reaches the generic (= maximal) rank with probability 1, and the same rank recurs across seeds (tested).
  A measured rank ``≥ B`` confirms a lower bound ``B``; a measured rank ``< B`` refutes it only when the templates
  are rich enough that the grid rank equals the separation rank (more points per vertex than the dimension of the
  homogeneous polynomials of its degree, as the tests choose, and the proved ``degree`` bound is attained there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tnml.entanglement.walk_index import (
    _part,
    _propagate,
    _vertex_set,
    as_indexed_graph,
    augmented_adjacency,
    walk_index,
)
from tnml.options import GNNOutput
from tnml.validation import check_option, positive_int

__all__ = ["GNNBound", "MAX_EXACT_BITS", "gnn_separation_rank_bounds"]

#: bounds above ``2**MAX_EXACT_BITS`` are returned in log form only (``value=None``, ``log_value`` set)
MAX_EXACT_BITS = 4096


def _log_comb(n: int, k: int) -> float:
    """``ln C(n, k)`` without forming it: a sum of logs of the exact integers when ``min(k, n - k)`` is small (walk
    counts can pass float range, 2^1024, while ``D' - 1`` stays small), else from log-gamma."""
    s = min(k, n - k)
    if s <= 256:
        return sum(math.log(n - s + i) for i in range(1, s + 1)) - math.lgamma(s + 1)
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_power(base: int, exponent: int) -> float:
    """``ln(base^exponent)``; ``inf`` when it passes float range (an exponent of more than ~10^308)."""
    try:
        return exponent * math.log(base)
    except OverflowError:
        return math.inf


def _exact(log_value: float, compute) -> int | None:
    """``compute()`` when the bound has at most :data:`MAX_EXACT_BITS` bits (judged from its log), else None."""
    return compute() if log_value <= MAX_EXACT_BITS * math.log(2) - 1 else None

_STATUSES = ("proved", "recalled", "unverified")


@dataclass(frozen=True)
class GNNBound:
    """One bound on the separation rank.

    Attributes
    ----------
    name : str
        ``"walk_index"``, ``"degree"``, ``"readout"`` or ``"multiset_lower"``.
    value : int or None
        The bound as an exact integer, or None when it has more than :data:`MAX_EXACT_BITS` bits (computing and
        printing such integers costs more than the rest of the analysis; use ``log_value``).
    status : str
        ``"proved"``, ``"recalled"`` or ``"unverified"``.
    kind : str
        ``"upper"`` (sep ≤ value) or ``"lower"`` (sep ≥ value).
    reference : str
        The formula and where it comes from (the proof sketch for ``"proved"``).
    log_value : float
        Natural log of the bound (computed without forming the integer); finite except for the walk-index bound
        of walk indices past float range (``inf``).
    """

    name: str
    value: int | None
    status: str
    kind: str
    reference: str
    log_value: float = math.nan

    def holds(self, rank: int) -> bool:
        """Whether a measured separation rank is consistent with this bound."""
        if self.value is None:  # astronomically large: any measurable rank is below it
            return self.kind == "upper" or math.log(max(rank, 1)) >= self.log_value
        return rank <= self.value if self.kind == "upper" else rank >= self.value


def gnn_separation_rank_bounds(
    graph, part, depth: int, hidden_dim: int, in_dim: int, output: GNNOutput = "graph", target=None
) -> list[GNNBound]:
    r"""Bounds on the separation rank across ``(I, I^c)`` of every depth-``L`` product-aggregation GNN on ``graph``.

    Records returned (in this order; ``readout`` only for ``L = 1``, ``multiset_lower`` not for ``L = 1`` graph
    prediction):

    - ``walk_index`` (upper, **recalled**, P4 Thm. 1 as recalled): ``D_h^{4·WI+1}`` with
      ``WI = ρ_{L−1}(C_I, V)`` (graph) or ``ρ_{L−1}(C_I, {t})`` (vertex). Loose.
    - ``degree`` (upper, **proved**): the output is a polynomial in the inputs, homogeneous of degree
      ``d_v = ρ_L(T, {v})`` in ``x^{(v)}`` (``T = V`` for graph, ``{t}`` for vertex prediction: ``x^{(v)}`` enters
      once per leaf of the computation tree, i.e. per walk of length ``L`` between ``T`` and ``v``), and it depends
      on ``x^{(v)}`` only through ``W^{(1)} x^{(v)}``, of rank ``≤ D' = min(D_x, D_h)``. So ``f(·, x_{I^c})`` lies in
      the space of such polynomials in ``x_I``, of dimension ``Π_{v∈I} C(d_v + D' − 1, d_v)``; likewise for ``I^c``.
      Bound: the smaller of the two products.
    - ``readout`` (upper, **proved**, ``L = 1`` only): ``D_h``. With one layer
      ``f = Σ_{a<D_h} W^o_a Π_{j} (W^{(1)} x^{(j)})_a^{m_j}`` — a sum of ``D_h`` products of single-vertex
      functions (``m_j`` = multiplicity), each separable.
    - ``multiset_lower`` (lower, **unverified**): ``C(D' + WI − 1, WI)``. Fits small cases except ``L = 1`` graph
      prediction (where it is omitted). No lower bound of the form ``D^{WI}`` is offered: it is false (path 0–1,
      ``D = 2``, ``L = 3`` graph prediction has separation rank 9 < 16).

    Parameters
    ----------
    graph : networkx.Graph, edge list, or torch edge_index (2, E)
    part : iterable of vertex labels
        Side ``I`` (nonempty, proper).
    depth, hidden_dim, in_dim : int
        ``L``, ``D_h``, ``D_x``.
    output : {"graph", "vertex"}
    target : vertex label, optional
        Required for ``output="vertex"``.

    Returns
    -------
    list of GNNBound

    Examples
    --------
    >>> bs = gnn_separation_rank_bounds([(0, 1)], [0], depth=3, hidden_dim=2, in_dim=2)
    >>> [(b.name, b.value, b.status) for b in bs]
    [('walk_index', 8589934592, 'recalled'), ('degree', 9, 'proved'), ('multiset_lower', 9, 'unverified')]
    """
    L = positive_int("depth", depth)
    dh = positive_int("hidden_dim", hidden_dim)
    dx = positive_int("in_dim", in_dim)
    check_option("output", output, GNNOutput)
    if output == "vertex" and target is None:
        raise ValueError("output='vertex' needs target=<vertex label>")
    if output == "graph" and target is not None:
        raise ValueError(f"target={target!r} is only used with output='vertex'; drop it or set output='vertex'")
    g = as_indexed_graph(graph)
    mask = _part(g, part)
    wi = walk_index(g, part, L, target=target)
    n = g.n_vertices
    if output == "graph":
        src = np.ones(n, dtype=np.int64)
    else:
        src = np.zeros(n, dtype=np.int64)
        src[_vertex_set(g, [target], "target")[0]] = 1
    deg = [int(v) for v in _propagate(augmented_adjacency(g), src, L)]  # d_v = ρ_L(T, {v}) (Â symmetric)
    dp = min(dx, dh)
    # every bound is judged in log form first: the integers can have millions of digits (K30, depth 5)
    log_i = sum(_log_comb(deg[v] + dp - 1, deg[v]) for v in range(n) if mask[v])
    log_c = sum(_log_comb(deg[v] + dp - 1, deg[v]) for v in range(n) if not mask[v])
    log_deg = min(log_i, log_c)
    side = mask if log_i <= log_c else ~mask
    deg_value = _exact(log_deg, lambda: math.prod(math.comb(deg[v] + dp - 1, deg[v]) for v in range(n) if side[v]))
    log_wi = _log_power(dh, 4 * wi + 1)
    what = "ρ_{L-1}(C_I, V)" if output == "graph" else "ρ_{L-1}(C_I, {t})"
    out = [
        GNNBound(
            "walk_index",
            _exact(log_wi, lambda: dh ** (4 * wi + 1)),
            "recalled",
            "upper",
            f"D_h^(4·WI+1) with WI = {what} = {wi} (P4, Razin et al. NeurIPS 2023, Thm. 1 as recalled; "
            "held in every small case checked, loose)",
            log_wi,
        ),
        GNNBound(
            "degree",
            deg_value,
            "proved",
            "upper",
            f"min(Π_(v∈I), Π_(v∈I^c)) C(d_v + D' - 1, d_v) with d_v = ρ_L(T, {{v}}) (degree of f in x^(v)) and "
            f"D' = min(D_x, D_h) = {dp}: f(·, x_(I^c)) lies in the space of multi-homogeneous polynomials of x_I of "
            f"those degrees in the D' coordinates W^(1) x^(v) (ln of the sides: {log_i:.6g}, {log_c:.6g})",
            log_deg,
        ),
    ]
    if L == 1:
        out.append(
            GNNBound(
                "readout",
                dh,
                "proved",
                "upper",
                "L = 1: f = Σ_(a<D_h) W^o_a Π_j (W^(1) x^(j))_a^(m_j) is a sum of D_h separable products",
                math.log(dh),
            )
        )
    if not (L == 1 and output == "graph"):
        log_ms = _log_comb(dp + wi - 1, wi)
        out.append(
            GNNBound(
                "multiset_lower",
                _exact(log_ms, lambda: math.comb(dp + wi - 1, wi)),
                "unverified",
                "lower",
                f"C(D' + WI - 1, WI) with D' = {dp}, WI = {wi}: fits small cases (e.g. path 0-1, D = 2, L = 3 graph "
                "prediction: 9), unproved; false for L = 1 graph prediction (omitted there). Not D^WI, which is false",
                log_ms,
            )
        )
    return out
