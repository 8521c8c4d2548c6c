"""GPU/CPU time ratios of the W1 (MPS) and W2 (TTN) tnml models: one training step (forward, loss, backward).

``benchmarks/mps.py`` and ``benchmarks/ttn.py`` time tnml against hand-written and tensorkrowch baselines on the
CPU and have no device option; this script times the tnml models of their configurations (the quick ones, plus
the largest full one of each) on ``cpu`` and on ``cuda`` in one process and prints, per configuration, the
median step time on each device and the ratio GPU/CPU (below 1: the GPU is faster). Called by
``benchmarks/gpu_check.sh``; ``--cpu-only`` times the CPU side alone (a smoke run on machines without CUDA).
The rows go to ``benchmarks/results/gpu_ratio.json`` (``gpu_ratio_quick.json`` with ``--quick``; none with
``--no-json``). Models are initialized from ``--seed`` and the data from ``--seed`` + 1.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F

from benchmarks import _common as C
from benchmarks import mps as W1
from benchmarks import ttn as W2
from tnml.networks import MPS, TTN


def configs(quick: bool) -> list[tuple[str, dict]]:
    w1 = list(W1.QUICK_CONFIGS) + ([] if quick else [W1.FULL_CONFIGS[-1]])
    w2 = list(W2.QUICK_CONFIGS) + ([] if quick else [W2.FULL_CONFIGS[-1]])
    return [("W1 MPS", c) for c in w1] + [("W2 TTN", c) for c in w2]


def build(workload: str, cfg: dict, device: str, plan: str = "auto", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if workload.startswith("W1"):
        return MPS(n_sites=cfg["n"], phys_dim=cfg["d"], bond_dim=cfg["D"], out_dim=W1.N_CLASSES, feature_map="trig",
                   plan=plan, dtype=torch.float32, device=device)
    return TTN(n_sites=cfg["n"], phys_dim=cfg["d"], bond_dim=cfg["B"], out_dim=W2.N_CLASSES, feature_map="trig",
               dtype=torch.float32, device=device)


def time_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, reps: int) -> float:
    """Median seconds of forward + cross-entropy + backward (CUDA synchronized before reading the clock)."""
    cuda = x.device.type == "cuda"

    def step() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    for _ in range(2):  # warm-up: plan compilation, CUDA context and kernels
        step()
    times = []
    for _ in range(reps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    def extra(p):
        p.add_argument("--reps", type=int, default=5, help="timed repetitions per device (median; default 5)")
        p.add_argument("--cpu-only", action="store_true", help="time the CPU alone (no CUDA needed)")

    args = C.parse_args(__doc__.splitlines()[0], argv, extra)
    if args.reps < 1:
        sys.stderr.write(f"gpu_ratio: --reps must be >= 1, got {args.reps}\n")
        return 2
    if not args.cpu_only and not torch.cuda.is_available():
        sys.stderr.write("gpu_ratio: CUDA is not available; run on a GPU machine or pass --cpu-only\n")
        return 3
    C.setup_torch(args.threads, args.seed)
    devices = ["cpu"] + ([] if args.cpu_only else ["cuda"])
    name = torch.cuda.get_device_name(0) if "cuda" in devices else "-"
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, GPU {name}; float32, batch as configured")
    print(f"{'workload':8} {'config':38} {'cpu ms':>9} {'gpu ms':>9} {'gpu/cpu':>8}")
    rows = []
    for workload, cfg in configs(args.quick):
        # W1: the three chain routes on both devices (on CPU the cost model picks blocked or sequential, on CUDA
        # log-depth)
        for plan in ("sequential", "blocked", "log-depth") if workload.startswith("W1") else ("auto",):
            ms = {}
            for dev in devices:
                model = build(workload, cfg, dev, plan, seed=args.seed)
                g = torch.Generator().manual_seed(args.seed + 1)
                x = torch.rand(cfg["b"], cfg["n"], generator=g).to(dev)
                y = torch.randint(0, 10, (cfg["b"],), generator=g).to(dev)
                ms[dev] = 1e3 * time_step(model, x, y, args.reps)
            desc = " ".join(f"{k}={v}" for k, v in cfg.items()) + ("" if plan == "auto" else f" {plan}")
            gpu = f"{ms['cuda']:9.2f}" if "cuda" in ms else f"{'-':>9}"
            ratio = f"{ms['cuda'] / ms['cpu']:8.3f}" if "cuda" in ms else f"{'-':>8}"
            print(f"{workload:8} {desc:38} {ms['cpu']:9.2f} {gpu} {ratio}", flush=True)
            rows.append({"workload": workload, "config": cfg, "plan": plan, "cpu_ms": ms["cpu"],
                         "gpu_ms": ms.get("cuda"), "gpu/cpu": ms["cuda"] / ms["cpu"] if "cuda" in ms else None})
    payload = C.record("gpu_ratio", args, gpu=name, reps=args.reps, rows=rows)
    return C.report(args, "gpu_ratio", payload)


if __name__ == "__main__":
    raise SystemExit(main())
