"""Report of the ``data-suitability`` experiment (:mod:`tnml.experiments.data_suitability`): its table rows,
claims with verdicts, notes and plots, built from the metrics the run measured."""

from __future__ import annotations

import numpy as np

from tnml.experiments._common import pyplot
from tnml.experiments._data_suitability_settings import ORDER_LABEL, ORDERS, TTN_THETA
from tnml.experiments.registry import Claim, Comparison
from tnml.io import save_figure


def _fmt(o: dict, key: str) -> str:
    return " / ".join(f"{100 * o[k][key + '_mean']:.1f} ± {100 * o[k][key + '_std']:.1f}" for k in ORDERS)


def _means(o: dict, key: str) -> str:
    """Table cell: the four orders' means in %, original / random / rearranged / IGTD."""
    return " / ".join(f"{100 * o[k][key + '_mean']:.1f}" for k in ORDERS)


def _stalls(o: dict) -> str:
    """Note on stalled TTN runs (see :func:`~tnml.experiments.data_suitability.stall_threshold`) with the mean over
    the other runs."""
    if not any(o[k]["ttn_stalled"] for k in ORDERS):
        return "no TTN run stalled; "
    per = " / ".join(str(o[k]["ttn_stalled"]) for k in ORDERS)
    rest = " / ".join(f"{100 * o[k]['ttn_acc_mean_not_stalled']:.1f}" for k in ORDERS)
    return (f"stalled TTN runs (train acc below halfway from chance to 1) per order: {per}; mean test acc over the "
            f"other runs: {rest} (nan: all stalled); ")


def _task_comparisons(metrics: dict, swap: dict) -> list[Comparison]:
    """The rows of the secondary tasks (every task but DNA: accuracy per model, QE, whole-data QE) and of the
    feature-swap curve."""
    comparisons: list[Comparison] = []
    for name, r in metrics["tasks"].items():
        o = r["orders"]
        n_seeds = len(r["seeds"])
        if name == "dna":
            continue
        if name == "planted":
            comparisons.append(Comparison(
                f"planted pairs adjacent/same half % ({ORDER_LABEL})",
                " ; ".join(f"{100 * o[k]['pairs_adjacent']:.0f}/{100 * o[k]['pairs_same_half']:.0f}" for k in ORDERS),
                None, "Pairs (i, i+N/2) placed in one bottom block (adjacent) and in one half, in %. Designed: the "
                "original order has 0/0; rearrangement should find the pairs (by absolute Pearson correlation only)."))
            for model, key in (("CNN", "acc"), ("TTN", "ttn_acc")):
                if model == "TTN" and not r["ttn"]:
                    continue
                best = max(o[k][key + "_mean"] for k in ORDERS)
                chance = (" At chance in every order: this model did not learn the label in the epochs given, so "
                          "it says nothing about the order here (docs/science/p5-evidence.md: why the planted label "
                          "is hard to learn from min-max scaled inputs).")
                chance = chance if best < 0.6 else ""
                comparisons.append(Comparison(
                    f"planted {model} acc % ({ORDER_LABEL})", _means(o, key), None,
                    f"planted {model}, mean ± std over {n_seeds} seeds: {_fmt(o, key)}. "
                    + (_stalls(o) if model == "TTN" else "")
                    + f"From the random order (P5's start): random → rearranged "
                    f"{100 * o['random'][key + '_mean']:.1f} → {100 * o['rearranged'][key + '_mean']:.1f}, "
                    f"{_igtd_vs_rearranged(o, key)}; "
                    "the original order is the bad one here (pairs at distance N/2; the label is chance for any sum "
                    f"of single-feature functions): rearranged − original = "
                    f"{100 * (o['rearranged'][key + '_mean'] - o['original'][key + '_mean']):+.1f} points." + chance))
        else:
            for model, key, pre in (("CNN", "acc", ""), ("TTN", "ttn_acc", "ttn_")):
                if model == "TTN" and not r["ttn"]:
                    continue
                lost = r[pre + "accuracy_lost_by_permutation"]
                # below 2 points or 2 seed std: too small to judge (with one seed the std is 0)
                noise = max(0.02, 2 * max(o["original"][key + "_std"], o["random"][key + "_std"]))
                small = (" Negative result: the loss is below 2 points or within 2 seed std, too small to judge "
                         "restoration (unlike DNA, the headline rows); docs/science/p5-evidence.md discusses why."
                         if lost <= noise else "")
                comparisons.append(Comparison(
                    f"{name} {model} acc % ({ORDER_LABEL})", _means(o, key), None,
                    f"{name} {model}, mean ± std over {n_seeds} seeds: {_fmt(o, key)}. "
                    + (_stalls(o) if model == "TTN" else "")
                    + f"Accuracy lost by the permutation: {100 * lost:.1f} points; "
                    f"fraction restored by rearrangement: {r[pre + 'fraction_restored_rearranged']:.2f}, by IGTD: "
                    f"{r[pre + 'fraction_restored_igtd']:.2f} (NaN: nothing lost); {_igtd_vs_rearranged(o, key)}. "
                    "P5's numbers are for other data "
                    "sets (e.g. semeion CNN 77.73 → 79.93, dna 82.55 → 91.23): context only." + small))
        comparisons.append(Comparison(
            f"{name} mean canonical QE ({ORDER_LABEL})",
            " / ".join(f"{o[k]['qe_mean']:.3f}" for k in ORDERS), None,
            f"{name}: P5's claim is that rearrangement lowers the QE of randomly permuted data. Route: "
            f"{route_text(r['qe_routes']['p5_protocol'])}."))
        if "whole_data" in r["qe_routes"]:
            comparisons.append(_whole_comparison(r, name))
    rows = swap["rows"]
    k_max = rows[-1]["k"]
    comparisons.append(Comparison(
        f"swap curve ({swap['task']}): mean QE, k = 0 → {k_max} swaps",
        f"{rows[0]['qe_mean']:.3f} → {rows[-1]['qe_mean']:.3f}", "QE .31 → 1.0",
        "P5 Fig. 4 swaps k random pairs of features of the original order; its numbers are for another data set "
        "and normalization: the trend is what compares."
        + (f" Route: {route_text(swap['qe_route'])}." if swap.get("qe_route") else "")))
    comparisons.append(Comparison(
        f"swap curve ({swap['task']}): CNN acc %, k = 0 → {k_max} swaps",
        f"{100 * rows[0]['acc_mean']:.1f} → {100 * rows[-1]['acc_mean']:.1f}", "91.7 → 55"))
    return comparisons


