"""W1: MPS classifier train step — tnml ``MPS`` vs tensorkrowch ``MPSLayer`` vs a hand-written torch chain.

Run ``python -m benchmarks.mps [--quick] [--threads T]``. A train step is forward (feature map included) +
cross-entropy + backward + Adam step. Before any timing, every implementation is checked to compute the same
function in float64 (relative max difference < 1e-8):

* a random tensorkrowch ``MPSLayer`` (output node without an input leg) is copied into a quimb network and
  turned into a tnml model with ``TNModel.from_quimb``, and loaded into the hand-written chain;
* a random native tnml ``MPS`` (its output core also carries an input leg) is loaded into the hand-written chain.

Timings then use float32 and the native tnml ``MPS``; tensorkrowch's ``MPSLayer`` has one extra core (the output
node with no input), so it contracts n input cores plus one output core, tnml and the hand chain n cores of which
one carries the output leg — the same work up to one core.

The user-facing version of this workload — a whole training epoch of the 784-pixel MPS on the MNIST-shaped embedded
digits, each library with its own default initialization — is ``benchmarks/mps_epoch.py``.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time

import quimb.tensor as qtn
import torch
import torch.nn.functional as F
from torch import nn

import tnml
from benchmarks import _common as C
from tnml.networks import MPS
from tnml.plans.compile import compile_plan

FULL_CONFIGS = [
    {"n": 64, "d": 2, "D": 10, "b": 256},
    {"n": 784, "d": 2, "D": 10, "b": 100},
    {"n": 784, "d": 2, "D": 32, "b": 100},
]
QUICK_CONFIGS = [
    {"n": 32, "d": 2, "D": 8, "b": 64},
    {"n": 128, "d": 2, "D": 16, "b": 32},
]
N_CLASSES = 10
TOL = 1e-8


# ---------------------------------------------------------------------------------------------- hand-written
class HandMPS(nn.Module):
    """Hand-written MPS classifier: two running vectors, one per half, absorb one site per step.

    Each step is ``v <- sum_s phi_s(x_i) * (v @ A_i[:, s, :])``: one GEMM ``(b, D) @ (D, d*D)`` followed by a
    multiply-sum over the ``d`` physical values; no ``(b, D, D)`` site matrices are ever built. The left half
    (sites left of the output core) runs left to right, the right half right to left, both in one batched
    ``bmm`` per step; the longer half finishes alone. The output core is contracted last.

    Parameters
    ----------
    cores : list of Tensor
        The input cores other than the output core, in site order, each ``(D_left, d, D_right)``; the first has
        ``D_left = 1``, the last ``D_right = 1``.
    out : Tensor
        Output core, ``(D_left, d, D_right, classes)`` if ``out_phys`` else ``(D_left, D_right, classes)``.
    n_left : int
        Number of cores in ``cores`` left of the output core (at least 1, and at least 1 right of it).
    out_phys : bool
        Whether the output core also takes an input (site ``n_left``).
    """

    def __init__(self, cores: list[torch.Tensor], out: torch.Tensor, n_left: int, out_phys: bool) -> None:
        super().__init__()
        left, right = cores[:n_left], cores[n_left:]
        if not left or not right:
            raise ValueError("HandMPS needs at least one input core on each side of the output core")
        if left[0].shape[0] != 1 or right[-1].shape[-1] != 1:
            raise ValueError("the first core must have D_left = 1 and the last D_right = 1")
        d = left[0].shape[1]
        n = len(cores) + int(out_phys)
        self.n_sites, self.d, self.out_phys = n, d, out_phys
        # boundary vectors as (d, D); the right one is read right to left
        self.first = nn.Parameter(torch.stack([left[0][0], right[-1][:, :, 0].T]).detach().clone())
        ls = [a for a in left[1:]]
        rs = [a.permute(2, 1, 0) for a in reversed(right[:-1])]  # (D_right, d, D_left): a right-to-left step
        k = min(len(ls), len(rs))
        dims = {tuple(a.shape) for a in ls + rs}
        if len(dims) > 1:
            raise ValueError(f"HandMPS needs equal bond dimensions, got core shapes {sorted(dims)}")
        bond = self.first.shape[-1]
        self.pair = nn.Parameter(
            torch.stack([torch.stack([ls[i], rs[i]]) for i in range(k)]).reshape(k, 2, bond, d * bond).detach().clone()
            if k
            else torch.empty(0, 2, bond, d * bond, dtype=self.first.dtype)
        )
        extra = ls[k:] if len(ls) > k else rs[k:]
        self.extra_side = 0 if len(ls) > k else 1
        self.extra = nn.Parameter(
            torch.stack(extra).reshape(len(extra), bond, d * bond).detach().clone()
            if extra
            else torch.empty(0, bond, d * bond, dtype=self.first.dtype)
        )
        self.out = nn.Parameter(out.detach().clone())
        # which input site each step reads
        n_right = len(right)
        right_sites = list(range(n - n_right, n))
        left_steps = list(range(1, n_left))
        right_steps = list(reversed(right_sites[:-1]))
        self.register_buffer("ends", torch.tensor([0, n - 1]), persistent=False)
        self.register_buffer(
            "pair_sites",
            torch.tensor([[left_steps[i], right_steps[i]] for i in range(k)], dtype=torch.long).reshape(k, 2),
            persistent=False,
        )
        extra_sites = left_steps[k:] if self.extra_side == 0 else right_steps[k:]
        self.register_buffer("extra_sites", torch.tensor(extra_sites, dtype=torch.long), persistent=False)
        self.out_site = n_left

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(b, classes)`` for raw inputs ``x`` ``(b, n_sites)``."""
        phi = C.trig_embed(x)  # (b, n, d)
        b, d = phi.shape[0], self.d
        bond = self.first.shape[-1]
        v = torch.bmm(phi[:, self.ends].transpose(0, 1), self.first)  # (2, b, D)
        # unbind once: indexing the stacked parameter inside the loop would make every step's backward
        # scatter into a zero tensor of the full stack's size (quadratic in the length of the chain)
        if self.pair.shape[0]:
            pp = phi[:, self.pair_sites].permute(1, 2, 0, 3).unsqueeze(-1).unbind(0)  # K x (2, b, d, 1)
            for a, p in zip(self.pair.unbind(0), pp):
                v = (torch.bmm(v, a).view(2, b, d, bond) * p).sum(2)
        vl, vr = v[0], v[1]
        if self.extra.shape[0]:
            pe = phi[:, self.extra_sites].transpose(0, 1).unsqueeze(-1).unbind(0)  # E x (b, d, 1)
            u = v[self.extra_side]
            for a, p in zip(self.extra.unbind(0), pe):
                u = (torch.mm(u, a).view(b, d, bond) * p).sum(1)
            vl, vr = (u, vr) if self.extra_side == 0 else (vl, u)
        o = self.out.shape[-1]
        t = torch.mm(vl, self.out.reshape(bond, -1))  # (b, [d,] D, o)
        if self.out_phys:
            right = (phi[:, self.out_site, :, None] * vr[:, None, :]).reshape(b, 1, d * bond)
            return torch.bmm(right, t.view(b, d * bond, o)).squeeze(1)
        return torch.bmm(vr.unsqueeze(1), t.view(b, bond, o)).squeeze(1)


