"""DDP: two gloo processes on CPU, each on half of every global batch, train an MPS to the same parameters as one
process on the whole batches (float64, 1e-12)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.registry import ARCHITECTURES, sample_input
from tnml.distributed import launch_local, setup, shard
from tnml.networks import MPS

STEPS, GLOBAL_BATCH = 4, 16
KINDS = ("adam", "sgd")


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(STEPS, GLOBAL_BATCH, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (STEPS, GLOBAL_BATCH), generator=g)
    return x, y


def _model() -> MPS:
    torch.manual_seed(0)
    return MPS(8, 2, 4, out_dim=3, dtype=torch.float64)


def _optimizer(kind: str, params):
    return torch.optim.Adam(params, lr=0.05) if kind == "adam" else torch.optim.SGD(params, lr=0.5, momentum=0.9)


def _train(model: nn.Module, kind: str, rank: int = 0, world: int = 1) -> None:
    opt = _optimizer(kind, model.parameters())
    x, y = _problem()
    for step in range(STEPS):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(shard(x[step], rank, world)), shard(y[step], rank, world))
        loss.backward()
        opt.step()


def _worker(rank: int, world: int, out_path: str) -> None:
    setup("gloo")
    for kind in KINDS:  # one launch for both optimizers: starting processes is the slow part
        model = _model()
        if rank == 1:  # DDP broadcasts rank 0's parameters at wrap time: other starting values must not matter
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
        ddp = nn.parallel.DistributedDataParallel(model)
        _train(ddp, kind, rank, world)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(state, f"{out_path}.{kind}.{rank}")


def test_ddp_two_processes_equal_single_process_on_the_global_batch(tmp_path):
    out = str(tmp_path / "params")
    launch_local(_worker, 2, out, timeout_s=400)  # ~45 s alone; up to 160 s seen on a 2-core machine under load 10
    for kind in KINDS:
        ref = _model()
        before = {k: v.clone() for k, v in ref.state_dict().items()}
        _train(ref, kind)
        for rank in (0, 1):
            got = torch.load(f"{out}.{kind}.{rank}", weights_only=True)
            assert got.keys() == ref.state_dict().keys()
            for k, v in ref.state_dict().items():
                assert not torch.equal(v, before[k])  # training moved every core
                torch.testing.assert_close(got[k], v, rtol=0, atol=1e-12, msg=f"{kind}, rank {rank}, {k}")


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_meets_what_ddp_assumes(arch):
    """DDP (without find_unused_parameters) needs every parameter registered and reached by the gradient, and
    buffers it may broadcast left untouched by forward."""
    model = ARCHITECTURES[arch](dtype=torch.float64)
    registered = {id(p) for p in model.parameters()}
    assert registered and len(registered) == len(dict(model.named_parameters()))
    # forward reads the registered tensors (the stacks, or one parameter per tensor)
    cores = model.cores.stack_list() if model.stack_cores else model.core_dict().values()
    assert {id(t) for t in cores} == registered
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    model(sample_input(model)).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert {k: v for k, v in model.named_buffers()}.keys() == buffers.keys()
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k


def test_shard_refuses_uneven_batches():
    with pytest.raises(ValueError, match="not divisible by world_size 2"):
        shard(torch.zeros(5, 3), 0, 2)
    assert torch.equal(shard(torch.arange(6), 1, 2), torch.arange(3, 6))


@pytest.mark.slow
def test_torchrun_recipe_in_examples_matches_one_process():
    """The README's recipe end to end: `torchrun --standalone --nproc_per_node 2 examples/ddp_train.py --check`."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(root / "examples" / "ddp_train.py"), "--epochs", "1", "--check"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root)
    assert res.returncode == 0, res.stderr[-2000:]
    diff = float(re.search(r"max \|parameter difference\| (\S+)", res.stdout).group(1))
    assert diff < 1e-10, res.stdout
