"""tnml.workflows: the suitability report lives above analysis and preprocessing; its old name in
tnml.entanglement is an alias that gives the same report and keeps preprocessing out of the analysis's imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import tnml.entanglement as ent
from tnml.workflows import suitability


def test_importing_the_analysis_imports_no_preprocessing_nor_workflow():
    code = (
        "import sys, tnml.entanglement, tnml.entanglement.suitability; "
        "bad = sorted(m for m in sys.modules if m.startswith(('tnml.preprocessing', 'tnml.workflows'))); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_alias_gives_the_workflows_report():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 8))
    y = (x[:, 0] * x[:, 7] > 0).astype(int)
    new = suitability(x, y, 2, theta=0.5, n_batches=1)
    old = ent.suitability(x, y, 2, theta=0.5, n_batches=1)
    assert isinstance(old, ent.SuitabilityResult)
    assert old.to_dicts() == new.to_dicts() and old.summary() == new.summary()
    assert old.verdict_rearranged == new.verdict_rearranged and np.array_equal(old.permutation, new.permutation)