def route_text(route: dict) -> str:
    """One route record (:func:`~tnml.experiments.data_suitability.qe_route`) in words."""
    m = route["n_samples"]
    if route["method"] == "sketch":
        return (f"streaming Nyström sketch of all {m} samples with {route['sketch_size']} landmarks (largest residual "
                f"{route['residual_max']:.3g}, 0 = exact; error estimate up to {route['error_estimate_max']:.3g} nats "
                "per partition)")
    if route["method"] == "exact":
        return f"exact, all {m} samples"
    b = route["tensor_samples"]
    return (f"{route['batches']} batch(es) of {b} of the {m} samples, averaged (P5's estimator; a batch's tensor: QE "
            f"at most ln {b} = {np.log(b):.2f})")


def routes_note(metrics: dict, swap: dict, window: dict | None, sweep: dict | None) -> str:
    """The summary note that states the route of every QE the run measured."""
    parts = []
    for name, r in metrics["tasks"].items():
        routes = r.get("qe_routes", {})
        text = "; ".join(f"{label} {route_text(routes[key])}" for key, label in
                         (("p5_protocol", "P5's protocol (θ = 0.085):"), ("ttn_inputs", "the TTN's inputs (θ = 0.5):"),
                          ("whole_data", "whole training split (method='auto' chose):")) if key in routes)
        parts.append(f"{name} — {text}")
    if swap.get("qe_route") is not None:
        parts.append(f"swap curve ({swap['task']}) — {route_text(swap['qe_route'])}")
    if window is not None:
        parts.append(f"DNA window — exact dense tensor of all {window.get('n_samples', 'training')} training samples")
    if sweep is not None:
        for name, t in sweep["tasks"].items():
            first = next(iter(t["orders"].values()))
            parts.append(f"TTN sweep ({name}) — one batch of {first['qe'][0]['n_samples']} training samples, "
                         "exact on them")
    return "QE routes of this run: " + "; ".join(parts) + "."


