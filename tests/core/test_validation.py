"""tnml.validation: one integer check with one message form, used by every layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tnml.baselines import GCN
from tnml.datasets.graphs import contextual_sbm
from tnml.entanglement import data_entanglement, separation_rank, walk_index
from tnml.feature_maps import OneHotMap, PolynomialMap
from tnml.networks import MPS
from tnml.preprocessing import walk_index_sparsification
from tnml.training import fit
from tnml.validation import ArgumentTypeError, as_int, optional_positive_int, positive_int


def test_as_int_accepts_every_integer_kind_and_refuses_bools():
    assert as_int("n", 3) == 3
    assert as_int("n", np.int64(3)) == 3
    assert as_int("n", torch.tensor(3)) == 3
    assert isinstance(as_int("n", np.int32(3)), int)
    for bad in (True, 3.0, "3", torch.tensor([3]), torch.tensor(3.0), None):
        with pytest.raises(ArgumentTypeError, match="n must be an integer, got"):
            as_int("n", bad)


def test_argument_type_error_is_both_a_type_and_a_value_error():
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)
    with pytest.raises(TypeError):
        positive_int("rank", 2.5)
    with pytest.raises(ValueError):
        positive_int("rank", 2.5)


def test_one_message_form():
    with pytest.raises(ValueError, match=r"^bond must be an integer >= 1, got 0$"):
        positive_int("bond", 0)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 2, got 1; two sides$"):
        positive_int("n", 1, 2, fix="two sides")
    with pytest.raises(ValueError, match=r"^site must be an integer in \[0, 3\], got 4$"):
        as_int("site", 4, 0, 3)
    with pytest.raises(ValueError, match=r"^k must be an integer <= 3, got 4$"):
        as_int("k", 4, maximum=3)
    with pytest.raises(ArgumentTypeError, match=r"^rank must be an integer >= 1, got 2.5 \(a float\)$"):
        positive_int("rank", 2.5)
    assert optional_positive_int("out_dim", None) is None
    assert optional_positive_int("out_dim", np.int64(2)) == 2


_F = lambda x: x[:, 0] * x[:, 1]  # noqa: E731
_G = [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda v: MPS(4, 2, v), "bond_dim"),
        (lambda v: separation_rank(_F, [0], n_sites=2, n_templates=v), "n_templates"),
        (lambda v: data_entanglement(np.zeros((4, 4)), np.array([0, 1, 0, 1]), batch_size=v), "batch_size"),
        (lambda v: GCN(v, 4, 2), "in_dim"),
        (lambda v: fit(nn.Linear(2, 1), None, lambda k: None, epochs=2, save_unit=v), "save_unit"),
        (lambda v: OneHotMap(v), "k"),
        (lambda v: PolynomialMap(v), "degree"),
        (lambda v: walk_index(_G, {0}, v), "depth"),
        (lambda v: walk_index_sparsification(_G, 1, depth=v), "depth"),
        (lambda v: contextual_sbm(20, 2, 0.5, 0.1, feature_dim=v), "feature_dim"),
    ],
)
def test_every_layer_refuses_a_bad_count_the_same_way(call, name):
    """Models, analysis, data, actions and the training loop: the same types accepted, the same message."""
    with pytest.raises(ValueError, match=rf"^{name} must be an integer >= \d+, got -1"):
        call(-1)
    with pytest.raises(ArgumentTypeError, match=rf"^{name} must be an integer >= \d+, got 2.5 \(a float\)"):
        call(2.5)


# ---------------------------------------------------------------------------------------------- option strings
def test_check_option_returns_the_value_or_names_parameter_value_and_choices():
    from tnml.options import GNNOutput, NetworkInit
    from tnml.validation import check_option

    assert check_option("init", "normal", NetworkInit) == "normal"
    assert check_option("gain", None, ("qe", "surrogate", None)) is None
    assert check_option("output", None, GNNOutput | None) is None
    with pytest.raises(ValueError, match=r"^init='zeros' is unknown; choose one of \['identity', 'normal'\]$"):
        check_option("init", "zeros", NetworkInit)
    with pytest.raises(ValueError, match=r"^method='x' is unknown; choose one of \['a', 'b'\]; a or b, see docs$"):
        check_option("method", "x", ["a", "b"], fix="a or b, see docs")
    # values that compare equal to a choice without being one: a bool beside an int, an array, a list
    for bad in (True, np.array(["a", "b"]), ["a"], None):
        with pytest.raises(ValueError, match="is unknown; choose one of"):
            check_option("k", bad, ("a", 1))
    with pytest.raises(TypeError, match="Literal type or a collection"):
        check_option("k", "a", "abc")


def test_options_literals_are_the_runtime_choices():
    """One source for every option list: the Literal aliases are what the run-time checks accept."""
    from typing import get_args

    import tnml.options as opts
    from tnml.feature_maps import available_feature_maps
    from tnml.plans.compile import PLAN_KINDS
    from tnml.spectrum import ROUTES

    assert opts.choices(opts.PlanKind) == tuple(PLAN_KINDS)
    assert set(opts.choices(opts.BuiltinFeatureMap)) <= set(available_feature_maps())
    assert opts.choices(opts.SpectrumRoute) == ROUTES
    assert opts.choices(opts.NetworkInit) == ("identity", "normal")
    assert get_args(opts.FeatureMapLike)[0] is opts.BuiltinFeatureMap


@pytest.mark.parametrize(
    "call, name, value, first",
    [
        (lambda: MPS(4, init="zeros"), "init", "'zeros'", "'identity'"),
        (lambda: __import__("tnml.networks").networks.TTN(n_sites=4, init="zeros"), "init", "'zeros'", "'identity'"),
        (lambda: MPS(4, feature_map="fourier"), "feature_map", "'fourier'", "'identity'"),
        (lambda: __import__("tnml.networks").networks.ProductGNN([(0, 1)], 2, 2, 1, output="edge"), "output",
         "'edge'", "'graph'"),
        (lambda: __import__("tnml.networks").networks.ProductGNN([(0, 1)], 2, 2, 1, init="zeros"), "init",
         "'zeros'", "'normal'"),
        (lambda: __import__("tnml.spectrum").spectrum.default_rtol(3, torch.float64, "exact"), "route", "'exact'",
         "'svd'"),
    ],
)
def test_every_model_refuses_a_bad_option_the_same_way(call, name, value, first):
    with pytest.raises(ValueError, match=rf"^{name}={value} is unknown; choose one of \[{first}, "):
        call()
