"""The same models on CUDA: forward and gradients match the CPU (run by benchmarks/gpu_check.sh on a GPU)."""

from __future__ import annotations

import pytest
import torch

from tests.registry import ARCHITECTURES, sample_input


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_cuda_matches_cpu(name):
    torch.manual_seed(0)
    cpu = ARCHITECTURES[name](dtype=torch.float64)
    gpu = ARCHITECTURES[name](dtype=torch.float64, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    x = sample_input(cpu)
    y_cpu, y_gpu = cpu(x), gpu(x.cuda())
    assert y_gpu.device.type == "cuda"
    torch.testing.assert_close(y_gpu.cpu(), y_cpu)
    y_cpu.sum().backward()
    y_gpu.sum().backward()
    for (k, p), (_, q) in zip(cpu.cores.items(), gpu.cores.items(), strict=True):
        torch.testing.assert_close(q.grad.cpu(), p.grad, msg=k)


@pytest.mark.gpu
def test_long_chain_float32_on_cuda():
    from tnml.networks import MPS

    m = MPS(784, 2, 10, out_dim=10, init="normal", init_std=1.0, device="cuda")
    la, _ = m.log_forward(torch.rand(16, 784, device="cuda"))
    assert torch.isfinite(la).all()


@pytest.mark.gpu
def test_log_depth_route_on_cuda():
    """On CUDA the cost model sends a long chain down the log-depth route; it matches the CPU's sequential route."""
    from tnml.networks import MPS

    torch.manual_seed(0)
    cpu = MPS(200, 2, 6, out_dim=3, plan="sequential", dtype=torch.float64)
    gpu = MPS(200, 2, 6, out_dim=3, dtype=torch.float64, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    assert gpu.plan().route_for(64) == "log-depth"
    x = torch.rand(64, 200, dtype=torch.float64)
    torch.testing.assert_close(gpu.log_forward(x.cuda())[0].cpu(), cpu.log_forward(x)[0])
