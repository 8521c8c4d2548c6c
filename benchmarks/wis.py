"""W4: walk-index sparsification — tnml's incremental 1-WIS / 2-WIS vs naive references, in one process.

Run ``python -m benchmarks.wis [--quick]``. Graphs: Barabási–Albert with ``m = 5`` (``|E| ≈ 5|V|``), remove half.

* **1-WIS**: ``tnml.preprocessing.one_wis`` (heap, lazy re-evaluation) vs a plain numpy loop (each removal scores
  every remaining edge by ``(min deg, max deg)`` vectorized and takes the best; ``O(|E|)`` per removal). The numpy
  loop runs in full where that takes seconds, else on its first removals only, **extrapolated** linearly (its cost
  per removal is constant: it scores all edges with an alive mask).
* **2-WIS (L = 3)**: ``tnml.preprocessing.walk_index_sparsification(depth=3)`` (local closed-form updates) vs the
  definition of P4 (Razin, Verbin, Cohen, NeurIPS 2023; docs/science/definitions.md) computed naively with scipy
  (for every candidate edge, ``diag(Â³)`` of ``G ∖ e`` by sparse products, sorted and compared). The naive
  reference is timed on a sample of candidates of the first removal and **extrapolated**: per removal
  ``= t_candidate · |E|``, total ``= t_candidate · Σ_{i<k} (|E| − i)``.
* Correctness in the same run: the numpy loop's removals equal tnml's 1-WIS prefix; the naive 2-WIS's first full
  removals (all candidates scored) on a small graph equal tnml's prefix.

Targets (BENCHMARKS.md W4): 1-WIS removes half of a 100 000-edge graph in < 5 s; 2-WIS half of a 2 000-vertex,
10 000-edge graph in < 60 s. Times include converting the networkx graph.

**Against P4's released code** (``--p4-code FILE``: its ``edges_removal/walk_index_sparsification.py``, loaded
from that path, never copied; needs ``torch_geometric``; skipped when either is missing): its ``WalkIndexSparsifier(L,
chunk_size=1)`` (one removal per rescoring, as tnml) and tnml's ``walk_index_sparsification(..., tie_break=
"authors")`` remove 10 edges of the same ``edge_index`` (both directions, sorted) at depths 2-6, interleaved in one
process, best of ``reps`` runs each; the removal orders must be equal; the table gives ``P4 s / tnml s``. Graphs:
G(n=100, m=312), Barabási–Albert(100, 3), a 10x10 grid.
"""

from __future__ import annotations

import json
import time

import networkx as nx
import numpy as np
import scipy.sparse as sp

from benchmarks import _common as C
from tnml.entanglement.walk_index import as_indexed_graph
from tnml.preprocessing import one_wis, walk_index_sparsification


# ---------------------------------------------------------------------------------------------- naive references
def naive_one_wis(g, n_remove: int, max_steps: int | None = None) -> tuple[list[tuple], int]:
    """Plain numpy loop: every removal rescans all edges. Returns (removed edges, steps done)."""
    ig = as_indexed_graph(g)
    u, v = ig.edges[:, 0], ig.edges[:, 1]
    deg = np.bincount(ig.edges.ravel(), minlength=ig.n_vertices)
    alive = np.ones(ig.n_edges, dtype=bool)
    big = ig.n_vertices + 1
    out = []
    steps = n_remove if max_steps is None else min(n_remove, max_steps)
    for _ in range(steps):
        du, dv = deg[u], deg[v]
        score = np.minimum(du, dv) * big + np.maximum(du, dv)  # lexicographic (min, max); ties: first edge
        score = np.where(alive, score, -1)
        i = int(np.argmax(score))
        alive[i] = False
        deg[u[i]] -= 1
        deg[v[i]] -= 1
        out.append(ig.edge_label(int(u[i]), int(v[i])))
    return out, steps


def _naive_scores(a: sp.csr_matrix, deg: np.ndarray, e: tuple[int, int]) -> tuple:
    u, v = e
    b = a.tolil(copy=True)
    b[u, v] = 0
    b[v, u] = 0
    b = b.tocsr()
    s = np.asarray((b @ b).multiply(b).sum(axis=1)).ravel()  # diag(Â³)
    d = deg.copy()
    d[u] -= 1
    d[v] -= 1
    s[d == 0] = 0
    return tuple(np.sort(s).tolist())


def naive_wis_step_times(g, n_candidates: int, seed: int) -> float:
    """Seconds per candidate of the naive 2-WIS (P4's definition, with scipy), on a random sample of candidates."""
    ig = as_indexed_graph(g)
    a = sp.csr_matrix(nx.adjacency_matrix(g, nodelist=ig.labels), dtype=np.int64) + sp.identity(
        ig.n_vertices, dtype=np.int64
    )
    deg = np.bincount(ig.edges.ravel(), minlength=ig.n_vertices)
    rng = np.random.default_rng(seed)
    idx = rng.choice(ig.n_edges, size=min(n_candidates, ig.n_edges), replace=False)
    t0 = time.perf_counter()
    for i in idx:
        _naive_scores(a, deg, tuple(ig.edges[i].tolist()))
    return (time.perf_counter() - t0) / len(idx)


