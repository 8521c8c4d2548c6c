"""Bad input raises clear errors that name the parameter, the value and the fix."""

from __future__ import annotations

import pytest
import torch

import tnml
from tnml import TensorSpec, TNModel, TNStructure
from tnml.networks import CP, MPS, TTN


def test_wrong_input_shape():
    m = MPS(8, 2, 3, out_dim=2)
    with pytest.raises(ValueError, match=r"x has shape \(4, 7\); this model expects \(batch, 8\) raw"):
        m(torch.rand(4, 7))
    with pytest.raises(ValueError, match=r"\(batch, 8, 2\) embedded"):
        m(torch.rand(4, 8, 3))


def test_non_finite_input():
    m = MPS(4, 2, 3)
    x = torch.rand(2, 4)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \[1, 2\]\)"):
        m(x)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", True])
def test_bad_bond_dim(bad):
    with pytest.raises(ValueError, match=rf"bond_dim must be an integer >= 1, got {bad!r}"):
        MPS(4, 2, bad)


def test_bad_ttn_bond_list_and_tree():
    with pytest.raises(ValueError, match="bond_dim has 1 entries but the tree has 2 levels"):
        TTN(n_sites=8, bond_dim=[3])
    with pytest.raises(ValueError, match=r"each exactly once.*repeated \[1\]"):
        TTN(tree=((0, 1), (1, 2)))
    with pytest.raises(ValueError, match="exactly one of n_sites"):
        TTN(n_sites=4, shape=(2, 2))


def test_unknown_feature_map():
    with pytest.raises(ValueError, match=r"feature_map='fourier' is unknown; choose one of \['identity', 'linear'"):
        MPS(4, 2, 3, feature_map="fourier")


def test_feature_map_dim_mismatch():
    with pytest.raises(ValueError, match="gives vectors of dim 2 but phys_dim is 3"):
        MPS(4, 3, 2, feature_map="trig")


def test_onehot_out_of_range():
    m = CP(3, 2, 2, feature_map="onehot")
    with pytest.raises(ValueError, match=r"onehot\(k=2\) needs integer values in \[0, 1\]"):
        m(torch.tensor([[0.0, 1.0, 2.0]]))


def test_output_site_out_of_range():
    with pytest.raises(ValueError, match=r"output_site must be an integer in \[0, 3\], got 4"):
        MPS(4, 2, 2, out_dim=2, output_site=4)


def test_to_dense_memory_guard():
    m = MPS(40, 2, 2)
    with pytest.raises(tnml.MemoryLimitError, match=r"the dense tensor needs 4 TiB .* pass max_bytes"):
        m.to_dense()
    small = MPS(10, 2, 2, dtype=torch.float64)
    with pytest.raises(tnml.MemoryLimitError, match="limit is 100 B"):
        small.to_dense(max_bytes=100)
    assert small.to_dense(max_bytes=10_000).shape == (2,) * 10


def test_structure_validation():
    with pytest.raises(ValueError, match="index 'b' has size 2 in one tensor and 3"):
        TNStructure.from_arrays([("a", ["x0", "b"], [2, 2]), ("c", ["b", "x1"], [3, 2])], ["x0", "x1"])
    with pytest.raises(ValueError, match=r"indices \['z'\] are open but neither inputs nor the output"):
        TNStructure.from_arrays([("a", ["x0", "z"], [2, 2])], ["x0"])
    with pytest.raises(ValueError, match="tensor names must be unique"):
        TNStructure.from_arrays([("a", ["x0", "b"], [2, 2]), ("a", ["b", "x1"], [2, 2])], ["x0", "x1"])
    with pytest.raises(ValueError, match="repeated index"):
        TensorSpec("a", ("i", "i"), (2, 2))
    with pytest.raises(ValueError, match="open index 'y' is not an index of any tensor"):
        TNStructure.from_arrays([("a", ["x0"], [2])], ["x0"], "y")


def test_mixed_phys_dims_rejected():
    s = TNStructure.from_arrays([("a", ["x0", "b"], [2, 2]), ("c", ["b", "x1"], [2, 3])], ["x0", "x1"])
    with pytest.raises(ValueError, match=r"input indices have different sizes \[2, 3\]"):
        TNModel(s)


def test_from_quimb_bad_index():
    m = MPS(3, 2, 2)
    with pytest.raises(ValueError, match=r"input_inds \['q0'\] are not indices"):
        TNModel.from_quimb(m.to_quimb(), ["q0", "x1", "x2"])
    with pytest.raises(TypeError, match="tn must be a quimb.tensor.TensorNetwork"):
        TNModel.from_quimb({"a": 1}, ["x0"])


def test_unknown_plan_kind():
    with pytest.raises(ValueError, match=r"plan='fast' is unknown"):
        MPS(3, 2, 2, plan="fast")