def hand_from_tnml(model: MPS) -> HandMPS:
    """A :class:`HandMPS` with the values of a native tnml ``MPS`` (whose output core takes an input)."""
    n, m = model.n_sites, model.output_site
    if m in (0, n - 1):
        raise ValueError("the output core must not be a boundary core")
    cores = []
    for i in range(n):
        a = model.core(f"site{i}").detach()
        if i == 0:
            a = a.unsqueeze(0)
        if i == n - 1:
            a = a.unsqueeze(-1)
        if i != m:
            cores.append(a)
    return HandMPS(cores, model.core(f"site{m}").detach(), n_left=m, out_phys=True)


def hand_from_tk(tensors: list[torch.Tensor], out_position: int) -> HandMPS:
    """A :class:`HandMPS` with the values of a tensorkrowch ``MPSLayer`` given by its ``tensors`` list."""
    cores = []
    for k, a in enumerate(tensors):
        if k == out_position:
            out = a.permute(0, 2, 1)  # (D_left, classes, D_right) -> (D_left, D_right, classes)
            continue
        if k == 0:
            a = a.unsqueeze(0)
        if k == len(tensors) - 1:
            a = a.unsqueeze(-1)
        cores.append(a)
    return HandMPS(cores, out, n_left=out_position, out_phys=False)


