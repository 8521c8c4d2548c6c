"""Memory guards: M x M Gram matrices of data_entanglement, side_gram's feature chunks, the doubled-network
contraction of the Gram spectrum route and IDX files are sized before allocating and refused beyond
``tnml.settings.max_dense_bytes`` with a MemoryLimitError that gives the size, the setting and how to proceed."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import tnml
import tnml.settings
from tnml.cli import main
from tnml.entanglement import entanglement_entropy
from tnml.entanglement.data_entanglement import (
    _build_tree,
    _side_gram_bytes,
    _tree_pass_bytes,
    data_entanglement,
    side_gram,
)
from tnml.entanglement.partitions import Partition
from tnml.networks import PEPS


def _data(m=40, n=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    return X, (X[:, 0] * X[:, 3] > 0).astype(int)


def _size_bytes(msg: str) -> float:
    """The first size ('12.3 KiB') in a message, in bytes."""
    num, unit = re.search(r"([\d.]+) (B|KiB|MiB|GiB|TiB)\b", msg).groups()
    return float(num) * 1024 ** ["B", "KiB", "MiB", "GiB", "TiB"].index(unit)


def test_tree_pass_estimate_counts_large_nodes_and_grows_as_m_squared():
    nodes = _build_tree(64, None)
    # M = 1000: blocks of 2^|K| > 1000 features, i.e. |K| >= 10: the two halves (32) and four quarters (16)
    est = _tree_pass_bytes(nodes, 1000, 1000)
    assert est >= 6 * 1000 * 1000 * 8  # at least the six Gram matrices the up pass keeps
    # with the cheap route off everywhere (limit 1), every non-root node keeps a Gram matrix: pure M^2 scaling
    a, b = _tree_pass_bytes(nodes, 1, 500), _tree_pass_bytes(nodes, 1, 1000)
    assert b == 4 * a and a == (len(nodes) - 1 + 2 + 8) * 500 * 500 * 8
    assert _side_gram_bytes(300, 5) == 11 * 300 * 300 * 8


def test_data_entanglement_refused_beyond_the_limit_and_exact_below(monkeypatch):
    X, y = _data()
    ref = data_entanglement(X, y, batch_size=40, n_batches=1, explicit_max_rank=1)  # Gram route everywhere
    need = _tree_pass_bytes(_build_tree(16, None), 1, 40)
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", need - 1)
    with pytest.raises(tnml.MemoryLimitError) as info:
        data_entanglement(X, y, batch_size=40, n_batches=1, explicit_max_rank=1)
    msg = str(info.value)
    assert "40x40 float64" in msg and "tnml.settings.max_dense_bytes" in msg and "lower batch_size (now 40" in msg
    assert _size_bytes(msg) == pytest.approx(need, rel=0.01)
    # under the same limit, half the batch fits (memory ~ M^2)
    half = data_entanglement(X, y, batch_size=20, n_batches=2, explicit_max_rank=1)
    assert half.qe.shape == ref.qe.shape and np.isfinite(half.qe).all()
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", need)
    again = data_entanglement(X, y, batch_size=40, n_batches=1, explicit_max_rank=1)
    np.testing.assert_array_equal(again.qe, ref.qe)  # the guard changes nothing when it lets the call through


def test_exact_route_guard_points_to_the_sketch_not_the_batch_size(monkeypatch):
    """method='exact' has no batch to shrink: the refusal names the sketch (canonical parts) or fewer samples."""
    X, y = _data()
    need = _tree_pass_bytes(_build_tree(16, None), 1, len(X))
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", need - 1)
    with pytest.raises(tnml.MemoryLimitError) as info:
        data_entanglement(X, y, method="exact", explicit_max_rank=1)
    msg = str(info.value)
    assert "method='exact' needs about" in msg and f"all {len(X)} samples at once" in msg
    assert "use method='sketch'" in msg and "batch_size" not in msg
    got = data_entanglement(X, y, method="sketch", sketch_size=len(X), explicit_max_rank=1)  # the way out works
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 8 * 2**30)
    np.testing.assert_allclose(got.qe, data_entanglement(X, y, method="exact").qe, atol=1e-8)
    parts = [Partition(tuple(range(0, 16, 2)), None)]  # not canonical: the sketch cannot take it
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 10_000)
    with pytest.raises(tnml.MemoryLimitError, match="use fewer samples"):
        data_entanglement(X, y, parts, method="exact")


def test_non_tree_partition_guard_suggests_feature_batch(monkeypatch):
    X, y = _data(m=30, n=12)
    parts = [Partition(tuple(range(0, 12, 2)), None)]  # interleaved: not a block of the canonical tree
    ref = data_entanglement(X, y, parts, batch_size=30, n_batches=1)
    full = _side_gram_bytes(30, 6) + 7 * 30 * 30 * 8
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", full - 1)
    with pytest.raises(tnml.MemoryLimitError, match=r"30x30x6 feature differences.*smaller feature_batch"):
        data_entanglement(X, y, parts, batch_size=30, n_batches=1)
    got = data_entanglement(X, y, parts, batch_size=30, n_batches=1, feature_batch=2)
    np.testing.assert_allclose(got.qe, ref.qe, rtol=1e-10, atol=1e-12)


def test_side_gram_guard(monkeypatch):
    x = torch.as_tensor(_data(m=25, n=10)[0])
    ref = side_gram(x, range(10), 0.3)
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", _side_gram_bytes(25, 10) - 1)
    with pytest.raises(tnml.MemoryLimitError, match=r"side_gram of 25 samples x 10 features .* feature_batch"):
        side_gram(x, range(10), 0.3)
    torch.testing.assert_close(side_gram(x, range(10), 0.3, feature_batch=3), ref)


def test_suitability_cli_reports_the_guard_in_one_line(tmp_path, capsys, monkeypatch):
    X, y = _data(m=60, n=8)
    p = tmp_path / "d.csv"
    p.write_text("\n".join([",".join([f"f{j}" for j in range(8)] + ["label"])]
                           + [",".join([f"{v:.5f}" for v in r] + [str(c)]) for r, c in zip(X, y)]) + "\n")
    # room for the 8x8 feature statistics (9 216 B, checked first), not for the 60x60 Gram matrices of the batch
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 12_000)
    code = main(["suitability", str(p), "--label", "label", "--width", "2", "--gain", "none", "--batch-size", "60",
                 "--method", "batches"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "max_dense_bytes" in err and "lower batch_size" in err


def test_gram_spectrum_guard_names_size_and_remedies(monkeypatch):
    """A loop network (PEPS) across a cut takes the doubled-network Gram route; it is sized by cotengra first."""
    torch.manual_seed(0)
    m = PEPS(shape=(3, 3), bond_dim=3, phys_dim=2, feature_map="identity", dtype=torch.float64)
    ref = float(entanglement_entropy(m, [0, 1, 3, 4]).detach())
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 1024)
    with pytest.raises(tnml.MemoryLimitError) as info:
        entanglement_entropy(m, [0, 1, 3, 4])
    msg = str(info.value)
    assert "MiB, over tnml.settings.max_dense_bytes" in msg and "smaller network" in msg
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 2**30)
    assert float(entanglement_entropy(m, [0, 1, 3, 4]).detach()) == pytest.approx(ref)