def naive_wis(g, n_remove: int) -> list[tuple]:
    """Naive 2-WIS, every candidate scored (for the correctness check on a small graph)."""
    ig = as_indexed_graph(g)
    a = sp.csr_matrix(nx.adjacency_matrix(g, nodelist=ig.labels), dtype=np.int64) + sp.identity(
        ig.n_vertices, dtype=np.int64
    )
    deg = np.bincount(ig.edges.ravel(), minlength=ig.n_vertices)
    alive = [tuple(e) for e in ig.edges.tolist()]
    out = []
    for _ in range(n_remove):
        best, best_e = None, None
        for e in alive:
            vec = _naive_scores(a, deg, e)
            if best is None or vec > best:
                best, best_e = vec, e
        u, v = best_e
        a = a.tolil()
        a[u, v] = a[v, u] = 0
        a = a.tocsr()
        deg[u] -= 1
        deg[v] -= 1
        alive.remove(best_e)
        out.append(ig.edge_label(u, v))
    return out


# ---------------------------------------------------------------------------------------------- P4's code
def load_p4(path: str | None):
    """P4's WIS module from ``path`` (or None with the reason it cannot run)."""
    import importlib.util

    if not path:
        return None, "no --p4-code given"
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        return None, "torch_geometric is not installed"
    spec = importlib.util.spec_from_file_location("p4_walk_index_sparsification", path)
    if spec is None or spec.loader is None:
        return None, f"cannot load {path}"
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except (OSError, ImportError) as e:
        return None, f"cannot load {path}: {e}"
    return mod, ""


def p4_graphs(seed: int) -> dict[str, nx.Graph]:
    return {
        "G(100, 312)": nx.gnm_random_graph(100, 312, seed=seed),
        "BA(100, 3)": nx.barabasi_albert_graph(100, 3, seed=seed),
        "grid 10x10": nx.convert_node_labels_to_integers(nx.grid_2d_graph(10, 10)),
    }


def bench_vs_p4(mod, name: str, g: nx.Graph, depth: int, n_remove: int, reps: int) -> dict:
    import torch

    ei = torch.tensor(sorted(e for u, v in g.edges for e in ((u, v), (v, u))), dtype=torch.long).T
    n = g.number_of_nodes()
    t_p4, t_ours = [], []
    theirs = ours = None
    for _ in range(reps):  # interleaved: the machine's load affects both alike
        t0 = time.perf_counter()
        _, removed, _ = mod.WalkIndexSparsifier(depth, chunk_size=1).sparsify(n, ei, n_remove)
        t_p4.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = walk_index_sparsification(ei, n_remove, depth, tie_break="authors")
        t_ours.append(time.perf_counter() - t0)
        theirs = [tuple(sorted(e)) for e in removed.T.tolist()]
    same = theirs == [tuple(sorted(e)) for e in ours]
    assert same, f"P4 {theirs} != tnml {ours} on {name}, depth {depth}"
    return {"graph": name, "n_vertices": n, "n_edges": g.number_of_edges(), "depth": depth, "n_remove": n_remove,
            "p4_s": min(t_p4), "tnml_s": min(t_ours), "ratio_p4_over_tnml": min(t_p4) / min(t_ours),
            "same_order": same, "reps": reps}


# ---------------------------------------------------------------------------------------------- runs
def bench_one_wis(n: int, seed: int, naive_budget_steps: int) -> dict:
    g = nx.barabasi_albert_graph(n, 5, seed=seed)
    k = g.number_of_edges() // 2
    t0 = time.perf_counter()
    ours = one_wis(g, k)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref, steps = naive_one_wis(g, k, max_steps=naive_budget_steps)
    t_ref_part = time.perf_counter() - t0
    assert ref == ours[:steps], "numpy loop and one_wis disagree"
    t_ref = t_ref_part * k / steps
    return {
        "algorithm": "1-WIS",
        "n_vertices": n,
        "n_edges": g.number_of_edges(),
        "n_remove": k,
        "tnml_s": t_ours,
        "naive": "numpy loop",
        "naive_steps_run": steps,
        "naive_s": t_ref,
        "naive_extrapolated": steps < k,
        "speedup": t_ref / t_ours,
        "same_order_checked_steps": steps,
    }


def bench_two_wis(n: int, seed: int, n_candidates: int) -> dict:
    g = nx.barabasi_albert_graph(n, 5, seed=seed)
    m = g.number_of_edges()
    k = m // 2
    t0 = time.perf_counter()
    walk_index_sparsification(g, k, depth=3)
    t_ours = time.perf_counter() - t0
    t_cand = naive_wis_step_times(g, n_candidates, seed)
    t_per_removal = t_cand * m
    t_total = t_cand * sum(m - i for i in range(k))
    return {
        "algorithm": "2-WIS (L=3)",
        "n_vertices": n,
        "n_edges": m,
        "n_remove": k,
        "tnml_s": t_ours,
        "tnml_per_removal_s": t_ours / k,
        "naive": "scipy, every candidate rescored (P4's definition)",
        "naive_candidates_timed": n_candidates,
        "naive_per_candidate_s": t_cand,
        "naive_per_removal_s": t_per_removal,
        "naive_s": t_total,
        "naive_extrapolated": True,
        "speedup": t_total / t_ours,
    }