# ---------------------------------------------------------------------------------------------- tensorkrowch
def tk_settings_grid(full: bool) -> list[dict]:
    """tensorkrowch settings to time; the fastest one per configuration is reported as "tk best".

    Documented for training: ``auto_stack=True``, ``auto_unbind=False``, and ``trace()`` before training (so
    that the forward replays the recorded operations). Undocumented trade-offs are swept: ``inline_input``
    (one contraction per input vs one stacked contraction) and ``inline_mats`` (sequential chain of products vs
    log-depth pairwise stacked products), plus ``auto_unbind=True`` and ``auto_stack=False`` where an exploratory
    sweep of all 16 traced combinations and the untraced default (1 thread, this machine) found them
    competitive. Left out by default because they never came close: ``inline_input=True`` with
    ``inline_mats=False``, ``auto_stack=False`` with stacked inputs, the untraced model, and
    ``auto_unbind=True`` with ``inline_mats=True`` and stacked inputs (7.4 s per step at n=784, D=10 and 157 s
    at D=32: every node of the unbound stack is an index into it, and each index's backward materializes a
    gradient of the full stack's size). ``full`` adds those back except the last.
    """
    combos = [  # (auto_stack, auto_unbind, inline_input, inline_mats)
        (True, False, False, False),
        (True, False, False, True),
        (True, True, False, False),
        (True, False, True, True),
        (True, True, True, True),
        (False, False, True, True),
    ]
    if full:
        combos += [
            c
            for c in itertools.product((True, False), (False, True), (False, True), (False, True))
            if c not in combos and not (c[1] and not c[2] and c[3]) and not (not c[0] and c[1])
        ]
    grid = [
        {"auto_stack": st, "auto_unbind": ub, "inline_input": ii, "inline_mats": im, "trace": True}
        for st, ub, ii, im in combos
    ]
    if full:
        grid.append(
            {"auto_stack": True, "auto_unbind": False, "inline_input": False, "inline_mats": False, "trace": False}
        )
    return grid


def tk_label(s: dict) -> str:
    """Short name of a tensorkrowch setting."""
    return (
        f"tk[stack={int(s['auto_stack'])},unbind={int(s['auto_unbind'])},in={int(s['inline_input'])},"
        f"mats={int(s['inline_mats'])}{',trace' if s['trace'] else ',untraced'}]"
    )


def build_tk(tensors: list[torch.Tensor], out_position: int, settings: dict):
    """A tensorkrowch ``MPSLayer`` with the given tensors and settings, traced if asked.

    Returns
    -------
    model, forward : callable (phi) -> logits
    """
    import tensorkrowch as tk

    mps = tk.models.MPSLayer(tensors=[t.detach().clone() for t in tensors], out_position=out_position)
    mps.auto_stack = settings["auto_stack"]
    mps.auto_unbind = settings["auto_unbind"]
    kw = {"inline_input": settings["inline_input"], "inline_mats": settings["inline_mats"]}
    n_in = len(tensors) - 1
    d = tensors[0].shape[0]
    if settings["trace"]:
        mps.trace(torch.zeros(1, n_in, d, dtype=tensors[0].dtype), **kw)
    return mps, lambda phi: mps(phi, **kw)


def random_tk_tensors(n: int, d: int, bond: int, out_position: int, dtype) -> list[torch.Tensor]:
    """Random ``MPSLayer`` tensors for n inputs (n + 1 cores), scaled so the chain keeps O(1) norm."""
    ts = []
    for k in range(n + 1):
        dl = 1 if k == 0 else bond
        dr = 1 if k == n else bond
        ph = N_CLASSES if k == out_position else d
        ts.append(torch.randn(dl, ph, dr, dtype=dtype) / math.sqrt(bond if 0 < k < n else 1))
    ts[0], ts[-1] = ts[0][0], ts[-1][..., 0]
    return ts


def tk_to_quimb(tensors: list[torch.Tensor], out_position: int) -> qtn.TensorNetwork:
    """The ``MPSLayer`` tensors as a quimb network with inputs ``x0..x{n-1}`` and output ``y``."""
    n_cores = len(tensors)
    qts, site = [], 0
    for k, a in enumerate(tensors):
        inds = []
        if k > 0:
            inds.append(f"b{k - 1}")
        if k == out_position:
            inds.append("y")
        else:
            inds.append(f"x{site}")
            site += 1
        if k < n_cores - 1:
            inds.append(f"b{k}")
        qts.append(qtn.Tensor(a.detach().numpy().copy(), inds=inds, tags={f"core{k}"}))
    return qtn.TensorNetwork(qts)