def _whole_comparison(r: dict, name: str) -> Comparison:
    """The row of the whole training split's QE of task ``name`` (its route and error estimate in the note)."""
    o, route = r["orders"], r["qe_routes"]["whole_data"]
    short = {"sketch": f"sketch k={route.get('sketch_size')}", "exact": "exact"}.get(route["method"], route["method"])
    levels = list(o["random"]["qe_whole_levels"])
    note = (f"{name}: QE of the tensor of all {route['n_samples']} training samples of seed {r['seeds'][0]} "
            "(z-scored, θ = 0.085, P5's levels), the route chosen by data_entanglement(method='auto'): "
            f"{route_text(route)}. Per level: "
            + "; ".join(f"{k} " + ", ".join(f"{o[k]['qe_whole_levels'][lv]:.2f}" for lv in levels) for k in ORDERS)
            + ".")
    if route["method"] == "sketch":
        est = route["error_estimate_levels"]
        diff = {lv: o["random"]["qe_whole_levels"][lv] - o["rearranged"]["qe_whole_levels"][lv] for lv in levels}
        beyond = [lv for lv in levels if abs(diff[lv]) > est[lv]]
        note += (" Error estimate per level (largest over partitions and orders): "
                 + ", ".join(f"{est[lv]:.3f}" for lv in levels) + " nats; random − rearranged per level: "
                 + ", ".join(f"{diff[lv]:+.3f}" for lv in levels) + f" — beyond the level's estimate at "
                 f"{len(beyond)} of {len(levels)} levels" + (f" ({', '.join(map(str, beyond))})" if beyond else "")
                 + ". These are sketch estimates, not exact values.")
    return Comparison(f"{name} whole-data QE, {short} ({ORDER_LABEL})",
                      " / ".join(f"{o[k]['qe_whole_mean']:.3f}" for k in ORDERS), None, note)


def _igtd_vs_rearranged(o: dict, key: str) -> str:
    d = o["igtd"][key + "_mean"] - o["rearranged"][key + "_mean"]
    noise = max(o["igtd"][key + "_std"], o["rearranged"][key + "_std"])
    verdict = "matches" if abs(d) <= noise else ("beats" if d > 0 else "falls behind")
    return f"IGTD {verdict} rearrangement ({100 * d:+.1f} points; seed std {100 * noise:.1f})"


