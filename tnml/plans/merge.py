"""Contract a level's input-only children into it before the data arrives (a batch-free precontraction).

In a tree whose leaves carry small physical legs (a TTN over pixels with ``d = 2``), a node whose children
absorb only inputs sees messages confined to a small subspace: the children of a binary level-2 node map
``2 x 2``-dimensional input pairs into bond-``D`` vectors, so the node's output depends on the data only through
the ``(2 x 2) x (2 x 2) = 16`` products of its four inputs. When that input dimension is no larger than the node's
output leg, it is cheaper to contract the children's cores into the node once per forward (no batch index:
the cost of a few samples) and absorb the outer product of the inputs with one small GEMM per sample, than to
push every sample through the children and then through a ``D x D x D`` node. The function computed is the same;
only the contraction order changes. (On a 64-leaf binary TTN with bond 64 this removes the 16 level-2 nodes'
``b x 64 x 4096`` GEMMs, about half of the train step's arithmetic.)
"""

from __future__ import annotations

import math

import torch

_LETTERS = "abcdefghijklm"
_FREE = "qrstuvwxyz"


def can_merge(input_dims: list[int], k: int, parent_dim: int) -> bool:
    """Whether to merge ``k`` input-only children with ``input_dims`` each into a node with output leg ``parent_dim``:
    when the node's inputs span no more dimensions than its output (then one ``(inputs x parent_dim)`` GEMM per
    sample costs at most a ``parent_dim^2`` product, less than any node with two legs of that size)."""
    return 1 <= k <= len(_FREE) and math.prod(input_dims) ** k <= parent_dim


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