def tk_from_tnml(model: MPS) -> list[torch.Tensor]:
    """``MPSLayer`` tensors for timing, made from tnml's values: all of tnml's cores as input cores (the output
    core averaged over classes) plus an output node, inserted before site ``output_site``, taken from the
    output core's ``s = 0`` slice. Same scale as tnml's network, one core more."""
    n, m = model.n_sites, model.output_site
    ts = []
    for i in range(n):
        a = model.core(f"site{i}").detach().clone()
        if i == m:
            ts.append(a[:, 0].permute(0, 2, 1).contiguous())  # (Dl, classes, Dr)
            a = a.sum(-1) / N_CLASSES  # keep an input core at this site: the mean over classes
        ts.append(a)
    return ts


# ---------------------------------------------------------------------------------------------- checks
def check_equal(cfg: dict, grid: list[dict], seed: int) -> dict:
    """float64 equality checks.

    tensorkrowch (defaults, and every timed setting) == tnml.from_quimb(tk tensors) == hand(tk tensors) ==
    quimb's own contraction (two samples); native tnml ``MPS`` == hand(tnml values).

    Returns
    -------
    dict of relative max differences (keys ``*_vs_*``) and ``ok``.
    """
    n, d, bond = cfg["n"], cfg["d"], cfg["D"]
    g = torch.Generator().manual_seed(seed)
    b = min(cfg["b"], 16)
    x = torch.rand(b, n, dtype=torch.float64, generator=g)
    phi = C.trig_embed(x)
    m = n // 2
    torch.manual_seed(seed)
    ts = random_tk_tensors(n, d, bond, m, torch.float64)
    # reference: tensorkrowch with its defaults (untraced, stacked inputs, pairwise products)
    _, fwd = build_tk(
        ts, m, {"auto_stack": True, "auto_unbind": False, "inline_input": False, "inline_mats": False, "trace": False}
    )
    ref = fwd(phi).detach()
    res: dict = {"batch": b, "tk_output_absmax": float(ref.abs().max())}
    tn = tk_to_quimb(ts, m)
    tm = tnml.TNModel.from_quimb(
        tn, input_inds=[f"x{i}" for i in range(n)], output_ind="y", feature_map="trig", dtype=torch.float64
    )
    with torch.no_grad():
        res["tnml_from_quimb_vs_tk"] = C.rel_diff(tm(x), ref)
        res["hand_vs_tk"] = C.rel_diff(hand_from_tk(ts, m)(x), ref)
        res["quimb_vs_tk"] = _quimb_check(tn, phi[:2], ref[:2])
    for s in grid:
        _, f = build_tk(ts, m, s)
        res[f"{tk_label(s)}_vs_tk_default"] = C.rel_diff(f(phi), ref)
    # native tnml MPS (output core with an input leg) against the hand chain
    native = MPS(n_sites=n, phys_dim=d, bond_dim=bond, out_dim=N_CLASSES, feature_map="trig", dtype=torch.float64)
    with torch.no_grad():
        for p in native.parameters():
            p.normal_(0.0, 1.0 / math.sqrt(bond), generator=g)
        y_native = native(x)
        res["hand_vs_native_tnml"] = C.rel_diff(hand_from_tnml(native)(x), y_native)
    res["ok"] = all(v < TOL for k, v in res.items() if k.endswith(("_tk", "_tnml", "_tk_default")))
    return res


def _quimb_check(tn: qtn.TensorNetwork, phi: torch.Tensor, ref: torch.Tensor) -> float:
    """quimb's own contraction of the network with two samples attached, against ``ref``."""
    n = phi.shape[1]
    worst = 0.0
    for s in range(phi.shape[0]):
        vecs = [qtn.Tensor(phi[s, i].numpy(), inds=[f"x{i}"]) for i in range(n)]
        out = (tn & qtn.TensorNetwork(vecs)).contract(output_inds=["y"], optimize="greedy")
        y = torch.as_tensor(out.data)
        worst = max(worst, C.rel_diff(y, ref[s]))
    return worst


