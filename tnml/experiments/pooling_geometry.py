"""Experiment ``pooling-geometry``: the inductive bias of pooling geometry (Cohen & Shashua 2017), measured.

On 8×8 inputs (64 sites, row-major ``k = r * 8 + c``) we compare, across two families of partitions of the pixels,

- a deep ConvAC with **contiguous** 2×2-window pooling (``TTN(shape=(8, 8))``),
- a deep ConvAC with **interleaved** pooling (:func:`tnml.mode_trees.interleaved_window_tree`, a TTN over an
  explicit mode tree),
- the **shallow** ConvAC (``CP`` with ``R`` channels),
- and, on the same partitions, an MPS (row-major snake) and a PEPS (2-D grid) with small bonds.

For every (model, partition) we record the min-cut bound (``ln`` of the product of the cut's bond dims) and, where
the network route is feasible, the rank and entanglement entropy of a random float64 instance (tree QR messages
or Gram matrices over the minimum cut, nothing densified). Where the bound is too large for the Gram route (its
matrices are ``bound × bound``) or the doubled contraction exceeds ``tnml.settings.max_dense_bytes`` the record
says ``too large`` instead.

Partition families:

- *coarse* (contiguous blocks): left/right halves, top/bottom halves, a quadrant vs the rest, a centred 4×4 block,
  a 2×2 block, and the canonical 2-D quad-tree blocks (levels 1 and 2);
- *fine* (interleaved): even/odd columns, even/odd rows, the checkerboard, the parity coset
  ``{r, c even}``, the 1-D interleaved splits of the row-major order (level 2: site id mod 4) and the blocks of
  the interleaved tree (levels 1 and 2: residues of ``(r, c)`` mod 2 and mod 4).

A cross-check on 4×4 inputs compares the network cut rank with the rank of the grid tensor
(:func:`tnml.entanglement.separation_rank`, 2 templates per site, i.e. the full ``2^16`` grid): they must agree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypedDict

import numpy as np
import torch

import tnml.entanglement as ent
from tnml import settings
from tnml.entanglement import Partition
from tnml.experiments._common import pyplot
from tnml.experiments.registry import Claim, Comparison, ExperimentResult, RunConfig, register_experiment
from tnml.io import save_figure
from tnml.model import TNModel
from tnml.networks import CP, MPS, PEPS, TTN, interleaved_window_tree

__all__ = ["named_partitions", "run"]

class PoolingSettings(TypedDict):
    """One version's settings (the keys are described at :data:`SETTINGS`)."""

    convac_channels: int
    chain_bond: int
    max_chi: int
    family_measure: int | None
    extra_models: bool
    check_parts: tuple[str, ...] | None


#: settings for the quick and the full version
#: convac_channels: R of the three ConvACs; chain_bond: D of MPS and PEPS; max_chi: largest min-cut bound whose
#: instance is measured (the Gram route builds bound x bound matrices); family_measure: instances measured per
#: tree-derived family label (None: all); extra_models: add a PEPS with D=3 (off: its Gram contractions take
#: minutes on 2 cores); check_parts: partitions of the 4x4
#: separation-rank cross-check (None: all named ones).
SETTINGS: dict[bool, PoolingSettings] = {
    True: {
        "convac_channels": 4,
        "chain_bond": 2,
        "max_chi": 64,
        "family_measure": 2,
        "extra_models": False,
        "check_parts": ("left half", "quadrant", "checkerboard", "parity coset"),
    },
    False: {
        "convac_channels": 4,
        "chain_bond": 2,
        "max_chi": 4096,
        "family_measure": None,
        "extra_models": False,
        "check_parts": None,
    },
}
#: relative tolerance at which the cross-check compares network and grid ranks (above the Gram route's
#: resolution of about 10 * sqrt(k * eps), below any Schmidt value that matters)
CHECK_TOL = 1e-5
SIDE = 8
CHECK_SIDE = 4

COARSE, FINE = "coarse", "fine"


# ---------------------------------------------------------------------------------------------- geometry
def _grid_sites(side: int, pred: Callable[[int, int], bool]) -> tuple[int, ...]:
    return tuple(r * side + c for r in range(side) for c in range(side) if pred(r, c))


