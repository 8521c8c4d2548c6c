"""W2: binary tree tensor network train step — tnml ``TTN`` vs tensorkrowch ``Tree`` vs hand-written torch.

Run ``python -m benchmarks.ttn [--quick] [--threads T]``. The tree pools contiguous pairs of the 64 inputs level
by level (64 -> 32 -> ... -> 1), every node a full tensor ``W[left child, right child, parent]``; the root's parent
leg is the 10-class output. A train step is forward (trig feature map included) + cross-entropy + backward + Adam.

tensorkrowch 1.1.6 has no ``TTNLayer``; its tree model is ``tensorkrowch.models.Tree`` (nodes
``(input, input, output)``, layer by layer from the bottom), which is the same network.

Before timing, all implementations are checked equal in float64 (relative max difference < 1e-8): a random
native tnml ``TTN`` is loaded into tensorkrowch and into the hand-written version; and tensorkrowch's tensors are
copied into a quimb network and turned into a tnml model with ``TNModel.from_quimb``.

W2c, the comb: a caterpillar tree ``(((0, 1), 2), ...)`` over 64 and 256 leaves (bond 10, batch 100), whose
tensors form one spine. Level by level it is one dependent level per tensor; the spine route
(:mod:`tnml.plans.spine`) multiplies per-sample matrices pairwise in ``log2`` levels. Both are timed and their
aten ops per train step counted (after checking both equal a quimb contraction in float64), with the route the
plan's cost model picks for the batch.
"""

from __future__ import annotations

import itertools
import math

import quimb.tensor as qtn
import torch
import torch.nn.functional as F
from torch import nn

import tnml
from benchmarks import _common as C
from tnml.networks import TTN
from tnml.plans.tree import TreePlan

FULL_CONFIGS = [
    {"n": 64, "d": 2, "B": 16, "b": 256},
    {"n": 64, "d": 2, "B": 64, "b": 256},
]
QUICK_CONFIGS = [
    {"n": 16, "d": 2, "B": 8, "b": 64},
    {"n": 64, "d": 2, "B": 16, "b": 32},
]
N_CLASSES = 10
TOL = 1e-8
COMB_CONFIGS = [
    {"n": 64, "d": 2, "B": 10, "b": 100},
    {"n": 256, "d": 2, "B": 10, "b": 100},
]
QUICK_COMB_CONFIGS = [{"n": 32, "d": 2, "B": 10, "b": 16}]
#: the comb's two routes: level by level, and its spine contracted pairwise
COMB_ROUTES = {"level-by-level": "never", "spine": "always"}


def level_sizes(n: int) -> list[int]:
    """Nodes per level from the bottom, e.g. 64 sites -> [32, 16, 8, 4, 2, 1]."""
    if n < 2 or n & (n - 1):
        raise ValueError(f"the binary tree benchmark needs a power-of-two number of sites, got {n}")
    out = []
    while n > 1:
        n //= 2
        out.append(n)
    return out


def tnml_levels(model: TTN) -> list[list[torch.Tensor]]:
    """tnml's cores grouped by level (bottom first), left to right: ``n{level}_{k}``."""
    return [[model.core(f"n{lvl + 1}_{k}") for k in range(size)] for lvl, size in enumerate(level_sizes(model.n_sites))]


