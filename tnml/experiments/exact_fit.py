"""Exact checks of P5's two-sided theorem on small dense data tensors (used by ``data-suitability``).

For a window of a few features the empirical data tensor ``D = (1/M) Σ_m y_m ⊗_n φ(x_n^m)`` fits in memory, so the
QE across every canonical block is an exact SVD and a width-``R`` locally connected network can be fitted by the
truncated hierarchical SVD. Per feature order and width this gives a sandwich

    necessary-side lower bound <= best error <= HSVD error <= sufficient bound,

with the bounds of :mod:`tnml.entanglement.suitability`; :func:`plot_window` draws best-found error against max QE.
"""

from __future__ import annotations

import math

import numpy as np

from tnml.entanglement import canonical_partitions
from tnml.entanglement.fit_bounds import necessary_qe_max, sufficient_error_bound, truncated_hsvd
from tnml.experiments._common import pyplot
from tnml.io import save_figure
from tnml.spectrum import matricize, numerical_rank, renyi_entropy

#: a block's numerical rank counts the singular values above RANK_RTOL × the largest
RANK_RTOL = 1e-10

__all__ = ["dense_data_tensor", "error_lower_bound", "exact_fit_rows", "exact_qe", "plot_window"]


def dense_data_tensor(x: np.ndarray, signs: np.ndarray, theta: float) -> np.ndarray:
    """``(1/M) Σ_m y_m ⊗_n φ(x_n^m)``, trig map ``φ(x) = (cos πθx, sin πθx)``, dense ``(2,) * N`` (``N`` small)."""
    m, n = x.shape
    phi = np.stack([np.cos(np.pi * theta * x), np.sin(np.pi * theta * x)], -1)

    def half(cols) -> np.ndarray:
        t = np.ones((m, 1))
        for c in cols:
            t = (t[:, :, None] * phi[:, c][:, None, :]).reshape(m, -1)
        return t

    h = n // 2
    return ((half(range(h)) * signs[:, None]).T @ half(range(h, n)) / m).reshape((2,) * n)


def exact_qe(a: np.ndarray, sites) -> tuple[float, int]:
    """QE (natural log) and numerical rank of a dense ``(2,) * N`` tensor across ``sites`` vs the rest."""
    sv = np.linalg.svd(matricize(a, list(sites)), compute_uv=False)
    return renyi_entropy(sv**2), numerical_rank(sv, RANK_RTOL)


def error_lower_bound(qe: list[float], rk: list[int], rank: int) -> float:
    """Smallest relative error compatible with the necessary bound on every block (bisection): no network of
    width ``rank`` over the canonical tree gets closer.

    Parameters
    ----------
    qe : list of float
        Exact QE per canonical block.
    rk : list of int
        Rank (or an upper bound) per block.
    rank : int
        Width ``R``.
    """

    def ok(e: float) -> bool:
        return all(q <= necessary_qe_max(math.log(rank), e, d) + 1e-12 for q, d in zip(qe, rk))

    if ok(0.0):
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def exact_fit_rows(x: np.ndarray, signs: np.ndarray, orders: dict, ranks, theta: float) -> list[dict]:
    """Per order (name -> permutation of the columns of ``x``): exact QE across every canonical block of the dense
    data tensor, ``max_qe``, ``mean_qe`` and, per width ``R`` in ``ranks``, ``hsvd_error`` (relative error of the
    truncated hierarchical SVD), ``lower_bound`` (:func:`error_lower_bound`) and ``sufficient_bound``
    (:func:`~tnml.entanglement.suitability.sufficient_error_bound`).

    Parameters
    ----------
    x : ndarray (n_samples, n_features)
        ``n_features`` small (the tensor has ``2^n_features`` entries).
    signs : ndarray (n_samples,)
        Labels ±1.
    orders : dict str -> ndarray (n_features,)
    ranks : iterable of int
    theta : float
        Trig map parameter.

    Returns
    -------
    list of dict
    """
    parts = canonical_partitions(x.shape[1])
    rows = []
    for name, perm in orders.items():
        a = dense_data_tensor(x[:, np.asarray(perm)], signs, theta)
        qk = [exact_qe(a, p.sites) for p in parts]
        qe, rk = [q for q, _ in qk], [r for _, r in qk]
        row = {"order": name, "max_qe": max(qe), "mean_qe": float(np.mean(qe)), "fits": {}}
        for r in ranks:
            w = truncated_hsvd(a, parts, r)
            row["fits"][int(r)] = {
                "hsvd_error": float(np.linalg.norm(w - a) / np.linalg.norm(a)),
                "lower_bound": error_lower_bound(qe, rk, r),
                "sufficient_bound": sufficient_error_bound(qe, r, rk),
            }
        rows.append(row)
    return rows


def plot_window(window: dict, path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(window["ranks"])))
    for rank, c in zip(window["ranks"], colors):
        qe = [w["max_qe"] for w in window["rows"]]
        ax.scatter(qe, [w["fits"][rank]["hsvd_error"] for w in window["rows"]], color=c, marker="o",
                   label=f"R={rank}: hierarchical SVD")
        ax.scatter(qe, [w["fits"][rank]["lower_bound"] for w in window["rows"]], color=c, marker="v",
                   facecolors="none", label=f"R={rank}: necessary-side lower bound")
        for w in window["rows"]:
            if not w["order"].startswith("random"):
                ax.annotate(w["order"], (w["max_qe"], w["fits"][rank]["hsvd_error"]), fontsize=6)
    ax.set(xlabel="max canonical QE (exact)", ylabel="relative error", ylim=(0, None),
           title=f"DNA {window['width']}-bit window: best-found error vs QE")
    ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
