"""One-hot CP: one train step of the library's CP on its gather route against its dense route and a plain gather.

Run ``python -m benchmarks.cp_onehot [--quick] [--threads T]``; writes ``benchmarks/results/cp_onehot.json``.

A rank-``R`` CP with the one-hot feature map evaluates a CP tensor at integer entries,
``f(x) = sum_r prod_n A[n, x_n, r]``. Three implementations of one train step (forward, MSE against the targets,
backward, Adam step), all from the same initial factors, timed interleaved in one process
(:func:`benchmarks._common.time_all`, medians):

* ``tnml gather``: ``CP(N, d, R, None, feature_map="onehot")`` called on the integer pixels ``(batch, N)``: the
  star plan's one-hot route (:meth:`tnml.TNModel.contract_input`) gathers the factor rows, multiplies per-entry
  normalized mantissas and sums exponents (per-sample rescaling kept);
* ``tnml dense``: the same model called on the embedded one-hot vectors ``(batch, N, d)`` (built once, outside
  the timing): absorb by batched matmuls, then a log-depth pairwise product with per-sample rescaling — the route
  every raw input took before the gather route existed (which also built the one-hot vectors on every step);
* ``plain gather``: the reference the natural-data-rank experiment used to carry as its own model,
  ``A[arange(N), x].prod(1).sum(-1)`` with ``A`` one ``(N, d, R)`` parameter, no rescaling (it over- or
  underflows for long chains; here every config stays in range).

Configs: the natural-data-rank experiment's fits (8×8 digits binarized, N = 64, d = 2, its ranks 1, 2, 4, 8, 15,
full batch of 1 437 training images, its init ``(mean target / R)^(1/64)·(1 + 0.1·N(0, 1))``), and a longer,
wider CP (N = 256, R = 100, batch 512, i.i.d. Bernoulli(0.3) pixels). Adam lr 1e-4 (timings, not training).
"""

from __future__ import annotations

import copy

import torch

from benchmarks import _common as C
from tnml.experiments import natural_data_rank as ndr
from tnml.networks import CP

LR = 1e-4
IMPLS = ("tnml gather", "tnml dense", "plain gather")


def configs(quick: bool) -> list[dict]:
    """The natural-data-rank fits (its quick ranks) and one longer, wider CP."""
    ranks = (1, 15) if quick else ndr.SETTINGS[True][0]
    out = [{"name": f"natural-data-rank R={r}", "n_sites": 64, "d": 2, "rank": r, "batch": None, "data": "digits"}
           for r in ranks]
    out.append({"name": "N=256 R=100", "n_sites": 256, "d": 2, "rank": 100, "batch": 512, "data": "bernoulli"})
    return out


def make_data(cfg: dict, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer pixels ``(batch, N)`` and targets ``(batch,)`` in {0, 2}."""
    if cfg["data"] == "digits":
        x, y, _, _ = ndr.make_datasets(seed)["original"]
        return x, y
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(cfg["batch"], cfg["n_sites"], generator=g) < 0.3).long()
    y = 2.0 * (torch.rand(cfg["batch"], generator=g) < 0.1).float()
    return x, y


def make_steps(cfg: dict, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[dict, dict]:
    """Train steps of the three implementations (same initial factors) and their forwards (for the check)."""
    n, d, r = cfg["n_sites"], cfg["d"], cfg["rank"]
    mean = (max(float(y.mean()), 1e-3) / r) ** (1.0 / n)  # the experiment's init: predictions start at mean(y)
    g = torch.Generator().manual_seed(seed)
    init = torch.empty(n, d, r).normal_(0.0, ndr.INIT_REL_STD, generator=g).add_(1.0).mul_(mean)
    model = CP(n, d, r, None, feature_map="onehot")
    with torch.no_grad():
        for k in range(n):
            model.core(f"site{k}").copy_(init[k])
    dense = copy.deepcopy(model)
    factors = torch.nn.Parameter(init.clone())
    phi = torch.nn.functional.one_hot(x, d).float()
    sites = torch.arange(n)
    forwards = {
        "tnml gather": (lambda: model(x), list(model.parameters())),
        "tnml dense": (lambda: dense(phi), list(dense.parameters())),
        "plain gather": (lambda: factors[sites, x].prod(1).sum(-1), [factors]),
    }
    steps = {}
    for name, (fwd, params) in forwards.items():
        opt = torch.optim.Adam(params, lr=LR)

        def step(fwd=fwd, opt=opt) -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            loss = (fwd() - y).pow(2).mean()
            loss.backward()
            opt.step()
            return loss.detach()

        steps[name] = step
    return steps, {k: v[0] for k, v in forwards.items()}


def run_config(cfg: dict, quick: bool, seed: int) -> dict:
    x, y = make_data(cfg, seed)
    steps, forwards = make_steps(cfg, x, y, seed)
    with torch.no_grad():
        outs = {k: f() for k, f in forwards.items()}
    check = {k: C.rel_diff(outs[k], outs["plain gather"]) for k in IMPLS}
    if max(check.values()) > 1e-4 or not all(torch.isfinite(o).all() for o in outs.values()):
        raise RuntimeError(f"{cfg['name']}: the implementations disagree before timing: {check}")
    stats = C.time_all(steps, quick)
    med = {k: stats[k]["median_ms"] for k in IMPLS}
    ops = {k: C.count_aten_ops(steps[k]) for k in IMPLS}
    for k, c in ops.items():
        print(f"  {cfg['name']}: {k}: {c['total']} aten ops per train step ({c['compute']} not views)", flush=True)
    return {
        "aten_ops": ops,
        "config": {**cfg, "batch": len(x)},
        "stats": stats,
        "rel_diff_to_plain_gather": check,
        "ratios": {
            "dense/gather (gain of the gather route)": med["tnml dense"] / med["tnml gather"],
            "gather/plain (cost of rescaling)": med["tnml gather"] / med["plain gather"],
            "dense/plain": med["tnml dense"] / med["plain gather"],
        },
    }


def main(argv=None) -> int:
    args = C.parse_args(__doc__.splitlines()[0], argv)
    C.setup_torch(args.threads, args.seed)
    payload = C.record("cp_onehot", args, lr=LR, configs=[])
    rows = []
    for cfg in configs(args.quick):
        r = run_config(cfg, args.quick, args.seed)
        payload["configs"].append(r)
        st, ra = r["stats"], r["ratios"]
        rows.append([cfg["name"], r["config"]["batch"], *(st[k]["median_ms"] for k in IMPLS), *ra.values()])
        print(f"  done {cfg['name']}: " + ", ".join(f"{k} {st[k]['median_ms']:.2f} ms" for k in IMPLS), flush=True)
    return C.report(
        args,
        "cp_onehot",
        payload,
        ["config", "batch", *(f"{k} ms" for k in IMPLS), "dense/gather", "gather/plain", "dense/plain"],
        rows,
        title=f"one-hot CP, one train step (forward + MSE + backward + Adam), {args.threads} thread(s), medians",
    )


if __name__ == "__main__":
    raise SystemExit(main())