def _dna_comparisons(metrics: dict, window: dict | None) -> list[Comparison]:
    """The headline rows: Statlog DNA, P5's dna row."""
    r = metrics["tasks"]["dna"]
    o = r["orders"]
    n_seeds = len(r["seeds"])
    lost, frac = r["accuracy_lost_by_permutation"], r["fraction_restored_rearranged"]
    cnn = r["cnn"]
    s = metrics["settings"]
    arch = (f"CNN1D channels {tuple(cnn['channels'])}, "
            + ("pools down to one position" if cnn["pools_to_one"] else "shallow: global mean over positions")
            + f"; Adam {s['dna_lr']:g}, {s['dna_epochs']} epochs, batch 64, 80/20 split, a new permutation per seed")
    out = [
        Comparison(
            "DNA CNN acc %, random → rearranged",
            f"{100 * o['random']['acc_mean']:.1f} ± {100 * o['random']['acc_std']:.1f} → "
            f"{100 * o['rearranged']['acc_mean']:.1f} ± {100 * o['rearranged']['acc_std']:.1f}",
            "82.55 → 91.23",
            f"Mean ± std over {n_seeds} seeds. {arch}. Original order {100 * o['original']['acc_mean']:.1f} ± "
            f"{100 * o['original']['acc_std']:.1f}; IGTD {100 * o['igtd']['acc_mean']:.1f} ± "
            f"{100 * o['igtd']['acc_std']:.1f} ({_igtd_vs_rearranged(o, 'acc')})."
            f" Permutation cost {100 * lost:.1f} points, rearrangement restored {100 * frac:.0f} % of it "
            f"(per seed: random {', '.join(f'{100 * a:.1f}' for a in o['random']['acc'])}; rearranged "
            f"{', '.join(f'{100 * a:.1f}' for a in o['rearranged']['acc'])}).", key=True),
        Comparison("DNA CNN acc %, original order",
                   f"{100 * o['original']['acc_mean']:.1f} ± {100 * o['original']['acc_std']:.1f}"),
        Comparison(
            f"DNA mean canonical QE, P5's protocol ({ORDER_LABEL})",
            " / ".join(f"{o[k]['qe_mean']:.3f}" for k in ORDERS), None,
            "P5's protocol: z-scored features, θ = 0.085, levels 1-4, on the first seed's training split. Per level: "
            + "; ".join(f"{k} " + ", ".join(f"{v:.2f}" for v in o[k]["qe_levels"].values()) for k in ORDERS)
            + f". Route: {route_text(r['qe_routes']['p5_protocol'])}."),
    ]
    if "whole_data" in r.get("qe_routes", {}):
        out.append(_whole_comparison(r, "DNA"))
    if r["ttn"]:
        out.append(Comparison(
            f"DNA TTN bond {s['ttn_bond']} acc % ({ORDER_LABEL})", _means(o, "ttn_acc"), None,
            f"Mean ± std over {n_seeds} seeds: {_fmt(o, 'ttn_acc')}. "
            + _stalls(o) + f"Bond {s['ttn_bond']}, {s['ttn_epochs']} epochs, lr {s['ttn_lr']:g}, inputs min-max to "
            f"[0, 1] (DNA bits unchanged), trig map θ = {TTN_THETA} (one-hot on 0/1). Chance (majority class n) "
            "is 51.9 %: a value near or below it means this TTN did not learn DNA in the epochs given, whatever the "
            "order."))
        out.append(Comparison(
            f"DNA QE of the TTN's inputs, θ = 0.5 ({ORDER_LABEL})",
            " / ".join(f"{o[k].get('qe_ttn_mean', float('nan')):.3f}" for k in ORDERS), None,
            "P5's theorem concerns the tensor a network fits, i.e. this one for the TTN (levels 1-4); the z-scored "
            "θ = 0.085 row is P5's measurement protocol (the one their plots use, and a proxy for the CNN). On "
            "binary DNA the θ = 0.5 map is one-hot, so the top levels saturate near ln(batch size)."))
    if window is not None:
        rows = window["rows"]
        big = max(window["ranks"])
        rand = [w for w in rows if w["order"].startswith("random")]
        get = {w["order"]: w for w in rows}
        note = (f"Exact dense data tensor of a {window['width']}-bit DNA window (bits {window['start']}-"
                f"{window['start'] + window['width'] - 1}), labels junction vs n, the TTN's map; error = relative "
                "error of the truncated hierarchical SVD (a width-R canonical tree); per order and R the "
                "necessary-side lower bound <= best <= HSVD error <= sufficient bound holds (window_fit.png); the "
                "sufficient bound is loose ("
                + ", ".join(f"R={rk}: {np.mean([w['fits'][rk]['sufficient_bound'] for w in rows]):.2f}"
                            for rk in window["ranks"]) + " on average).")
        out.append(Comparison(
            f"DNA {window['width']}-bit window: max QE (orig/rear/random)",
            f"{get['original']['max_qe']:.3f} / {get['rearranged']['max_qe']:.3f} / "
            f"{np.mean([w['max_qe'] for w in rand]):.3f}", None, note))
        out.append(Comparison(
            f"DNA {window['width']}-bit window: error at R = {big} (orig/rear/random)",
            f"{get['original']['fits'][big]['hsvd_error']:.3f} / {get['rearranged']['fits'][big]['hsvd_error']:.3f}"
            f" / {np.mean([w['fits'][big]['hsvd_error'] for w in rand]):.3f}"))
    return out


def _verdict(ok: bool, partly: bool = False) -> str:
    return "reproduced" if ok else ("reproduced with differences" if partly else "not reproduced")


