"""W5: entanglement of networks — entropies across every cut of a long MPS and of a big TTN, and min-cut bounds.

Run ``python -m benchmarks.entanglement [--quick] [--threads T]``.

(a) Entropies across all N-1 bonds of an N = 1 000-site random MPS (bond 32, d = 2): tnml's network route
(``entanglement_entropies(model, parts)`` — QR messages towards each cut, cached and shared across the cuts) vs
quimb's ``MatrixProductState.entropy(i, info=info)`` loop (which moves its orthogonality centre one site per cut),
on the same cores. The cores are drawn i.i.d. normal with std ``1/sqrt(d D)`` and rescaled by one common factor so
that the state has unit norm (quimb's entropy assumes it); the entropies are checked equal (1e-8; quimb's are in
bits, converted to nats) before timing. quimb mutates the state it canonicalizes, so each of its repetitions starts
from a fresh ``copy()`` made outside the timed region.

(a') The same at N = 2 000 sites, bond 64 (the target: every bond's entropy in less time than quimb).

(b) All 2N-3 canonical partitions of an N = 1 024-leaf binary TTN (bond 8): their entropies (one call, messages
shared), and separately their min-cut bounds (``mincut_bounds``: the tree dynamic program) next to the
``networkx`` max-flow that was used before (timed on a sample of partitions and extrapolated). Target < 30 s.

(c) Accuracy across multi-bond cuts: 12 random perfect binary trees over 8 leaves (leaves (2, R), internal
(R, R, R), root (R, R), R = 2, N(0, 1) entries, built in quimb), interleaved cut {p0, p2, p4, p6}: ``cut_rank`` and
``schmidt_values`` of the factor route (``method="auto"``) and of the Gram route against numpy's SVD and
``matrix_rank`` of the dense 16 x 16 matricization.

torch runs on ``--threads`` threads (default 1), and so does numpy's BLAS (threadpoolctl), for both peers.
Results go to ``benchmarks/results/entanglement.json`` (``entanglement_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import quimb.tensor as qtn
import torch
from threadpoolctl import threadpool_limits

import tnml
import tnml.entanglement as ent
from benchmarks import _common as C
from tnml.entanglement._inputs import graph_and_sides
from tnml.entanglement.mincut import mincut_bounds, mincut_on_graph
from tnml.networks import MPS, TTN
from tnml.testing import random_binary_tree_network

FULL = {"mps": {"n": 1000, "D": 32, "d": 2}, "mps_big": {"n": 2000, "D": 64, "d": 2}, "ttn": {"n": 1024, "B": 8},
        "reps": 5, "nx_sample": 24}
QUICK = {"mps": {"n": 200, "D": 16, "d": 2}, "mps_big": {"n": 400, "D": 32, "d": 2}, "ttn": {"n": 256, "B": 8},
         "reps": 3, "nx_sample": 8}
TOL = 1e-8


# ---------------------------------------------------------------------------------------------- (a) MPS
def _unit_norm_(model: MPS) -> float:
    """Scale all cores by one common factor so that <psi|psi> = 1 (transfer matrices, renormalized per step)."""
    cores = [model.core(f"site{i}").detach() for i in range(model.n_sites)]
    env = torch.ones(1, 1, dtype=cores[0].dtype)
    log_norm2 = 0.0
    for i, a in enumerate(cores):
        a3 = a.reshape(1, *a.shape) if i == 0 else a  # (left, phys, right)
        a3 = a3.reshape(*a3.shape, 1) if i == model.n_sites - 1 else a3
        env = torch.einsum("ab,apc,bpd->cd", env, a3, a3)
        s = float(env.abs().max())
        log_norm2 += math.log(s)
        env = env / s
    log_norm2 += math.log(float(env.reshape(())))
    factor = math.exp(-log_norm2 / (2 * model.n_sites))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)
    return log_norm2


def _to_quimb(model: MPS) -> qtn.MatrixProductState:
    """The model's cores (``(left, phys, right)``, no left/right leg at the ends) as a quimb MPS ('lpr' order)."""
    arrays = [model.core(f"site{i}").detach().numpy().copy() for i in range(model.n_sites)]
    return qtn.MatrixProductState(arrays, shape="lpr")


