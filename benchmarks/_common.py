"""Shared helpers for the benchmark scripts: options, interleaved timing, GEMM rate, equality checks, tables and
JSON records.

All timings are wall-clock seconds from ``time.perf_counter``; every implementation of one configuration is
timed in the same process, with repetitions interleaved (round-robin, rotating the order each round) so that
drifts in machine load hit all of them alike. Reported numbers are medians.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tnml.io import atomic_write

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------------------------------------- options
def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Common command line: ``--quick``, ``--threads T`` (default 1), ``--seed``, ``--no-json``.

    Parameters
    ----------
    description : str
        Shown by ``--help``.
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).
    extra : callable, optional
        Adds script-specific options to the parser.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smoke run: smaller configs, fewer repetitions")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed for data and parameters")
    p.add_argument("--no-json", action="store_true", help="print only; do not write benchmarks/results/*.json")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def setup_torch(threads: int, seed: int) -> None:
    """Fix the thread count and seed; silence torch's deprecation warning that tensorkrowch triggers on every
    call (indexing with a list)."""
    warnings.filterwarnings(
        "ignore", message="Using a non-tuple sequence for multidimensional indexing", category=UserWarning
    )
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set (parallel work happened before); intra-op threads are what matter here
        pass
    torch.manual_seed(seed)


def environment(threads: int) -> dict[str, Any]:
    """Machine and library versions, for the JSON record."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "threads_requested": threads,
        # 1/5/15-minute load averages at the start: absolute times on a shared machine drift with them
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    for mod in ("tensorkrowch", "tnml", "quimb", "cotengra"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - version lookup is best effort
            info[mod] = None
    return info


# ---------------------------------------------------------------------------------------------- timing
def auto_reps(estimate_s: float, budget_s: float, lo: int, hi: int) -> int:
    """Number of repetitions that fits ``budget_s`` given one call takes ``estimate_s``, clamped to [lo, hi]."""
    if estimate_s <= 0 or not math.isfinite(estimate_s):
        return hi
    return max(lo, min(hi, int(budget_s / estimate_s)))


def time_once(fn: Callable[[], Any]) -> float:
    """Seconds for one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_interleaved(
    fns: dict[str, Callable[[], Any]], reps: int | dict[str, int], warmup: int = 1
) -> dict[str, list[float]]:
    """Time several callables with interleaved repetitions.

    Parameters
    ----------
    fns : dict name -> callable
    reps : int or dict name -> int
        Repetitions per callable (a callable with fewer reps drops out of the later rounds).
    warmup : int
        Untimed calls of each callable first.

    Returns
    -------
    dict name -> list of seconds
    """
    names = list(fns)
    want = {k: (reps if isinstance(reps, int) else reps[k]) for k in names}
    for _ in range(warmup):
        for k in names:
            fns[k]()
    out: dict[str, list[float]] = {k: [] for k in names}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(max(want.values(), default=0)):
            order = names[r % len(names) :] + names[: r % len(names)]
            for k in order:
                if len(out[k]) < want[k]:
                    out[k].append(time_once(fns[k]))
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def time_all(
    fns: dict[str, Callable[[], Any]], quick: bool, screened: Sequence[str] = (), screen_factor: float = 3.0
) -> dict[str, dict[str, float]]:
    """Warm up, size the repetitions, then time everything interleaved.

    Each callable is called once untimed (plan compilation, caches) and once timed to estimate its cost; the
    repetitions then fill a time budget per callable (full run: 3 s, 5 to 25 reps; quick: 0.5 s, 2 to 4 reps).
    Callables named in ``screened`` (alternative settings of one peer) whose estimate (the better of two calls
    when under 0.5 s) exceeds ``screen_factor`` times the fastest of them get only 2 repetitions: they are
    reported, but cannot plausibly be the best setting.

    Returns
    -------
    dict name -> :func:`summarize` statistics (the estimate call is not among the repetitions).
    """
    budget, lo, hi = (0.5, 2, 4) if quick else (3.0, 5, 25)
    est = {}
    for k, f in fns.items():
        f()
        est[k] = time_once(f)
        if est[k] < 0.5:  # cheap: take the better of two, so one disturbed call does not screen it out
            est[k] = min(est[k], time_once(f))
    best = min((est[k] for k in screened), default=math.inf)
    reps = {}
    for k in fns:
        reps[k] = auto_reps(est[k], budget, lo, hi)
        if k in screened and est[k] > screen_factor * best:
            reps[k] = 2
    times = time_interleaved(fns, reps, warmup=0)
    return {k: summarize(v) for k, v in times.items()}


def summarize(times_s: list[float]) -> dict[str, float]:
    """Median, min, max (ms) and the repetition count."""
    ms = [1e3 * t for t in times_s]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "reps": len(ms)}


def gemm_gflops(threads: int, n: int = 1024, reps: int = 7) -> dict[str, float]:
    """Measured fp32 GEMM rate (``torch.mm`` of two n×n matrices, 2n³ FLOPs) on the current thread count.

    Returns
    -------
    dict with ``best`` (used for FLOP limits: the limit is a lower bound on time) and ``median`` GFLOP/s.
    """
    assert torch.get_num_threads() == threads
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)
    rates = [2.0 * n**3 / time_once(lambda: torch.mm(a, b, out=c)) / 1e9 for _ in range(reps)]
    return {"best": max(rates), "median": statistics.median(rates), "n": n}


def make_train_step(
    forward: Callable[[], torch.Tensor], params, labels: torch.Tensor, lr: float = 1e-4
) -> tuple[Callable[[], torch.Tensor], torch.optim.Optimizer]:
    """A train step: zero grads, forward, cross-entropy, backward, Adam step.

    Every implementation gets the same optimizer: ``torch.optim.Adam(fused=True)`` (one kernel for all
    parameters). The default for-loop Adam costs ~18 ms per step on 784 separate parameters here (fused: ~3 ms),
    which would measure the optimizer's dispatch rather than the contraction for any model with one parameter
    per tensor (tnml, tensorkrowch).

    Parameters
    ----------
    forward : callable () -> logits (batch, classes)
        Must include the feature map, so every implementation pays for embedding the raw input.
    params : iterable of parameters
    labels : LongTensor (batch,)
    lr : float
        Small, so that timings are not disturbed by the values drifting far during the repetitions.

    Returns
    -------
    step : callable () -> loss, optimizer
    """
    opt = torch.optim.Adam(list(params), lr=lr, fused=True)

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(), labels)
        loss.backward()
        opt.step()
        return loss.detach()

    return step, opt


#: aten ops that only make a view, allocate, or are no-ops on the common path: no kernel on a GPU
VIEW_OPS = frozenset(
    "aten::" + n
    for n in (
        "as_strided", "view", "reshape", "_unsafe_view", "select", "slice", "narrow", "transpose", "t", "permute",
        "unsqueeze", "squeeze", "expand", "flatten", "unbind", "split", "detach", "alias", "resolve_conj",
        "resolve_neg", "empty", "empty_strided", "empty_like", "to", "lift_fresh", "contiguous", "view_as",
        "split_with_sizes", "chunk", "item", "_local_scalar_dense", "is_nonzero", "scalar_tensor",
    )
)


def count_aten_ops(step: Callable[[], Any], warmup: int = 2) -> dict[str, int]:
    """aten operators one call of ``step`` runs (torch.profiler, CPU), after ``warmup`` untimed calls.

    Returns ``{"total": every aten event, nested ones included, "compute": those not in :data:`VIEW_OPS`}``:
    on a GPU each compute op is about one kernel launch (views and allocations launch none).
    """
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    names = [e.name for e in prof.events() if e.name.startswith("aten::")]
    return {"total": len(names), "compute": sum(n not in VIEW_OPS for n in names)}


def trig_embed(x: torch.Tensor, theta: float = 0.5) -> torch.Tensor:
    """``(cos(pi theta x), sin(pi theta x))`` stacked on a new last axis (the same map as ``tnml.TrigMap``)."""
    a = math.pi * theta * x
    return torch.stack((torch.cos(a), torch.sin(a)), dim=-1)


def normalize_scale(model, x: torch.Tensor, rounds: int = 2) -> None:
    """Scale every core of a tnml model by one factor so that its outputs on ``x`` have geometric-mean
    magnitude ~1.

    tnml carries a per-sample exponent and never over/underflows, but the peers (tensorkrowch, hand-written
    chains) copy these values and run in plain float32; this keeps all of them far from inf and denormals.
    Uses ``log_forward``, so it works however large the raw outputs are.
    """
    n_tensors = len(model.structure.tensors)
    for _ in range(rounds):
        with torch.no_grad():
            log_abs, _ = model.log_forward(x)
            mean_log = float(log_abs[torch.isfinite(log_abs)].mean())
            factor = math.exp(-mean_log / n_tensors)
            for p in model.cores.values():  # every tensor once, whatever the storage (rows of stacks are views)
                p.mul_(factor)


def rel_diff(a: torch.Tensor, ref: torch.Tensor) -> float:
    """``max |a - ref| / max |ref|``."""
    a = a.detach().to(torch.float64)
    ref = ref.detach().to(torch.float64)
    return float((a - ref).abs().max() / ref.abs().max().clamp_min(1e-300))


# ---------------------------------------------------------------------------------------------- output
def fmt(x: float | None, digits: int = 3) -> str:
    """Compact number: 3 significant digits, thousands split by spaces."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{digits}g}"


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A GitHub-style markdown table on stdout."""
    if title:
        print(f"\n{title}")
    cells = [[str(c) for c in header]] + [[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(line(r))


def write_json(name: str, payload: dict[str, Any], quick: bool = False) -> Path:
    """Write ``benchmarks/results/NAME.json`` (``NAME_quick.json`` for smoke runs) atomically.

    The file is written to a temporary file in the same folder and moved into place with ``os.replace``
    (:func:`tnml.io.atomic_write`), so a reader never sees a half-written file.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}{'_quick' if quick else ''}.json"

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600

    return atomic_write(path, write, suffix=".tmp")


