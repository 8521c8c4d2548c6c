"""W1e: a training epoch of the 784-pixel MPS classifier on 60 000 MNIST-shaped samples — tnml vs tensorkrowch,
each with its own default initialization: samples per second and peak memory.

Run ``python -m benchmarks.mps_epoch [--quick] [--full] [--threads T] [--batches 32,512] [--max-steps N] [--no-json]``.

Data: seeded synthetic MNIST-shaped images (no download): ten class templates (random 7×7 patterns upsampled to
28×28) plus Gaussian pixel noise, clipped to [0, 1], 60 000 samples (:func:`synthetic_mnist`); the polynomial map
``(1, x)`` in both libraries; Adam lr 3e-4, cross-entropy. A step is forward (embedding included), loss, backward
and Adam step over the next batch of a seeded shuffled order.

* tnml: ``MPS(784, 2, 10, out_dim=10, feature_map="polynomial")`` — its default (identity, norm-neutral) init and
  the route its cost model picks for the device (:meth:`tnml.plans.TreePlan.describe`).
* tensorkrowch: ``MPSLayer(n_features=785, in_dim=2, out_dim=10, bond_dim=10, init_method="randn_eye",
  std=1e-9)`` (the init of its MNIST tutorials), ``tk.embeddings.poly(x, degree=1)``, traced, in its fastest setting
  for this size in ``benchmarks/mps.py`` (``auto_stack=True, auto_unbind=False, inline_input=False,
  inline_mats=True``).

Every (implementation, batch size) runs in a fresh process, one after another: throughput from the timed steps
(the first step included), and peak memory as the growth of the process's peak resident set size (``ru_maxrss``)
from after setup (data, model, one forward without gradient) to the end of the run — activations kept for
backward, gradients, optimizer state and allocator caching together. ``--max-steps N`` times only the first N
steps and extrapolates the epoch (the record and the table say so); the default is the whole epoch.

``--full`` runs the whole epoch and, in the same runs, also records the time of the first N steps (``--max-steps``,
default 30): the table sets the extrapolated epoch time beside the measured one, for both libraries, so that the
extrapolation the README's performance section uses can be checked against a real epoch. Its record is
``results/mps_epoch_full.json`` (the README's section keeps reading ``results/mps_epoch.json``).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from benchmarks import _common as C

N_SITES, BOND, CLASSES, LR = 784, 10, 10, 3e-4
SAMPLES = 60_000
EARLY_STEPS = 30  # steps the README's extrapolated epoch is timed over (scripts/perf_table.py)
TK_BEST = {"auto_stack": True, "auto_unbind": False, "inline_input": False, "inline_mats": True}
IMPLS = ("tnml", "tensorkrowch")


def synthetic_mnist(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` seeded MNIST-shaped samples: ``x`` ``(n, 784)`` float32 in [0, 1], labels ``y`` ``(n,)`` in 0..9.

    Each class has a template (a random 7×7 pattern upsampled bilinearly to 28×28); a sample is its class's
    template plus Gaussian noise of standard deviation 0.3, clipped to [0, 1].
    """
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(CLASSES, 1, 7, 7, generator=g)
    templates = F.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False).reshape(CLASSES, -1)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    x = torch.empty(n, N_SITES)
    for i in range(0, n, 10_000):  # in chunks: no second (n, 784) noise array
        j = min(n, i + 10_000)
        x[i:j] = (templates[y[i:j]] + 0.3 * torch.randn(j - i, N_SITES, generator=g)).clamp_(0.0, 1.0)
    return x, y


def _build(impl: str):
    """(parameters, forward on raw x) of one implementation at its default init."""
    if impl == "tnml":
        from tnml.networks import MPS

        m = MPS(N_SITES, 2, BOND, out_dim=CLASSES, feature_map="polynomial")
        return m, m, m.plan().describe(32)
    import tensorkrowch as tk

    mps = tk.models.MPSLayer(
        n_features=N_SITES + 1, in_dim=2, out_dim=CLASSES, bond_dim=BOND, init_method="randn_eye", std=1e-9
    )
    mps.auto_stack, mps.auto_unbind = TK_BEST["auto_stack"], TK_BEST["auto_unbind"]
    kw = {"inline_input": TK_BEST["inline_input"], "inline_mats": TK_BEST["inline_mats"]}
    mps.trace(torch.zeros(1, N_SITES, 2), **kw)
    return mps, (lambda x: mps(tk.embeddings.poly(x, degree=1), **kw)), "traced " + str(TK_BEST)


