"""Run the speed benchmarks and generate the README's performance section from their results JSON.

    python scripts/perf_table.py                        # print the section from benchmarks/results/*.json
    python scripts/perf_table.py --run                  # run W1, W2, CP and the epoch benchmark first (1 thread)
    python scripts/perf_table.py --run --write-readme   # ... and replace the section between the README's markers

``--run`` runs, one after another in fresh processes: ``benchmarks.mps`` (W1, tensorkrowch's six usual settings:
the fastest differs between D = 10 and D = 32), ``benchmarks.ttn`` (W2), ``benchmarks.cp_onehot`` (CP one-hot gather)
and ``benchmarks.mps_epoch --max-steps 30`` (W1e, extrapolated from 30 steps per batch size); each writes its
``benchmarks/results/NAME.json``. Run it on a quiet machine: ratios come from one process each, absolute times drift
with load (the section prints the load average each run started with).

The test ``tests/project/test_perf_table.py`` checks that the README's section is the one generated from the stored
JSON, so after a new run: ``--write-readme`` and commit the README with the JSON files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
#: (module, arguments) run by ``--run``, in order
RUNS = (
    ("benchmarks.mps", []),
    ("benchmarks.ttn", []),
    ("benchmarks.cp_onehot", []),
    ("benchmarks.mps_epoch", ["--max-steps", "30"]),
)


def run_benchmarks(threads: int = 1) -> None:
    """Run every benchmark of :data:`RUNS` in a fresh process (stops at the first failure)."""
    for module, extra in RUNS:
        cmd = [sys.executable, "-m", module, "--threads", str(threads), *extra]
        t0 = time.perf_counter()
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


def _load(name: str, results: Path) -> dict | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _ms(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _ops(rec: dict, key: str) -> str:
    c = rec.get("aten_ops", {}).get(key)
    return "—" if c is None else f"{c['total']} ({c['compute']})"


def _env_line(name: str, rec: dict) -> str:
    env = rec.get("env") or rec.get("environment") or {}
    load = env.get("loadavg")
    load_s = "" if not load else f", load average {load[0]:.1f} at start"
    return (
        f"`{name}`: {rec.get('timestamp', '?')}, {env.get('cpu_count', '?')} CPUs, torch {env.get('torch', '?')}, "
        f"{env.get('torch_threads', '?')} thread(s){load_s}"
    )


def render(results: Path = RESULTS) -> str:
    """The README's performance section (between the markers) from the stored results JSON."""
    lines = [START, ""]
    mps, ttn, cp, epoch = (_load(n, results) for n in ("mps", "ttn", "cp_onehot", "mps_epoch"))
    rows = []
    for rec in (mps or {}).get("configs", []):
        c, st, r = rec["config"], rec["stats"], rec["ratios"]
        name = f"W1 MPS n={c['n']}, d={c['d']}, D={c['D']}, b={c['b']}"

        def other(route, rec=rec, st=st):
            ms = st.get(f"tnml {route}", {}).get("median_ms")
            return ("—" if ms is None else _ms(ms)) + " / " + _ops(rec, f"tnml {route}")

        rows.append([
            name, f"{_ms(st['tnml']['median_ms'])} ({rec.get('route', '?')})", _ms(st[rec["tk_best"]]["median_ms"]),
            f"{r['tnml/tk_best']:.2f}", f"{r['tnml/flop_limit']:.1f}", _ops(rec, "tnml"), other("sequential"),
            other("log-depth"),
        ])
    for rec in (ttn or {}).get("configs", []):
        c, st, r = rec["config"], rec["stats"], rec["ratios"]
        rows.append([
            f"W2 TTN {c['n']} leaves, bond {c['B']}, b={c['b']}", f"{_ms(st['tnml']['median_ms'])} (tree)",
            _ms(st[rec["tk_best"]]["median_ms"]), f"{r['tnml/tk_best']:.2f}", f"{r['tnml/flop_limit']:.1f}",
            _ops(rec, "tnml"), "—", "—",
        ])
    if rows:
        lines += [
            "| train step (forward + loss + backward + Adam) | tnml ms (route) | tensorkrowch best ms | tnml / tk | "
            "tnml / FLOP limit | tnml aten ops: all (not views) | sequential route: ms / aten ops | "
            "log-depth route: ms / aten ops |",
            "|---|---|---|---|---|---|---|---|",
            *("| " + " | ".join(row) + " |" for row in rows),
            "",
        ]
    if cp:
        parts = []
        for rec in cp["configs"]:
            c, st = rec["config"], rec["stats"]
            ops = "" if "aten_ops" not in rec else f" ({_ops(rec, 'tnml gather')} aten ops)"
            parts.append(
                f"{c['n_sites']} sites, rank {c['rank']}, batch {c['batch']}: "
                + " / ".join(_ms(st[k]["median_ms"]) for k in ("tnml gather", "tnml dense", "plain gather")) + ops
            )
        lines += ["CP one-hot train step, ms (tnml gather route / tnml dense route / a plain-torch gather): "
                  + "; ".join(parts) + ".", ""]
    if epoch:
        parts = []
        for b in sorted({r["batch"] for r in epoch["runs"]}):
            by = {r["impl"]: r for r in epoch["runs"] if r["batch"] == b}
            t, k = by.get("tnml"), by.get("tensorkrowch")
            if t is None or k is None:
                continue
            how = f" (extrapolated from {t['steps_timed']} steps)" if t["extrapolated"] else ""
            parts.append(
                f"batch {b}: tnml {t['samples_per_s']:.0f} samples/s, {t['epoch_s']:.0f} s per epoch{how}, peak memory "
                f"+{t['peak_rss_growth_mib']:.0f} MiB; tensorkrowch {k['samples_per_s']:.0f} samples/s, "
                f"+{k['peak_rss_growth_mib']:.0f} MiB"
            )
        n = epoch["runs"][0]["samples"] if epoch["runs"] else 0
        lines += [f"W1e, one epoch of {n} synthetic MNIST-shaped 784-pixel samples, each library at its default "
                  "init: " + "; ".join(parts) + ".", ""]
    lines.append("Runs: " + "; ".join(
        _env_line(n, rec) for n, rec in (("mps", mps), ("ttn", ttn), ("cp_onehot", cp), ("mps_epoch", epoch)) if rec
    ) + ".")
    lines += ["", END]
    return "\n".join(lines)


def readme_section(readme: Path = README) -> str | None:
    """The README's current section, markers included (None without markers)."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return None
    return text[text.index(START) : text.index(END) + len(END)]


def write_readme(section: str, readme: Path = README) -> None:
    """Replace the section between the markers of ``readme``."""
    text = readme.read_text(encoding="utf-8")
    old = readme_section(readme)
    if old is None:
        raise SystemExit(
            f"perf_table: {readme} has no {START} ... {END} markers; add them where the performance section goes"
        )
    readme.write_text(text.replace(old, section), encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="store_true", help="run the benchmarks first (minutes)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write-readme", action="store_true", help="replace the README's section")
    args = p.parse_args(argv)
    if args.run:
        run_benchmarks(args.threads)
    section = render()
    if args.write_readme:
        write_readme(section)
        print(f"wrote the performance section of {README}")
    else:
        print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
