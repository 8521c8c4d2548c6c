"""Design a tree tensor network from data: the mode tree from the data's entanglement
(:func:`~tnml.workflows.learn_mode_tree`), one bond width per edge from the entanglement measured across that edge's
cut, and a report of both.

The widths rule (``bond_dim="auto"``). An edge of a tree network separates the sites below a node (block ``K``) from
the rest, and every function the network computes has separation rank at most the edge's width across that cut
(the min-cut bound); P5's theorem turns this around: a tree fits the data iff the data's entanglement across each
of its cuts is at most about ``ln(width)``. So each edge gets the width whose log is the data's QE across its cut
plus a margin::

    target(K) = ceil(exp(QE(K) + margin))              (margin default ln 2: twice the effective rank)
    width(K)  = min(target(K), cap, Π_children width)  (a node cannot pass on more than it receives)

QE is measured from samples with P5's conventions (standardized features, trig map with ``θ = 0.085``, labelled
data tensor; :func:`tnml.entanglement.data_entanglement`). With ``M`` samples it saturates near ``ln M``, so large
blocks (the top of the tree) hit ``cap``; the saving is at the bottom, where blocks are small and weakly entangled
with the rest, and where most of the nodes are. Under a parameter budget ``max_params`` the logs are scaled by
one common factor ``s`` (``target = ceil(exp(s · (QE + margin)))``), the largest ``s`` whose widths fit the budget
(``s`` may exceed 1: the budget is then spent, not just respected), so the order of the widths (more entangled cut
⇒ at least as wide an edge, unless the node's incoming dimension caps it) is kept and the parameters go where the
data is entangled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tnml.entanglement import data_entanglement
from tnml.entanglement.data_entanglement import qe_batch_rows
from tnml.entanglement.mincut import mincut_bounds
from tnml.entanglement.surrogate import abs_correlation
from tnml.mode_trees import ModeTree, tree_leaves, validate_tree
from tnml.networks import TTN
from tnml.networks.ttn import inner_edges
from tnml.options import QEMethod, TreeMethod
from tnml.validation import check_option, positive_int
from tnml.workflows.mode_tree_learning import LearnedTree, learn_mode_tree_layout

__all__ = ["DesignReport", "EdgeRecord", "auto_widths", "design_ttn", "edge_entanglement", "ttn_param_count"]

#: default margin of the widths rule (nats): ln 2, i.e. twice the effective rank ``exp(QE)``
DEFAULT_MARGIN = math.log(2.0)


@dataclass
class EdgeRecord:
    """One inner edge of a designed TTN: the bond above the node whose sites are ``sites``."""

    sites: tuple[int, ...]
    qe: float  # data QE across the cut (sites | rest), nats
    se: float  # surrogate entanglement across the cut, sum of |Pearson|
    target: int  # ceil(exp(qe + margin)) before the caps and the budget
    width: int  # chosen width
    capacity: float  # min-cut capacity (log of the max separation rank) of the built network across the cut

    def to_dict(self) -> dict:
        return {"sites": list(self.sites), "size": len(self.sites), "qe": self.qe, "se": self.se,
                "target": self.target, "width": self.width, "capacity": self.capacity}


@dataclass
class DesignReport:
    """What :func:`design_ttn` measured and chose.

    Attributes
    ----------
    tree : ModeTree
    edges : list of EdgeRecord
        One per inner edge (post-order).
    n_params : int
        Parameters of the designed TTN.
    n_params_uniform : int
        Parameters of the same tree with every width ``cap`` (the uniform baseline).
    settings : dict
        The options used (method, margin, cap, budget, theta, scale factor ``s``) and the QE's route:
        ``qe_method`` (``"batches"``, ``"exact"`` or ``"sketch"``), ``qe_samples`` (all the samples used),
        ``qe_batch_size`` (the largest batch, for ``"batches"``), ``qe_sketch_size`` and
        ``qe_error_estimate_max`` (the sketch's largest error estimate in nats; None for the other routes).
    """

    tree: ModeTree
    edges: list[EdgeRecord]
    n_params: int
    n_params_uniform: int
    settings: dict = field(default_factory=dict)

    def to_dicts(self) -> list[dict]:
        return [e.to_dict() for e in self.edges]

    def summary(self) -> dict:
        w = [e.width for e in self.edges] or [0]
        return {"n_params": self.n_params, "n_params_uniform": self.n_params_uniform,
                "param_ratio": self.n_params / max(self.n_params_uniform, 1), "n_edges": len(self.edges),
                "width_min": min(w), "width_max": max(w), "width_mean": float(np.mean(w)), **self.settings}

    def to_markdown(self, max_rows: int = 40) -> str:
        s = self.summary()
        lines = [f"TTN design: {s['n_edges']} inner edges, widths {s['width_min']}..{s['width_max']} "
                 f"(mean {s['width_mean']:.2f}); {self.n_params} parameters vs {self.n_params_uniform} with "
                 f"every width {s.get('cap')} ({100 * s['param_ratio']:.0f} %)", "", f"QE route: {_route_line(s)}",
                 "", "| sites | size | QE | SE | target | width | min-cut capacity |", "|---|---|---|---|---|---|---|"]
        rows = sorted(self.edges, key=lambda e: -len(e.sites))
        for e in rows[:max_rows]:
            sites = ",".join(map(str, e.sites[:6])) + ("…" if len(e.sites) > 6 else "")
            lines.append(f"| {sites} | {len(e.sites)} | {e.qe:.3f} | {e.se:.2f} | {e.target} | {e.width} | "
                         f"{e.capacity:.3f} |")
        if len(rows) > max_rows:
            lines.append(f"| … {len(rows) - max_rows} smaller edges | | | | | | |")
        return "\n".join(lines) + "\n"


def _route_line(s: dict) -> str:
    """How the report's QE was measured (route, samples, the sketch's landmarks and error estimate)."""
    route, m = s.get("qe_method", "batches"), s.get("qe_samples")
    if route is None:
        return "none (the tree has no inner edge)"
    if route == "batches":
        b = s.get("qe_batch_size")
        used = f"one batch of {m} samples" if m == b else f"{m} samples in batches of at most {b}"
        return f"P5's batch estimator, {used} (the QE saturates near ln {b})"
    if route == "exact":
        return f"exact, the whole data set's tensor ({m} samples)"
    est = s.get("qe_error_estimate_max")
    return (f"streaming Nyström sketch of all {m} samples with {s.get('qe_sketch_size')} landmarks"
            + ("" if est is None else f"; error estimate up to {est:.3g} nats per edge"))


def _nodes(tree: ModeTree) -> list[tuple[tuple[int, ...], list[tuple[int, ...] | None]]]:
    """Every node of ``tree`` in post-order (children first, the root last) as ``(sorted leaves below it, its
    children's keys)``; a child that is a site has key None. A node's key also names the inner edge above it."""
    out: list[tuple[tuple[int, ...], list[tuple[int, ...] | None]]] = []

    def visit(t) -> tuple[int, ...]:
        kids = [None if isinstance(c, int) else visit(c) for c in t]
        key = tuple(sorted(s for c, k in zip(t, kids) for s in ((c,) if k is None else k)))
        out.append((key, kids))
        return key

    visit(tree)
    return out


def _node_shapes(tree: ModeTree, widths: Mapping[tuple[int, ...], int], phys_dim: int,
                 out_dim: int | None) -> list[list[int]]:
    """Each node's leg dims (children's, then the parent's: ``out_dim`` or 1 at the root), post-order."""
    def legs(kids: list) -> list[int]:
        return [phys_dim if k is None else widths[k] for k in kids]

    *inner, (_, root_kids) = _nodes(tree)
    return [legs(kids) + [widths[key]] for key, kids in inner] + [legs(root_kids) + [out_dim or 1]]


def ttn_param_count(tree: ModeTree, widths: Mapping[tuple[int, ...], int], phys_dim: int = 2,
                    out_dim: int | None = None) -> int:
    """Number of parameters of ``TTN(tree=tree, bond_dim=widths, phys_dim=phys_dim, out_dim=out_dim)`` without
    building it: the sum over nodes of the product of their leg dims.

    Parameters
    ----------
    tree : nested tuples of int
        The mode tree (leaves are feature indices).
    widths : mapping sorted sites -> int
        One width per inner edge, keyed by the sorted leaves below it (as :func:`auto_widths` returns).
    phys_dim : int
        Dimension of every input leg.
    out_dim : int or None
        Output leg at the root (None: scalar output).

    Returns
    -------
    int
        The parameter count.
    """
    return int(sum(math.prod(s) for s in _node_shapes(tree, widths, phys_dim, out_dim)))


def _children_caps(tree: ModeTree) -> dict[tuple[int, ...], list[tuple[int, ...] | None]]:
    """For each inner edge, its node's children (their edge keys, None for a site), post-order."""
    return dict(_nodes(tree)[:-1])


def _check_margin(margin) -> None:
    if isinstance(margin, bool) or not (isinstance(margin, (int, float, np.floating)) and math.isfinite(margin)
                                        and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0 (nats added to each QE), got {margin!r}")


def _target_width(log_width: float) -> int:
    """The width an edge asks for: ``ceil(exp(log_width))``, at least 1 (1e-9 absorbs rounding at integers)."""
    return max(1, math.ceil(math.exp(log_width) - 1e-9))


def _widths_at(scale: float, logs: Mapping, kids: Mapping, cap: int, phys_dim: int) -> dict[tuple[int, ...], int]:
    widths: dict[tuple[int, ...], int] = {}
    for e, ks in kids.items():  # post-order: children first
        incoming = math.prod(phys_dim if k is None else widths[k] for k in ks)
        widths[e] = int(min(_target_width(scale * logs[e]), cap, incoming))
    return widths


def auto_widths(tree: ModeTree, qe: Mapping[tuple[int, ...], float], *, margin: float = DEFAULT_MARGIN,
                cap: int = 8, max_params: int | None = None, phys_dim: int = 2,
                out_dim: int | None = None) -> tuple[dict[tuple[int, ...], int], float]:
    """One width per inner edge from the QE across its cut (the rule in the module docstring).

    Parameters
    ----------
    tree : ModeTree
    qe : mapping sorted sites -> float
        QE across each inner edge's cut (nats), e.g. from :func:`edge_entanglement`.
    margin : float
        Nats added to each QE before ``exp`` (default ``ln 2``).
    cap : int
        Largest width.
    max_params : int, optional
        Parameter budget of the TTN: the logs ``QE + margin`` are scaled by the largest common factor ``s`` (below
        or above 1) whose widths fit it, so the budget is spent in proportion to the measured entanglement.
    phys_dim, out_dim : int
        Of the TTN (for the parameter count and the incoming-dimension cap).

    Returns
    -------
    widths : dict sorted sites -> int
    scale : float
        The factor ``s`` used (1.0 without a budget).

    Examples
    --------
    >>> tree = ((0, 1), (2, 3))
    >>> auto_widths(tree, {(0, 1): 0.1, (2, 3): 1.5}, cap=8)[0]
    {(0, 1): 3, (2, 3): 4}
    """
    cap = positive_int("cap", cap)
    phys_dim = positive_int("phys_dim", phys_dim)
    _check_margin(margin)
    tree = validate_tree(tree, len(tree_leaves(tree)))
    kids = _children_caps(tree)
    missing = [e for e in kids if e not in qe]
    if missing:
        raise ValueError(f"qe lacks the inner edges {[list(e) for e in missing[:3]]}; give one value per edge "
                         "(tnml.networks.ttn.inner_edges(tree) lists them)")
    bad = [(list(e), qe[e]) for e in kids if not math.isfinite(float(qe[e]))]
    if bad:
        raise ValueError(f"qe must be finite (nats) on every inner edge, got {bad[0][1]!r} on the edge {bad[0][0]}")
    logs = {e: max(float(qe[e]), 0.0) + margin for e in kids}
    if max_params is None:
        return _widths_at(1.0, logs, kids, cap, phys_dim), 1.0
    max_params = positive_int("max_params", max_params)

    def count(scale: float) -> int:
        return ttn_param_count(tree, _widths_at(scale, logs, kids, cap, phys_dim), phys_dim, out_dim)

    floor = count(0.0)
    if floor > max_params:
        raise ValueError(f"max_params={max_params} is below the {floor} parameters of this tree with every width "
                         "1; raise max_params (or use fewer features)")
    positive = [v for v in logs.values() if v > 0]
    hi = max(math.log(cap) / min(positive), 1.0) + 1e-9 if positive else 1.0  # every width at its cap
    if count(hi) <= max_params:
        return _widths_at(hi, logs, kids, cap, phys_dim), hi
    lo = 0.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if count(mid) <= max_params:
            lo = mid
        else:
            hi = mid
    return _widths_at(lo, logs, kids, cap, phys_dim), lo


def _qe_samples(n_samples: int, batch_size: int, n_batches: int) -> int:
    """Samples that enter :func:`edge_entanglement`'s QE: the first ``n_batches`` of the ``ceil(M / batch_size)``
    near-equal batches of :func:`~tnml.entanglement.data_entanglement` (the first ``M mod n`` of the ``n`` batches
    hold one sample more).

    Examples
    --------
    >>> _qe_samples(1000, 300, 1), _qe_samples(1000, 300, 10), _qe_samples(10, 3, 2)
    (250, 1000, 6)
    """
    rows = qe_batch_rows(batch_size, n_samples)
    n_all = -(-n_samples // rows)
    used = min(positive_int("n_batches", n_batches), n_all)
    return used * (n_samples // n_all) + min(used, n_samples % n_all)


def edge_entanglement(X, y, tree: ModeTree, *, layout: LearnedTree | None = None, theta: float = 0.085,
                      batch_size: int = 300, n_batches: int = 1, seed: int | None = 0, qe_method: QEMethod = "batches",
                      sketch_size: int | None = None
                      ) -> tuple[dict[tuple[int, ...], float], dict[tuple[int, ...], float]]:
    """QE (from samples, standardized features, trig map ``θ``) and SE across every inner edge's cut of ``tree``.

    With a ``layout`` whose nodes are canonical blocks (:func:`learn_mode_tree_layout`), all QEs come from one
    shared pass over the tree; otherwise each cut is computed on its own (``O(M³)`` each, slower; not on the
    sketch route, which streams canonical blocks only).

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features) or (n_samples, H, W)
        Training samples.
    y : array-like of int, shape (n_samples,), or None
        Labels (None: the unlabelled data tensor).
    tree : nested tuples of int
        The mode tree whose inner edges are measured.
    layout : LearnedTree or None
        Where the leaves sit on the canonical tree, to share one pass over it.
    theta : float
        Trig feature map's frequency (P5's 0.085).
    batch_size, n_batches : int
        ``qe_method="batches"``: samples per QE batch and how many batches are averaged (ignored by the other
        routes).
    seed : int or None
        Seed of the batches' sampling (of the sketch's landmarks).
    qe_method : {"batches", "exact", "sketch", "auto"}
        The route of :func:`~tnml.entanglement.data_entanglement` (``method=``): P5's batch average (default), or
        the whole data set's QE — exact, from the streaming sketch, or ``"auto"`` (exact up to 2 000 samples).
    sketch_size : int, optional
        Landmarks of the sketch route.

    Returns
    -------
    qe, se : dict sorted sites -> float
    """
    qe, se, _ = _edge_qe(X, y, tree, layout, theta, batch_size, n_batches, seed, qe_method, sketch_size)
    return qe, se


def _route_settings(res, n_samples: int, batch_size: int, n_batches: int) -> dict:
    """The report's ``qe_*`` settings from the QE result (None: no inner edge, nothing measured)."""
    if res is None:
        return {"qe_method": None, "qe_samples": 0, "qe_batch_size": None, "qe_sketch_size": None,
                "qe_error_estimate_max": None}
    batches = res.method == "batches"
    return {"qe_method": res.method,
            "qe_samples": _qe_samples(n_samples, batch_size, n_batches) if batches else res.n_samples,
            "qe_batch_size": res.tensor_samples if batches else None,
            "qe_sketch_size": res.sketch_size,
            "qe_error_estimate_max": None if res.error_estimate is None else float(np.max(res.error_estimate))}


def _edge_qe(X, y, tree: ModeTree, layout: LearnedTree | None, theta: float, batch_size: int, n_batches: int,
             seed: int | None, qe_method: QEMethod, sketch_size: int | None):
    """:func:`edge_entanglement` plus the :class:`~tnml.entanglement.DataEntanglementResult` (route, samples,
    error estimate)."""
    arr = np.asarray(X, dtype=np.float64)
    arr = arr.reshape(arr.shape[0], -1)
    mu, sd = arr.mean(0), arr.std(0)
    z = (arr - mu) / np.where(sd > 0, sd, 1.0)
    edges = inner_edges(tree)
    corr = abs_correlation(z)
    se = {}
    for e in edges:
        mask = np.zeros(arr.shape[1], dtype=bool)
        mask[list(e)] = True
        se[e] = float(corr[mask][:, ~mask].sum())
    if not edges:  # two features (or one node): no inner edge, nothing to measure
        return {}, se, None
    # batches: the largest batch (the same batches as batch_size itself); the whole-data routes pick their own rows
    bs = qe_batch_rows(batch_size, arr.shape[0]) if qe_method == "batches" else None
    route: dict[str, Any] = dict(theta=theta, batch_size=bs, n_batches=n_batches, seed=seed, method=qe_method,
                                 sketch_size=sketch_size)
    if layout is not None and layout.canonical:
        pos = np.argsort(layout.order)
        parts = [sorted(pos[list(e)].tolist()) for e in edges]
        res = data_entanglement(z[:, layout.order], y, parts, shape=layout.shape, **route)
    else:
        res = data_entanglement(z, y, [list(e) for e in edges], **route)
    return {e: float(v) for e, v in zip(edges, res.qe)}, se, res


def design_ttn(X, y=None, *, bond_dim: int | str = "auto", max_params: int | None = None, tree=None,
               arity: int = 2, dims: int = 1, shape=None, method: TreeMethod = "surrogate",
               margin: float = DEFAULT_MARGIN, cap: int = 8, out_dim: int | None = None,
               feature_map=("trig", {"theta": 0.5}), phys_dim: int = 2,
               theta: float = 0.085, batch_size: int = 300, n_batches: int = 1, random_state: int | None = None,
               qe_method: QEMethod = "batches", sketch_size: int | None = None,
               **ttn_kwargs) -> tuple[TTN, DesignReport]:
    """A TTN shaped to the data: its mode tree learned from the data's entanglement and, with
    ``bond_dim="auto"``, one width per edge from the QE across that edge's cut (rule: module docstring).

    Parameters
    ----------
    X : array-like (n_samples, n_features) or (n_samples, h, w)
        Training samples only (nothing else is read).
    y : array-like (n_samples,), optional
        Training labels: the QE is that of P5's labelled data tensor; ``out_dim`` defaults to the class count.
    bond_dim : int or "auto"
        A fixed width for every edge, or widths from the data.
    max_params : int, optional
        Parameter budget for ``"auto"``.
    tree : ModeTree, optional
        Use this tree instead of learning one (its edges' QE is then computed cut by cut, slower).
    arity, dims, shape, method, random_state
        Of :func:`~tnml.workflows.learn_mode_tree`.
    margin, cap
        Of :func:`auto_widths`.
    out_dim : int, optional
        Outputs of the TTN (default: the number of classes in ``y``; None without labels).
    feature_map, phys_dim, **ttn_kwargs
        Passed to :class:`~tnml.networks.TTN`.
    theta, batch_size, n_batches, qe_method, sketch_size
        Of the QE estimate (:func:`edge_entanglement`, :func:`tnml.entanglement.data_entanglement`).
        ``qe_method="batches"`` (default) averages P5's batch estimator over ``n_batches`` batches of
        ``batch_size`` samples: fast, and equal to the whole data's QE where the widths are not capped (QE well
        below ``ln(batch_size)``); ``"auto"``, ``"exact"`` or ``"sketch"`` measure the whole data set's QE (see
        the data-entanglement-at-scale guide) — the report's settings name the route taken (``qe_method``), its
        samples (``qe_samples``) and, for the sketch, ``qe_sketch_size`` and ``qe_error_estimate_max``.

    Returns
    -------
    model : TTN
        Untrained; ``model.tree`` the tree, ``model.edge_widths`` the widths.
    report : DesignReport

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 8)); y = (X[:, 0] * X[:, 5] > 0).astype(int)
    >>> model, rep = design_ttn(X, y, random_state=0)
    >>> model.n_sites, len(rep.edges), rep.n_params <= rep.n_params_uniform
    (8, 6, True)
    """
    arr = np.asarray(X)
    if arr.ndim not in (2, 3):
        raise ValueError(f"X must be (n_samples, n_features) or (n_samples, h, w), got shape {arr.shape}; for one "
                         "feature per sample use X.reshape(-1, 1)")
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim == 3 else arr
    _check_margin(margin)
    if max_params is not None and bond_dim != "auto":
        raise ValueError(f"max_params applies to bond_dim='auto' (widths from the data); with the fixed width "
                         f"bond_dim={bond_dim!r} drop max_params, or use bond_dim='auto'")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (flat.shape[0],):
            raise ValueError(f"y must have shape ({flat.shape[0]},) (one label per sample), got {y.shape}")
        if out_dim is None:
            out_dim = int(np.unique(y).size)
    if isinstance(bond_dim, str) and bond_dim != "auto":
        raise ValueError(f"bond_dim must be a positive int or 'auto', got {bond_dim!r}")
    if not isinstance(bond_dim, str):
        bond_dim = positive_int("bond_dim", bond_dim)
    check_option("qe_method", qe_method, QEMethod, fix="'batches' is P5's estimator; 'auto' measures the whole data")
    seed = 0 if random_state is None else int(random_state)
    if tree is None:
        layout = learn_mode_tree_layout(arr, y, arity=arity, dims=dims, shape=shape, method=method,
                                        random_state=random_state)
        tree = layout.tree
    else:
        layout = None
        tree = validate_tree(tree, flat.shape[1])
        if len(tree_leaves(tree)) != flat.shape[1]:  # pragma: no cover - validate_tree checks it
            raise ValueError("tree must have one leaf per feature of X")
    qe, se, res = _edge_qe(flat, y, tree, layout, theta, batch_size, n_batches, seed, qe_method, sketch_size)
    kids = _children_caps(tree)
    targets = {e: _target_width(max(qe[e], 0.0) + margin) for e in kids}
    if bond_dim == "auto":
        widths, scale = auto_widths(tree, qe, margin=margin, cap=cap, max_params=max_params, phys_dim=phys_dim,
                                    out_dim=out_dim)
    else:
        widths, scale = {e: int(bond_dim) for e in kids}, None
    model = TTN(tree=tree, bond_dim=widths, out_dim=out_dim, feature_map=feature_map, phys_dim=phys_dim,
                **ttn_kwargs)
    edges = list(kids)
    caps = mincut_bounds(model, [list(e) for e in edges])
    records = [EdgeRecord(e, qe[e], se[e], targets[e], widths[e], float(c.log_bound)) for e, c in zip(edges, caps)]
    uniform = ttn_param_count(tree, {e: cap if bond_dim == "auto" else int(bond_dim) for e in kids}, phys_dim, out_dim)
    settings = {"bond_dim": bond_dim, "method": method, "margin": margin, "cap": cap if bond_dim == "auto" else
                bond_dim, "max_params": max_params, "scale": scale, "theta": theta,
                **_route_settings(res, flat.shape[0], batch_size, n_batches),
                "random_state": random_state, "dims": dims, "arity": arity}
    report = DesignReport(tree, records, ttn_param_count(tree, widths, phys_dim, out_dim), uniform, settings)
    return model, report