def named_partitions(side: int) -> list[tuple[str, str, Partition]]:
    """(name, family, partition) of the hand-named splits of a ``side × side`` grid (row-major site ids)."""
    h = side // 2
    q = side // 4 if side >= 4 else 1
    named = [
        ("left half", COARSE, _grid_sites(side, lambda r, c: c < h)),
        ("top half", COARSE, _grid_sites(side, lambda r, c: r < h)),
        ("quadrant", COARSE, _grid_sites(side, lambda r, c: r < h and c < h)),
        ("centre block", COARSE, _grid_sites(side, lambda r, c: q <= r < q + h and q <= c < q + h)),
        ("2x2 block", COARSE, _grid_sites(side, lambda r, c: r < 2 and c < 2)),
        ("even columns", FINE, _grid_sites(side, lambda r, c: c % 2 == 0)),
        ("even rows", FINE, _grid_sites(side, lambda r, c: r % 2 == 0)),
        ("checkerboard", FINE, _grid_sites(side, lambda r, c: (r + c) % 2 == 0)),
        ("parity coset", FINE, _grid_sites(side, lambda r, c: r % 2 == 0 and c % 2 == 0)),
    ]
    if side >= 8:
        named.append(("columns mod 4", FINE, _grid_sites(side, lambda r, c: c % 4 == 0)))
    return [(n, f, Partition(tuple(sorted(s)), None)) for n, f, s in named]


def family_partitions(side: int) -> list[tuple[str, str, Partition]]:
    """(family label, family, partition) of the tree-derived splits: quad-tree levels 1–2 (coarse), 1-D
    interleaved level 2 and the interleaved tree's levels 1–2 (fine)."""
    out = []
    for p in ent.canonical_partitions(shape=(side, side)):
        if p.level in (1, 2):
            out.append((f"quad-tree L{p.level}", COARSE, p))
    for p in ent.interleaved_partitions(side * side):
        if p.level == 2:
            out.append(("1-D interleaved L2", FINE, p))
    for p in ent.tree_partitions(interleaved_window_tree(side)):
        if p.level in (1, 2):
            out.append((f"interleaved tree L{p.level}", FINE, p))
    return out


# ---------------------------------------------------------------------------------------------- models
def _models(side: int, channels: int, bond: int, device, extra: bool) -> dict[str, tuple[TNModel, str]]:
    """name -> (model, description). float64 random instances (the init of each class, made generic)."""
    dt = torch.float64
    n = side * side
    models = {
        "ConvAC contiguous": (
            TTN(shape=(side, side), bond_dim=channels, init="normal", device=device, dtype=dt),
            f"deep ConvAC, 2x2-window (contiguous) pooling, R={channels}",
        ),
        "ConvAC interleaved": (
            TTN(tree=interleaved_window_tree(side), bond_dim=channels, init="normal", device=device, dtype=dt),
            f"deep ConvAC, interleaved (bit-reversal) 2x2 pooling, R={channels}",
        ),
        "ConvAC shallow (CP)": (
            CP(n, rank=channels, init_std=1.0, device=device, dtype=dt),
            f"shallow ConvAC = CP, R={channels}",
        ),
        "MPS": (
            MPS(n, bond_dim=bond, init="normal", init_std=1.0, device=device, dtype=dt),
            f"MPS over the row-major order, D={bond}",
        ),
        "PEPS": (PEPS(shape=(side, side), bond_dim=bond, device=device, dtype=dt), f"PEPS {side}x{side}, D={bond}"),
    }
    if extra:
        models["PEPS D=3"] = (
            PEPS(shape=(side, side), bond_dim=3, device=device, dtype=dt),
            f"PEPS {side}x{side}, D=3 (shows where exact contraction stops)",
        )
    return models


# ---------------------------------------------------------------------------------------------- measurement
def _measure(model, parts: list[Partition], max_chi: int) -> list[dict]:
    """Per partition: bound, and the instance's rank/entropy via the network route where feasible."""
    out: list[dict] = []
    feasible = []
    for p in parts:
        b = ent.mincut_bound(model, p)
        rec = {
            "bound_rank": int(b.rank_bound),
            "bound_log": float(b.log_bound),
            "cut": [c[2] for c in b.cut],
            "rank": None,
            "entropy": None,
            "reached": None,
            "status": "",
        }
        if b.rank_bound > max_chi:
            rec["status"] = f"too large (bound {b.rank_bound} > max_chi {max_chi}: Gram matrices bound x bound)"
        else:
            feasible.append(len(out))
        out.append(rec)
    for k in feasible:
        try:
            r = ent.entanglement_report(model, [parts[k]])[0]
        except settings.MemoryLimitError as e:
            out[k]["status"] = f"too large (MemoryLimitError: {str(e)[:120]}...)"
            continue
        out[k].update(rank=int(r.rank), entropy=float(r.entropy), reached=bool(r.reached), status="measured")
    return out


