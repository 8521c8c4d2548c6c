"""Partitions: canonical (1-D binary tree, 2-D quad-tree), contiguous, interleaved, mode-tree blocks, validation."""

import numpy as np
import pytest

import tnml.entanglement as ent
from tnml.entanglement import Partition, canonical_partitions


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 8, 16, 33])
def test_canonical_1d_count_and_distinct(n):
    parts = ent.canonical_partitions(n)
    assert len(parts) == 2 * n - 3
    keys = {frozenset(p) for p in parts}
    full = frozenset(range(n))
    assert len(keys) == len(parts)
    assert not any(full - k in keys for k in keys)  # no split reported twice (as a block and its complement)
    assert all(list(p.sites) == sorted(p.sites) and 0 < len(p) < n for p in parts)


def test_canonical_1d_blocks_and_levels():
    parts = ent.canonical_partitions(8)
    assert parts[0] == Partition((0, 1, 2, 3), 1)  # the root's children give one split: the half holding site 0
    assert [p.sites for p in parts if p.level == 2] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert [p.sites for p in parts if p.level == 3] == [(s,) for s in range(8)]
    # P5: level-l blocks of a 2^L tree are K = {2^l (n-1), ..., 2^l n - 1} (0-based), of size 2^(L-l)
    for p in parts:
        size = 8 >> p.level
        assert len(p) == size and p.sites[0] % size == 0 and p.sites == tuple(range(p.sites[0], p.sites[0] + size))


def test_canonical_array_split_chunks():
    parts = ent.canonical_partitions(5)
    assert parts[0].sites == (0, 1, 2)  # array_split gives the first half the extra site
    assert [p.sites for p in parts if p.level == 2] == [(0, 1), (2,), (3,), (4,)]


def test_canonical_2d_quadtree():
    parts = ent.canonical_partitions(shape=(4, 4))
    assert len(parts) == 20
    assert [p.sites for p in parts if p.level == 1] == [(0, 1, 4, 5), (2, 3, 6, 7), (8, 9, 12, 13), (10, 11, 14, 15)]
    assert all(len(p) == 1 for p in parts if p.level == 2)
    thin = ent.canonical_partitions(shape=(1, 8))  # a one-row grid is a binary tree
    assert [p.sites for p in thin] == [p.sites for p in ent.canonical_partitions(8)]


def test_contiguous_and_interleaved():
    assert [p.sites for p in ent.contiguous_partitions(4)] == [(0,), (0, 1), (0, 1, 2)]
    inter = ent.interleaved_partitions(8)
    assert len(inter) == 13
    assert inter[0].sites == (0, 2, 4, 6)
    assert [p.sites for p in inter if p.level == 2] == [(0, 4), (2, 6), (1, 5), (3, 7)]


def test_tree_partitions_and_partition_protocol():
    parts = ent.tree_partitions(((0, 1, 2), (3, 4)))
    assert [p.sites for p in parts] == [(0, 1, 2), (0,), (1,), (2,), (3,), (4,)]
    p = parts[0]
    assert list(p) == [0, 1, 2] and 1 in p and p[0] == 0 and p.complement(5) == (3, 4)


def test_validate_partition_ok():
    assert ent.validate_partition(np.array([3, 1]), 5) == (1, 3)


@pytest.mark.parametrize(
    "part, match",
    [
        ([], "part is empty"),
        ([0, 1, 2, 3], "side B of the split is empty"),
        ([1, 1], r"repeats sites \[1\]"),
        ([4], r"outside 0..3"),
        ([-1], r"outside 0..3"),
    ],
)
def test_validate_partition_errors(part, match):
    with pytest.raises(ValueError, match=match):
        ent.validate_partition(part, 4)


