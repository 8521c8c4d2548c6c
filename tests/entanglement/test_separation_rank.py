"""separation_rank: the grid-tensor rank equals rank [[W]] for TN models whose templates span the feature space,
is 1 for separable functions and R for generic sums of R separable terms, works on any callable, and guards its
grid size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tnml
import tnml.entanglement as ent
from tnml.networks import CP, MPS, TTN, PeriodicMPS

MODELS = {
    "mps-trig": lambda: MPS(5, 2, 3, init="normal", init_std=1.0, dtype=torch.float64),
    "mps-poly-d3": lambda: MPS(4, 3, 4, init="normal", init_std=1.0, feature_map="polynomial", dtype=torch.float64),
    "mps-out": lambda: MPS(5, 2, 3, out_dim=3, init="normal", init_std=1.0, dtype=torch.float64),
    "ttn-trig": lambda: TTN(n_sites=6, bond_dim=3, init="normal", dtype=torch.float64),
    "ttn-poly-d3": lambda: TTN(
        n_sites=4, phys_dim=3, bond_dim=4, init="normal", feature_map="polynomial", dtype=torch.float64
    ),
    "cp-trig": lambda: CP(6, 2, 3, dtype=torch.float64),
    "cp-onehot-d3": lambda: CP(4, 3, 5, feature_map="onehot", dtype=torch.float64),
    "mps-identity-vectors": lambda: MPS(
        4, 3, 3, init="normal", init_std=1.0, feature_map="identity", dtype=torch.float64
    ),
    "ring-4-identity": lambda: PeriodicMPS(4, 3, 2, feature_map="identity", dtype=torch.float64),
}
PARTS = [(0,), (0, 1), (1, 3), (0, 2, 3)]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_cut_rank_of_dense_coefficients(name, seed):
    torch.manual_seed(seed)
    m = MODELS[name]()
    dense = m.to_dense().detach().numpy()
    out = 1 if m.out_dim is not None else None
    if out is not None:
        dense = dense[..., out]
    for part in PARTS:
        res = ent.separation_rank(m, part, output=out)
        assert res.rank == ent.cut_rank(dense, part), part
        assert res.grid_shape == (m.phys_dim,) * m.n_sites


def test_strict_ring_case_confirmed_by_grid_tensor():
    """The 4-ring with open dim 3 and bonds 2 (bound 9 across {0, 2}) has separation rank 8 as a function."""
    torch.manual_seed(0)
    ring = PeriodicMPS(4, 3, 2, feature_map="identity", dtype=torch.float64)
    assert ent.separation_rank(ring, [0, 2]).rank == 8
    assert ent.separation_rank(ring, [0, 2], n_templates=5).rank == 8  # more templates: still 8
    assert ent.mincut_bound(ring, [0, 2]).rank_bound == 9


def test_more_templates_same_rank_fewer_is_a_lower_bound():
    torch.manual_seed(0)
    m = MPS(4, 3, 4, init="normal", init_std=1.0, feature_map="polynomial", dtype=torch.float64)
    true = ent.cut_rank(m.to_dense().detach().numpy(), [0, 1])
    assert true == 4
    assert ent.separation_rank(m, [0, 1], n_templates=5).rank == true
    few = ent.separation_rank(m, [0, 1], n_templates=1)
    assert few.rank == 1 <= true


def _separable(x):
    return torch.cos(x[:, :2].sum(1)) * torch.exp(x[:, 2:].sum(1))


def _three_terms(x):
    a, b = x[:, :2], x[:, 2:]
    return (
        torch.cos(a.sum(1)) * torch.sin(b.prod(1))
        + a.prod(1) ** 2 * torch.exp(-b.sum(1))
        + torch.tanh(a[:, 0] - a[:, 1]) * (1 + b.sum(1)) ** 3
    )


def test_separable_function_has_rank_one():
    res = ent.separation_rank(_separable, [0, 1], n_sites=4, n_templates=5)
    assert res.rank == 1
    assert res.matrix_shape == (25, 25)
    assert res.singular_values[1] < 1e-12 * res.singular_values[0]
    assert ent.separation_rank(_separable, [0, 2], n_sites=4, n_templates=5).rank > 1


def test_sum_of_three_separable_terms():
    res = ent.separation_rank(_three_terms, [0, 1], n_sites=4, n_templates=5)
    assert res.rank == 3
    assert ent.separation_rank(_three_terms, [0, 1], n_sites=4, n_templates=8, seed=3).rank == 3
    assert res.rank_at(0.5) <= 3  # a looser tolerance can only lower it


def test_any_torch_module_float32_and_numpy_callables():
    torch.manual_seed(0)
    conv = torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 6)),
        torch.nn.Conv1d(1, 4, 2),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(20, 2),
    )
    res = ent.separation_rank(conv, [0, 1, 2], n_sites=6, n_templates=3, output=1)
    assert res.tol == pytest.approx(np.sqrt(np.finfo(np.float32).eps))
    assert 1 < res.rank <= 27
    np_f = lambda x: np.asarray(x)[:, 0] * np.asarray(x)[:, 1]  # noqa: E731
    assert ent.separation_rank(np_f, [0], n_sites=2).rank == 1


def test_vector_templates_given_or_random():
    w = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def bilinear(x):  # x: (batch, 2, 3); f = x0^T W x1 has separation rank rank(W) = 3
        return torch.einsum("bi,ij,bj->b", x[:, 0], w, x[:, 1])

    assert ent.separation_rank(bilinear, [0], n_sites=2, phys_dim=3).rank == 3
    t = np.eye(3)[:2]
    res = ent.separation_rank(bilinear, [0], n_sites=2, templates=t)
    assert res.rank == 2 and res.templates.shape == (2, 3)


def test_errors_and_limits(monkeypatch):
    with pytest.raises(tnml.MemoryLimitError, match="fewer templates"):
        ent.separation_rank(_separable, [0], n_sites=12, n_templates=8)
    monkeypatch.setattr(tnml.settings, "max_dense_bytes", 1000)
    with pytest.raises(tnml.MemoryLimitError, match="max_dense_bytes"):
        ent.separation_rank(_separable, [0], n_sites=4, n_templates=4)
    monkeypatch.undo()
    m = MPS(4, 2, 2, out_dim=3)
    with pytest.raises(ValueError, match="pass output=k"):
        ent.separation_rank(m, [0])
    with pytest.raises(ValueError, match="n_sites is required"):
        ent.separation_rank(_separable, [0])
    with pytest.raises(ValueError, match="tol="):
        ent.separation_rank(_separable, [0], n_sites=4, tol=2.0)
    with pytest.raises(ValueError, match="part is empty"):
        ent.separation_rank(_separable, [], n_sites=4)
    with pytest.raises(ValueError, match="one-hot"):
        ent.separation_rank(CP(4, 3, 2, feature_map="onehot"), [0], n_templates=4)
    with pytest.raises(ValueError, match="must return"):
        ent.separation_rank(lambda x: x.sum(), [0], n_sites=2)
