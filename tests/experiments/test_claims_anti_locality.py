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

#: the λ = 0 distance runs of the claims: the quick version's seeds, pairs and epochs (so ``tnml run anti-locality
#: --quick`` reports the same numbers)
CI_SEEDS = (0, 1, 2)
CI_TRAIN, CI_EPOCHS, CI_TEST = al.SETTINGS[True][2], al.SETTINGS[True][3], al.N_TEST


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


def _lambda0_accuracy(data, gap: int) -> list[float]:
    torch.set_num_threads(1)
    return [al.train_one(_pairs(data, gap, s), gap, 0.0, epochs=CI_EPOCHS, seed=s)["test_acc"] for s in CI_SEEDS]


@pytest.fixture(scope="module")
def near_accuracy(digit_data):
    return _lambda0_accuracy(digit_data, 0)


def _far_gap() -> int:
    return max(al.SETTINGS[True][0])


def test_claim_anti_locality_distance_hurts_at_lambda0(digit_data, near_accuracy):
    """The precondition of P3's experiment: without the regularizer, accuracy at the largest gap is at least
    :data:`~tnml.experiments.anti_locality.PRECONDITION_DROP` below gap 0 (mean over 3 seeds) although the model's
    middle output unit sees every column of the canvas."""
    far = _far_gap()
    support = al.unit_column_support(al.residual_cnn(al.WIDTH, al.DOWNSAMPLES))
    assert (0, al.CANVAS - 1) in support  # the receptive field covers the whole canvas
    far_acc = _lambda0_accuracy(digit_data, far)
    drop = np.mean(near_accuracy) - np.mean(far_acc)
    assert np.mean(near_accuracy) > 0.7, near_accuracy  # gap 0 is learned
    assert drop >= al.PRECONDITION_DROP, (near_accuracy, far_acc)


def test_claim_anti_locality_distance_hurts_mutation_gap_zero(digit_data, near_accuracy, monkeypatch):
    """Mutation: every pair placed at distance 0 (the gap ignored when the canvas is built): the same statistic
    must not reach the precondition's drop."""
    real = al.place_pair
    monkeypatch.setattr(al, "place_pair", lambda first, second, gap, width=None: real(first, second, 0, width))
    far = _far_gap()
    far_acc = _lambda0_accuracy(digit_data, far)
    assert np.mean(near_accuracy) - np.mean(far_acc) < al.PRECONDITION_DROP, (near_accuracy, far_acc)


def _init_ratio(data, gap: int) -> float:
    """Mean over 3 seeds of |∇R| / |∇BCE| (parameter gradients) of the untrained model on 64 training pairs."""
    torch.set_num_threads(1)
    ratios = []
    for s in CI_SEEDS:
        x, y = _pairs(data, gap, s, n_train=al.BATCH, n_test=2)[:2]
        torch.manual_seed(s)
        ratios.append(al.gradient_ratio(al.residual_cnn(al.WIDTH, al.DOWNSAMPLES), x, y, gap)["ratio"])
    return float(np.mean(ratios))


def test_claim_anti_locality_r_gradient_vanishes_with_distance(digit_data):
    """Why the regularizer has little to act on at the largest gap: at initialization R's parameter gradient is
    larger than BCE's at gap 0 but more than 10 times smaller at the largest gap (R ≈ 1 there: the digits meet only
    at the edges of the last stage's receptive fields)."""
    near, far = _init_ratio(digit_data, 0), _init_ratio(digit_data, _far_gap())
    assert near > 1 and far < 0.1 * near and far < 0.1, (near, far)


def test_claim_anti_locality_r_gradient_mutation_gap_zero(digit_data, monkeypatch):
    """Mutation: every pair placed at distance 0, the regularizer's patches on the two digits there: the far
    statistic must then not be small."""
    real_pair, real_patches = al.place_pair, al.digit_patches
    monkeypatch.setattr(al, "place_pair", lambda first, second, gap, width=None: real_pair(first, second, 0, width))
    monkeypatch.setattr(al, "digit_patches", lambda gap: real_patches(0))
    assert _init_ratio(digit_data, _far_gap()) >= 0.1
