"""W1e: one training epoch of the 784-pixel MPS classifier on the MNIST-shaped embedded workload — tnml vs
tensorkrowch, each with its own default initialization, in one process.

Run ``python -m benchmarks.mps_epoch [--quick] [--threads T]``.
Data: scikit-learn's digits upsampled to 28×28 (:func:`tnml.datasets.digits_upsampled`, 1 437 training images),
embedded by the polynomial map ``(1, x)`` in both libraries; batch 32, Adam lr 3e-4, cross-entropy — the settings
of ``tnml run digits-classifiers`` (model ``mps784``). An epoch is 45 train steps (forward with the embedding,
loss, backward, Adam step) in a fixed shuffled order; epochs of the implementations alternate, medians are
reported. Before timing, both models are checked to produce finite losses on the first batch.

* tnml: ``MPS(784, 2, 10, out_dim=10, feature_map="polynomial")`` — its default (identity, norm-neutral) init,
  nothing rescaled by hand.
* tensorkrowch: ``MPSLayer(n_features=785, in_dim=2, out_dim=10, bond_dim=10, init_method="randn_eye",
  std=1e-9)`` (the init its MNIST tutorials use), ``tk.embeddings.poly(x, degree=1)``, traced, in its fastest
  setting for this size in ``benchmarks/mps.py`` (``auto_stack=True, auto_unbind=False, inline_input=False,
  inline_mats=True``), and its defaults as a second row.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks import _common as C
from tnml.datasets import digits_upsampled
from tnml.networks import MPS

N_SITES, BOND, CLASSES, BATCH, LR = 784, 10, 10, 32, 3e-4


def make_epoch(model, forward, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor):
    """A callable running one epoch of Adam steps over ``x[order]`` in batches of :data:`BATCH`; returns the
    mean loss."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)

    def epoch() -> float:
        total = 0.0
        for i in range(0, len(order), BATCH):
            idx = order[i : i + BATCH]
            loss = F.cross_entropy(forward(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        return total / ((len(order) + BATCH - 1) // BATCH)

    return epoch


def build_tk(settings: dict | None):
    """tensorkrowch's MPSLayer with its MNIST-tutorial init; ``settings`` None = its defaults (untraced)."""
    import tensorkrowch as tk

    mps = tk.models.MPSLayer(
        n_features=N_SITES + 1, in_dim=2, out_dim=CLASSES, bond_dim=BOND, init_method="randn_eye", std=1e-9
    )
    if settings is None:
        return mps, lambda x: mps(tk.embeddings.poly(x, degree=1))
    mps.auto_stack, mps.auto_unbind = settings["auto_stack"], settings["auto_unbind"]
    kw = {"inline_input": settings["inline_input"], "inline_mats": settings["inline_mats"]}
    mps.trace(torch.zeros(1, N_SITES, 2), **kw)
    return mps, lambda x: mps(tk.embeddings.poly(x, degree=1), **kw)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one timed epoch each instead of three")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    C.setup_torch(args.threads, args.seed)
    xtr, _, ytr, _ = digits_upsampled(28, seed=args.seed)
    order = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(args.seed))
    torch.manual_seed(args.seed)
    tm = MPS(N_SITES, 2, BOND, out_dim=CLASSES, feature_map="polynomial")
    best = {"auto_stack": True, "auto_unbind": False, "inline_input": False, "inline_mats": True}
    impls = {"tnml (default init)": (tm, tm)}
    for label, settings in (("tensorkrowch best (traced)", best), ("tensorkrowch defaults", None)):
        mdl, fwd = build_tk(settings)
        impls[label] = (mdl, fwd)
    epochs = {}
    for label, (mdl, fwd) in impls.items():
        with torch.no_grad():
            first = F.cross_entropy(fwd(xtr[order[:BATCH]]), ytr[order[:BATCH]])
        if not torch.isfinite(first):
            print(f"{label}: first loss is {first.item()}; not timing")
            return 1
        epochs[label] = make_epoch(mdl, fwd, xtr, ytr, order)
    reps = 1 if args.quick else 3
    times: dict[str, list[float]] = {k: [] for k in epochs}
    losses: dict[str, list[float]] = {k: [] for k in epochs}
    for _ in range(reps):  # interleaved: one epoch of each implementation per round
        for label, epoch in epochs.items():
            t0 = time.perf_counter()
            losses[label].append(epoch())
            times[label].append(time.perf_counter() - t0)
    ref = statistics.median(times["tnml (default init)"])
    rows = []
    for label in epochs:
        med = statistics.median(times[label])
        rows.append([label, f"{med:.2f}", f"{med / ref:.2f}", " ".join(f"{v:.3f}" for v in losses[label])])
    C.print_table(
        ["implementation", "s / epoch (median)", "x tnml", "mean loss per epoch"],
        rows,
        title=f"784-pixel MPS, one epoch of {len(order)} digits 28x28, batch {BATCH}, {args.threads} thread(s), "
        f"{reps} epoch(s) each",
    )
    tk_best = statistics.median(times["tensorkrowch best (traced)"])
    print(f"tnml / tensorkrowch best = {ref / tk_best:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