def bench_mps(cfg: dict, reps: int, seed: int) -> dict:
    n, bond, d = cfg["n"], cfg["D"], cfg["d"]
    torch.manual_seed(seed)
    model = MPS(
        n_sites=n,
        phys_dim=d,
        bond_dim=bond,
        init="normal",
        init_std=(d * bond) ** -0.5,
        feature_map="identity",
        dtype=torch.float64,
    )
    raw_log_norm2 = _unit_norm_(model)
    psi0 = _to_quimb(model)
    norm = float(psi0.norm())
    parts = [list(range(i)) for i in range(1, n)]

    def tnml_run():
        with torch.no_grad():
            return [float(e) for e in ent.entanglement_entropies(model, parts)]

    def quimb_run(psi):
        info: dict = {}
        return [float(psi.entropy(i, info=info)) * math.log(2) for i in range(1, n)]

    ours, theirs = np.asarray(tnml_run()), np.asarray(quimb_run(psi0.copy()))
    diff = float(np.abs(ours - theirs).max())
    if not diff < TOL:
        raise SystemExit(f"MPS entropies disagree: max |tnml - quimb| = {diff:.3g} (tolerance {TOL})")
    times: dict[str, list[float]] = {"tnml": [], "quimb": []}
    copy_s = []
    for r in range(reps):  # interleaved, alternating which goes first
        for name in ("tnml", "quimb") if r % 2 == 0 else ("quimb", "tnml"):
            if name == "tnml":
                times["tnml"].append(C.time_once(tnml_run))
            else:
                t0 = time.perf_counter()
                psi = psi0.copy()
                copy_s.append(time.perf_counter() - t0)
                times["quimb"].append(C.time_once(lambda psi=psi: quimb_run(psi)))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "config": {"n_sites": n, "bond_dim": bond, "phys_dim": d, "cuts": n - 1},
        "raw_log_norm2": raw_log_norm2,
        "quimb_norm_after_rescale": norm,
        "max_abs_entropy_diff": diff,
        "mean_entropy_nats": float(ours.mean()),
        "times_s": times,
        "median_s": med,
        "quimb_copy_median_s": statistics.median(copy_s),
        "ratio_tnml_over_quimb": med["tnml"] / med["quimb"],
    }


# ---------------------------------------------------------------------------------------------- (c) accuracy


def accuracy_multibond(n_trees: int = 12) -> dict:
    import warnings

    part = ["p0", "p2", "p4", "p6"]
    rows = []
    for seed in range(n_trees):
        tn = random_binary_tree_network(seed)
        dense = tn.contract(output_inds=part + ["p1", "p3", "p5", "p7"]).data.reshape(16, 16)
        ref = np.linalg.svd(dense, compute_uv=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ent.RankUncertaintyWarning)
            gram_rank = ent.cut_rank(tn, part, method="gram")
        rows.append({
            "seed": seed,
            "numpy_matrix_rank": int(np.linalg.matrix_rank(dense)),
            "smallest_over_largest": float(ref[-1] / ref[0]),
            "factor_rank": ent.cut_rank(tn, part),
            "gram_rank": gram_rank,
            "gram_rank_interval": list(ent.cut_rank_bounds(tn, part, method="gram")),
            "factor_max_rel_err": float(np.abs(ent.schmidt_values(tn, part) - ref).max() / ref[0]),
            "gram_max_rel_err": float(np.abs(ent.schmidt_values(tn, part, method="gram")[:16] - ref).max() / ref[0]),
        })
    return {"rows": rows,
            "factor_rank_equal": sum(r["factor_rank"] == r["numpy_matrix_rank"] for r in rows),
            "gram_rank_equal": sum(r["gram_rank"] == r["numpy_matrix_rank"] for r in rows),
            "factor_max_rel_err": max(r["factor_max_rel_err"] for r in rows),
            "gram_max_rel_err": max(r["gram_max_rel_err"] for r in rows)}


