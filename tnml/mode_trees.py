"""Mode trees: nested tuples of site ids that say which sites a hierarchical network pools together.

A mode tree is an int (a leaf = one site) or a tuple of mode trees (a node pooling its children). The models
(:class:`~tnml.networks.TTN`, the hierarchical factorizations), the analysis (tree partitions) and the dynamics
(hierarchical ranks) all read them, so they live in the core, below all three; :mod:`tnml.networks.mode_trees`
re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "ModeTree",
    "contiguous_tree",
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
    if n_sites < 1:
        raise ValueError(f"n_sites must be >= 1, got {n_sites}")
    if arity < 2:
        raise ValueError(f"arity must be >= 2, got {arity}")
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