def _peak_rss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return r / (1024 * 1024 if sys.platform == "darwin" else 1024)


def run_one(
    impl: str, batch: int, samples: int, max_steps: int | None, seed: int, threads: int, early_steps: int | None = None
) -> dict:
    """One implementation at one batch size, in the calling process (see the module docstring).

    ``early_steps`` also records the seconds of the first ``early_steps`` steps and the epoch time extrapolated
    from them (``epoch_s_from_early``), from the same run.
    """
    C.setup_torch(threads, seed)
    x, y = synthetic_mnist(samples, seed)
    order = torch.randperm(samples, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    model, forward, route = _build(impl)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    steps = math.ceil(samples / batch)
    timed = steps if max_steps is None else min(steps, max_steps)
    with torch.no_grad():
        first = float(F.cross_entropy(forward(x[order[:batch]]), y[order[:batch]]))
    base = _peak_rss_mib()
    early = None if early_steps is None else min(early_steps, timed)
    early_s = None
    tenths = {math.ceil(timed * i / 10) for i in range(1, 11)}  # step counts that close each tenth of the run
    marks: list[float] = []
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    losses, t0 = [], time.perf_counter()
    for s in range(timed):
        idx = order[s * batch : (s + 1) * batch]
        loss = F.cross_entropy(forward(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if early is not None and s + 1 == early:
            early_s = time.perf_counter() - t0
        if s + 1 in tenths:
            marks.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    done = min(samples, timed * batch)
    extra = {}
    if early is not None and early_s is not None:
        extra = {
            "early_steps": early,
            "seconds_early": early_s,
            "epoch_s_from_early": early_s * samples / min(samples, early * batch),
        }
    return {
        "impl": impl,
        "route": route,
        "batch": batch,
        "samples": samples,
        "steps_timed": timed,
        "steps_per_epoch": steps,
        "extrapolated": timed < steps,
        "seconds_timed": seconds,
        "samples_per_s": done / seconds,
        "epoch_s": seconds * samples / done,
        "peak_rss_growth_mib": _peak_rss_mib() - base,
        "first_loss": first,
        "mean_loss": statistics.fmean(losses),
        "last_losses": losses[-5:],
        # seconds of each tenth of the timed steps (a drift shows whether load or the run itself slowed down) and
        # the 1-minute load average before and after (the machine may be shared)
        "seconds_by_tenth": [b - a for a, b in zip([0.0, *marks], marks)],
        "loadavg_1min": [load0, os.getloadavg()[0] if hasattr(os, "getloadavg") else None],
        **extra,
    }


def _worker(args: tuple, queue) -> None:
    try:
        queue.put(run_one(*args))
    except Exception as e:  # noqa: BLE001 - reported by the parent
        queue.put({"error": f"{type(e).__name__}: {e}"})


def run_isolated(*args) -> dict:
    """:func:`run_one` in a fresh process (so that peak memory is this run's own)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_worker, args=(args, queue))
    p.start()
    out = queue.get()
    p.join()
    if "error" in out:
        raise RuntimeError(f"mps_epoch run {args[:2]} failed: {out['error']}")
    return out


def main(argv=None) -> int:
    def extra(p):
        p.add_argument("--batches", default="32,512", help="comma-separated batch sizes (default 32,512)")
        p.add_argument("--samples", type=int, default=SAMPLES, help="samples per epoch (default 60 000)")
        p.add_argument("--max-steps", type=int, default=None,
                       help="time only the first N steps and extrapolate the epoch (default: the whole epoch); "
                       f"with --full: the steps the extrapolation beside the full epoch uses (default {EARLY_STEPS})")
        p.add_argument("--full", action="store_true",
                       help="run the whole epoch and show the epoch time extrapolated from the first --max-steps "
                       "steps of the same run beside it (record: results/mps_epoch_full.json)")

    args = C.parse_args(__doc__.splitlines()[0], argv, extra=extra)
    if args.quick:
        args.samples, args.max_steps = min(args.samples, 4_096), args.max_steps or 16
    batches = [int(b) for b in args.batches.split(",")]
    if any(b < 1 for b in batches) or args.samples < 1 or (args.max_steps is not None and args.max_steps < 1):
        print("--batches, --samples and --max-steps must be positive", file=sys.stderr)
        return 2
    if args.full:
        return _main_full(args, batches)
    payload = C.record("mps_epoch", args, env_key="env", workload="W1e", runs=[])
    rows = []
    for batch in batches:
        for impl in IMPLS:
            r = run_isolated(impl, batch, args.samples, args.max_steps, args.seed, args.threads)
            payload["runs"].append(r)
            rows.append([
                impl, batch, f"{r['samples_per_s']:.0f}",
                f"{r['epoch_s']:.1f}" + (" (extrapolated)" * r["extrapolated"]),
                f"{r['peak_rss_growth_mib']:.0f}", f"{r['first_loss']:.3f} -> {r['mean_loss']:.3f}",
            ])
            print(f"  done {impl} b={batch}: {r['samples_per_s']:.0f} samples/s", flush=True)
    C.print_table(
        ["implementation", "batch", "samples/s", "s / epoch", "peak memory growth MiB", "loss first -> mean"],
        rows,
        title=f"784-pixel MPS, bond {BOND}, epoch of {args.samples} synthetic MNIST-shaped samples, "
        f"{args.threads} thread(s)" + (f", first {args.max_steps} steps timed" if args.max_steps else ""),
    )
    for batch in batches:
        t, k = (next(r for r in payload["runs"] if r["impl"] == i and r["batch"] == batch) for i in IMPLS)
        print(f"b={batch}: tnml / tensorkrowch time per sample = {k['samples_per_s'] / t['samples_per_s']:.3f}")
    return C.report(args, "mps_epoch", payload)


def _main_full(args, batches: list[int]) -> int:
    """``--full``: whole epochs, with the extrapolation from the first steps of the same runs beside them."""
    early = args.max_steps or EARLY_STEPS
    payload = C.record("mps_epoch_full", args, env_key="env", workload="W1e", early_steps=early, runs=[])
    rows = []
    for batch in batches:
        for impl in IMPLS:
            r = run_isolated(impl, batch, args.samples, None, args.seed, args.threads, early)
            payload["runs"].append(r)
            rows.append([
                impl, batch, f"{r['samples_per_s']:.0f}", f"{r['epoch_s']:.1f}",
                f"{r['epoch_s_from_early']:.1f}", f"{r['epoch_s_from_early'] / r['epoch_s']:.2f}",
                f"{r['peak_rss_growth_mib']:.0f}", f"{r['first_loss']:.3f} -> {r['mean_loss']:.3f}",
            ])
            print(f"  done {impl} b={batch}: {r['samples_per_s']:.0f} samples/s over the whole epoch", flush=True)
    C.print_table(
        ["implementation", "batch", "samples/s", "s / epoch (measured)", f"s / epoch (from {early} steps)",
         "extrapolated / measured", "peak memory growth MiB", "loss first -> mean"],
        rows,
        title=f"784-pixel MPS, bond {BOND}, whole epoch of {args.samples} synthetic MNIST-shaped samples, "
        f"{args.threads} thread(s)",
    )
    for r in payload["runs"]:
        print(f"{r['impl']} b={r['batch']}: seconds per tenth of the epoch "
              + " ".join(f"{x:.1f}" for x in r["seconds_by_tenth"])
              + f"; 1-min load average {r['loadavg_1min'][0]} before, {r['loadavg_1min'][1]} after")
    for batch in batches:
        t, k = (next(r for r in payload["runs"] if r["impl"] == i and r["batch"] == batch) for i in IMPLS)
        print(f"b={batch}: tnml / tensorkrowch time per epoch = {t['epoch_s'] / k['epoch_s']:.3f} measured, "
              f"{t['epoch_s_from_early'] / k['epoch_s_from_early']:.3f} extrapolated from {early} steps")
    return C.report(args, "mps_epoch_full", payload)


if __name__ == "__main__":
    raise SystemExit(main())
