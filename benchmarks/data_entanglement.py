"""W3: entanglement of data from samples — tnml's tree-accumulated Gram route vs the naive per-partition route.

Run ``python -m benchmarks.data_entanglement [--quick]``. Data: standard normal features, random ±1 labels, trig map
θ = 0.085, all canonical partitions (1-D), batches of 500 samples (P5's batch size) covering all M samples.

* **tnml**: :func:`tnml.entanglement.data_entanglement` — Gram products accumulated up and down the tree, explicit
  features / reduced density matrices for sides with ``2^|K| <= batch``; Cholesky + one eigvalsh per large side.
* **naive**: every partition from scratch (both sides' Gram matrices ``Π_{n∈K} cos(πθ(x_n - x_n'))``, then the
  same spectral step), timed on a random sample of partitions and **extrapolated** to all partitions and batches.
  The sampled partitions' QEs are checked against tnml's in the same run.

Target (BENCHMARKS.md W3): < 30 s for M = 2 000, N = 1 024 on 2 cores; >= 10x faster than the naive route.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import _common as C
from tnml.entanglement import canonical_partitions
from tnml.entanglement.data_entanglement import _partition_direct, data_entanglement, labels_to_signs
from tnml.io import write_json

BATCH = 500


def bench(m: int, n: int, seed: int, n_sampled: int) -> dict:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = rng.integers(0, 2, size=m)
    parts = canonical_partitions(n)
    n_batches = math.ceil(m / BATCH)
    t0 = time.perf_counter()
    res = data_entanglement(X, y, parts, batch_size=BATCH, n_batches=None, seed=seed)
    t_tnml = time.perf_counter() - t0
    # naive route on sampled partitions of the first batch, same batching
    order = np.random.default_rng(seed).permutation(m)
    idx = np.array_split(order, n_batches)[0]
    xb = torch.as_tensor(X[idx])
    sb = torch.as_tensor(labels_to_signs(y, m)[0][:, idx])
    pick = rng.choice(len(parts), size=min(n_sampled, len(parts)), replace=False)
    t0 = time.perf_counter()
    naive = [_partition_direct(xb, sb, 0.085, parts[k].sites, n, len(idx), 64)[0] for k in pick]
    t_sample = (time.perf_counter() - t0) / len(pick)
    t_naive = t_sample * len(parts) * n_batches
    ours = res.qe_per_batch[0, 0, pick]
    return {
        "n_samples": m,
        "n_features": n,
        "partitions": len(parts),
        "batch_size": BATCH,
        "n_batches": n_batches,
        "tnml_s": t_tnml,
        "naive_s": t_naive,
        "naive_extrapolated": True,
        "naive_partitions_timed": len(pick),
        "naive_per_partition_s": t_sample,
        "speedup": t_naive / t_tnml,
        "max_abs_qe_diff_sampled": float(np.max(np.abs(np.asarray(naive) - ours))),
        "qe_levels_1_4": {k: v for k, v in res.levels.items() if k <= 4},
    }


def main(argv=None) -> int:
    args = C.parse_args(__doc__.splitlines()[0], argv)
    C.setup_torch(args.threads, args.seed)
    configs = [(500, 64, 8), (1000, 256, 6)] if args.quick else [(500, 64, 16), (1000, 256, 12), (2000, 1024, 8)]
    data_entanglement(np.random.default_rng(0).normal(size=(64, 16)), np.arange(64) % 2)  # warm-up (BLAS init)
    rows = [bench(m, n, args.seed, k) for m, n, k in configs]
    C.print_table(
        ["M", "N", "partitions", "batches", "tnml s", "naive s (extrapolated)", "speedup", "max |ΔQE| sampled"],
        [
            [
                r["n_samples"],
                r["n_features"],
                r["partitions"],
                r["n_batches"],
                r["tnml_s"],
                r["naive_s"],
                r["speedup"],
                f"{r['max_abs_qe_diff_sampled']:.1e}",
            ]
            for r in rows
        ],
        title=f"W3 data entanglement, all canonical partitions, batches of {BATCH} ({args.threads} thread(s))",
    )
    goals = {}
    big = [r for r in rows if r["n_features"] == 1024]
    if big:
        goals["M=2000, N=1024 < 30 s"] = {"seconds": big[0]["tnml_s"], "met": big[0]["tnml_s"] < 30}
        goals[">= 10x naive"] = {"speedup": big[0]["speedup"], "met": big[0]["speedup"] >= 10}
        for name, g in goals.items():
            print(f"goal {name}: {g} -> {'met' if g['met'] else 'NOT met'}")
    if not args.no_json:
        path = Path(C.RESULTS_DIR) / f"data_entanglement{'_quick' if args.quick else ''}.json"
        write_json(
            path,
            {
                "benchmark": "W3",
                "timestamp": C.timestamp(),
                "environment": C.environment(args.threads),
                "quick": args.quick,
                "seed": args.seed,
                "rows": rows,
                "goals": goals,
            },
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
