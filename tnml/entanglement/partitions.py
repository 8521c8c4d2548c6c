"""Partitions of a network's sites: canonical (tree blocks), contiguous, interleaved, and validation.

A *partition* is one side ``A`` of a split ``(A, A^c)`` of the sites ``0..n_sites-1``; the complement is implied.
Every function here returns a list of :class:`Partition` objects, each a sorted tuple of site ids (it iterates,
indexes and compares like that tuple, so it can be passed anywhere a "part" is expected) plus the tree ``level``
it comes from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from tnml.mode_trees import tree_leaves, validate_tree
from tnml.options import PartitionConvention, choices
from tnml.validation import check_dense_bytes, check_option, id_list, positive_int

__all__ = [
    "Partition",
    "canonical_partitions",
    "contiguous_partitions",
    "interleaved_partitions",
    "tree_partitions",
    "validate_partition",
]


@dataclass(frozen=True, order=True)
class Partition:
    """One side of a split of the sites.

    Parameters
    ----------
    sites : tuple of int
        The sites of side ``A``, sorted ascending (side ``B`` is every other site).
    level : int or None
        Depth of the tree node whose block this is (1 = a child of the root); None for partitions that do not
        come from a tree (e.g. :func:`contiguous_partitions`).

    Examples
    --------
    >>> p = Partition((0, 1), level=1)
    >>> list(p), len(p), 1 in p
    ([0, 1], 2, True)
    """

    sites: tuple[int, ...]
    level: int | None = None

    def __iter__(self) -> Iterator[int]:
        return iter(self.sites)

    def __len__(self) -> int:
        return len(self.sites)

    def __getitem__(self, k):
        return self.sites[k]

    def __contains__(self, site) -> bool:
        return site in self.sites

    def complement(self, n_sites: int) -> tuple[int, ...]:
        """The sites of side ``B``: ``0..n_sites-1`` minus :attr:`sites`."""
        mine = set(self.sites)
        return tuple(s for s in range(n_sites) if s not in mine)

    def compact(self) -> str:
        """The sites as comma-separated runs, for tables.

        Examples
        --------
        >>> Partition((0, 1, 2, 5, 7, 8)).compact()
        '0-2,5,7-8'
        """
        runs: list[tuple[int, int]] = []  # (first, last) of each run
        for s in self.sites:
            if runs and s == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], s)
            else:
                runs.append((s, s))
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _fast_sites(part, n_sites: int) -> np.ndarray | None:
    """``part`` as a sorted int64 array if it is a valid side A (a Partition, list, tuple or range of ints, or a
    1-D integer array), without per-site Python work; None to fall back to the checks of
    :func:`validate_partition` (other inputs, and every invalid one, so that its errors stay the same)."""
    if isinstance(part, Partition):
        part = part.sites
    if isinstance(part, np.ndarray):
        if part.ndim != 1 or part.dtype.kind not in "iu":
            return None
        if part.dtype.kind == "u" and part.size and part.max() >= n_sites:  # before a cast could wrap it
            return None
        arr = part.astype(np.int64)
    elif isinstance(part, (list, tuple, range)):
        if not isinstance(part, range):
            # bool is an int subclass but not a site id; numpy would silently turn it into 0/1
            for t in set(map(type, part)):
                if t is not int and not issubclass(t, np.integer):
                    return None
        try:
            arr = np.asarray(part, dtype=np.int64)
        except (OverflowError, TypeError, ValueError):
            return None
    else:
        return None
    if not 0 < arr.size < n_sites:
        return None
    if arr.size > 1 and not (arr[1:] > arr[:-1]).all():  # sorted and distinct already (the common case)?
        arr = np.sort(arr)
        if not (arr[1:] != arr[:-1]).all():
            return None
    if arr[0] < 0 or arr[-1] >= n_sites:
        return None
    return arr


def validate_partition(part: Iterable[int], n_sites: int) -> tuple[int, ...]:
    """Check one side of a split of ``0..n_sites-1`` and return it as a sorted tuple.

    Parameters
    ----------
    part : iterable of int
        The sites of side ``A``.
    n_sites : int
        Number of sites (for a dense tensor: its number of axes).

    Returns
    -------
    tuple of int
        ``part`` sorted ascending.

    Raises
    ------
    ValueError
        If ``part`` is empty or holds every site (one side of the split would be empty), repeats a site, or holds
        a site outside ``0..n_sites-1``.
    TypeError
        If a site is not an integer.

    Examples
    --------
    >>> validate_partition([2, 0], 4)
    (0, 2)
    """
    return tuple(validated_sites(part, n_sites).tolist())


def validated_sites(part: Iterable[int], n_sites: int) -> np.ndarray:
    """:func:`validate_partition` as a sorted int64 array ``(len(part),)`` (the form the network routes index
    with); same checks and errors."""
    part = id_list(part)  # torch.tensor([0, 1]) is a list of site ids too
    arr = _fast_sites(part, n_sites)
    if arr is not None:
        return arr
    if isinstance(part, (str, bytes)):
        raise TypeError(f"part must be an iterable of site ids (int), got the string {part!r}")
    try:
        items = list(part)
    except TypeError:
        raise TypeError(f"part must be an iterable of site ids (int), got {type(part).__name__}") from None
    sites = []
    for s in items:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"part must hold integer site ids; got {s!r} ({type(s).__name__}) in part={items!r}")
        sites.append(int(s))
    if not sites:
        raise ValueError(f"part is empty; side A of a split of {n_sites} sites must hold at least one site")
    dup = sorted(s for s, c in Counter(sites).items() if c > 1)
    if dup:
        raise ValueError(f"part repeats sites {dup[:8]}; list each site once (part={sites[:12]})")
    bad = [s for s in sites if not 0 <= s < n_sites]
    if bad:
        raise ValueError(
            f"part holds sites {bad[:8]} outside 0..{n_sites - 1} (n_sites={n_sites}); sites are 0-based and "
            "negative ids are not allowed"
        )
    if len(sites) == n_sites:
        raise ValueError(
            f"part holds all {n_sites} sites, so side B of the split is empty; leave at least one site out"
        )
    return np.array(sorted(sites), dtype=np.int64)


def _check_n(name: str, n, minimum: int = 2) -> int:
    return positive_int(name, n, minimum, fix="a split needs two non-empty sides")


#: bytes per site id held in a returned partition (a tuple slot and, mostly, its own int object)
_BYTES_PER_ENTRY = 36


def _check_entries(n_entries: int, what: str) -> None:
    """Refuse, before building them, partition lists holding ``n_entries`` site ids beyond the memory setting."""
    check_dense_bytes(_BYTES_PER_ENTRY * n_entries, f"{what} ({n_entries:.3g} site ids as Python tuples)",
                      "use fewer sites")


def _dedupe(blocks: Iterable[tuple[tuple[int, ...], int]], n_sites: int) -> list[Partition]:
    """Keep the first occurrence of each split; a block equal to the complement of an earlier one is the same
    split (e.g. the root's two children) and a block repeating an earlier one (a node with one child) too."""
    seen: set[frozenset[int]] = set()
    everything = frozenset(range(n_sites))
    out = []
    for sites, level in blocks:
        key = frozenset(sites)
        if not key or key == everything or key in seen or (everything - key) in seen:
            continue
        seen.add(key)
        out.append(Partition(tuple(sorted(sites)), level))
    return out


def _tree_blocks_1d(n_sites: int, split) -> list[tuple[tuple[int, ...], int]]:
    """Blocks of every non-root node of the binary tree made by splitting ``range(n_sites)`` with ``split``,
    breadth first (level by level, left to right)."""
    blocks = []
    frontier = [list(range(n_sites))]
    level = 0
    while frontier:
        level += 1
        nxt = []
        for block in frontier:
            if len(block) < 2:
                continue
            for child in split(block):
                child = [int(s) for s in child]
                if child:
                    blocks.append((tuple(child), level))
                    nxt.append(child)
        frontier = nxt
    return blocks


def _p5_blocks(n: int, arity: int) -> list[Partition]:
    """P5's released code: level ``l`` splits the flat site order ``0..n-1`` into ``arity^l`` chunks with
    ``numpy.array_split`` (each chunk vs its complement; level 1 of 1-D data the single split first half | second
    half), levels until every chunk holds at most one site; empty chunks skipped, a split repeated within a level
    kept once."""
    out: list[Partition] = []
    level = 0
    while True:
        level += 1
        chunks = [c for c in np.array_split(np.arange(n), arity**level) if c.size]
        if arity == 2 and level == 1:
            chunks = chunks[:1]
        out.extend(_dedupe([(tuple(int(s) for s in c), level) for c in chunks], n))
        if all(c.size <= 1 for c in chunks):
            return out


CONVENTIONS = choices(PartitionConvention)


def canonical_partitions(n_sites: int | None = None, *, shape: tuple[int, int] | None = None,
                         convention: PartitionConvention = "tnml") -> list[Partition]:
    """Canonical partitions of a locally connected (tree) network: the leaf blocks of its tree nodes.

    1-D (``n_sites``): the binary tree over sites ``0..N-1`` that halves every block with ``numpy.array_split``
    (the first half gets the extra site when a block is odd, so ``N`` need not be a power of 2). Every node but the
    root contributes its block; the root's two children are complements of each other and give one split, reported
    as the *left* half (the one holding site 0). There are ``2N - 3`` partitions.

    2-D (``shape=(h, w)``): the quad-tree over row-major site ids ``r * w + c``; every block is split into (up to)
    4 by halving its rows and its columns with ``array_split`` (children in the order top-left, top-right,
    bottom-left, bottom-right; a block one row or column thick splits into 2). Blocks that repeat an earlier split
    (a node with a single child, or the complement of an earlier block) are dropped.

    ``convention="p5"`` gives the blocks of P5's released code instead: level ``l`` cuts the *flat* order
    ``0..N-1`` into ``2^l`` (1-D) or ``4^l`` (2-D) chunks with one ``numpy.array_split`` (not by halving each
    block of the level above), each chunk against its complement (level 1 of 1-D data: the single split), down to
    chunks of one site; empty chunks are skipped and a split is listed once per level but may recur at a later
    level (P5 averages per level over its chunks). For ``N = 2^L`` (1-D) both conventions give the same list; for
    other ``N`` they differ (``N = 10``, level 2: P5 ``[0,1,2], [3,4,5], [6,7], [8,9]``, tnml ``[0,1,2], [3,4],
    [5,6,7], [8,9]``). For 2-D data P5's code splits the flat feature order, which matches quad-tree blocks only
    when the features are listed block by block (quad-tree / Z order), not row-major.

    Parameters
    ----------
    n_sites : int, optional
        Number of sites of a 1-D network (>= 2). Give exactly one of ``n_sites`` and ``shape``.
    shape : tuple (h, w), optional
        Grid shape of a 2-D network.
    convention : {"tnml", "p5"}
        ``"tnml"`` (default): recursive halving, the tree of tnml's networks and of
        :func:`~tnml.entanglement.data_entanglement`'s shared Gram products; ``"p5"``: P5's per-level
        ``array_split`` chunks (to reproduce its per-level numbers; pass them as ``partitions=``).

    Returns
    -------
    list of Partition
        Breadth first: level 1 (children of the root) first, left to right inside a level.

    References
    ----------
    Alexander, De La Vega, Razin, Cohen. *What Makes Data Suitable for a Locally Connected Neural Network?*
    NeurIPS 2023 (canonical partitions, Sec. 4).

    Examples
    --------
    >>> [p.sites for p in canonical_partitions(4)]
    [(0, 1), (0,), (1,), (2,), (3,)]
    >>> len(canonical_partitions(8)), len(canonical_partitions(shape=(4, 4)))
    (13, 20)
    >>> [p.sites for p in canonical_partitions(6, convention="p5") if p.level == 2]
    [(0, 1), (2, 3), (4,), (5,)]
    """
    check_option("convention", convention, PartitionConvention,
                 fix="'tnml' halves every block, 'p5' cuts the flat order per level")
    if (n_sites is None) == (shape is None):
        raise ValueError(
            f"give exactly one of n_sites (1-D) and shape=(h, w) (2-D); got n_sites={n_sites!r}, shape={shape!r}"
        )
    if n_sites is not None:
        n = _check_n("n_sites", n_sites)
        _check_entries(n * max(n.bit_length(), 1), f"the canonical partitions of {n} sites")
        if convention == "p5":
            return _p5_blocks(n, 2)
        return _dedupe(_tree_blocks_1d(n, lambda b: np.array_split(np.asarray(b), 2)), n)
    if not isinstance(shape, Sequence) or len(shape) != 2:
        raise ValueError(f"shape must be a pair (h, w) of positive integers, got {shape!r}")
    h, w = (_check_n("shape entries", s, 1) for s in shape)
    if h * w < 2:
        raise ValueError(f"shape={tuple(shape)} has {h * w} site; a split needs at least 2 sites")
    _check_entries(h * w * max((h * w).bit_length(), 1), f"the canonical partitions of a {h}x{w} grid")
    if convention == "p5":
        return _p5_blocks(h * w, 4)
    grid = np.arange(h * w).reshape(h, w)
    blocks: list[tuple[tuple[int, ...], int]] = []
    frontier = [grid]
    level = 0
    while frontier:
        level += 1
        nxt = []
        for block in frontier:
            if block.size < 2:
                continue
            for rows in np.array_split(block, 2, axis=0):
                for child in np.array_split(rows, 2, axis=1):
                    if child.size:
                        blocks.append((tuple(int(s) for s in child.ravel()), level))
                        nxt.append(child)
        frontier = nxt
    return _dedupe(blocks, h * w)


def contiguous_partitions(n_sites: int) -> list[Partition]:
    """Left blocks ``{0, ..., k-1}`` for ``k = 1..N-1`` (the cuts of a chain, i.e. the bonds of an MPS).

    Parameters
    ----------
    n_sites : int
        Number of sites (>= 2).

    Returns
    -------
    list of Partition
        ``N - 1`` partitions, ``level=None``.

    Examples
    --------
    >>> [p.sites for p in contiguous_partitions(3)]
    [(0,), (0, 1)]
    """
    n = _check_n("n_sites", n_sites)
    _check_entries(n * (n - 1) // 2, f"the contiguous partitions of {n} sites")
    return [Partition(tuple(range(k)), None) for k in range(1, n)]


def interleaved_partitions(n_sites: int) -> list[Partition]:
    """Canonical partitions of *interleaved* pooling (Cohen & Shashua 2017): the binary tree that splits every
    block into its even- and odd-position members.

    Level 1 is even sites vs odd sites, level 2 the residues mod 4, and so on (for ``N = 2^L``). Deduplicated as
    in :func:`canonical_partitions` (the root's children give one split, reported as the block holding site 0),
    so there are ``2N - 3`` partitions.

    Parameters
    ----------
    n_sites : int
        Number of sites (>= 2).

    Returns
    -------
    list of Partition

    Examples
    --------
    >>> [p.sites for p in interleaved_partitions(4)]
    [(0, 2), (0,), (2,), (1,), (3,)]
    """
    n = _check_n("n_sites", n_sites)
    _check_entries(n * max(n.bit_length(), 1), f"the interleaved partitions of {n} sites")
    return _dedupe(_tree_blocks_1d(n, lambda b: (b[0::2], b[1::2])), n)


def tree_partitions(tree, n_sites: int | None = None) -> list[Partition]:
    """The blocks of every non-root node of a mode tree (e.g. the tree of a :class:`~tnml.networks.TTN`).

    Parameters
    ----------
    tree : nested tuples of int
        A mode tree (see :mod:`tnml.mode_trees`); its leaves must be ``0..n_sites-1`` once each.
    n_sites : int, optional
        Number of sites (default: the number of leaves).

    Returns
    -------
    list of Partition
        Breadth first, deduplicated as in :func:`canonical_partitions` (leaves are blocks of one site).

    Examples
    --------
    >>> [p.sites for p in tree_partitions(((0, 1), (2, 3, 4)))]
    [(0, 1), (0,), (1,), (2,), (3,), (4,)]
    """
    tree = validate_tree(tree, n_sites)
    blocks: list[tuple[tuple[int, ...], int]] = []
    leaves = tree_leaves
    n = len(leaves(tree))
    if n < 2:
        raise ValueError(f"tree has {n} leaf; a split needs at least 2 sites")
    frontier = [tree]
    level = 0
    while frontier:
        level += 1
        nxt = []
        for node in frontier:
            if isinstance(node, int):
                continue
            for child in node:
                blocks.append((tuple(sorted(leaves(child))), level))
                nxt.append(child)
        frontier = nxt
    return _dedupe(blocks, n)
