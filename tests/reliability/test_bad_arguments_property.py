"""Property test (issue 17): public constructors and entanglement functions driven with generated bad arguments let
only ValueError / TypeError (tnml's MemoryLimitError and CheckpointError are ValueErrors) escape, and every message
names the parameter. Huge sizes are refused in O(1) (no allocation, no hang)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tnml.dynamics import effective_rank
from tnml.entanglement import cut_rank, entanglement_entropy, walk_index
from tnml.networks import CP, MPS, PEPS, TTN, PeriodicMPS

_MODEL = MPS(6, 2, 2)


def _bad_ints(minimum: int, huge: bool = True):
    """Values no integer parameter with this minimum accepts (or, for sizes, that no machine can hold)."""
    parts = [
        st.integers(max_value=minimum - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=3),
        st.booleans(),
        st.complex_numbers(max_magnitude=10),
        st.lists(st.integers(0, 3), max_size=2),
        st.integers(min_value=-(2**62), max_value=minimum - 1).map(np.int64),
    ]
    if huge:
        parts.append(st.integers(10**15, 10**40))
    return st.one_of(*parts)


_BAD_FLOAT = st.one_of(
    st.just(float("nan")), st.just(float("inf")), st.floats(max_value=-1e-9, allow_nan=False), st.text(max_size=3),
    st.complex_numbers(min_magnitude=1, max_magnitude=5).filter(lambda z: z.imag != 0),
)

_BAD_ALPHA = st.one_of(  # alpha = inf is the min-entropy, a valid order
    st.just(float("nan")), st.floats(max_value=-1e-9, allow_nan=False), st.text(max_size=3),
)
_BAD_SITE = st.one_of(  # for a 6-site model
    st.integers(max_value=-1), st.integers(min_value=6), st.floats(allow_nan=True), st.text(min_size=1, max_size=3),
    st.booleans(), st.none(),
)

CASES = {
    "MPS.n_sites": ("n_sites", _bad_ints(1), lambda v: MPS(v, 2, 2)),
    "MPS.phys_dim": ("phys_dim", _bad_ints(1), lambda v: MPS(4, v, 2)),
    "MPS.bond_dim": ("bond_dim", _bad_ints(1), lambda v: MPS(4, 2, v)),
    "MPS.out_dim": ("out_dim", _bad_ints(1), lambda v: MPS(4, 2, 2, out_dim=v)),
    "MPS.init_std": ("init_std", _BAD_FLOAT, lambda v: MPS(4, 2, 2, init_std=v)),
    "CP.n_sites": ("n_sites", _bad_ints(2), lambda v: CP(v, 2, 2)),
    "CP.rank": ("rank", _bad_ints(1), lambda v: CP(4, 2, v)),
    "PEPS.bond_dim": ("bond_dim", _bad_ints(1), lambda v: PEPS((2, 2), 2, v)),
    "PEPS.shape": ("shape", _bad_ints(1), lambda v: PEPS((2, v))),
    "PeriodicMPS.n_sites": ("n_sites", _bad_ints(2), lambda v: PeriodicMPS(v, 2, 2)),
    "TTN.n_sites": ("n_sites", _bad_ints(2), lambda v: TTN(n_sites=v, bond_dim=2)),
    "TTN.arity": ("arity", _bad_ints(2, huge=False), lambda v: TTN(n_sites=4, arity=v)),
    "cut_rank.tol": ("tol", _BAD_FLOAT, lambda v: cut_rank(_MODEL, [0, 1], tol=v)),
    "cut_rank.part": ("part", _BAD_SITE, lambda v: cut_rank(_MODEL, [v])),
    "entanglement_entropy.alpha": ("alpha", _BAD_ALPHA, lambda v: entanglement_entropy(_MODEL, [0], alpha=v)),
    "walk_index.depth": ("depth", _bad_ints(1), lambda v: walk_index([(0, 1), (1, 2)], [0], depth=v)),
    "effective_rank.tol": ("tol", _BAD_FLOAT, lambda v: effective_rank(np.eye(3), tol=v)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_bad_arguments_raise_a_named_value_or_type_error(case, data):
    name, strategy, call = CASES[case]
    value = data.draw(strategy, label=name)
    with pytest.raises((ValueError, TypeError)) as info:
        call(value)
    assert name in str(info.value), f"{case}({value!r}): {info.value}"
    assert not isinstance(info.value, (torch.OutOfMemoryError, OverflowError))