def test_validate_partition_type_errors():
    with pytest.raises(TypeError, match="integer site ids"):
        ent.validate_partition([0.5], 4)
    with pytest.raises(TypeError, match="string"):
        ent.validate_partition("01", 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "exactly one of n_sites"),
        ({"n_sites": 4, "shape": (2, 2)}, "exactly one of n_sites"),
        ({"n_sites": 1}, "n_sites must be an integer >= 2"),
        ({"shape": (1, 1)}, "at least 2 sites"),
        ({"shape": (2,)}, "pair"),
    ],
)
def test_canonical_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ent.canonical_partitions(**kwargs)


# ---------------------------------------------------------------------------------------------- P5 convention
def _p5_reference(n: int, arity: int) -> list[tuple[tuple[int, ...], int]]:
    """P5's listing as its code describes it: level l = array_split of range(n) into arity**l chunks, each chunk vs
    its complement (1-D level 1: only the first chunk), empty chunks skipped, until no chunk has 2+ sites."""
    out, level = [], 1
    while True:
        chunks = [tuple(int(s) for s in c) for c in np.array_split(np.arange(n), arity**level) if len(c)]
        listed = chunks[:1] if (arity == 2 and level == 1) else chunks
        out += [(c, level) for c in listed]
        if max(len(c) for c in chunks) <= 1:
            return out
        level += 1


@pytest.mark.parametrize("n", range(2, 41))
def test_p5_convention_matches_its_description(n):
    got = [(p.sites, p.level) for p in canonical_partitions(n, convention="p5")]
    assert got == _p5_reference(n, 2)
    for p in canonical_partitions(n, convention="p5"):
        assert len(p) in (n // 2 ** p.level, -(-n // 2 ** p.level))


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (4, 4), (2, 5), (6, 7)])
def test_p5_convention_2d_splits_the_flat_order(shape):
    got = [(p.sites, p.level) for p in canonical_partitions(shape=shape, convention="p5")]
    assert got == _p5_reference(shape[0] * shape[1], 4)


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_p5_and_tnml_agree_for_powers_of_two(n):
    assert canonical_partitions(n, convention="p5") == canonical_partitions(n)


def test_p5_convention_example_n10():
    """For N = 10 P5's level-2 block [3, 4, 5] is not a tnml partition."""
    p5 = [p.sites for p in canonical_partitions(10, convention="p5") if p.level == 2]
    tn = [p.sites for p in canonical_partitions(10) if p.level == 2]
    assert p5 == [(0, 1, 2), (3, 4, 5), (6, 7), (8, 9)]
    assert tn == [(0, 1, 2), (3, 4), (5, 6, 7), (8, 9)]
    assert (3, 4, 5) not in [p.sites for p in canonical_partitions(10)]


def test_p5_partitions_feed_data_entanglement():
    from tnml.entanglement.data_entanglement import data_entanglement, explicit_data_entanglement

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 6)), rng.integers(0, 2, 20)
    parts = canonical_partitions(6, convention="p5")
    res = data_entanglement(X, y, parts, theta=0.7, batch_size=20)
    np.testing.assert_allclose(res.qe, explicit_data_entanglement(X, y, parts, theta=0.7), atol=1e-9)
    assert sorted(res.levels) == [1, 2, 3]


def test_convention_error():
    with pytest.raises(ValueError, match="convention='P5' is unknown"):
        canonical_partitions(4, convention="P5")


def test_compact_matches_a_naive_run_reader():
    rng = np.random.default_rng(0)
    for _ in range(200):
        sites = tuple(sorted(rng.choice(20, size=int(rng.integers(1, 20)), replace=False).tolist()))
        groups: list[list[int]] = []
        for s in sites:  # naive: start a new group unless s continues the last one
            if groups and groups[-1][-1] == s - 1:
                groups[-1].append(s)
            else:
                groups.append([s])
        expected = ",".join(str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups)
        assert Partition(sites).compact() == expected
        parsed = [x for tok in expected.split(",") for x in (
            range(int(tok.split("-")[0]), int(tok.split("-")[-1]) + 1))]
        assert tuple(parsed) == sites  # the text lists every site once