def _json_default(o: Any) -> Any:
    if isinstance(o, (torch.dtype, Path)):
        return str(o)
    if hasattr(o, "tolist"):  # numpy / torch arrays and scalars
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def timestamp() -> str:
    """Local time, ISO 8601 to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def record(benchmark: str, args: argparse.Namespace, *, env_key: str = "environment", **fields: Any) -> dict[str, Any]:
    """The JSON record of one run: the header every benchmark writes, then ``fields``.

    Parameters
    ----------
    benchmark : str
        The record's ``"benchmark"`` value.
    args : argparse.Namespace
        From :func:`parse_args` (``quick``, ``seed``, ``threads`` are read).
    env_key : str
        Key of the :func:`environment` entry (``"env"`` in the train-step benchmarks' records, whose readers
        accept both).
    **fields
        Further entries, in order (e.g. ``workload=...``, ``configs=[]``).

    Returns
    -------
    dict with ``benchmark``, ``timestamp``, ``quick``, ``seed``, ``env_key`` and ``fields``.
    """
    return {
        "benchmark": benchmark,
        "timestamp": timestamp(),
        "quick": bool(args.quick),
        "seed": args.seed,
        env_key: environment(args.threads),
        **fields,
    }


def report(
    args: argparse.Namespace,
    name: str,
    payload: dict[str, Any],
    header: Sequence[str] | None = None,
    rows: Sequence[Sequence[Any]] = (),
    title: str | None = None,
) -> int:
    """The end of a benchmark's ``main``: print the table (if ``header`` is given), write
    ``results/NAME[_quick].json`` unless ``--no-json`` and say where; returns the exit status 0.
    """
    if header is not None:
        print_table(header, rows, title=title)
    if not args.no_json:
        print(f"wrote {write_json(name, payload, args.quick)}")
    return 0


def run_checks(
    configs: Sequence[dict],
    check: Callable[[dict], dict[str, Any]],
    describe: Callable[[dict, dict[str, Any]], str],
    checks: list[dict[str, Any]],
) -> bool:
    """Run the equality check of every config before any timing.

    Each result (``check(cfg)``, a dict with a boolean ``"ok"``) is appended to ``checks`` with its config and
    printed as ``describe(cfg, result)``; the first failing config stops the run.

    Returns
    -------
    bool
        Whether every config passed (on ``False`` the caller exits with status 1 and times nothing).
    """
    for cfg in configs:
        res = check(cfg)
        checks.append({"config": cfg, **res})
        print(f"  {describe(cfg, res)}")
        if not res["ok"]:
            print("equality check failed; not timing", file=sys.stderr)
            return False
    return True


def measure_gemm(args: argparse.Namespace) -> dict[str, float]:
    """:func:`gemm_gflops` at the run's size (512 with ``--quick``, else 1024), printed with the thread count."""
    gemm = gemm_gflops(args.threads, n=512 if args.quick else 1024)
    print(f"threads={torch.get_num_threads()}  fp32 GEMM: best {gemm['best']:.1f} GFLOP/s, median {gemm['median']:.1f}")
    return gemm


