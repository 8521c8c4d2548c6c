"""A tiny experiment for the kill-and-resume test, run as ``python tests/_resume_script.py run toy-resume ...``.

Run as a script, it registers ``toy-resume`` (a small MPS behind input dropout, so the global torch RNG matters
too, trained with :func:`tnml.experiments.training.train_classifier` on 300 digits) and hands its arguments to
``tnml.cli.main``.
``TNML_TOY_SLEEP`` (seconds, default 0) pauses before every forward pass so that a test can kill it mid-epoch;
the pause does not touch any number.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

import torch
from torch import nn

from tnml.cli import main
from tnml.datasets import digits
from tnml.experiments.registry import Comparison, ExperimentResult, RunConfig, register_experiment
from tnml.experiments.training import train_classifier
from tnml.networks import MPS

EPOCHS = 6


def run(cfg: RunConfig) -> ExperimentResult:
    torch.set_num_threads(1)
    xtr, xte, ytr, yte = digits(seed=cfg.seed)
    xtr, ytr, xte, yte = xtr[:300], ytr[:300], xte[:100], yte[:100]
    torch.manual_seed(cfg.seed)
    model = nn.Sequential(nn.Dropout(0.1), MPS(64, 2, 3, out_dim=10))
    pause = float(os.environ.get("TNML_TOY_SLEEP", "0"))
    if pause:
        model.register_forward_pre_hook(lambda *_: time.sleep(pause))
    hist = train_classifier(
        model, xtr, ytr, xte, yte, epochs=EPOCHS, lr=1e-2, batch_size=25, seed=cfg.seed, desc="toy",
        checkpointer=cfg.checkpointer("toy"),
    )
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    after = torch.rand(3).tolist()  # the global RNG stream after training continues identically too
    metrics = {"history": hist, "param_sha256": digest, "rng_after": after}
    return ExperimentResult(metrics, [Comparison("toy final loss", hist["loss"][-1])])


if __name__ == "__main__":  # registered only here: importing this file (pytest's doctest collection) adds nothing
    register_experiment("toy-resume", "tiny MPS on 300 digits (tests only)")(run)
    raise SystemExit(main(sys.argv[1:]))
