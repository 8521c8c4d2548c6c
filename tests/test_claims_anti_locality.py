"""Claims of the experiment ``anti-locality`` (P3: Razin, Maman, Cohen, ICML 2022), CI-sized, fixed seeds.

Each claim test fails if its measured effect vanishes, and each has a mutation check: the same statistic computed
with the mechanism switched off (monkeypatched) must not pass. Measured numbers behind the thresholds:
``docs/science/anti-locality-evidence.md``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tnml.experiments.anti_locality as al

#: CI size of the λ = 0 distance runs: seeds, training pairs, epochs, test pairs
CI_SEEDS, CI_TRAIN, CI_EPOCHS, CI_TEST = (0, 1, 2), 1000, 10, 500
CI_WIDTH = 4


@pytest.fixture(scope="module")
def digit_data():
    from tnml.datasets import digits

    xtr, xte, ytr, yte = digits(seed=0)
    xtr, xte = al.standardize(xtr, xte)
    return xtr, ytr, xte, yte


def _pairs(data, gap, seed, n_train=CI_TRAIN, n_test=CI_TEST):
    xtr, ytr, xte, yte = data
    gen = torch.Generator().manual_seed(10_000 * gap + seed)
    return (*al.same_class_pairs(xtr, ytr, n_train, gap, gen, al.CANVAS),
            *al.same_class_pairs(xte, yte, n_test, gap, gen, al.CANVAS))  # fmt: skip


def _lambda0_accuracy(data, gap: int, monkeypatch) -> list[float]:
    torch.set_num_threads(1)
    monkeypatch.setattr(al, "WIDTH", CI_WIDTH)
    return [al.train_one(_pairs(data, gap, s), gap, 0.0, epochs=CI_EPOCHS, seed=s)["test_acc"] for s in CI_SEEDS]


@pytest.fixture(scope="module")
def near_accuracy(digit_data):
    with pytest.MonkeyPatch.context() as mp:
        return _lambda0_accuracy(digit_data, 0, mp)


def _far_gap() -> int:
    return max(al.SETTINGS[True][0])


def test_claim_anti_locality_distance_hurts_at_lambda0(digit_data, near_accuracy, monkeypatch):
    """The precondition of P3's experiment: without the regularizer, accuracy at the largest gap is at least
    :data:`~tnml.experiments.anti_locality.PRECONDITION_DROP` below gap 0 (mean over 3 seeds) although the model's
    middle output unit sees every column of the canvas."""
    far = _far_gap()
    support = al.unit_column_support(al.residual_cnn(CI_WIDTH, al.DOWNSAMPLES))
    assert (0, al.CANVAS - 1) in support  # the receptive field covers the whole canvas
    far_acc = _lambda0_accuracy(digit_data, far, monkeypatch)
    drop = np.mean(near_accuracy) - np.mean(far_acc)
    assert np.mean(near_accuracy) > 0.75, near_accuracy  # gap 0 is learned
    assert drop >= al.PRECONDITION_DROP, (near_accuracy, far_acc)


def test_claim_anti_locality_distance_hurts_mutation_gap_zero(digit_data, near_accuracy, monkeypatch):
    """Mutation: every pair placed at distance 0 (the gap ignored when the canvas is built): the same statistic
    must not reach the precondition's drop."""
    real = al.place_pair
    monkeypatch.setattr(al, "place_pair", lambda first, second, gap, width=None: real(first, second, 0, width))
    far = _far_gap()
    far_acc = _lambda0_accuracy(digit_data, far, monkeypatch)
    assert np.mean(near_accuracy) - np.mean(far_acc) < al.PRECONDITION_DROP, (near_accuracy, far_acc)
