"""The `design` experiment end to end at a tiny size: its report (short cells, claims with verdicts, no internal
vocabulary) and that every fitted step sees the training split only."""

from __future__ import annotations

import numpy as np

import tnml.experiments.design as design
from tnml.experiments.registry import PROCESS_WORDS, RunConfig, cell_problems
from tnml.workflows import learn_mode_tree

TINY = design.Settings(planted_features=16, planted_samples=400, planted_seeds=(0,), dna_seeds=(0,), dna_bonds=(2,),
                       dna_epochs=1, digits_sizes=(8,), digits_seeds=(0,), digits_bonds=(2,), digits_epochs=1,
                       width_seeds=(0,), width_tasks=("digits-8",), uniform_bond=3, qe_tree=False)


def test_design_experiment_runs_and_reports(tmp_path, monkeypatch):
    seen = []

    def recording_learner(x, *args, **kwargs):
        seen.append(np.asarray(x).copy())
        return learn_mode_tree(x, *args, **kwargs)

    monkeypatch.setitem(design.SETTINGS, True, TINY)
    monkeypatch.setattr(design, "learn_mode_tree", recording_learner)
    res = design.run(RunConfig(out_dir=tmp_path, quick=True))
    assert cell_problems(res, "design") == []
    text = " ".join([c.note for c in res.comparisons] + res.notes + [res.about] + [c.text for c in res.claims])
    assert not [w for w in PROCESS_WORDS if w.lower() in text.lower()]
    assert {c.verdict for c in res.claims} <= {"reproduced", "reproduced with differences", "not reproduced"}
    assert (tmp_path / "trees.png").exists() and (tmp_path / "widths.png").exists()
    assert set(res.metrics["trees"]) == {"dna", "digits-8"}
    # the tree learners saw the permuted training splits only (DNA: 80 % of 3186 rows; digits: the train split)
    dna_train = design._task("dna", 0).x_train
    digits_train = design._task("digits-8", 0).x_train
    assert [len(x) for x in seen[1:3]] == [len(dna_train), len(digits_train)]
    assert np.array_equal(np.sort(seen[1], axis=1), np.sort(dna_train[:, :], axis=1))