# ---------------------------------------------------------------------------------------------- FLOPs
def train_flops(n: int, d: int, bond: int, b: int, classes: int = N_CLASSES) -> float:
    """Algorithm FLOPs of one forward + backward of the running-vector chain (the cheapest known route).

    Forward, per sample: a boundary site costs ``2 d D`` (phi times a (d, D) matrix); each inner site
    ``2 D d D`` (the (D) vector times the (D, d*D) core) plus ``2 d D`` (the multiply-sum over s); the output
    core ``2 D d D c`` (vector times the (D, d*D*c) core) plus ``2 d D c + 2 D c`` (phi, then the right vector).
    One multiply-add = 2 FLOPs. Backward of every product ``C = A B`` needs ``dA = dC B^T`` and
    ``dB = A^T dC``, each as many FLOPs as the forward product, so fwd + bwd = 3 x forward (this slightly
    over-counts: no gradient w.r.t. the data is needed). The Adam step and the loss are elementwise and
    left out. Everything times the batch ``b``.
    """
    inner = n - 3  # n sites: two boundary sites, one output core
    fwd = 2 * (2 * d * bond) + inner * (2 * bond * d * bond + 2 * d * bond)
    fwd += 2 * bond * d * bond * classes + 2 * d * bond * classes + 2 * bond * classes
    return 3.0 * fwd * b


# ---------------------------------------------------------------------------------------------- timing
def compile_time(n: int, d: int, bond: int, reps: int) -> dict:
    """Seconds to construct a tnml ``MPS`` and build its plan with an empty plan cache (medians)."""
    build, plan_only = [], []
    for _ in range(reps):
        compile_plan.cache_clear()
        t0 = time.perf_counter()
        m = MPS(n_sites=n, phys_dim=d, bond_dim=bond, out_dim=N_CLASSES, feature_map="trig")
        m.plan()
        build.append(time.perf_counter() - t0)
        compile_plan.cache_clear()
        m.__dict__.pop("_plan_cache", None)  # the model keeps its plan (built with it): time a fresh build
        plan_only.append(C.time_once(m.plan))
    first_forward = C.time_once(lambda: m(torch.rand(4, n)))
    return {
        "n": n,
        "D": bond,
        "construct_and_plan_s": statistics.median(build),
        "plan_only_s": statistics.median(plan_only),
        "first_forward_after_plan_s": first_forward,
        "reps": reps,
    }


def run_config(cfg: dict, grid: list[dict], quick: bool, gflops: float, seed: int) -> dict:
    """Time the train steps of one configuration; returns the JSON record."""
    n, d, bond, b = cfg["n"], cfg["d"], cfg["D"], cfg["b"]
    torch.manual_seed(seed)
    x = torch.rand(b, n)
    labels = torch.randint(0, N_CLASSES, (b,))
    tm = MPS(n_sites=n, phys_dim=d, bond_dim=bond, out_dim=N_CLASSES, feature_map="trig", dtype=torch.float32)
    C.normalize_scale(tm, x)
    hand = hand_from_tnml(tm)
    with torch.no_grad():
        assert C.rel_diff(hand(x), tm(x)) < 1e-4, "float32 hand chain differs from tnml"
    steps = {}
    steps["tnml"], _ = C.make_train_step(lambda: tm(x), tm.parameters(), labels)
    steps["hand"], _ = C.make_train_step(lambda: hand(x), hand.parameters(), labels)

    def fwd_bwd():
        tm.zero_grad(set_to_none=True)
        F.cross_entropy(tm(x), labels).backward()

    def fwd_only():
        with torch.no_grad():
            tm(x)

    # the same model on each route the cost model chooses among ("tnml" is the automatic choice, rec["route_auto"]):
    # log-depth is what it picks on a GPU, sequential (a k-site sweep) on this CPU
    forced = {}
    for route in ("sequential", "blocked", "log-depth"):
        mr = MPS(n_sites=n, phys_dim=d, bond_dim=bond, out_dim=N_CLASSES, feature_map="trig", plan=route)
        mr.load_state_dict(tm.state_dict())
        forced[route], _ = C.make_train_step(lambda mr=mr: mr(x), mr.parameters(), labels)
    steps_ld = forced["log-depth"]
    ops = {"tnml": C.count_aten_ops(steps["tnml"])}
    ops.update({f"tnml {r}": C.count_aten_ops(f) for r, f in forced.items()})
    tk_ts = tk_from_tnml(tm)
    m = n // 2
    for s in grid:
        mdl, f = build_tk(tk_ts, m, s)
        steps[tk_label(s)], _ = C.make_train_step(lambda f=f: f(C.trig_embed(x)), mdl.parameters(), labels)
    extra = {"tnml fwd+bwd": fwd_bwd, "tnml fwd (no_grad)": fwd_only, "tnml sequential": forced["sequential"]}
    if bond <= 16:  # at D=32 a log-depth step takes seconds on this CPU (D^3 products), blocked ones ~1 s (memory)
        extra["tnml log-depth"] = steps_ld
        extra["tnml blocked"] = forced["blocked"]
    for s in grid[:1]:
        ops[f"tk {tk_label(s)}"] = C.count_aten_ops(steps[tk_label(s)])
    fns = {**steps, **extra}
    rec = C.time_config(cfg, steps, fns, [tk_label(s) for s in grid], grid, quick, train_flops(n, d, bond, b), gflops)
    rec["aten_ops"] = ops
    rec["route_auto"] = tm.plan().describe(b)
    rec["route"] = tm.plan().route_for(b)
    st = rec["stats"]
    for route in ("sequential", "blocked", "log-depth"):
        if f"tnml {route}" in st:
            rec["ratios"][f"{route}/tnml"] = st[f"tnml {route}"]["median_ms"] / st["tnml"]["median_ms"]
    return rec