#: name of the GEMM timed among the train steps (see :func:`time_config`)
GEMM_PROBE = "gemm 1024 (probe)"


def time_config(
    cfg: dict, steps: dict, fns: dict, tk_names: list[str], grid: list[dict], quick: bool, flops: float, gflops: float
) -> dict:
    """Time every function of one config (interleaved), pick tensorkrowch's best setting and compute the ratios.

    Parameters
    ----------
    cfg : the config's parameters (stored as is)
    steps : name -> train step (must include "tnml" and "hand"); their losses are recorded after timing
    fns : name -> callable to time (the steps plus any extra measurements)
    tk_names, grid : tensorkrowch labels and their settings, in the same order
    flops : the algorithm's FLOPs for one train step; gflops : the GEMM rate measured before the configs

    Notes
    -----
    The FLOP limit uses a 1024 x 1024 GEMM timed *in the same interleaved rounds* as the train steps
    (median against median: the same machine state), because this shared machine's GEMM rate drifts by up to
    40 % between minutes (best-of-7 before the configs measured 64 and 89 GFLOP/s in two runs of one session),
    which moved the ratio to the limit more than any code change. The up-front rate's limit is kept in the
    record as ``flop_limit_upfront_ms``.
    """
    n = 1024
    a, b_, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    stats = time_all({**fns, GEMM_PROBE: lambda: torch.mm(a, b_, out=c)}, quick, screened=tk_names)
    gemm_probe = stats.pop(GEMM_PROBE)
    interleaved_gflops = 2.0 * n**3 / (gemm_probe["median_ms"] / 1e3) / 1e9
    best = min(tk_names, key=lambda k: stats[k]["median_ms"])
    limit_ms = 1e3 * flops / (interleaved_gflops * 1e9)
    t = stats["tnml"]["median_ms"]
    return {
        "config": cfg,
        "stats": stats,
        "tk_best": best,
        "tk_best_settings": grid[tk_names.index(best)],
        "train_flops": flops,
        "flop_limit_ms": limit_ms,
        "gemm_gflops_interleaved": interleaved_gflops,
        "flop_limit_upfront_ms": 1e3 * flops / (gflops * 1e9),
        "ratios": {
            "tnml/tk_best": t / stats[best]["median_ms"],
            "tnml/hand": t / stats["hand"]["median_ms"],
            "tnml/flop_limit": t / limit_ms,
        },
        "loss_after_timing": {k: float(steps[k]()) for k in ("tnml", "hand", best)},
    }