# ---------------------------------------------------------------------------------------------- hand-written
class HandTTN(nn.Module):
    """Hand-written binary tree, contracted level by level, leaves first.

    Small children (``c1 * c2 <= 1024``): the outer products of all sibling pairs ``(K, b, c1*c2)`` times the
    stacked ``(K, c1*c2, p)`` in one batched GEMM. Large children: node by node, the left child times the
    node's ``(c1, c2*p)`` matrix, then a batched vector-matrix product with the right child; this keeps each
    ``(b, c2, p)`` intermediate cache-sized and was 1.6x faster than the same two steps batched over the level
    (and faster than the outer product, whose backward is heavy) at bond 64, batch 256, on this machine.

    Parameters
    ----------
    levels : list of list of Tensor
        Per level (bottom first) the node tensors ``(c1, c2, p)`` left to right.
    """

    def __init__(self, levels: list[list[torch.Tensor]]) -> None:
        super().__init__()
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.stack([w.detach() for w in lvl]).clone()) for lvl in levels]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(b, classes)`` for raw inputs ``(b, n_sites)``."""
        v = C.trig_embed(x).transpose(0, 1)  # (n, b, d)
        b = v.shape[1]
        for w in self.weights:
            k, c1, c2, p = w.shape
            left, right = v[0::2], v[1::2]
            if c1 * c2 <= 1024:
                z = (left.unsqueeze(-1) * right.unsqueeze(-2)).reshape(k, b, c1 * c2)
                v = torch.bmm(z, w.reshape(k, c1 * c2, p))  # (K, b, p)
            else:  # node by node: each node's (b, c2, p) intermediate stays cache-sized
                outs = []
                for wi, li, ri in zip(w.unbind(0), left.unbind(0), right.unbind(0)):
                    t = torch.mm(li, wi.reshape(c1, c2 * p)).view(b, c2, p)
                    outs.append(torch.bmm(ri.unsqueeze(1), t).squeeze(1))
                v = torch.stack(outs)  # (K, b, p)
        return v[0]


# ---------------------------------------------------------------------------------------------- tensorkrowch
def tk_settings_grid(full: bool) -> list[dict]:
    """Settings to try. Documented for training: ``auto_stack=True``, ``auto_unbind=False``, ``trace()`` first;
    ``inline`` (node by node vs one stacked contraction per level) is swept, ``auto_unbind=True`` tried too.
    ``full`` adds ``auto_stack=False`` and the untraced default."""
    grid = [
        {"auto_stack": True, "auto_unbind": ub, "inline": il, "trace": True}
        for ub, il in itertools.product((False, True), (False, True))
    ]
    if full:
        grid += [{"auto_stack": False, "auto_unbind": False, "inline": il, "trace": True} for il in (False, True)]
        grid.append({"auto_stack": True, "auto_unbind": False, "inline": False, "trace": False})
    return grid


def tk_label(s: dict) -> str:
    """Short name of a tensorkrowch setting."""
    return (
        f"tk[stack={int(s['auto_stack'])},unbind={int(s['auto_unbind'])},inline={int(s['inline'])}"
        f"{',trace' if s['trace'] else ',untraced'}]"
    )


def build_tk(levels: list[list[torch.Tensor]], settings: dict):
    """A tensorkrowch ``Tree`` holding the given tensors, with the given settings, traced if asked.

    Returns
    -------
    model, forward : callable (phi) -> logits
    """
    import tensorkrowch as tk

    sizes = [len(lvl) for lvl in levels]
    bonds = [list(lvl[0].shape) for lvl in levels]
    tree = tk.models.Tree(sites_per_layer=sizes, bond_dim=bonds)
    for lvl, nodes in zip(levels, tree.layers):
        for w, node in zip(lvl, nodes):
            node.tensor = w.detach().clone()
    tree.auto_stack = settings["auto_stack"]
    tree.auto_unbind = settings["auto_unbind"]
    kw = {"inline": settings["inline"]}
    n, d = 2 * sizes[0], bonds[0][0]
    if settings["trace"]:
        tree.trace(torch.zeros(1, n, d, dtype=levels[0][0].dtype), **kw)
    return tree, lambda phi: tree(phi, **kw)


def tk_to_quimb(levels: list[list[torch.Tensor]]) -> qtn.TensorNetwork:
    """Tree tensors as a quimb network: inputs ``x0..``, bonds ``e{level}_{k}``, output ``y``."""
    ts = []
    for lvl, nodes in enumerate(levels):
        for k, w in enumerate(nodes):
            if lvl == 0:
                kids = [f"x{2 * k}", f"x{2 * k + 1}"]
            else:
                kids = [f"e{lvl - 1}_{2 * k}", f"e{lvl - 1}_{2 * k + 1}"]
            parent = "y" if lvl == len(levels) - 1 else f"e{lvl}_{k}"
            ts.append(qtn.Tensor(w.detach().numpy().copy(), inds=[*kids, parent], tags={f"t{lvl}_{k}"}))
    return qtn.TensorNetwork(ts)


# ---------------------------------------------------------------------------------------------- checks
def random_init(model: TTN, generator: torch.Generator | None = None) -> None:
    """i.i.d. normal entries with std ``1/sqrt(parent dim)``: unit-norm children give parents of norm ~1."""
    with torch.no_grad():
        for t in model.structure.tensors:
            model.core(t.name).normal_(0.0, 1.0 / math.sqrt(t.shape[-1]), generator=generator)


def check_equal(cfg: dict, grid: list[dict], seed: int) -> dict:
    """float64: native tnml == tensorkrowch (every setting) == hand; tnml.from_quimb(tk tensors) == tk."""
    n, d, bond = cfg["n"], cfg["d"], cfg["B"]
    g = torch.Generator().manual_seed(seed)
    b = min(cfg["b"], 32)
    x = torch.rand(b, n, dtype=torch.float64, generator=g)
    phi = C.trig_embed(x)
    tm = TTN(n_sites=n, phys_dim=d, bond_dim=bond, out_dim=N_CLASSES, feature_map="trig", dtype=torch.float64)
    random_init(tm, g)
    levels = [[w.detach() for w in lvl] for lvl in tnml_levels(tm)]
    res: dict = {"batch": b}
    with torch.no_grad():
        ref = tm(x)
        res["tnml_output_absmax"] = float(ref.abs().max())
        res["hand_vs_tnml"] = C.rel_diff(HandTTN(levels)(x), ref)
        for s in grid:
            _, f = build_tk(levels, s)
            res[f"{tk_label(s)}_vs_tnml"] = C.rel_diff(f(phi), ref)
        # the other way round: tensorkrowch's own tensors -> quimb -> tnml
        tree, f = build_tk(levels, grid[0])
        tk_levels = [[node.tensor.detach() for node in layer] for layer in tree.layers]
        y_tk = f(phi)
        tn = tk_to_quimb(tk_levels)
        back = tnml.TNModel.from_quimb(
            tn, input_inds=[f"x{i}" for i in range(n)], output_ind="y", feature_map="trig", dtype=torch.float64
        )
        res["tnml_from_quimb_vs_tk"] = C.rel_diff(back(x), y_tk)
        vecs = [qtn.Tensor(phi[0, i].numpy(), inds=[f"x{i}"]) for i in range(n)]
        yq = (tn & qtn.TensorNetwork(vecs)).contract(output_inds=["y"], optimize="greedy").data
        res["quimb_vs_tk"] = C.rel_diff(torch.as_tensor(yq), y_tk[0])
    res["ok"] = all(v < TOL for k, v in res.items() if k.endswith(("_tk", "_tnml")))
    return res


# ---------------------------------------------------------------------------------------------- FLOPs
def train_flops(n: int, d: int, bond: int, b: int, classes: int = N_CLASSES) -> float:
    """Algorithm FLOPs of one forward + backward of the tree.

    Forward, per sample and node with children of sizes ``c1, c2`` and parent ``p``: contracting the first
    child into ``W`` costs ``2 c1 c2 p``, the second child ``2 c2 p`` (one multiply-add = 2 FLOPs). Leaves have
    ``c = d``; inner nodes ``c = p = B``; the root ``p = classes``. Backward: each product ``C = A B`` needs
    ``dA`` and ``dB``, each as many FLOPs as the forward, so fwd + bwd = 3 x forward (slightly over-counted:
    the bottom level needs no gradient w.r.t. the data). Elementwise work (loss, Adam) is left out.
    """
    fwd = 0
    for lvl, size in enumerate(level_sizes(n)):
        c = d if lvl == 0 else bond
        p = classes if size == 1 else bond
        fwd += size * (2 * c * c * p + 2 * c * p)
    return 3.0 * fwd * b


def tnml_train_flops(model: TTN, b: int) -> float:
    """FLOPs of tnml's own contraction order for a batch of ``b``, counted like :func:`train_flops`.

    Levels that absorb their input-only children before the data (:meth:`tnml.plans.tree.TreePlan.merges_for`,
    :mod:`tnml.plans.merge`) cost ``2 D p`` per sample and node (``D`` input dimensions, output leg ``p``) plus
    their batch-free precontraction; their children cost nothing per sample. Every other level costs what it
    costs in :func:`train_flops`. Times 3 with the backward.
    """
    plan = model.plan()
    merged, absorbed = plan.merges_for(b)
    per_sample, fixed = 0.0, 0.0
    for gid, grp in enumerate(plan.groups):
        n, p = len(grp.names), grp.core_shape[-1]
        if gid in absorbed:
            continue
        if gid in merged:
            cand = merged[gid]
            per_sample += n * 2.0 * math.prod(cand.input_dims) ** cand.k * p
            fixed += n * cand.cost
            continue
        legs = grp.core_shape[:-1]
        per_sample += n * (2.0 * math.prod(legs) * p + 2.0 * math.prod(legs[1:]) * p)
    return 3.0 * (per_sample * b + fixed)


# ---------------------------------------------------------------------------------------------- timing
def run_config(cfg: dict, grid: list[dict], quick: bool, gflops: float, seed: int) -> dict:
    """Time the train steps of one configuration; returns the JSON record."""
    n, d, bond, b = cfg["n"], cfg["d"], cfg["B"], cfg["b"]
    torch.manual_seed(seed)
    x = torch.rand(b, n)
    labels = torch.randint(0, N_CLASSES, (b,))
    tm = TTN(n_sites=n, phys_dim=d, bond_dim=bond, out_dim=N_CLASSES, feature_map="trig", dtype=torch.float32)
    random_init(tm)
    C.normalize_scale(tm, x)
    levels = [[w.detach().clone() for w in lvl] for lvl in tnml_levels(tm)]
    hand = HandTTN(levels)
    with torch.no_grad():
        assert C.rel_diff(hand(x), tm(x)) < 1e-4, "float32 hand tree differs from tnml"
    steps = {}
    steps["tnml"], _ = C.make_train_step(lambda: tm(x), tm.parameters(), labels)
    steps["hand"], _ = C.make_train_step(lambda: hand(x), hand.parameters(), labels)
    for s in grid:
        mdl, f = build_tk(levels, s)
        steps[tk_label(s)], _ = C.make_train_step(lambda f=f: f(C.trig_embed(x)), mdl.parameters(), labels)

    def fwd_bwd():
        tm.zero_grad(set_to_none=True)
        F.cross_entropy(tm(x), labels).backward()

    def fwd_only():
        with torch.no_grad():
            tm(x)

    fns = {**steps, "tnml fwd+bwd": fwd_bwd, "tnml fwd (no_grad)": fwd_only}
    tk0 = tk_label(grid[0])
    ops = {"tnml": C.count_aten_ops(steps["tnml"]), f"tk {tk0}": C.count_aten_ops(steps[tk0])}
    rec = C.time_config(cfg, steps, fns, [tk_label(s) for s in grid], grid, quick, train_flops(n, d, bond, b), gflops)
    # the limit above counts the level-by-level algorithm (the goal's reference); tnml's own order may do less
    own = tnml_train_flops(tm, b)
    rec["tnml_algorithm_flops"] = own
    rec["tnml_algorithm_limit_ms"] = 1e3 * own / (rec["gemm_gflops_interleaved"] * 1e9)
    rec["ratios"]["tnml/own_algorithm_limit"] = rec["stats"]["tnml"]["median_ms"] / rec["tnml_algorithm_limit_ms"]
    rec["aten_ops"] = ops
    return rec


# ---------------------------------------------------------------------------------------------- comb (W2c)
def comb_tree(n: int) -> tuple:
    """The caterpillar mode tree ``(((0, 1), 2), ..., n - 1)``."""
    t: tuple = (0, 1)
    for i in range(2, n):
        t = (t, i)
    return t


def comb_model(cfg: dict, spines: str, dtype: torch.dtype) -> TTN:
    """A comb TTN whose tree plan uses ``spines`` (``"never"``: level by level; ``"always"``: the spine pairwise;
    ``"auto"``: the cost model's choice)."""
    m = TTN(tree=comb_tree(cfg["n"]), phys_dim=cfg["d"], bond_dim=cfg["B"], out_dim=N_CLASSES, feature_map="trig",
            dtype=dtype)
    m.__dict__["_plan_cache"] = ("cpu", TreePlan(m.structure, spines=spines))
    return m


def check_comb(cfg: dict, seed: int) -> dict:
    """float64: both routes equal a quimb contraction of the model's network with the inputs attached."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, cfg["n"], dtype=torch.float64, generator=g)
    models = {name: comb_model(cfg, mode, torch.float64) for name, mode in COMB_ROUTES.items()}
    ref = models["level-by-level"]
    random_init(ref, g)
    models["spine"].load_state_dict(ref.state_dict())
    res: dict = {}
    with torch.no_grad():
        phi = ref.embed(x)
        tn = ref.to_quimb()
        yq = torch.stack([
            torch.as_tensor(
                (tn & qtn.TensorNetwork([qtn.Tensor(phi[s, i].numpy(), inds=[f"x{i}"]) for i in range(cfg["n"])]))
                .contract(output_inds=["y"], optimize="greedy").data
            )
            for s in range(x.shape[0])
        ])
        for name, m in models.items():
            res[f"{name}_vs_quimb"] = C.rel_diff(m(x), yq)
    res["ok"] = all(v < TOL for k, v in res.items() if k.endswith("_quimb"))
    return res


def run_comb(cfg: dict, quick: bool, seed: int) -> dict:
    """Train steps of the comb on both routes (same parameters): medians, aten ops, the cost model's choice."""
    n, b = cfg["n"], cfg["b"]
    torch.manual_seed(seed)
    x = torch.rand(b, n)
    labels = torch.randint(0, N_CLASSES, (b,))
    models = {name: comb_model(cfg, mode, torch.float32) for name, mode in COMB_ROUTES.items()}
    first = models["level-by-level"]
    random_init(first)
    C.normalize_scale(first, x)
    models["spine"].load_state_dict(first.state_dict())
    with torch.no_grad():
        assert C.rel_diff(models["spine"](x), first(x)) < 1e-4, "float32 spine route differs from level by level"
    steps = {name: C.make_train_step(lambda m=m: m(x), m.parameters(), labels)[0] for name, m in models.items()}
    ops = {name: C.count_aten_ops(step) for name, step in steps.items()}
    stats = C.time_all(steps, quick)
    auto = TreePlan(first.structure, spines="auto")
    return {
        "config": cfg,
        "stats": stats,
        "aten_ops": ops,
        "ratio_spine/level": stats["spine"]["median_ms"] / stats["level-by-level"]["median_ms"],
        "spine_length": auto.spines[0].length,
        "auto_route": "spine" if auto.spines_for(b) else "level-by-level",
        "describe": auto.describe(b),
    }


def main(argv=None) -> int:
    args = C.parse_args(
        __doc__.splitlines()[0],
        argv,
        extra=lambda p: p.add_argument(
            "--tk-full-sweep", action="store_true", help="also time tensorkrowch with auto_stack=False and untraced"
        ),
    )
    C.setup_torch(args.threads, args.seed)
    configs = QUICK_CONFIGS if args.quick else FULL_CONFIGS
    grid = tk_settings_grid(args.tk_full_sweep)
    gemm = C.measure_gemm(args)
    payload = C.record("ttn", args, env_key="env", workload="W2", gemm_gflops=gemm, checks=[], configs=[])

    def describe(cfg: dict, res: dict) -> str:
        worst = max(v for k, v in res.items() if k.endswith(("_tk", "_tnml")))
        return (
            f"{cfg}: worst {worst:.2e}  hand(tnml) {res['hand_vs_tnml']:.1e}, "
            f"tnml.from_quimb(tk) {res['tnml_from_quimb_vs_tk']:.1e}, quimb(tk) {res['quimb_vs_tk']:.1e}"
            f"  -> {'OK' if res['ok'] else 'MISMATCH'}"
        )

    print("\nEquality checks (float64, rel. max diff; must be < 1e-8):")
    if not C.run_checks(configs, lambda cfg: check_equal(cfg, grid, args.seed), describe, payload["checks"]):
        return 1

    C.time_and_report(
        configs,
        lambda cfg: f"n={cfg['n']}, B={cfg['B']}, b={cfg['b']}",
        lambda cfg: run_config(cfg, grid, args.quick, gemm["best"], args.seed),
        grid,
        tk_label,
        payload,
        title=f"W2 binary TTN train step, medians, {args.threads} thread(s)",
        sweep_title="tensorkrowch Tree settings",
    )
    comb_configs = QUICK_COMB_CONFIGS if args.quick else COMB_CONFIGS
    payload["comb_checks"], payload["comb"] = [], []
    print("\nComb equality checks (float64, rel. max diff vs quimb; must be < 1e-8):")
    for cfg in comb_configs:
        res = check_comb(cfg, args.seed)
        payload["comb_checks"].append({"config": cfg, **res})
        print(f"  {cfg}: level-by-level {res['level-by-level_vs_quimb']:.1e}, spine {res['spine_vs_quimb']:.1e}"
              f"  -> {'OK' if res['ok'] else 'MISMATCH'}")
        if not res["ok"]:
            return 1
    rows = []
    for cfg in comb_configs:
        r = run_comb(cfg, args.quick, args.seed)
        payload["comb"].append(r)
        st, ops = r["stats"], r["aten_ops"]
        rows.append([
            f"n={cfg['n']}, B={cfg['B']}, b={cfg['b']} (spine {r['spine_length']})",
            st["level-by-level"]["median_ms"], st["spine"]["median_ms"], r["ratio_spine/level"],
            f"{ops['level-by-level']['total']} ({ops['level-by-level']['compute']})",
            f"{ops['spine']['total']} ({ops['spine']['compute']})", r["auto_route"],
        ])
    C.print_table(
        ["comb", "level-by-level ms", "spine ms", "spine / level", "aten ops level (not views)",
         "aten ops spine (not views)", "cost model picks"],
        rows, title=f"W2c comb tree train step, medians, {args.threads} thread(s)",
    )
    print("\nsettings: stack=auto_stack, unbind=auto_unbind, inline=contract(inline=...)")
    print("FLOP limit = level-by-level algorithm; tnml's order merges input-only levels into their parents:")
    for r in payload["configs"]:
        print(
            f"  {r['config']}: level-by-level {r['train_flops'] / 1e9:.3f} GFLOP, tnml's order "
            f"{r['tnml_algorithm_flops'] / 1e9:.3f} GFLOP (limit {r['tnml_algorithm_limit_ms']:.2f} ms, "
            f"tnml/that limit {r['ratios']['tnml/own_algorithm_limit']:.2f})"
        )
    return C.report(args, "ttn", payload)


if __name__ == "__main__":
    raise SystemExit(main())