def _extra_args(p) -> None:
    p.add_argument("--tk-full-sweep", action="store_true", help="time more tensorkrowch settings (slow)")
    p.add_argument(
        "--tk-settings", type=int, default=None,
        help="time only the first N tensorkrowch settings (a quick look: at D=32 the fastest was the fourth or fifth)",
    )


def main(argv=None) -> int:
    args = C.parse_args(
        __doc__.splitlines()[0],
        argv,
        extra=_extra_args,
    )
    C.setup_torch(args.threads, args.seed)
    configs = QUICK_CONFIGS if args.quick else FULL_CONFIGS
    grid = tk_settings_grid(args.tk_full_sweep)
    if args.tk_settings is not None:
        grid = grid[: max(1, args.tk_settings)]
    gemm = C.measure_gemm(args)
    payload = C.record("mps", args, env_key="env", workload="W1", gemm_gflops=gemm, checks=[], configs=[])

    def describe(cfg: dict, res: dict) -> str:
        worst = max(v for k, v in res.items() if k.endswith(("_tk", "_tnml", "_tk_default")))
        return (
            f"{cfg}: worst {worst:.2e}  tnml.from_quimb(tk) {res['tnml_from_quimb_vs_tk']:.1e}, "
            f"hand(tk) {res['hand_vs_tk']:.1e}, quimb(tk) {res['quimb_vs_tk']:.1e}, "
            f"hand(native tnml) {res['hand_vs_native_tnml']:.1e}  -> {'OK' if res['ok'] else 'MISMATCH'}"
        )

    print("\nEquality checks (float64, rel. max diff; must be < 1e-8):")
    if not C.run_checks(configs, lambda cfg: check_equal(cfg, grid, args.seed), describe, payload["checks"]):
        return 1

    big = configs[-1]
    comp = compile_time(big["n"], big["d"], big["D"], reps=2 if args.quick else 3)
    payload["compile"] = comp
    print(
        f"\ntnml compile, n={comp['n']}: construct + first plan() {1e3 * comp['construct_and_plan_s']:.1f} ms "
        f"(plan alone {1e3 * comp['plan_only_s']:.1f} ms; first forward after that "
        f"{1e3 * comp['first_forward_after_plan_s']:.1f} ms)"
    )

    C.time_and_report(
        configs,
        lambda cfg: f"n={cfg['n']}, D={cfg['D']}, b={cfg['b']}",
        lambda cfg: run_config(cfg, grid, args.quick, gemm["best"], args.seed),
        grid,
        tk_label,
        payload,
        title=f"W1 MPS train step, medians, {args.threads} thread(s) (tk: MPSLayer, output node without "
        "input leg; tnml/hand: output core with input leg)",
        sweep_title="tensorkrowch settings (all traced unless marked)",
    )
    print("\nsettings: stack=auto_stack, unbind=auto_unbind, in=inline_input, mats=inline_mats")
    return C.report(args, "mps", payload)


if __name__ == "__main__":
    raise SystemExit(main())
