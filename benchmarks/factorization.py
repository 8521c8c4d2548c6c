"""W6: factorization training steps — tnml's TensorFactorization / HierarchicalTensorFactorization + completion loss
vs plain torch, in one process.

Run ``python -m benchmarks.factorization [--quick]``. One train step = zero grads, loss (mean squared error on the
observed entries), backward, :class:`tnml.dynamics.GroupRMSprop` step (lr 1e-2); every implementation uses that
same optimizer on its own copy of the same initial values, and steps are timed interleaved (medians).

* **CP** (the ``tf-incremental-rank`` default): order 4, mode size 10, R = 1000 components, 2 000 observed entries.
  tnml: ``CompletionTask(TensorFactorization)`` (the end tensor from two Khatri-Rao halves and one matmul, then a
  gather of the observed entries). Plain torch, two ways: *gather* (the factor rows of each observed entry,
  multiplied and summed over components: ``sum_r prod_n A_n[i_n, r]``) and *einsum* (the full tensor by
  ``torch.einsum("ar,br,cr,dr->abcd")``, then a gather).
* **HTF** (the ``htf-dynamics`` default): order 3, mode size 16, widths 512 at both internal nodes of the tree
  ``((0, 1), 2)``, 2 048 observed entries. tnml: ``CompletionTask(HierarchicalTensorFactorization)``. Plain torch:
  *full* (node (0, 1) as ``(L0 ⊙ L1) @ N``, then the root as one matmul with leaf 2, then a gather) and *gather*
  (the same per observed entry).

Before timing, float64 copies of every implementation are checked to give the same loss and gradients as tnml
(relative max difference < 1e-10). Ratios are tnml / the fastest plain variant.
"""

from __future__ import annotations

import torch

from benchmarks import _common as C
from tnml.dynamics import GroupRMSprop, random_completion_task, random_cp_tensor
from tnml.networks import HierarchicalTensorFactorization, TensorFactorization

LR = 1e-2
TOL = 1e-10
FULL_CONFIGS = [
    {"model": "CP", "order": 4, "dim": 10, "width": 1000, "n_obs": 2000},
    {"model": "HTF", "order": 3, "dim": 16, "width": 512, "n_obs": 2048},
]
QUICK_CONFIGS = [
    {"model": "CP", "order": 4, "dim": 10, "width": 200, "n_obs": 2000},
    {"model": "HTF", "order": 3, "dim": 16, "width": 128, "n_obs": 2048},
]
HT_TREE = ((0, 1), 2)


