"""Mode trees: nested tuples of site ids that say which sites a hierarchical network pools together.

A mode tree is an int (a leaf = one site) or a tuple of mode trees (a node pooling its children). The models
(:class:`~tnml.networks.TTN`, the hierarchical factorizations), the analysis (tree partitions) and the dynamics
(hierarchical ranks) all read them, so they live in the core, below all three (:mod:`tnml.networks` lists the
builders a user needs next to the models).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from tnml.validation import check_dense_bytes, positive_int

#: bytes per site of a mode tree held as nested Python tuples of ints (an int, a tuple slot, the inner nodes),
#: the estimate the size guards use
_PY_BYTES_PER_SITE = 64

__all__ = [
    "ModeTree",
    "contiguous_tree",
    "interleaved_window_tree",
    "tree_height",
    "tree_leaves",
    "tree_nodes",
    "validate_tree",
    "window_tree",
]

ModeTree = int | tuple


def contiguous_tree(n_sites: int, arity: int = 2) -> ModeTree:
    """1-D contiguous pooling: neighbours merge first, ``arity`` at a time (a shorter last group when
    ``arity`` does not divide the level).

    Parameters
    ----------
    n_sites : int
        Number of leaves (sites ``0..n_sites-1``), at least 1.
    arity : int, default 2
        Children per inner node, at least 2.

    Returns
    -------
    ModeTree
        Nested tuples of site ids (a bare ``int`` for a single site).

    Examples
    --------
    >>> contiguous_tree(4)
    ((0, 1), (2, 3))
    >>> contiguous_tree(5, arity=3)
    ((0, 1, 2), (3, 4))
    """
    n_sites, arity = positive_int("n_sites", n_sites), positive_int("arity", arity, 2)
    check_dense_bytes(
        _PY_BYTES_PER_SITE * n_sites, f"a mode tree over {n_sites} sites (nested Python tuples)", "use fewer sites"
    )
    level: list = list(range(n_sites))
    while len(level) > 1:
        level = [
            tuple(level[i : i + arity]) if len(level[i : i + arity]) > 1 else level[i]
            for i in range(0, len(level), arity)
        ]
    return level[0]


def window_tree(shape: tuple[int, int], window: int = 2) -> ModeTree:
    """2-D square-window pooling over a row-major ``(h, w)`` grid: ``window × window`` blocks merge at each level
    (smaller blocks at odd edges).

    Parameters
    ----------
    shape : (int, int)
        Grid height and width; site ``r * w + c`` is row ``r``, column ``c``.
    window : int, default 2
        Side of the square pooling window, at least 2.

    Returns
    -------
    ModeTree
        Nested tuples of site ids.

    Examples
    --------
    >>> window_tree((2, 2))
    (0, 1, 2, 3)
    """
    if not isinstance(shape, Sequence) or len(shape) != 2:
        raise ValueError(f"shape must be a pair (h, w) of positive integers, got {shape!r}")
    h, w = (positive_int("shape entries", s) for s in shape)
    window = positive_int("window", window, 2)
    check_dense_bytes(_PY_BYTES_PER_SITE * h * w, f"a mode tree over a {h}x{w} grid (nested Python tuples)",
                      "use a smaller shape")
    grid = np.empty((h, w), dtype=object)
    for r in range(h):
        for c in range(w):
            grid[r, c] = r * w + c
    while grid.size > 1:
        gh, gw = -(-grid.shape[0] // window), -(-grid.shape[1] // window)
        nxt = np.empty((gh, gw), dtype=object)
        for r in range(gh):
            for c in range(gw):
                block = grid[r * window : (r + 1) * window, c * window : (c + 1) * window].ravel().tolist()
                nxt[r, c] = tuple(block) if len(block) > 1 else block[0]
        grid = nxt
    return grid.ravel()[0]


def tree_leaves(tree: ModeTree) -> list[int]:
    """Sites of a mode tree in depth-first order.

    Parameters
    ----------
    tree : ModeTree
        Nested tuples of site ids, or a bare site id.

    Returns
    -------
    list of int
        The leaves, left to right.
    """
    out: list[int] = []
    stack = [tree]  # iterative: caterpillar trees are as deep as they have leaves
    while stack:
        t = stack.pop()
        if isinstance(t, (int, np.integer)):
            out.append(int(t))
        else:
            stack.extend(reversed(t))
    return out


def validate_tree(tree, n_sites: int | None = None) -> ModeTree:
    """Normalize (lists → tuples) and check that the leaves are exactly ``0..n_sites-1``, each once."""

    tree = _normalized(tree)
    leaves = tree_leaves(tree)
    n = len(leaves) if n_sites is None else n_sites
    if sorted(leaves) != list(range(n)):
        counts = Counter(leaves)
        dup = sorted(s for s, c in counts.items() if c > 1)
        raise ValueError(
            f"mode tree leaves must be the sites 0..{n - 1} each exactly once; got {len(leaves)} leaves"
            + (f", repeated {dup[:5]}" if dup else "")
            + (
                f", out of range {[s for s in leaves if not 0 <= s < n][:5]}"
                if any(not 0 <= s < n for s in leaves)
                else ""
            )
        )
    return tree


def _normalized(tree) -> ModeTree:
    """Lists become tuples, numpy integers ints (iteratively, post-order), or a ValueError naming the bad node."""

    def leaf(t):
        if isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_)):
            return int(t)
        if isinstance(t, Sequence) and not isinstance(t, str) and len(t) > 0:
            return None
        raise ValueError(f"a mode tree node must be a site id or a non-empty sequence of nodes, got {t!r}")

    first = leaf(tree)
    if first is not None:
        return first
    done: list = []  # finished children, in order
    stack: list = [(tree, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            k = len(t)
            kids = tuple(done[len(done) - k :])
            del done[len(done) - k :]
            done.append(kids)
            continue
        v = leaf(t)
        if v is not None:
            done.append(v)
            continue
        stack.append((t, True))
        stack.extend((c, False) for c in reversed(t))
    return done[0]


def _post_order(tree: ModeTree):
    """Yield the nodes of ``tree`` in post-order (children before their parent) without recursion."""
    stack: list = [(tree, False)]
    while stack:
        t, expanded = stack.pop()
        if isinstance(t, int) or expanded:
            yield t
            continue
        stack.append((t, True))
        stack.extend((c, False) for c in reversed(t))


def tree_height(tree: ModeTree) -> int:
    """0 for a leaf, else 1 + the max height of the children (computed without recursion)."""
    heights: list[int] = []
    for t in _post_order(tree):
        if isinstance(t, int):
            heights.append(0)
        else:
            k = len(t)
            h = 1 + max(heights[len(heights) - k :])
            del heights[len(heights) - k :]
            heights.append(h)
    return heights[0]


def tree_nodes(tree: ModeTree) -> list[tuple[int, ...]]:
    """The site blocks of every node (leaves included), post-order (computed without recursion)."""
    out: list[tuple[int, ...]] = []
    blocks: list[tuple[int, ...]] = []
    for t in _post_order(tree):
        if isinstance(t, int):
            b: tuple[int, ...] = (t,)
        else:
            k = len(t)
            b = tuple(s for c in blocks[len(blocks) - k :] for s in c)
            del blocks[len(blocks) - k :]
        blocks.append(b)
        out.append(b)
    return out


def _bit_reverse(k: int, bits: int) -> int:
    return int(format(k, f"0{bits}b")[::-1], 2) if bits else 0


def interleaved_window_tree(side: int) -> ModeTree:
    """Mode tree of *interleaved* 2-D pooling on a ``side × side`` grid (``side`` a power of 2).

    Construction: the contiguous 2×2-window tree (:func:`window_tree`) of a grid whose rows and
    columns are relabelled by bit reversal (for ``side = 8``: positions ``0..7`` hold rows/columns
    ``0, 4, 2, 6, 1, 5, 3, 7``). So the first pooling layer merges ``{(r, c), (r, c + s/2), (r + s/2, c),
    (r + s/2, c + s/2)}`` — four pixels spread over the four quadrants — and, from the top, the node at level
    ``l`` pools the sites with fixed residues ``(r mod 2^l, c mod 2^l)``: level 1 = the four parity cosets
    (``r, c`` even/odd), level 2 = residues mod 4, ... It is the 2-D analogue of odd/even (interleaved) pooling
    in 1-D and the tree whose canonical partitions are the interleaved ones.

    Parameters
    ----------
    side : int
        Grid side, a power of 2; site ``r * side + c`` is row ``r``, column ``c``.

    Returns
    -------
    ModeTree
        Nested 4-tuples of site ids, ``log2(side)`` levels.

    Examples
    --------
    >>> interleaved_window_tree(4)
    ((0, 2, 8, 10), (1, 3, 9, 11), (4, 6, 12, 14), (5, 7, 13, 15))
    >>> interleaved_window_tree(8)[0][0]
    (0, 4, 32, 36)
    """
    if isinstance(side, bool) or not isinstance(side, (int, np.integer)):
        raise TypeError(f"side must be an integer power of 2 (>= 2), got {side!r}")
    side = int(side)
    bits = side.bit_length() - 1
    if side < 2 or 2**bits != side:
        raise ValueError(f"side must be a power of 2 (>= 2), got {side!r}")

    def relabel(t):
        if isinstance(t, int):
            r, c = divmod(t, side)
            return _bit_reverse(r, bits) * side + _bit_reverse(c, bits)
        return tuple(relabel(x) for x in t)

    return relabel(window_tree((side, side)))
