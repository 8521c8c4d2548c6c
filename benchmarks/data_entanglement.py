"""W3: entanglement of data from samples — tnml's tree-accumulated Gram route vs the naive per-partition route.

Run ``python -m benchmarks.data_entanglement [--quick]``. Data: standard normal features, random ±1 labels, trig map
θ = 0.085, all canonical partitions (1-D), batches of 500 samples (P5's batch size) covering all M samples.

* **tnml**: :func:`tnml.entanglement.data_entanglement` — Gram products accumulated up and down the tree, explicit
  features / reduced density matrices for sides with ``2^|K| <= batch``; Cholesky + one eigvalsh per large side.
* **naive**: every partition from scratch (both sides' Gram matrices ``Π_{n∈K} cos(πθ(x_n - x_n'))``, then the
  same spectral step), timed on a random sample of partitions and **extrapolated** to all partitions and batches.
  The sampled partitions' QEs are checked against tnml's in the same run.

Target (BENCHMARKS.md W3): < 30 s for M = 2 000, N = 1 024 on 2 cores; >= 10x faster than the naive route.

W3s (``--part sketch``, ``--part scale``, ``--part batches``): the whole data set's QE.

* **sketch**: exact (all M = 2 000 samples, one Gram pass) vs the streaming Nyström sketch at several ``k``, on
  MNIST-shaped data (scikit-learn digits upsampled to 8x8 / 32x32 with seeded shifts, contrast and noise, 10
  classes) and on Statlog DNA (180 features, 3 classes): largest |ΔQE| over all canonical partitions, the number
  of partitions outside 0.02 nats *and* 1 %, times.
* **models**: which kernel model limits the sketch — dense float64 spectra of the sketch's kernel model (Nyström
  part plus diagonal residual per side) with uniform, randomly pivoted or greedy pivoted landmarks, a block-diagonal
  residual, and a side's kernel as the product of its halves' Nyström parts, against the exact QE (DNA level 3 and
  8x8 digits level 2, M = 500, k = 100).
* **scale**: the sketch on 60 000 x 784 MNIST-shaped samples, every canonical partition (1-D and 2-D), at three
  sizes (each in a fresh process: time and peak resident memory).
* **batches**: P5's estimator (batches of 200 and 500) beside the whole-data QE on DNA, per level.
* **cifar**: surrogate entanglement and :class:`~tnml.preprocessing.FeatureRearrangement` (1-D and 2-D) on
  CIFAR-gray-shaped data (50 000 x 1 024: the digits upsampled to 32 x 32 as above).
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time

import numpy as np
import torch

from benchmarks import _common as C
from tnml.entanglement import canonical_partitions
from tnml.entanglement.data_entanglement import _partition_direct, data_entanglement, labels_to_signs

BATCH = 500
#: trig map parameter of every part (P5)
THETA = 0.085


def mnist_shaped(n_samples: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded MNIST-shaped data without download: scikit-learn's digits upsampled to ``size x size``
    (:func:`tnml.datasets.digits_upsampled`), each sample a random digit shifted by up to ``size // 10`` pixels,
    its contrast scaled by U(0.8, 1.2), plus N(0, 0.05²) pixel noise, clipped to [0, 1]. Returns
    ``(X (n_samples, size²), y (n_samples,))``."""
    from tnml.datasets.embedded import digits_upsampled

    xtr, xte, ytr, yte = digits_upsampled(size=size, dtype=torch.float64)
    base = torch.cat([xtr, xte]).view(-1, size, size)
    labels = torch.cat([ytr, yte])
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n_samples, size, size, dtype=torch.float64)
    s = max(1, size // 10)
    ys = []
    for start in range(0, n_samples, 10_000):  # chunks keep the temporaries small
        b = min(10_000, n_samples - start)
        pick = torch.randint(0, len(base), (b,), generator=g)
        img, shift = base[pick], torch.randint(-s, s + 1, (b, 2), generator=g)
        moved = torch.zeros_like(img)
        for a in range(-s, s + 1):
            for c in range(-s, s + 1):
                sel = (shift[:, 0] == a) & (shift[:, 1] == c)
                if sel.any():
                    moved[sel] = torch.roll(img[sel], shifts=(a, c), dims=(1, 2))
        moved = moved * (0.8 + 0.4 * torch.rand(b, 1, 1, generator=g)) + 0.05 * torch.randn(moved.shape, generator=g)
        out[start:start + b] = moved.clamp(0.0, 1.0)
        ys.append(labels[pick])
    return out.reshape(n_samples, -1).numpy(), torch.cat(ys).numpy()


def _standardize(x: np.ndarray) -> np.ndarray:
    s = x.std(0)
    return (x - x.mean(0)) / np.where(s > 0, s, 1.0)


def _dataset(name: str, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if name == "dna":
        from tnml.datasets.dna import load_dna

        x, y = load_dna()
        idx = np.random.default_rng(seed).permutation(len(x))[:m]
        return _standardize(x[idx].astype(np.float64)), y[idx]
    size = {"digits8": 8, "digits28": 28, "digits32": 32}[name]
    x, y = mnist_shaped(m, size, seed)
    return _standardize(x), y


def _exact_reference(name: str, m: int, seed: int, x: np.ndarray, y: np.ndarray, levels, cache: str | None):
    """Exact whole-data QE of one case (``levels``: a subset of tree levels, None: all), loaded from / saved to
    ``cache`` (a folder) when given: the exact route at M = 2 000 takes minutes to an hour, the sketches seconds."""
    from tnml import settings

    tag = "all" if levels is None else "-".join(str(v) for v in levels)
    path = None if cache is None else os.path.join(cache, f"exact_{name}_{m}_seed{seed}_levels{tag}.npz")
    if path is not None and os.path.exists(path):
        got = np.load(path)
        return got["qe"], float(got["seconds"]), True
    old = settings.max_dense_bytes
    settings.max_dense_bytes = max(old, 8 * 2**30)
    try:
        t0 = time.perf_counter()
        exact = data_entanglement(x, y, method="exact", levels=levels)
        t_exact = time.perf_counter() - t0
    finally:
        settings.max_dense_bytes = old
    if path is not None:
        os.makedirs(cache, exist_ok=True)
        np.savez(path, qe=exact.qe, seconds=t_exact)
    return exact.qe, t_exact, False


def bench_sketch(name: str, m: int, ks: list[int], seed: int, levels=None, cache: str | None = None) -> dict:
    """Exact whole-data QE vs the sketch at each k (the exact route's memory limit raised for M = 2 000), overall
    and per tree level."""
    x, y = _dataset(name, m, seed)
    exact_qe, t_exact, cached = _exact_reference(name, m, seed, x, y, levels, cache)
    row = {"data": name, "n_samples": m, "n_features": x.shape[1], "partitions": len(exact_qe),
           "levels_compared": None if levels is None else list(levels), "exact_s": t_exact,
           "exact_from_cache": cached, "sketch": []}
    for k in ks:
        t0 = time.perf_counter()
        sk = data_entanglement(x, y, method="sketch", sketch_size=k, random_state=seed, levels=levels)
        t = time.perf_counter() - t0
        lv = np.array([p.level for p in sk.partitions])
        if "classes" not in row:
            row["classes"] = int(len(sk.classes))
            row["exact_levels"] = {int(v): float(exact_qe[lv == v].mean()) for v in sorted(set(lv))}
        signed = sk.qe - exact_qe
        err = np.abs(signed)
        bad = (err > 0.02) & (err > 0.01 * exact_qe)
        above = err > sk.error_estimate
        per_level = {int(v): {"max_abs_err": float(err[lv == v].max()), "min_signed_err": float(signed[lv == v].min()),
                              "max_signed_err": float(signed[lv == v].max()),
                              "n_outside_tolerance": int(bad[lv == v].sum()), "partitions": int((lv == v).sum())}
                     for v in sorted(set(lv))}
        row["sketch"].append({"k": k, "seconds": t, "max_abs_err": float(err.max()),
                              "median_abs_err": float(np.median(err)),
                              "max_rel_err": float(np.max(err / np.maximum(exact_qe, 1e-12))),
                              "n_outside_tolerance": int(bad.sum()), "max_residual": float(sk.residual.max()),
                              "max_error_estimate": float(sk.error_estimate.max()),
                              "n_error_above_estimate": int(above.sum()),
                              "max_error_above_estimate": float((err - sk.error_estimate).max()),
                              "per_level": per_level, "levels": sk.levels, "loadavg_after": list(os.getloadavg())})
        print(f"{name} M={m} k={k}: {t:.1f} s, max |dQE| {err.max():.4f}, outside 0.02/1%: {int(bad.sum())}"
              f"/{len(err)}, residual {sk.residual.max():.3f}, error estimate {sk.error_estimate.max():.3f} "
              f"(error above it on {int(above.sum())}, by <= {float((err - sk.error_estimate).max()):.4f}) "
              f"(exact {t_exact:.1f} s{', cached' if cached else ''})", flush=True)
        for v, d in per_level.items():
            if d["max_abs_err"] > 0.005:
                print(f"    level {v}: error {d['min_signed_err']:+.4f} .. {d['max_signed_err']:+.4f}, outside "
                      f"{d['n_outside_tolerance']}/{d['partitions']}", flush=True)
    return row


def _dense_qe(g_side: torch.Tensor, g_rest: torch.Tensor, signs: torch.Tensor) -> float:
    """QE from two (M, M) side kernels, mean over labelings (dense reference)."""
    lam, vec = torch.linalg.eigh(g_side)
    f = vec * lam.clamp_min(0.0).sqrt()
    out = []
    for s in signs:
        fy = f * s[:, None]
        mu = torch.linalg.eigvalsh(fy.T @ g_rest @ fy).clamp_min(0.0)
        p = mu / mu.sum()
        out.append(float(-torch.special.xlogy(p, p).sum()))
    return float(np.mean(out))


def _nystrom(g: torch.Tensor, landmarks) -> torch.Tensor:
    """Nyström part ``G[:, L] G[L, L]^+ G[L, :]`` of a kernel (M, M) on landmark rows ``L``."""
    idx = torch.as_tensor(np.asarray(landmarks))
    lam, vec = torch.linalg.eigh(g[idx][:, idx])
    keep = lam > 1e-11 * lam[-1]
    z = (vec[:, keep] / lam[keep].sqrt()).T @ g[idx]
    return z.T @ z


def _pivoted(g: torch.Tensor, k: int, rng: np.random.Generator | None, block: int) -> list[int]:
    """Pivots of block randomly pivoted Cholesky (probability proportional to the residual diagonal; Chen,
    Epperly, Tropp, Webber 2022), or greedy pivoted Cholesky (largest residual diagonal) when ``rng`` is None."""
    piv: list[int] = []
    d = g.diagonal().clone()
    while len(piv) < k:
        b = min(block, k - len(piv))
        w = d.clamp_min(0.0)
        if rng is None:
            new = torch.topk(w, b).indices.tolist()
        else:
            new = [int(i) for i in np.unique(rng.choice(len(w), b, p=(w / w.sum()).numpy()))]
        piv += [i for i in new if i not in piv]
        d = g.diagonal() - _nystrom(g, piv).diagonal()
    return piv[:k]


def bench_kernel_models(name: str, m: int, k: int, level: int, seed: int, k_half: int = 32) -> dict:
    """Which kernel model limits the sketch: dense float64 spectra of the sketch's model (each side's kernel
    replaced by its Nyström part plus the diagonal residual) on the partitions of one tree level, with the
    landmarks drawn uniformly (the sketch), by randomly pivoted or greedy pivoted Cholesky per side, with a
    block-diagonal residual (samples grouped by their most similar landmark), and with a side's kernel taken as the
    product of its two halves' Nyström parts (rank up to k², and with ``k_half`` landmarks per half: ``k_half²``
    coordinates) — each against the exact QE."""
    from tnml.entanglement.data_entanglement import side_gram

    x, y = _dataset(name, m, seed)
    xt = torch.as_tensor(x)
    signs = torch.as_tensor(labels_to_signs(y, m)[0])
    n = x.shape[1]
    uniform = np.sort(np.random.default_rng(seed).choice(m, k, replace=False))

    def diag(a: torch.Tensor) -> torch.Tensor:
        return a + torch.diag(1.0 - a.diagonal())

    def block(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        near = torch.argmax(g[torch.as_tensor(uniform)], 0)
        return a + (g - a) * (near[:, None] == near[None, :])

    rows = []
    for part in [p for p in canonical_partitions(n) if p.level == level]:
        side = list(part.sites)
        rest = sorted(set(range(n)) - set(side))
        gk, gc = side_gram(xt, side, THETA, 8), side_gram(xt, rest, THETA, 8)
        exact = _dense_qe(gk, gc, signs)
        nk, nc = _nystrom(gk, uniform), _nystrom(gc, uniform)
        rk = _nystrom(gk, _pivoted(gk, k, np.random.default_rng(seed), max(1, k // 8)))
        rc = _nystrom(gc, _pivoted(gc, k, np.random.default_rng(seed), max(1, k // 8)))
        half = len(side) // 2
        g1, g2 = side_gram(xt, side[:half], THETA, 8), side_gram(xt, side[half:], THETA, 8)
        kr = _nystrom(g1, uniform) * _nystrom(g2, uniform)
        few = np.sort(np.random.default_rng(seed).choice(m, k_half, replace=False))
        kr_few = _nystrom(g1, few) * _nystrom(g2, few)
        models = {
            "uniform": (diag(nk), diag(nc)),
            "uniform, exact rest": (diag(nk), gc),
            "uniform, exact side": (gk, diag(nc)),
            "randomly pivoted": (diag(rk), diag(rc)),
            "greedy pivoted": (diag(_nystrom(gk, _pivoted(gk, k, None, max(1, k // 8)))),
                               diag(_nystrom(gc, _pivoted(gc, k, None, max(1, k // 8))))),
            "block residual": (block(gk, nk), block(gc, nc)),
            "halves' product": (diag(kr), diag(nc)),
            f"halves' product, {len(few)} landmarks per half": (diag(kr_few), diag(nc)),
        }
        row = {"sites": len(side), "exact": exact,
               "residual_side": {"uniform": float(1 - nk.diagonal().mean()),
                                 "randomly pivoted": float(1 - rk.diagonal().mean()),
                                 "halves' product": float(1 - kr.diagonal().mean())},
               "error": {key: _dense_qe(a, b, signs) - exact for key, (a, b) in models.items()}}
        rows.append(row)
        print(f"{name} M={m} k={k} level {level} |K|={len(side)} exact {exact:.3f}: "
              + ", ".join(f"{key} {v:+.3f}" for key, v in row["error"].items()), flush=True)
    return {"data": name, "n_samples": m, "k": k, "level": level, "rows": rows}


def bench_kernel_tail(name: str, m: int, level: int, ks: list[int], seed: int) -> dict:
    """How much of the trace of one side's kernel (the first partition of ``level``) the best rank-k
    approximation (its top k eigenvalues) leaves, at each k: the floor under any landmark choice."""
    from tnml.entanglement.data_entanglement import side_gram

    x, _ = _dataset(name, m, seed)
    part = next(p for p in canonical_partitions(x.shape[1]) if p.level == level)
    lam = torch.linalg.eigvalsh(side_gram(torch.as_tensor(x), list(part.sites), THETA, 4)).flip(0).clamp_min(0.0)
    left = {int(k): float(1.0 - lam[:k].sum() / lam.sum()) for k in ks if k < m}
    print(f"{name} M={m} level {level} |K|={len(part.sites)}: trace left by the best rank-k approximation "
          + ", ".join(f"k={k} {v:.3f}" for k, v in left.items()), flush=True)
    return {"data": name, "n_samples": m, "level": level, "sites": len(part.sites), "trace_left": left}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


class _RssPeak:
    """Peak resident memory while the block runs, sampled every 20 ms by a thread (Linux ``/proc``)."""

    def __enter__(self):
        self.before = self.peak = _rss_bytes()
        self._stop = threading.Event()

        def poll():
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, _rss_bytes())

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def scale_one(m: int, k: int, dims: int, seed: int) -> dict:
    """One scale point, in a fresh process: time, and resident memory before the call (the data, ``X`` of
    ``M x 784`` float64, included) and its peak during the call."""
    x, y = _dataset("digits28", m, seed)
    gc.collect()
    with _RssPeak() as rss:
        t0 = time.perf_counter()
        res = data_entanglement(x, y, method="sketch", sketch_size=k, random_state=seed,
                                shape=(28, 28) if dims == 2 else None)
        t = time.perf_counter() - t0
    return {"n_samples": m, "n_features": 784, "dims": dims, "k": k, "partitions": len(res.qe), "seconds": t,
            "x_gib": x.nbytes / 2**30, "rss_before_gib": rss.before / 2**30, "peak_rss_gib": rss.peak / 2**30,
            "peak_above_before_gib": (rss.peak - rss.before) / 2**30,
            "peak_rss_process_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "rows_per_batch": res.batch_sizes[0], "max_residual": float(res.residual.max()), "levels": res.levels,
            "loadavg_after": list(os.getloadavg())}


def bench_scale(sizes: list[int], k: int, dims_list: list[int], threads: int, seed: int) -> list[dict]:
    rows = []
    for dims in dims_list:
        for m in sizes:
            cmd = [sys.executable, "-m", "benchmarks.data_entanglement", "--scale-one", str(m), str(k), str(dims),
                   "--threads", str(threads), "--seed", str(seed), "--no-json"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            rows.append(row)
            print(f"scale {dims}-D M={m} k={k}: {row['seconds']:.1f} s, RSS {row['rss_before_gib']:.2f} GiB before "
                  f"(X {row['x_gib']:.2f} GiB), peak {row['peak_rss_gib']:.2f} GiB "
                  f"(+{row['peak_above_before_gib']:.2f})",
                  flush=True)
    return rows


def bench_cifar(m: int, seed: int) -> dict:
    """CIFAR-gray-shaped data (``mnist_shaped(m, 32)``: 32 x 32 = 1 024 features): surrogate entanglement of every
    canonical partition and :class:`~tnml.preprocessing.FeatureRearrangement`, 1-D and 2-D, timed."""
    from tnml.entanglement.surrogate import surrogate_entanglement
    from tnml.preprocessing.rearrangement import FeatureRearrangement

    x, _ = mnist_shaped(m, 32, seed)
    out = {"n_samples": m, "n_features": x.shape[1], "rows": []}
    total = 0.0
    for dims in (1, 2):
        shape = (32, 32) if dims == 2 else None
        t0 = time.perf_counter()
        se = surrogate_entanglement(x, shape=shape)
        t_se = time.perf_counter() - t0
        t0 = time.perf_counter()
        fr = FeatureRearrangement(dims=dims, shape=shape, random_state=seed).fit(x)
        t_fr = time.perf_counter() - t0
        total += t_se + t_fr
        out["rows"].append({"dims": dims, "partitions": len(se), "surrogate_s": t_se, "rearrangement_s": t_fr,
                            "objective_before": fr.objective_before_, "objective_after": fr.objective_after_})
        print(f"cifar-gray-shaped {m}x1024 {dims}-D: surrogate {t_se:.1f} s ({len(se)} partitions), "
              f"FeatureRearrangement {t_fr:.1f} s (objective {fr.objective_before_:.0f} -> "
              f"{fr.objective_after_:.0f})", flush=True)
    out["total_s"] = total
    out["loadavg_after"] = list(os.getloadavg())
    return out


def bench_batches(seed: int) -> dict:
    """P5's batch estimator beside the whole-data QE on DNA (exact route with the memory limit raised)."""
    from tnml import settings

    x, y = _dataset("dna", 10**9, seed)
    out = {"n_samples": len(x)}
    for b in (200, 500):
        res = data_entanglement(x, y, batch_size=b, n_batches=None, seed=seed)
        out[f"batches_{b}"] = {"levels": res.levels, "ln_batch": math.log(b)}
    old = settings.max_dense_bytes
    settings.max_dense_bytes = max(old, 8 * 2**30)
    try:
        out["whole"] = {"levels": data_entanglement(x, y, method="exact").levels, "ln_m": math.log(len(x))}
    finally:
        settings.max_dense_bytes = old
    for key, v in out.items():
        if key != "n_samples":
            print(key, {lv: round(q, 4) for lv, q in v["levels"].items() if lv <= 4}, flush=True)
    return out


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


def _extra(p) -> None:
    p.add_argument("--part", choices=("gram", "sketch", "models", "scale", "batches", "cifar"), default="gram",
                   help="gram: W3 exact route vs naive (default); sketch: exact vs sketch at M = 2000; models: which "
                        "kernel model limits the sketch (dense spectra, M = 500); scale: "
                        "60 000 x 784; batches: P5's batch estimator vs whole-data QE on DNA; cifar: surrogate "
                        "entanglement and FeatureRearrangement on 50 000 x 1 024")
    p.add_argument("--sketch-size", type=int, default=128, help="landmarks of --part scale (default 128)")
    p.add_argument("--cases", default=None,
                   help="--part sketch: comma-separated data:M pairs (data: digits8, digits28, digits32, dna), e.g. "
                        "dna:2000,digits8:2000 (default: digits8, dna and digits32 at M = 2000; --quick: M = 500); "
                        "data:M:levels compares only those tree levels of that case, e.g. digits32:2000:1+2+3")
    p.add_argument("--ks", default=None, help="--part sketch: comma-separated landmark counts (default 256,512,1000)")
    p.add_argument("--levels", default=None,
                   help="--part sketch: compare only these tree levels, comma-separated (default: all); the exact "
                        "route at N = 1 024 costs one M x M eigendecomposition per large partition and labeling")
    p.add_argument("--reference", default=None, metavar="DIR",
                   help="--part sketch: load the exact QE from DIR when there, else compute and save it there")
    p.add_argument("--suffix", default="", help="appended to the results file name (e.g. _n1024 for one case)")
    p.add_argument("--scale-one", type=int, nargs=3, metavar=("M", "K", "DIMS"), help=argparse_help)


def _print_convergence(rows: list[dict]) -> None:
    C.print_table(
        ["data", "M", "N", "k", "largest |dQE|", "median |dQE|", "outside 0.02 nats & 1 %", "largest residual",
         "largest estimate", "sketch s", "exact s"],
        [[r["data"], r["n_samples"], r["n_features"], s["k"], f"{s['max_abs_err']:.4f}",
          f"{s['median_abs_err']:.4f}", f"{s['n_outside_tolerance']}/{r['partitions']}", f"{s['max_residual']:.3f}",
          f"{s['max_error_estimate']:.3f}", f"{s['seconds']:.1f}", f"{r['exact_s']:.1f}"]
         for r in rows for s in r["sketch"]],
        title="Exact whole-data QE vs the sketch, convergence in k",
    )


argparse_help = "internal: one scale point in this process, printed as JSON"


def main(argv=None) -> int:
    args = C.parse_args(__doc__.splitlines()[0], argv, _extra)
    C.setup_torch(args.threads, args.seed)
    if args.scale_one:
        print(json.dumps(scale_one(*args.scale_one, args.seed)))
        return 0
    if args.part != "gram":
        if args.part == "sketch":
            ks = [128, 256] if args.quick else [256, 512, 1000]
            if args.ks:
                ks = [int(k) for k in args.ks.split(",")]
            cases = [("digits8", 500, None), ("dna", 500, None)] if args.quick else [
                ("digits8", 2000, None), ("dna", 2000, None), ("digits32", 2000, None)]
            if args.cases:
                cases = [(c.split(":")[0], int(c.split(":")[1]),
                          [int(v) for v in c.split(":")[2].split("+")] if c.count(":") == 2 else None)
                         for c in args.cases.split(",")]
            levels = None if args.levels is None else [int(v) for v in args.levels.split(",")]
            record = {"rows": [bench_sketch(name, m, ks, args.seed, lv or levels, args.reference)
                               for name, m, lv in cases]}
            _print_convergence(record["rows"])
        elif args.part == "models":
            record = {"rows": [bench_kernel_models(name, m, k, level, args.seed)
                               for name, m, k, level in [("dna", 500, 100, 3), ("digits8", 500, 100, 2)]],
                      "tail": bench_kernel_tail("dna", 2000, 3, [50, 100, 256, 512, 1000], args.seed)}
        elif args.part == "scale":
            sizes = [2000, 4000, 8000] if args.quick else [15000, 30000, 60000]
            record = {"rows": bench_scale(sizes, args.sketch_size, [1] if args.quick else [1, 2], args.threads,
                                          args.seed)}
        elif args.part == "cifar":
            record = bench_cifar(5000 if args.quick else 50_000, args.seed)
        else:
            record = bench_batches(args.seed)
        return C.report(args, f"data_entanglement_{args.part}{args.suffix}",
                        C.record("W3s", args, part=args.part, **record))
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
    return C.report(args, "data_entanglement", C.record("W3", args, rows=rows, goals=goals))


if __name__ == "__main__":
    raise SystemExit(main())
