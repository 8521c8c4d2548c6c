"""Contract a level's input-only children into it before the data arrives (a batch-free precontraction).

In a tree whose leaves carry small physical legs (a TTN over pixels with ``d = 2``), a node whose children
absorb only inputs sees messages confined to a small subspace: the children of a binary level-2 node map
``2 x 2``-dimensional input pairs into bond-``D`` vectors, so the node's output depends on the data only through
the ``(2 x 2) x (2 x 2) = 16`` products of its four inputs. When that input dimension is no larger than the node's
output leg, it is cheaper to contract the children's cores into the node once per forward (no batch index:
the cost of a few samples) and absorb the outer product of the inputs with one small GEMM per sample, than to
push every sample through the children and then through a ``D x D x D`` node. The function computed is the same;
only the contraction order changes. Merging repeats upwards while it pays (:func:`merge_costs`): on a 64-leaf
binary TTN with bond 64, levels 2 and 3 (256 input dimensions per level-3 node, against 64^3 per node) are merged
for batches of a few dozen samples and up; level 4 (65 536 input dimensions) is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_LETTERS = "abcdefghijklm"
_FREE = "qrstuvwxyz"


@dataclass(frozen=True)
class MergeCandidate:
    """A level that may absorb its input-only children (see :func:`merge_costs`)."""

    source: int  # the children's group
    k: int  # message legs per node
    input_dims: tuple[int, ...]  # input legs of one child, in the order of its core's axes
    saving: float  # FLOPs saved per sample and node
    cost: float  # batch-free FLOPs per node to contract the children into the node


def merge_costs(input_dims: list[int], k: int, c: int, p: int) -> tuple[float, float] | None:
    """Per-sample FLOPs saved and batch-free FLOPs spent by merging, or None if merging does not halve the
    per-sample work.

    ``k`` children with inputs ``input_dims`` each (``D_c = prod(input_dims)``) and output leg ``c`` feed a node
    with output leg ``p``. Level by level, per sample: each child ``2 D_c c`` (one GEMM on the outer product of its
    inputs) and the node ``2 c^k p``. Merged: one GEMM on the outer product of all ``D = D_c^k`` inputs, ``2 D p``,
    plus ``D`` multiplies to form it. Merging costs ``sum_j 2 D_c^(j+1) c^(k-j) p`` once per node and forward (the
    children contracted one by one), whatever the batch. Merging is a candidate when the per-sample work at least
    halves (FLOP counts miss memory traffic; a 2x margin keeps the choice on the safe side).
    """
    if not 1 <= k <= len(_FREE):
        return None
    dc = math.prod(input_dims)
    merged = 2.0 * dc**k * p + dc**k
    plain = k * (2.0 * dc * c + dc) + 2.0 * c**k * p
    if plain < 2.0 * merged:
        return None
    cost = sum(2.0 * dc ** (j + 1) * c ** (k - j) * p for j in range(k))
    return plain - merged, cost


def merge_children(child: torch.Tensor, parent: torch.Tensor, k: int, input_dims: list[int]) -> torch.Tensor:
    """The merged cores of a level.

    Parameters
    ----------
    child : Tensor, shape (k * n, prod(input_dims), c)
        The children's cores (inputs flattened, then the leg to the parent), in slot-major order: rows
        ``j n .. (j + 1) n - 1`` feed message leg ``j`` of the ``n`` parents.
    parent : Tensor, shape (n, c, ..., c, p) or any shape with n * c^k * p elements
        The parents' cores: ``k`` message legs, then the output leg.
    k : int
        Message legs per parent.
    input_dims : list of int
        Physical dimensions of one child's input legs, in the order of its core's axes.

    Returns
    -------
    Tensor, shape (n, *input_dims * k, p)
        ``merged[n, x_0, ..., x_{k-1}, p] = sum_{a} child_0[n, x_0, a_0] ... child_{k-1}[n, x_{k-1}, a_{k-1}]
        parent[n, a_0, ..., a_{k-1}, p]``.
    """
    n = child.shape[0] // k
    c = child.shape[-1]
    p = parent.numel() // (n * c**k)
    legs, free = _LETTERS[:k], _FREE[:k]
    eq = ",".join(f"n{x}{a}" for x, a in zip(free, legs)) + f",n{legs}p->n{free}p"
    blocks = [child[j * n:(j + 1) * n].reshape(n, -1, c) for j in range(k)]
    merged = torch.einsum(eq, *blocks, parent.reshape(n, *([c] * k), p))
    return merged.reshape(n, *(list(input_dims) * k), p)