def check_two_wis(n: int, seed: int, steps: int) -> dict:
    g = nx.barabasi_albert_graph(n, 5, seed=seed)
    ours = walk_index_sparsification(g, steps, depth=3)
    ref = naive_wis(g, steps)
    assert ours == ref, f"naive 2-WIS {ref} != tnml {ours}"
    return {"n_vertices": n, "n_edges": g.number_of_edges(), "removals_checked": steps, "equal": True}


def main(argv=None) -> int:
    def extra(p):
        p.add_argument("--p4-code", default=None,
                       help="path of P4's edges_removal/walk_index_sparsification.py (compares against it)")
        p.add_argument("--p4-only", action="store_true", help="run only the comparison with P4's code")

    args = C.parse_args(__doc__.splitlines()[0], argv, extra)
    C.setup_torch(args.threads, args.seed)
    p4, why = load_p4(args.p4_code)
    p4_rows = []
    if p4 is None:
        print(f"P4 comparison skipped: {why}")
    else:
        depths = (4, 5, 6) if args.quick else (2, 3, 4, 5, 6)
        for name, g in p4_graphs(args.seed).items():
            for depth in depths:
                p4_rows.append(bench_vs_p4(p4, name, g, depth, 10, 2 if args.quick else 3))
        C.print_table(
            ["graph", "|E|", "depth", "P4 s", "tnml s", "P4 / tnml", "same order"],
            [[r["graph"], r["n_edges"], r["depth"], r["p4_s"], r["tnml_s"], r["ratio_p4_over_tnml"], r["same_order"]]
             for r in p4_rows],
            title="WIS vs P4's released code: remove 10 edges (both at chunk size 1, best of reps, one process)",
        )
    if args.p4_only:
        return 0
    if args.quick:
        one_cfg, two_cfg, n_cand, check = [(500, 10**6), (4000, 300)], [500], 10, (60, 1)
    else:
        one_cfg, two_cfg, n_cand, check = [(500, 10**6), (2000, 10**6), (20000, 300)], [500, 2000], 30, (150, 2)
    rows = [bench_one_wis(n, args.seed, cap) for n, cap in one_cfg]
    rows += [bench_two_wis(n, args.seed, n_cand) for n in two_cfg]
    verified = check_two_wis(*check[:1], args.seed, check[1])
    C.print_table(
        ["algorithm", "|V|", "|E|", "removed", "tnml s", "naive s", "naive", "speedup"],
        [
            [
                r["algorithm"],
                r["n_vertices"],
                r["n_edges"],
                r["n_remove"],
                r["tnml_s"],
                r["naive_s"],
                ("extrapolated" if r["naive_extrapolated"] else "measured"),
                r["speedup"],
            ]
            for r in rows
        ],
        title="W4 walk-index sparsification (Barabási–Albert, m = 5, remove half)",
    )
    big1 = [r for r in rows if r["algorithm"] == "1-WIS" and r["n_edges"] >= 99_000]
    big2 = [r for r in rows if r["algorithm"].startswith("2-WIS") and r["n_vertices"] >= 2000]
    goals = {}
    if big1:
        goals["1-WIS half of 100k edges < 5 s"] = {"seconds": big1[0]["tnml_s"], "met": big1[0]["tnml_s"] < 5}
    if big2:
        goals["2-WIS half of 2000 V / 10000 E < 60 s"] = {"seconds": big2[0]["tnml_s"], "met": big2[0]["tnml_s"] < 60}
    for name, res in goals.items():
        print(f"goal {name}: {res['seconds']:.2f} s -> {'met' if res['met'] else 'NOT met'}")
    print(f"naive 2-WIS first {verified['removals_checked']} removals on BA({verified['n_vertices']}) equal tnml's")
    p4_result = p4_rows or _kept_p4_rows(why, args.quick)
    payload = C.record("W4", args, rows=rows, goals=goals, naive_2wis_check=verified, vs_p4_code=p4_result)
    return C.report(args, "wis", payload)


def _kept_p4_rows(why: str, quick: bool):
    """Without ``--p4-code`` the comparison is not rerun: keep the rows of the last run that had it (with that
    run's timestamp) instead of overwriting them, else say why there are none."""
    path = C.RESULTS_DIR / f"wis{'_quick' if quick else ''}.json"
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return why
    prev = old.get("vs_p4_code")
    if isinstance(prev, list) and prev:
        return {"note": f"not rerun ({why}); rows of the run of {old.get('timestamp')}", "rows": prev}
    if isinstance(prev, dict) and prev.get("rows"):
        return prev
    return why


if __name__ == "__main__":
    raise SystemExit(main())
