"""A regression guard on the number of aten ops (about the kernels a GPU launches) of a log-depth chain train step.

The W1 step (an MPS over pixels, d = 2, D = 10, ten classes; trig feature map, cross-entropy, backward, fused Adam)
on the log-depth route costs a fixed part (input check, feature map, block matrices, closing with the output core,
loss, optimizer) plus about 15 ops per pairwise level and 16 per rescale between levels. The budget below is that
model with a few percent of room; a change that adds ops per level, or many fixed ones, fails here. Counted as
``benchmarks/mps.py`` counts them: every aten event torch.profiler records in one step after two warm-up steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tnml.networks import MPS
from tnml.plans.chain import _levels_between_rescales

#: aten ops of the fixed part, per pairwise level, per rescale between levels (measured with torch 2.13 on CPU at
#: b = 8, 64 / 128 / 256 / 512 / 784 sites: 387 / 401 / 432 / 448 / 462 ops, about 342 + 15 per level + 16 per
#: rescale; the budget, 442 at 256 sites, leaves a few ops of room)
FIXED, PER_LEVEL, PER_RESCALE = 350, 15, 17


def _step_ops(model: MPS, x: torch.Tensor, labels: torch.Tensor) -> int:
    from torch.profiler import ProfilerActivity, profile

    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), labels).backward()
        opt.step()

    step()
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return sum(e.name.startswith("aten::") for e in prof.events())


def test_logdepth_train_step_within_kernel_budget():
    torch.manual_seed(0)
    n, b = 256, 8
    m = MPS(n_sites=n, phys_dim=2, bond_dim=10, out_dim=10, feature_map="trig", plan="log-depth")
    x, labels = torch.rand(b, n), torch.randint(0, 10, (b,))
    chain = m.plan().chain
    levels = chain.q_pad.bit_length() - 1
    every = _levels_between_rescales(10, torch.float32)
    rescales = sum(1 for level in range(1, levels) if level % every == 0)
    assert (levels, rescales) == (5, 1)  # 32 blocks of 4 sites per half: the shape this budget was measured at
    budget = FIXED + PER_LEVEL * levels + PER_RESCALE * rescales
    ops = _step_ops(m, x, labels)
    assert ops <= budget, f"{ops} aten ops per train step, budget {budget}"


def test_kernel_budget_catches_per_level_autograd(monkeypatch):
    """Mutation check: the pairwise levels through plain autograd (a view, an unbind and a matmul per level, and
    their backward; the same rescales) exceed the budget."""
    import tnml.plans.chain as chain_mod

    class AutogradLevels:
        @staticmethod
        def apply(mats, b, levels, every, scale_of):
            D = mats.shape[-1]
            exp = mats.new_zeros(2, b)
            for level in range(1, levels + 1):
                mats = torch.bmm(*mats.view(2, -1, D, D).unbind(0))
                if level % every == 0 and level < levels:
                    mats, e = chain_mod._rescale(mats, 1)
                    exp = exp + e.view(-1, 2, b).sum(0)
            left, right = mats.view(2, b, D, D).unbind(0)
            return left[:, 0], right[:, :, 0], exp

    torch.manual_seed(0)
    n, b = 256, 8
    m = MPS(n_sites=n, phys_dim=2, bond_dim=10, out_dim=10, feature_map="trig", plan="log-depth")
    x, labels = torch.rand(b, n), torch.randint(0, 10, (b,))
    monkeypatch.setattr(chain_mod, "PairwiseLevels", AutogradLevels)
    budget = FIXED + PER_LEVEL * 5 + PER_RESCALE * 1
    ops = _step_ops(m, x, labels)
    print(f"per-level autograd: {ops} aten ops, budget {budget}")
    assert ops > budget, f"{ops} aten ops with per-level autograd, budget {budget}"


def test_kernel_budget_catches_block_matrices_through_autograd(monkeypatch):
    """Mutation check: the block matrices and the closing contraction through plain autograd (their reference forms;
    the same function) exceed the budget."""
    import tnml.plans.chain as chain_mod
    from tnml.plans.blocks import block_matrices_reference, site_table
    from tnml.plans.close import close_reference

    class AutogradBlocks:
        @staticmethod
        def apply(inner, first, last, phi, consts, spec):
            table = site_table(inner, first, last, consts, spec.transposed)
            return block_matrices_reference(table, phi, consts[3], spec)

    class AutogradClose:
        apply = staticmethod(close_reference)

    torch.manual_seed(0)
    n, b = 256, 8
    m = MPS(n_sites=n, phys_dim=2, bond_dim=10, out_dim=10, feature_map="trig", plan="log-depth")
    x, labels = torch.rand(b, n), torch.randint(0, 10, (b,))
    monkeypatch.setattr(chain_mod, "BlockMatrices", AutogradBlocks)
    monkeypatch.setattr(chain_mod, "CloseChain", AutogradClose)
    budget = FIXED + PER_LEVEL * 5 + PER_RESCALE * 1
    ops = _step_ops(m, x, labels)
    print(f"blocks through autograd: {ops} aten ops, budget {budget}")
    assert ops > budget, f"{ops} aten ops with the block matrices through autograd, budget {budget}"