def time_and_report(
    configs: list[dict], name_of, run, grid: list[dict], tk_label, payload: dict, title: str, sweep_title: str
) -> None:
    """Run every config (``run(cfg) -> time_config result``), print the ratio table and the tensorkrowch sweep.

    ``name_of(cfg)`` labels a row; results are appended to ``payload["configs"]``.
    """
    rows, sweep_rows = [], []
    for cfg in configs:
        r = run(cfg)
        payload["configs"].append(r)
        st = r["stats"]
        name = name_of(cfg)
        rows.append(
            [
                name,
                st["tnml"]["median_ms"],
                st[r["tk_best"]]["median_ms"],
                st["hand"]["median_ms"],
                r["flop_limit_ms"],
                r["ratios"]["tnml/tk_best"],
                r["ratios"]["tnml/hand"],
                r["ratios"]["tnml/flop_limit"],
                st["tnml fwd+bwd"]["median_ms"],
                st["tnml fwd (no_grad)"]["median_ms"],
                r.get("aten_ops", {}).get("tnml", {}).get("total"),
            ]
        )
        for route, c in r.get("aten_ops", {}).items():
            ms = st.get(route, {}).get("median_ms")
            timed = "" if ms is None or route == "tnml" else f", {ms:.1f} ms"
            print(f"  {name}: {route}: {c['total']} aten ops per train step ({c['compute']} not views){timed}",
                  flush=True)
        for s in grid:
            k = tk_label(s)
            sweep_rows.append([name, k, st[k]["median_ms"], st[k]["reps"], "best" if k == r["tk_best"] else ""])
        print(
            f"  done {name}: tnml {st['tnml']['median_ms']:.1f} ms, tk best {st[r['tk_best']]['median_ms']:.1f} "
            f"ms ({r['tk_best']}), hand {st['hand']['median_ms']:.1f} ms",
            flush=True,
        )
    headers = [
        "config",
        "tnml ms",
        "tk best ms",
        "hand ms",
        "FLOP limit ms",
        "tnml/tk",
        "tnml/hand",
        "tnml/limit",
        "tnml fwd+bwd",
        "tnml fwd",
        "aten ops/step",
    ]
    print_table(headers, rows, title=title)
    print_table(["config", "tensorkrowch setting", "median ms", "reps", ""], sweep_rows, title=sweep_title)
