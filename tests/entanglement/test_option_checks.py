"""The string options of the analysis functions: every value of the ``Literal`` alias a parameter is annotated with
is accepted (and reaches its route), anything else is refused with one wording that names the parameter, the value
and the choices."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

import tnml.entanglement as ent
from tnml.entanglement._inputs import graph_and_sides
from tnml.networks import MPS, TTN
from tnml.options import GNNOutput, NamedPartitions, OutputSide, PartitionConvention, SpectraMethod, choices


def _mps(out_dim: int | None = None) -> MPS:
    torch.manual_seed(0)
    return MPS(6, 2, 3, out_dim=out_dim, init="normal", init_std=1.0, dtype=torch.float64)


def test_every_spectra_method_gives_the_dense_values():
    m = _mps()
    dense = m.to_dense().detach().numpy()
    ref = np.linalg.svd(dense.reshape(8, 8), compute_uv=False)
    ref = ref[ref > 1e-12 * ref[0]]
    for method in choices(SpectraMethod):
        s = ent.schmidt_values(m, [0, 1, 2], method=method).detach().numpy()
        s = s[s > 1e-6 * s[0]]  # the Gram route resolves values above ~sqrt(eps) only
        np.testing.assert_allclose(s, ref, rtol=1e-6, err_msg=method)


def test_every_convention_gives_valid_partitions():
    for convention in choices(PartitionConvention):
        parts = ent.canonical_partitions(10, convention=convention)
        assert parts and all(0 < len(p.sites) < 10 for p in parts), convention


def test_every_output_side_bounds_the_dense_rank():
    m = _mps(out_dim=3)
    dense = m.to_dense().detach().numpy()  # (2,) * 6 + (3,)
    for side in choices(OutputSide | None):
        bound = ent.mincut_bound(m, [0, 1], output_side=side).rank_bound
        if side == "A":
            rank = np.linalg.matrix_rank(np.moveaxis(dense, 6, 2).reshape(12, 16))
        elif side == "B":
            rank = np.linalg.matrix_rank(dense.reshape(4, 48))
        else:  # unconstrained: the bound holds for every output slice
            rank = max(np.linalg.matrix_rank(dense[..., k].reshape(4, 16)) for k in range(3))
        assert rank <= bound, side


def test_every_gnn_output_and_named_partition_is_accepted():
    for output in choices(GNNOutput):
        target = 0 if output == "vertex" else None
        assert ent.gnn_separation_rank_bounds(nx.path_graph(4), [0, 1], 2, 2, 2, output=output, target=target)
    torch.manual_seed(0)
    ttn = TTN(n_sites=8, bond_dim=2, dtype=torch.float64)
    for name in choices(NamedPartitions):
        rep = ent.entanglement_report(ttn, name)
        assert len(rep) > 0 and all(r.rank <= r.bound_rank for r in rep), name


@pytest.mark.parametrize(
    "call, name, value, listed",
    [
        (lambda: ent.schmidt_values(_mps(), [0], method="svd"), "method", "'svd'", "'auto', 'tree', 'factor', 'gram'"),
        (lambda: ent.cut_rank(_mps(), [0], method="exact"), "method", "'exact'", "'auto', 'tree'"),
        (lambda: ent.canonical_partitions(8, convention="P5"), "convention", "'P5'", "'tnml', 'p5'"),
        (lambda: ent.mincut_bound(_mps(3), [0], output_side="C"), "output_side", "'C'", "'A', 'B', None"),
        (lambda: ent.mincut_bounds(_mps(3), [[0]], output_side=0), "output_side", "0", "'A', 'B', None"),
        (lambda: graph_and_sides(_mps(3), [0], "a"), "output_side", "'a'", "'A', 'B', None"),
        (lambda: ent.gnn_separation_rank_bounds(nx.path_graph(3), [0], 1, 2, 2, output="edge"), "output", "'edge'",
         "'graph', 'vertex'"),
        (lambda: ent.entanglement_report(_mps(), "halves"), "partitions", "'halves'",
         "'canonical', 'contiguous', 'interleaved', 'tree'"),
    ],
)
def test_a_bad_option_is_refused_in_one_wording(call, name, value, listed):
    with pytest.raises(ValueError, match=rf"^{name}={value} is unknown; choose one of \[{listed}"):
        call()


def test_output_side_error_says_what_none_means():
    with pytest.raises(ValueError, match="None leaves the output leg unconstrained"):
        ent.mincut_bound(_mps(3), [0], output_side="both")
