"""IGTD baseline (Zhu et al. 2021, *Converting tabular data into images for deep learning with convolutional neural
networks*, Sci. Rep. 11:11325): place features on positions so that the ranking of pairwise feature distances
matches the ranking of pairwise position distances.

Feature distance ``1 - Pearson(x_n, x_n')`` (``1 - |Pearson|`` with ``distance="abs_pearson"``); position distance
``|i - j|`` (1-D) or Euclidean on the grid (2-D). Both are turned into ranks ``R`` and ``Q`` (over the pairs
``i < j``), and the error ``Σ_{i<j} |R[π_i, π_j] - Q[i, j]|`` is lowered by swaps: at each step the position not
swapped for the longest time is picked, the swap partner that lowers the error most is found, and the swap is made
if it lowers the error. It stops after ``max_step`` steps, or when the error fell by less than ``threshold``
(relative) over the last ``val_step`` steps.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from tnml.options import IGTDDistance
from tnml.preprocessing.rearrangement import _BaseRearrangement
from tnml.validation import as_int, check_option, positive_int

__all__ = ["IGTDRearrangement"]


def _rank_matrix(d: np.ndarray) -> np.ndarray:
    n = d.shape[0]
    iu = np.triu_indices(n, 1)
    r = np.zeros_like(d, dtype=np.float64)
    r[iu] = rankdata(d[iu])
    return r + r.T


class IGTDRearrangement(_BaseRearrangement):
    """IGTD feature placement, same interface as :class:`~tnml.preprocessing.FeatureRearrangement`.

    Parameters
    ----------
    dims : {1, 2}
    max_step : int
        Most swap steps.
    val_step : int
        Window of steps for the stopping rule.
    threshold : float
        Stop when the error fell by less than this fraction over the last ``val_step`` steps.
    distance : {"pearson", "abs_pearson"}
    random_state : int or None
        Unused (IGTD is deterministic); kept for a uniform interface.
    shape : tuple (h, w), optional

    Attributes
    ----------
    permutation_, objective_before_, objective_after_, n_features_in_, shape_
    errors_ : list of float
        Rank-matching error after each step.
    """

    def __init__(self, dims: int = 1, max_step: int = 1000, val_step: int = 50, threshold: float = 1e-4,
                 distance: IGTDDistance = "pearson", random_state: int | None = None, shape=None):
        self.dims = dims
        self.max_step = max_step
        self.val_step = val_step
        self.threshold = threshold
        self.distance = distance
        self.random_state = random_state
        self.shape = shape

    def _learn(self, X, corr, shape):
        check_option("distance", self.distance, IGTDDistance)
        as_int("max_step", self.max_step, 0, fix="the most swap steps (0: keep the original order)")
        positive_int("val_step", self.val_step, fix="the window of steps of the stopping rule")
        n = corr.shape[0]
        if self.distance == "pearson":
            z = X - X.mean(0)
            sd = np.sqrt((z * z).sum(0))
            z = z / np.where(sd > 0, sd, 1.0)
            r = z.T @ z
            r[:, sd == 0] = 0.0
            r[sd == 0, :] = 0.0
            feat_d = 1.0 - r
        else:
            feat_d = 1.0 - corr
        if shape is None:
            pos = np.arange(n, dtype=np.float64)[:, None]
        else:
            pos = np.stack(np.divmod(np.arange(n), shape[1]), axis=1).astype(np.float64)
        pix_d = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
        R, Q = _rank_matrix(feat_d), _rank_matrix(pix_d)
        perm = np.arange(n)
        P = R.copy()  # P[i, j] = R[perm[i], perm[j]]
        err = np.abs(P - Q)[np.triu_indices(n, 1)].sum()
        last = np.zeros(n, dtype=np.int64)
        errors = [float(err)]
        for step in range(1, int(self.max_step) + 1):
            a = int(np.argmin(last))
            # swapping positions a and b only changes the pairs (a, k) and (b, k), k not in {a, b}
            t1 = np.abs(P - Q[a][None, :])          # [b, k]: feature of b placed at a
            t2 = np.abs(P[a][None, :] - Q)          # [b, k]: feature of a placed at b
            t3 = np.abs(P[a] - Q[a])[None, :]
            t4 = np.abs(P - Q)
            d = t1 + t2 - t3 - t4
            delta = d.sum(1) - d[:, a] - d[np.arange(n), np.arange(n)]
            delta[a] = 0.0
            b = int(np.argmin(delta))
            last[a] = step
            if delta[b] < 0:
                perm[[a, b]] = perm[[b, a]]
                P[[a, b], :] = P[[b, a], :]
                P[:, [a, b]] = P[:, [b, a]]
                last[b] = step
                err += delta[b]
            errors.append(float(err))
            if step >= self.val_step and errors[-1 - self.val_step] - err < self.threshold * max(abs(err), 1e-300):
                break
        self.errors_ = errors
        return perm