# ---------------------------------------------------------------------------------------------- (b) TTN
def bench_ttn(cfg: dict, reps: int, nx_sample: int, seed: int) -> dict:
    n, bond = cfg["n"], cfg["B"]
    torch.manual_seed(seed)
    model = TTN(n_sites=n, bond_dim=bond, feature_map="identity", init="normal", dtype=torch.float64)
    parts = ent.canonical_partitions(n)

    def entropies():
        with torch.no_grad():
            return [float(e) for e in ent.entanglement_entropies(model, parts)]

    t0 = time.perf_counter()
    s = entropies()
    first_entropy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = mincut_bounds(model, parts)
    first_bound_s = time.perf_counter() - t0
    worst = max(e - r.log_bound for e, r in zip(s, b))
    if worst > 1e-9:
        raise SystemExit(f"an entropy exceeds its min-cut bound by {worst:.3g}")
    t_ent = [C.time_once(entropies) for _ in range(reps)]
    t_bound = [C.time_once(lambda: mincut_bounds(model, parts)) for _ in range(reps)]
    sample = parts[:: max(1, len(parts) // nx_sample)][:nx_sample]
    t0 = time.perf_counter()
    for p, r in zip(sample, (mincut_bounds(model, [p])[0] for p in sample)):
        assert mincut_on_graph(*graph_and_sides(model, p)).rank_bound == r.rank_bound
    t_nx_per = (time.perf_counter() - t0) / len(sample)
    return {
        "config": {"n_leaves": n, "bond_dim": bond, "partitions": len(parts)},
        "entropies_first_call_s": first_entropy_s,
        "entropies_s": t_ent,
        "entropies_median_s": statistics.median(t_ent),
        "mincut_first_call_s": first_bound_s,
        "mincut_dp_s": t_bound,
        "mincut_dp_median_s": statistics.median(t_bound),
        "mincut_networkx_estimated_s": t_nx_per * len(parts),
        "mincut_networkx_sampled_partitions": len(sample),
        "total_median_s": statistics.median(t_ent) + statistics.median(t_bound),
        "target_s": 30.0,
    }


def main(argv=None) -> int:
    args = C.parse_args("W5: entanglement of networks (tnml vs quimb MPS entropy; TTN partitions)", argv)
    C.setup_torch(args.threads, args.seed)
    cfg = QUICK if args.quick else FULL
    with threadpool_limits(limits=args.threads):
        mps = bench_mps(cfg["mps"], cfg["reps"], args.seed)
        mps_big = bench_mps(cfg["mps_big"], min(cfg["reps"], 3), args.seed)
        acc = accuracy_multibond()
        ttn = bench_ttn(cfg["ttn"], cfg["reps"], cfg["nx_sample"], args.seed)
    C.print_table(
        ["config", "tnml entanglement_entropies (s)", "quimb entropy loop (s)", "tnml / quimb", "max |diff|"],
        [
            [
                f"MPS n={r['config']['n_sites']} D={r['config']['bond_dim']} d={r['config']['phys_dim']}, "
                f"{r['config']['cuts']} cuts",
                r["median_s"]["tnml"],
                r["median_s"]["quimb"],
                r["ratio_tnml_over_quimb"],
                f"{r['max_abs_entropy_diff']:.1e}",
            ]
            for r in (mps, mps_big)
        ],
        title=f"(a) entropies across every bond, medians of interleaved runs, {args.threads} thread(s)",
    )
    C.print_table(
        ["route", "rank = numpy matrix_rank", "max |s - s_numpy| / s_max"],
        [["factor (auto)", f"{acc['factor_rank_equal']}/12", f"{acc['factor_max_rel_err']:.1e}"],
         ["gram", f"{acc['gram_rank_equal']}/12", f"{acc['gram_max_rel_err']:.1e}"]],
        title="(c) interleaved cut of 12 random 8-leaf binary trees (R = 2)",
    )
    t = ttn["config"]
    C.print_table(
        ["config", "entropies (s)", "min-cut DP (s)", "min-cut networkx (s, est.)", "total (s)", "target (s)"],
        [
            [
                f"TTN n={t['n_leaves']} bond={t['bond_dim']}, {t['partitions']} partitions",
                ttn["entropies_median_s"],
                ttn["mincut_dp_median_s"],
                ttn["mincut_networkx_estimated_s"],
                ttn["total_median_s"],
                30,
            ]
        ],
        title=f"(b) all canonical partitions of a TTN, medians of {cfg['reps']} runs",
    )
    payload = C.record(
        "W5 entanglement of networks",
        args,
        tnml=getattr(tnml, "__version__", None),
        mps_entropies=mps,
        mps_entropies_2000_sites_bond_64=mps_big,
        multibond_accuracy=acc,
        ttn_partitions=ttn,
    )
    return C.report(args, "entanglement", payload)


if __name__ == "__main__":
    raise SystemExit(main())
