"""Pieces and a smoke run of the experiment htf-dynamics (MF vs TF vs HTF incremental learning, P3)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import tnml.experiments.htf_dynamics as htf
from tnml.dynamics import hierarchical_rank
from tnml.experiments import EXPERIMENTS, RunConfig
from tnml.spectrum import numerical_rank


def test_registered():
    assert "htf-dynamics" in EXPERIMENTS


def test_numerical_rank_and_rise_steps_on_hand_made_arrays():
    # the experiment counts ranks with the library's one rank rule (tnml.spectrum), relative to the largest value
    assert numerical_rank(np.array([10.0, 1.0, 1e-3, 0.0]), rtol=1e-3) == 2
    assert numerical_rank(np.array([10.0, 1.0, 1e-3, 0.0]), rtol=1e-5) == 3
    assert numerical_rank(np.zeros(3), rtol=htf.RANK_REL) == 0
    # three sorted "singular values" rising at steps 20, 40 and never (stays at the init scale)
    steps = np.array([0, 10, 20, 30, 40, 50])
    s = np.array(
        [[1e-4, 1e-4, 1e-4], [0.2, 1e-4, 1e-4], [0.9, 1e-4, 1e-4], [1.0, 0.3, 1e-4], [1.0, 0.8, 1e-4], [1, 1, 1e-4]]
    )
    assert htf.rise_steps(steps, s, 3) == [20, 40, None]


def test_hierarchical_ranks_match_exact_ranks_of_the_targets():
    for kind, tree in (("TF", htf.TF_TREE), ("HTF", htf.HT_TREE)):
        t = htf.make_target(kind, 3)
        assert float(t.norm()) == pytest.approx(64.0)
        assert t.dim() == (4 if kind == "HTF" else 3)
        ours = htf.hierarchical_ranks(t, tree)
        # reference: exact matrix ranks (numpy's default tolerance) of the same matricizations
        ref = hierarchical_rank(t, tree)
        assert ours == {",".join(map(str, b)): r for b, r in ref.items()}
        assert set(ours.values()) == {htf.TARGET_RANK}
    mf = htf.make_target("MF", 3)
    assert int(np.linalg.matrix_rank(mf.numpy())) == htf.TARGET_RANK
    # a tensor with a rank-2 split {0,1} | {2} but full-rank single modes
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 4, 2, generator=g, dtype=torch.float64), torch.randn(4, 2, generator=g, dtype=torch.float64)
    w = torch.einsum("ijr,kr->ijk", a, b)
    assert htf.hierarchical_ranks(w, htf.TF_TREE) == {"0": 4, "1": 4, "0,1": 2, "2": 2}


def _small(kind: str) -> torch.nn.Module:
    torch.manual_seed(1)
    if kind == "MF":
        m = htf.DeepMatrixFactorization((5, 4), 3, hidden=6, init_scale=0.5, balanced=False, dtype=torch.float64)
    elif kind == "TF":
        m = htf.TensorFactorization((3, 3, 3), 4, init_scale=0.5, dtype=torch.float64)
    else:
        m = htf.HierarchicalTensorFactorization((3, 3, 3), htf.TF_TREE, (4, 5), init_scale=0.5, dtype=torch.float64)
    return m


def test_trackers_equal_direct_computation_from_the_cores():
    # MF: singular values of the product of the factors, computed in numpy
    m = _small("MF")
    tr = htf.make_tracker("MF", every=1)
    tr(0, m, 1.0)
    ws = [w.detach().numpy() for w in m.factors()]
    np.testing.assert_allclose(tr.values[0], np.linalg.svd(ws[2] @ ws[1] @ ws[0], compute_uv=False), rtol=1e-12)
    # TF: Frobenius norm of each rank-1 component tensor, built explicitly
    m = _small("TF")
    tr = htf.make_tracker("TF", every=1)
    tr(0, m, 1.0)
    a = [f.detach() for f in m.factors()]
    ref = [float(torch.einsum("i,j,k->ijk", a[0][:, r], a[1][:, r], a[2][:, r]).norm()) for r in range(4)]
    np.testing.assert_allclose(tr.values[0], ref, rtol=1e-12)
    # HTF: local component (node, r) = outer product of the children's column r and the node's row r (entry r at
    # the root); its norm, built explicitly, node by node
    m = _small("HTF")
    tr = htf.make_tracker("HTF", every=1)
    tr(0, m, 1.0)
    c = {k: v.detach() for k, v in m.core_dict().items()}
    node = [
        float(torch.einsum("i,j,s->ijs", c["leaf0"][:, r], c["leaf1"][:, r], c["node_0_1"][r]).norm()) for r in range(4)
    ]
    root = [
        float(torch.einsum("s,k->sk", c["node_0_1"][:, r], c["leaf2"][:, r]).norm() * c["root"][r].abs())
        for r in range(5)
    ]
    np.testing.assert_allclose(tr.node((0, 1))[0], node, rtol=1e-12)
    np.testing.assert_allclose(tr.node((0, 1, 2))[0], root, rtol=1e-12)
    # the local components at the root sum to the end tensor
    comps = torch.einsum("ir,jr,rs,ks,s->sijk", c["leaf0"], c["leaf1"], c["node_0_1"], c["leaf2"], c["root"])
    torch.testing.assert_close(comps.sum(0), m.tensor().detach())


def test_smoke_run(tmp_path, monkeypatch):
    monkeypatch.setitem(htf.SETTINGS, True, (8, 120, 40))
    res = htf.run(RunConfig(tmp_path, quick=True))
    assert res.plots == ["htf_dynamics.png"] and (tmp_path / "htf_dynamics.png").exists()
    assert res.comparisons and all(c.quantity and c.measured != "" for c in res.comparisons)
    assert {k for k in res.metrics["runs"]} == {"MF", "TF", "HTF"}
    assert set(res.metrics["runs"]["HTF"]["series"]) == {"0,1", "2,3", "0,1,2,3"}  # two levels of internal nodes
    assert set(res.metrics["runs"]["HTF"]["learned_hierarchical_rank"]) == {"0", "1", "0,1", "2", "3", "2,3"}
    for r in res.metrics["runs"].values():
        assert r["record_steps"][-1] == r["steps"] and len(r["loss_history"]) == len(r["record_steps"])
    # the outcome (incremental rises, low hierarchical rank) is asserted in tests/experiments/test_claims_dynamics.py
    json.dumps(res.metrics, default=float)