def _claims(metrics: dict, swap: dict, window: dict | None, sweep: dict | None) -> list[Claim]:
    """The claims of P5 this run tested, each with the verdict its own numbers give."""
    claims = []
    if "dna" in metrics["tasks"]:
        r = metrics["tasks"]["dna"]
        o = r["orders"]
        lost, frac = r["accuracy_lost_by_permutation"], r["fraction_restored_rearranged"]
        claims.append(Claim("DNA: a random feature order costs the CNN >= 3 points", _verdict(lost >= 0.03),
                            f"{100 * lost:.1f} points lost"))
        claims.append(Claim("DNA: rearrangement restores >= 50 % of the CNN's loss", _verdict(frac >= 0.5),
                            f"{100 * frac:.0f} % restored (P5: 82.55 → 91.23)"))
        qe_r, qe_x = o["random"]["qe_mean"], o["rearranged"]["qe_mean"]
        claims.append(Claim("DNA: rearrangement lowers the canonical QE", _verdict(qe_x < qe_r),
                            f"mean QE {qe_r:.3f} → {qe_x:.3f}"))
    rows = swap["rows"]
    up, down = rows[-1]["qe_mean"] > rows[0]["qe_mean"], rows[-1]["acc_mean"] < rows[0]["acc_mean"]
    claims.append(Claim("Swapping features raises QE and lowers CNN accuracy", _verdict(up and down, up or down),
                        f"QE {rows[0]['qe_mean']:.2f} → {rows[-1]['qe_mean']:.2f}, acc "
                        f"{100 * rows[0]['acc_mean']:.0f} → {100 * rows[-1]['acc_mean']:.0f} %"))
    if window is not None:
        big = max(window["ranks"])
        get = {w["order"]: w for w in window["rows"]}
        rand = [w for w in window["rows"] if w["order"].startswith("random")]
        lower_qe = get["original"]["max_qe"] < np.mean([w["max_qe"] for w in rand])
        lower_err = get["original"]["fits"][big]["hsvd_error"] < np.mean([w["fits"][big]["hsvd_error"] for w in rand])
        claims.append(Claim("Exact DNA window: the lower-QE order fits with lower error",
                            _verdict(lower_qe and lower_err, lower_qe or lower_err),
                            f"original vs random orders at R = {big}"))
    if sweep is not None:
        signs = {name: t["correlation"].get("qe_vs_bond_strict", float("nan")) for name, t in sweep["tasks"].items()}
        pos = [n for n, v in signs.items() if v > 0]
        claims.append(Claim("TTN: lower QE, fitted at a smaller bond (Spearman > 0)",
                            _verdict(len(pos) == len(signs) and bool(signs), bool(pos)),
                            ", ".join(f"{n} {v:+.2f}" for n, v in signs.items())))
        gaps = {}
        for name, t in sweep["tasks"].items():
            o, bonds = t["orders"], t["bonds"]
            gaps[name] = max(o["rearranged"]["acc_mean"][i] - o["random"]["acc_mean"][i] for i in range(len(bonds)))
        wins = [n for n, g in gaps.items() if g >= 0.03]
        claims.append(Claim("TTN: rearrangement beats a random order at some small bond (>= 3 pts)",
                            _verdict(len(wins) == len(gaps) and bool(gaps), bool(wins)),
                            ", ".join(f"{n} {100 * g:+.1f} pts" for n, g in gaps.items())))
    return claims


def _plot_orders(tasks: dict, path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.6 * len(tasks), 6), squeeze=False)
    colors = ["tab:green", "tab:red", "tab:blue", "tab:orange"]
    x = np.arange(len(ORDERS))
    for j, (name, r) in enumerate(tasks.items()):
        o = r["orders"]
        ax = axes[0, j]
        width = 0.4 if r["ttn"] else 0.8
        ax.bar(x - (width / 2 if r["ttn"] else 0), [100 * o[k]["acc_mean"] for k in ORDERS], width,
               yerr=[100 * o[k]["acc_std"] for k in ORDERS], color=colors, capsize=3, label="CNN")
        lo = min(100 * o[k]["acc_mean"] for k in ORDERS)
        if r["ttn"]:
            ax.bar(x + width / 2, [100 * o[k]["ttn_acc_mean"] for k in ORDERS], width,
                   yerr=[100 * o[k]["ttn_acc_std"] for k in ORDERS], color=colors, capsize=3, hatch="//",
                   alpha=0.6, label="TTN (hatched)")
            lo = min(lo, *(100 * o[k]["ttn_acc_mean"] for k in ORDERS))
            ax.legend(fontsize=7)
        ax.set_xticks(x, ORDERS, rotation=20, fontsize=8)
        ax.set(title=name, ylabel="test accuracy %", ylim=(max(0.0, lo - 10), 100))
        ax = axes[1, j]
        for k, c in zip(ORDERS, colors):
            lv = o[k]["qe_levels"]
            ax.plot(list(lv), list(lv.values()), "o-", color=c, label=k)
            ax.set_xticks(list(lv))
        ax.set(xlabel="canonical level", ylabel="QE (nats)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _plot_swap(swap: dict, path) -> None:
    plt = pyplot()
    rows = swap["rows"]
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.errorbar(ks, [r["qe_mean"] for r in rows], yerr=[r["qe_std"] for r in rows], fmt="o-", color="tab:purple")
    ax.set(xlabel="swapped feature pairs k", ylabel="mean canonical QE", title=f"{swap['task']}: feature swaps")
    ax2 = ax.twinx()
    ax2.errorbar(ks, [100 * r["acc_mean"] for r in rows], yerr=[100 * r["acc_std"] for r in rows], fmt="s--",
                 color="tab:blue")
    ax2.set_ylabel("CNN test accuracy %", color="tab:blue")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