def _cross_check(seed: int, device, channels: int, bond: int, check_parts) -> list[dict]:
    """4×4 inputs: network cut rank vs grid-tensor separation rank (full ``2^16`` grid).

    The templates are ``x in {0, 1}``: the trig map (theta = 1/2) sends them to the basis vectors ``(1, 0)`` and
    ``(0, 1)``, so the grid tensor *is* the coefficient tensor and both routes see the same Schmidt values. Ranks
    are compared at the common relative tolerance :data:`CHECK_TOL` (each route's default tolerance is recorded
    too: the Gram route resolves values only down to about ``10 sqrt(k eps)``, the grid SVD to ``sqrt(eps)``).
    """
    torch.manual_seed(seed + 1)
    models = _models(CHECK_SIDE, min(channels, 3), bond, device, extra=False)
    parts = [x for x in named_partitions(CHECK_SIDE) if check_parts is None or x[0] in check_parts]
    templates = np.array([0.0, 1.0])
    rows = []
    for mname, (model, _) in models.items():
        for pname, family, p in parts:
            b = ent.mincut_bound(model, p)
            s_net = ent.schmidt_values(model, p, normalize=True).detach().cpu().double().numpy()
            net_default = ent.cut_rank(model, p)
            sep = ent.separation_rank(model, p, templates=templates)
            s_grid = sep.singular_values / np.linalg.norm(sep.singular_values)
            k = min(len(s_net), len(s_grid))
            net_common = int((s_net > CHECK_TOL * s_net[0]).sum())
            grid_common = sep.rank_at(CHECK_TOL)
            rows.append(
                {
                    "model": mname,
                    "partition": pname,
                    "family": family,
                    "sites": list(p.sites),
                    "bound_rank": int(b.rank_bound),
                    "network_rank": net_common,
                    "grid_rank": int(grid_common),
                    "tol": CHECK_TOL,
                    "network_rank_default_tol": int(net_default),
                    "grid_rank_default_tol": int(sep.rank),
                    "grid_default_tol": float(sep.tol),
                    "max_abs_diff_normalized_spectrum": float(np.max(np.abs(s_net[:k] - s_grid[:k]))),
                    "smallest_normalized_value": float(s_grid[min(k, int(b.rank_bound)) - 1] / s_grid[0]),
                    "grid_matrix_shape": list(sep.matrix_shape),
                    "agree": net_common == int(grid_common),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------- experiment
@register_experiment(
    "pooling-geometry",
    "Cohen-Shashua pooling geometry on 8x8 inputs: min-cut bounds and measured ranks of contiguous vs interleaved "
    "deep ConvACs, the shallow ConvAC (CP), MPS and PEPS over coarse and fine partitions",
)
def run(cfg: RunConfig) -> ExperimentResult:
    from tnml.training import progress_bar

    s = SETTINGS[cfg.quick]
    torch.manual_seed(cfg.seed)
    t_start = time.perf_counter()
    models = _models(SIDE, s["convac_channels"], s["chain_bond"], cfg.device, s["extra_models"])
    named = named_partitions(SIDE)
    fam = family_partitions(SIDE)
    records: list[dict] = []
    bar = progress_bar(models.items(), desc="pooling-geometry", leave=False, dynamic_ncols=True)
    for mname, (model, _desc) in bar:
        bar.set_postfix_str(mname)
        t0 = time.perf_counter()
        # family partitions: bounds for all; instances measured for the first `family_measure` of each label
        seen: dict[str, int] = {}
        fam_measured: list[tuple[str, str, Partition]] = []
        fam_bound_only: list[tuple[str, str, Partition]] = []
        for label, family, p in fam:
            k = seen.get(label, 0)
            seen[label] = k + 1
            limit = s["family_measure"]
            (fam_measured if limit is None or k < limit else fam_bound_only).append((label, family, p))
        groups = [(named, s["max_chi"]), (fam_measured, s["max_chi"]), (fam_bound_only, 0)]
        for items, max_chi in groups:
            meas = _measure(model, [p for _, _, p in items], max_chi)
            for (label, family, p), rec in zip(items, meas):
                if max_chi == 0:
                    rec["status"] = "bound only (quick mode)"
                records.append(
                    {
                        "model": mname,
                        "partition": label,
                        "family": family,
                        "named": items is named,
                        "level": p.level,
                        "size": len(p),
                        "sites": list(p.sites),
                        **rec,
                    }
                )
        bar.set_postfix_str(f"{mname} {time.perf_counter() - t0:.1f}s")

    cross = _cross_check(cfg.seed, cfg.device, s["convac_channels"], s["chain_bond"], s["check_parts"])
    summary = _summaries(records, list(models))
    metrics = {
        "side": SIDE,
        "n_sites": SIDE * SIDE,
        "settings": {k: v for k, v in s.items()},
        "models": {k: {"description": d, "repr": repr(m)} for k, (m, d) in models.items()},
        "interleaved_tree": _listify(interleaved_window_tree(SIDE)),
        "partitions": {n: {"family": f, "sites": list(p.sites)} for n, f, p in named},
        "records": records,
        "family_summary": summary,
        "cross_check_4x4": cross,
        "seconds": time.perf_counter() - t_start,
    }
    plots = _plots(cfg, records, named, list(models), models)
    comparisons = _comparisons(records, summary, cross, s)
    return ExperimentResult(
        metrics,
        comparisons,
        plots,
        claims=_claims(summary),
        about="Pooling geometry decides which correlations a deep convolutional arithmetic circuit (a tree tensor "
        "network) can model: contiguous 2x2 pooling allows high separation rank across interleaved splits of an "
        "8x8 image and low rank between distant blocks, interleaved pooling the reverse (Cohen & Shashua, ICLR "
        "2017) — measured here as min-cut bounds and ranks of random instances.",
    )


def _claims(summary: dict) -> list[Claim]:
    """The two pooling claims: coarse splits cheaper than fine ones for contiguous pooling, the reverse for
    interleaved pooling (mean ln min-cut bound over the partitions of each family)."""
    out = []
    for m, cheap, dear, text in (
        ("ConvAC contiguous", COARSE, FINE, "contiguous pooling: coarse splits low, fine splits high"),
        ("ConvAC interleaved", FINE, COARSE, "interleaved pooling: the reverse"),
    ):
        lo, hi = summary[m][cheap]["mean_log_bound"], summary[m][dear]["mean_log_bound"]
        out.append(Claim(text, "reproduced" if lo < hi else "not reproduced", f"mean ln bound {lo:.2f} vs {hi:.2f}"))
    return out


def _listify(t):
    return t if isinstance(t, int) else [_listify(c) for c in t]


def _rec(records, model, partition):
    return next(r for r in records if r["model"] == model and r["partition"] == partition and r["named"])


def _summaries(records: list[dict], model_names: list[str]) -> dict:
    """Per model and family: mean / min / max ln bound over partitions with >= 2 sites, and how many of the
    measured instances reach their bound."""
    out: dict[str, dict] = {}
    for m in model_names:
        out[m] = {}
        for family in (COARSE, FINE):
            rows = [r for r in records if r["model"] == m and r["family"] == family and r["size"] >= 2]
            logs = [r["bound_log"] for r in rows]
            measured = [r for r in rows if r["status"] == "measured"]
            out[m][family] = {
                "n_partitions": len(rows),
                "mean_log_bound": float(np.mean(logs)),
                "min_log_bound": float(np.min(logs)),
                "max_log_bound": float(np.max(logs)),
                "n_measured": len(measured),
                "n_reached": sum(bool(r["reached"]) for r in measured),
                "n_too_large": sum(r["status"].startswith("too large") for r in rows),
            }
    return out


def _comparisons(records, summary, cross, s) -> list[Comparison]:
    R = s["convac_channels"]
    cont, intl, cp = "ConvAC contiguous", "ConvAC interleaved", "ConvAC shallow (CP)"
    out = []

    def bound(m, p):
        return round(_rec(records, m, p)["bound_log"], 4)

    for m, p, expect in (
        (cont, "quadrant", f"low: one pooling bond, ln R = {math.log(R):.3f}"),
        (cont, "checkerboard", "high: every 2x2 window is split, up to ln 2^32 = 22.18"),
        (intl, "quadrant", "high: every first-layer node pools one pixel of each quadrant"),
        (intl, "checkerboard", f"low: two parity cosets = two top bonds, ln R^2 = {2 * math.log(R):.3f}"),
    ):
        out.append(
            Comparison(
                f"ln min-cut bound, {m}, {p}",
                bound(m, p),
                None,
                f"Cohen-Shashua 2017 qualitative; expected {expect}",
            )
        )
    c_low = summary[cont][COARSE]["mean_log_bound"] < summary[cont][FINE]["mean_log_bound"]
    i_low = summary[intl][FINE]["mean_log_bound"] < summary[intl][COARSE]["mean_log_bound"]
    for m in (cont, intl, cp, "MPS", "PEPS"):
        sm = summary[m]
        out.append(
            Comparison(
                f"mean ln bound coarse / fine, {m}",
                f"{sm[COARSE]['mean_log_bound']:.2f} / {sm[FINE]['mean_log_bound']:.2f}",
                None,
                {
                    cont: "expected coarse < fine (contiguous pooling supports strong correlation between "
                    "neighbouring pixels, i.e. across interleaved splits, and weak correlation between distant "
                    "blocks); " + ("observed" if c_low else "NOT observed"),
                    intl: "expected the reverse of contiguous pooling: coarse > fine; "
                    + ("observed" if i_low else "NOT observed"),
                    cp: "expected flat: ln R on every split with >= 2 sites on each side (R <= 4)",
                    "MPS": "chain: bound grows with the number of row-major runs of a side",
                    "PEPS": "grid: bound grows with the boundary length of a side (area law)",
                }[m],
            )
        )
    cp_logs = {round(r["bound_log"], 9) for r in records if r["model"] == cp and r["size"] >= 2}
    out.append(
        Comparison(
            "CP: distinct ln bounds, splits of >= 2 sites",
            ", ".join(f"{v:.4f}" for v in sorted(cp_logs)),
            round(math.log(R), 4),
            f"expected ln R = {math.log(R):.4f} everywhere (the hyper-index is cut once); "
            + ("observed" if cp_logs == {round(math.log(R), 9)} else "NOT observed"),
        )
    )
    meas = [r for r in records if r["status"] == "measured"]
    reached = sum(bool(r["reached"]) for r in meas)
    short = sorted({f"{r['model']}/{r['partition']}" for r in meas if not r["reached"]})
    out.append(
        Comparison(
            "random instances reaching the min-cut bound",
            f"{reached}/{len(meas)}",
            None,
            "expected all on trees (TTN, MPS, CP); loops (PEPS) may fall short"
            + (f"; short: {', '.join(short[:6])}" if short else "; none fell short"),
        )
    )
    too = sum(r["status"].startswith("too large") for r in records)
    out.append(
        Comparison(
            "(model, partition) cases too large to measure",
            too,
            None,
            f"bound > max_chi = {s['max_chi']} (Gram matrices bound x bound) or MemoryLimitError; bounds still given",
        )
    )
    agree = sum(r["agree"] for r in cross)
    agree_default = sum(r["network_rank_default_tol"] == r["grid_rank_default_tol"] for r in cross)
    at_bound = sum(r["grid_rank"] == r["bound_rank"] for r in cross)
    diff = max(r["max_abs_diff_normalized_spectrum"] for r in cross)
    out.append(
        Comparison(
            "4x4: grid separation rank = network cut rank",
            f"{agree}/{len(cross)}",
            None,
            f"relative tolerance {CHECK_TOL:g}; expected all (templates {{0,1}} embed to the basis, so both see the "
            f"same spectrum; max spectrum "
            f"difference {diff:.1e}); at each route's default tolerance {agree_default}/{len(cross)} agree "
            f"(random chains/grids have Schmidt values below the Gram route's ~1e-6 resolution); grid rank = "
            f"min-cut bound in {at_bound}/{len(cross)}",
        )
    )
    for m, p in ((cont, "left half"), (intl, "checkerboard"), ("PEPS", "quadrant")):
        r = _rec(records, m, p)
        if r["status"] == "measured":
            out.append(
                Comparison(
                    f"entropy / ln bound, {m}, {p}",
                    f"{r['entropy']:.3f} / {r['bound_log']:.3f} (rank {r['rank']} of {r['bound_rank']})",
                    None,
                    "random instance, natural log; entropy <= ln rank <= ln bound",
                )
            )
    return out


# ---------------------------------------------------------------------------------------------- plots
def _plots(cfg: RunConfig, records, named, model_names, models) -> list[str]:
    plt = pyplot()
    files = []
    # 1. the named partitions on the grid
    fig, axes = plt.subplots(1, len(named), figsize=(1.4 * len(named), 1.9))
    for ax, (name, family, p) in zip(axes, named):
        img = np.zeros(SIDE * SIDE)
        img[list(p.sites)] = 1
        ax.imshow(img.reshape(SIDE, SIDE), cmap="Blues" if family == COARSE else "Oranges", vmin=0, vmax=1.3)
        ax.set_title(f"{name}\n({family})", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("side A of each named partition (8x8, row-major)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, cfg.out_dir / "partitions.png", dpi=110)
    plt.close(fig)
    files.append("partitions.png")

    # 2. heat map models x named partitions of the ln bound, annotated with log2 bound and the measured rank
    names = [n for n, _, _ in named]
    mat = np.array([[_rec(records, m, n)["bound_log"] for n in names] for m in model_names])
    fig, ax = plt.subplots(figsize=(1.0 * len(names) + 3, 0.6 * len(model_names) + 1.8))
    im = ax.imshow(mat, cmap="viridis", aspect="auto")
    for i, m in enumerate(model_names):
        for j, n in enumerate(names):
            r = _rec(records, m, n)
            txt = f"2^{math.log2(r['bound_rank']):.3g}"
            if r["status"] == "measured":
                txt += f"\nr={r['rank']}"
            elif r["status"].startswith("too large"):
                txt += "\n(too large)"
            ax.text(
                j, i, txt, ha="center", va="center", fontsize=6.5, color="w" if mat[i, j] < 0.6 * mat.max() else "k"
            )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n[{f}]" for n, f, _ in named], fontsize=7, rotation=30, ha="right")
    ax.set_yticks(range(len(model_names)))
    ax.set_yticklabels(model_names, fontsize=8)
    fig.colorbar(im, ax=ax, label="ln min-cut bound (nats)")
    ax.set_title("min-cut bound (2^k) and measured rank r of a random instance", fontsize=9)
    fig.tight_layout()
    save_figure(fig, cfg.out_dir / "bounds_heatmap.png", dpi=110)
    plt.close(fig)
    files.append("bounds_heatmap.png")

    # 3. bars: mean ln bound per partition family label per model
    labels = list(dict.fromkeys([r["partition"] for r in records if not r["named"]]))
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(model_names)
    for i, m in enumerate(model_names):
        vals = [
            np.mean([r["bound_log"] for r in records if r["model"] == m and r["partition"] == lab]) for lab in labels
        ]
        ax.bar(np.arange(len(labels)) + (i - (len(model_names) - 1) / 2) * width, vals, width, label=m)
    ax.set_xticks(range(len(labels)))
    fams = {r["partition"]: r["family"] for r in records if not r["named"]}
    ax.set_xticklabels([f"{lab}\n[{fams[lab]}]" for lab in labels], fontsize=8)
    ax.set_ylabel("mean ln min-cut bound (nats)")
    ax.set_title("pooling geometry: bound per partition family (8x8)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    save_figure(fig, cfg.out_dir / "family_bars.png", dpi=110)
    plt.close(fig)
    files.append("family_bars.png")

    # 4. the library's report plots of the two deep ConvACs over their own tree partitions (all tree edges)
    for key, fname in (
        ("ConvAC contiguous", "report_contiguous.png"),
        ("ConvAC interleaved", "report_interleaved.png"),
    ):
        model = models[key][0]
        rep = ent.entanglement_report(model, "tree", shape=(SIDE, SIDE))
        rep.plot(cfg.out_dir / fname, title=f"{key}: own tree partitions")
        files.append(fname)
    return files
