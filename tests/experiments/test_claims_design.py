"""Claims of the `design` experiment at CI size, each with a mutation check: the same statistic with the mechanism
switched off (a random tree for the learned one; the widths handed out against the measured entanglement) must
NOT pass.

Not asserted here: "the learned tree recovers >= 80 % of a permutation's cost on DNA". At one seed (width 3,
8 epochs) it held (recovery 1.1), but a random balanced tree recovered 0.95 as well, so at CI size the statistic
does not separate the mechanism from chance; the experiment reports it over seeds instead."""

from __future__ import annotations

import numpy as np
import pytest

import tnml.experiments.design as design
from tnml.experiments.design import SETTINGS, compare_widths, planted_recovery
from tnml.mode_trees import contiguous_tree

S = SETTINGS[True]


def _random_tree_learner(x, *args, random_state=None, **kwargs):
    """A balanced tree over the features in a random order: the learner with the data switched off."""
    n = np.asarray(x).shape[1]
    labels = np.random.default_rng(1000 + (random_state or 0)).permutation(n)
    return design._relabel(contiguous_tree(n), labels)


@pytest.mark.parametrize("seed", [0, 1])
def test_claim_design_planted_pairs_become_siblings(seed):
    r = planted_recovery(32, 2000, seed)
    assert r["min_pair_corr"] >= 0.9 and r["max_other_corr"] <= 0.1  # the planted structure is there
    assert r["learned"] == 1.0


def test_claim_design_planted_pairs_mutation_random_tree(monkeypatch):
    monkeypatch.setattr(design, "learn_mode_tree", _random_tree_learner)
    r = planted_recovery(32, 2000, 0)
    assert r["learned"] < 0.5


def test_learned_tree_is_the_rearrangements_tree_relabelled():
    """With the surrogate score the learned tree on the permuted data equals the canonical tree read through P5's
    rearrangement of the same data (same partitioner, same seed): moving the network = moving the data."""
    from tnml.experiments.data_suitability import build_orders
    from tnml.workflows import learn_mode_tree

    for name in ("dna", "digits-8"):
        task = design._task(name, 0)
        orders, _ = build_orders(task.x_train, dims=task.dims, shape=task.shape, seed=0,
                                 orders=("original", "random", "rearranged"))
        kw = {"dims": 2, "shape": task.shape} if task.dims == 2 else {}
        learned = learn_mode_tree(task.x_train[:, orders["random"]], random_state=0, **kw)
        assert design._relabel(learned, orders["random"]) == design._relabel(design.fixed_tree(task),
                                                                              orders["rearranged"])


@pytest.fixture(scope="module")
def digits_widths():
    return compare_widths("digits-8", (0,), S.digits_epochs, S, methods=("uniform", "auto", "inverted"))


def test_claim_design_auto_widths_match_uniform_at_half_the_parameters(digits_widths):
    r = digits_widths["runs"][0]
    assert r["auto"]["params"] <= 0.5 * r["uniform"]["params"]
    assert r["auto"]["test_acc"] >= r["uniform"]["test_acc"] - 0.005


def test_claim_design_widths_mutation_inverted_allocation(digits_widths):
    """The same widths and budget, handed out against the measured QE: not within 0.5 points."""
    r = digits_widths["runs"][0]
    assert r["inverted"]["params"] <= 0.52 * r["uniform"]["params"]
    assert r["inverted"]["test_acc"] < r["uniform"]["test_acc"] - 0.005
