"""Mode trees: nested tuples of site ids that say which sites a hierarchical network pools together.

A mode tree is an int (a leaf = one site) or a tuple of mode trees (a node pooling its children). The models
(:class:`~tnml.networks.TTN`, the hierarchical factorizations), the analysis (tree partitions) and the dynamics
(hierarchical ranks) all read them, so they live in the core, below all three; :mod:`tnml.networks.mode_trees`
re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tnml.validation import positive_int

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
    h, w = shape
    if h < 1 or w < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
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
    if isinstance(tree, (int, np.integer)):
        return [int(tree)]
    out: list[int] = []
    for child in tree:
        out.extend(tree_leaves(child))
    return out


def validate_tree(tree, n_sites: int | None = None) -> ModeTree:
    """Normalize (lists → tuples) and check that the leaves are exactly ``0..n_sites-1``, each once."""

    def norm(t):
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
            return int(t)
        if isinstance(t, Sequence) and not isinstance(t, str) and len(t) > 0:
            return tuple(norm(c) for c in t)
        raise ValueError(f"a mode tree node must be a site id or a non-empty sequence of nodes, got {t!r}")

    tree = norm(tree)
    leaves = tree_leaves(tree)
    n = len(leaves) if n_sites is None else n_sites
    if sorted(leaves) != list(range(n)):
        dup = sorted({s for s in leaves if leaves.count(s) > 1})
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


def tree_height(tree: ModeTree) -> int:
    """0 for a leaf, else 1 + the max height of the children."""
    if isinstance(tree, int):
        return 0
    return 1 + max(tree_height(c) for c in tree)


def tree_nodes(tree: ModeTree) -> list[tuple[int, ...]]:
    """The site blocks of every node (leaves included), post-order."""
    out: list[tuple[int, ...]] = []

    def visit(t):
        if isinstance(t, int):
            out.append((t,))
            return
        for c in t:
            visit(c)
        out.append(tuple(tree_leaves(t)))

    visit(tree)
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