# ---------------------------------------------------------------------------------------------- plain torch
def cp_gather_loss(factors: list[torch.Tensor], idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``mean_k (sum_r prod_n A_n[idx[k, n], r] - y_k)²`` with the factor rows gathered per observed entry."""
    rows = factors[0][idx[:, 0]]
    for n in range(1, len(factors)):
        rows = rows * factors[n][idx[:, n]]
    return ((rows.sum(1) - y) ** 2).mean()


def cp_einsum_loss(factors: list[torch.Tensor], idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The full tensor by one einsum, then the squared error of its observed entries."""
    letters = "abcdefghijklmnopq"[: len(factors)]
    w = torch.einsum(",".join(f"{c}r" for c in letters) + "->" + letters, *factors)
    return ((w[tuple(idx.T)] - y) ** 2).mean()


def htf_full_loss(p: dict[str, torch.Tensor], idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Tree ``((0, 1), 2)``: ``node[ab, s] = sum_r L0[a, r] L1[b, r] N[r, s]``, ``W[ab, c] = sum_s node[ab, s]
    root[s] L2[c, s]``, then the observed entries."""
    l0, l1, l2, n, root = p["leaf0"], p["leaf1"], p["leaf2"], p["node"], p["root"]
    d = l0.shape[0]
    node = (l0[:, None, :] * l1[None, :, :]).reshape(d * d, -1) @ n  # (d², width_root)
    w = (node * root) @ l2.T  # (d², d)
    return ((w[idx[:, 0] * d + idx[:, 1], idx[:, 2]] - y) ** 2).mean()


def htf_gather_loss(p: dict[str, torch.Tensor], idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The same contraction per observed entry: ``((L0[i] ⊙ L1[j]) @ N ⊙ L2[k]) · root``."""
    h = (p["leaf0"][idx[:, 0]] * p["leaf1"][idx[:, 1]]) @ p["node"]
    pred = (h * p["leaf2"][idx[:, 2]]) @ p["root"]
    return ((pred - y) ** 2).mean()


# ---------------------------------------------------------------------------------------------- setup
def build(cfg: dict, seed: int, dtype) -> dict:
    """tnml model + task and the plain implementations on copies of its values.

    Returns
    -------
    dict with ``tnml`` (model, task) and ``plain`` {name: (params (list or dict of leaf tensors), loss fn)}.
    """
    shape = (cfg["dim"],) * cfg["order"]
    target = random_cp_tensor(shape, 5, seed=seed, dtype=dtype)
    task = random_completion_task(target, cfg["n_obs"], seed=seed + 1)
    idx, y = task.indices, task.values
    torch.manual_seed(seed)
    if cfg["model"] == "CP":
        model = TensorFactorization(shape, cfg["width"], init_scale=5e-3, dtype=dtype)
        fs = [f.detach().clone() for f in model.factors()]
        plain = {
            "plain gather": ([f.clone().requires_grad_() for f in fs], cp_gather_loss),
            "plain einsum": ([f.clone().requires_grad_() for f in fs], cp_einsum_loss),
        }
    else:
        model = HierarchicalTensorFactorization(shape, HT_TREE, cfg["width"], init_scale=1e-2, dtype=dtype)
        c = model.core_dict()
        names = {"leaf0": "leaf0", "leaf1": "leaf1", "leaf2": "leaf2", "node": "node_0_1", "root": "root"}
        vals = {k: c[v].detach().clone() for k, v in names.items()}
        plain = {
            "plain full": ({k: v.clone().requires_grad_() for k, v in vals.items()}, htf_full_loss),
            "plain gather": ({k: v.clone().requires_grad_() for k, v in vals.items()}, htf_gather_loss),
        }
    return {"tnml": (model, task), "plain": plain, "idx": idx, "y": y}


def _param_list(params) -> list[torch.Tensor]:
    return list(params.values()) if isinstance(params, dict) else list(params)


def check_equal(cfg: dict, seed: int) -> dict:
    """float64: every plain implementation's loss and gradients against tnml's (relative max differences)."""
    b = build(cfg, seed, torch.float64)
    model, task = b["tnml"]
    model.zero_grad(set_to_none=True)
    loss = task(model)
    loss.backward()
    names = (
        [f"factor{n}" for n in range(cfg["order"])]
        if cfg["model"] == "CP"
        else ["leaf0", "leaf1", "leaf2", "node_0_1", "root"]
    )
    ref = [model.core(k).grad for k in names]
    res: dict = {"loss": float(loss.detach())}
    for name, (params, fn) in b["plain"].items():
        lp = fn(params, b["idx"], b["y"])
        grads = torch.autograd.grad(lp, _param_list(params))
        res[f"{name}: loss"] = abs(float(lp.detach()) - res["loss"]) / abs(res["loss"])
        res[f"{name}: grads"] = max(C.rel_diff(g, r) for g, r in zip(grads, ref))
    res["ok"] = all(v < TOL for k, v in res.items() if ":" in k)
    return res


def make_steps(cfg: dict, seed: int) -> dict:
    """float32 train steps (zero grads, loss, backward, GroupRMSprop) and fwd+bwd-only callables."""
    b = build(cfg, seed, torch.float32)
    model, task = b["tnml"]
    idx, y = b["idx"], b["y"]
    opt = GroupRMSprop(model.parameters(), lr=LR)

    def tnml_step():
        opt.zero_grad(set_to_none=True)
        loss = task(model)
        loss.backward()
        opt.step()
        return loss.detach()

    def tnml_fwd_bwd():
        model.zero_grad(set_to_none=True)
        task(model).backward()

    fns = {"tnml": tnml_step, "tnml fwd+bwd": tnml_fwd_bwd}
    for name, (params, fn) in b["plain"].items():
        plist = _param_list(params)
        popt = GroupRMSprop(plist, lr=LR)

        def step(params=params, fn=fn, popt=popt):
            popt.zero_grad(set_to_none=True)
            loss = fn(params, idx, y)
            loss.backward()
            popt.step()
            return loss.detach()

        def fwd_bwd(params=params, fn=fn, plist=plist):
            for p in plist:
                p.grad = None
            fn(params, idx, y).backward()

        fns[name] = step
        fns[f"{name} fwd+bwd"] = fwd_bwd
    return fns


def run_config(cfg: dict, quick: bool, seed: int) -> dict:
    fns = make_steps(cfg, seed)
    stats = C.time_all(fns, quick)
    plain = [k for k in fns if k.startswith("plain") and not k.endswith("fwd+bwd")]
    best = min(plain, key=lambda k: stats[k]["median_ms"])
    t = stats["tnml"]["median_ms"]
    return {
        "config": cfg,
        "stats": stats,
        "plain_best": best,
        "ratios": {
            "tnml/plain_best": t / stats[best]["median_ms"],
            **{f"tnml/{k}": t / stats[k]["median_ms"] for k in plain},
            "tnml fwd+bwd / plain_best fwd+bwd": stats["tnml fwd+bwd"]["median_ms"]
            / stats[f"{best} fwd+bwd"]["median_ms"],
        },
    }


def _name(cfg: dict) -> str:
    return f"{cfg['model']} order {cfg['order']}, dim {cfg['dim']}, width {cfg['width']}, {cfg['n_obs']} obs"


def main(argv=None) -> int:
    args = C.parse_args(__doc__.splitlines()[0], argv)
    C.setup_torch(args.threads, args.seed)
    configs = QUICK_CONFIGS if args.quick else FULL_CONFIGS
    payload = C.record(
        "factorization",
        args,
        env_key="env",
        workload="W6",
        optimizer=f"GroupRMSprop(lr={LR})",
        loss="mean squared error on observed entries",
        checks=[],
        configs=[],
    )
    print(f"Equality checks (float64, rel. max diff of loss and gradients vs tnml; must be < {TOL:g}):")
    if not C.run_checks(
        configs,
        lambda cfg: check_equal(cfg, args.seed),
        lambda cfg, res: f"{_name(cfg)}: " + ", ".join(f"{k} {v:.1e}" for k, v in res.items() if ":" in k),
        payload["checks"],
    ):
        return 1
    rows = []
    for cfg in configs:
        r = run_config(cfg, args.quick, args.seed)
        payload["configs"].append(r)
        st = r["stats"]
        for k in st:
            if k.startswith("plain") and not k.endswith("fwd+bwd"):
                rows.append(
                    [
                        _name(cfg),
                        k,
                        st["tnml"]["median_ms"],
                        st[k]["median_ms"],
                        st["tnml"]["median_ms"] / st[k]["median_ms"],
                        st["tnml fwd+bwd"]["median_ms"],
                        st[f"{k} fwd+bwd"]["median_ms"],
                        "best" if k == r["plain_best"] else "",
                    ]
                )
    return C.report(
        args,
        "factorization",
        payload,
        ["config", "plain variant", "tnml ms", "plain ms", "tnml/plain", "tnml fwd+bwd ms", "plain fwd+bwd ms", ""],
        rows,
        title=f"W6 factorization train step (GroupRMSprop), medians, {args.threads} thread(s)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
