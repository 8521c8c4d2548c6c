"""The shipped Statlog DNA file: contents, integrity, and reproduction by scripts/convert_dna.py."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from tnml.datasets import DNA_CLASSES, load_dna
from tnml.datasets.dna import DNA_SHA256, _data_file

ROOT = Path(__file__).resolve().parents[2]
#: where DNA.rda is looked for: $TNML_DNA_RDA, else Debian's r-cran-mlbench install path
RDA_CANDIDATES = [Path(p) for p in (os.environ.get("TNML_DNA_RDA", ""),
                                    "/usr/lib/R/site-library/mlbench/data/DNA.rda") if p]


def test_shape_dtype_and_class_counts():
    X, y, names = load_dna(return_class_names=True)
    assert X.shape == (3186, 180) and X.dtype == np.uint8
    assert y.shape == (3186,) and y.dtype == np.int64
    assert names == DNA_CLASSES == ("ei", "ie", "n")
    assert np.bincount(y).tolist() == [767, 765, 1654]
    assert set(np.unique(X).tolist()) == {0, 1}


def test_nucleotide_encoding():
    """Each of the 60 positions is one of A = 100, C = 010, G = 001, T = 000; all four occur."""
    X, _ = load_dna()
    triples = X.reshape(-1, 60, 3)
    assert triples.sum(-1).max() == 1
    codes = {tuple(t) for t in triples.reshape(-1, 3).tolist()}
    assert codes == {(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0)}


def test_splice_consensus_is_visible():
    """Sanity check on the biology (and on column order): donor sites (ei) have the intron's GT right after the
    window's midpoint (positions 30, 31), acceptor sites (ie) end the intron with AG just before it (28, 29)."""
    X, y = load_dna()
    nuc = np.array(list("ACGT"))[np.where(X.reshape(-1, 60, 3).any(-1), X.reshape(-1, 60, 3).argmax(-1), 3)]
    ei, ie = nuc[y == 0], nuc[y == 1]
    assert np.mean((ei[:, 30] == "G") & (ei[:, 31] == "T")) > 0.95
    assert np.mean((ie[:, 28] == "A") & (ie[:, 29] == "G")) > 0.95


def test_returns_fresh_arrays_and_verifies_hash():
    X1, y1 = load_dna(verify=True)
    X1[:] = 7
    X2, y2 = load_dna()
    assert X2.max() == 1
    assert hashlib.sha256(_data_file().read_bytes()).hexdigest() == DNA_SHA256


def test_bad_arguments():
    with pytest.raises(TypeError, match="return_class_names"):
        load_dna(return_class_names="yes")


def _rda() -> Path | None:
    return next((p for p in RDA_CANDIDATES if p.is_file()), None)


@pytest.mark.skipif(_rda() is None or importlib.util.find_spec("rdata") is None,
                    reason="needs DNA.rda (set TNML_DNA_RDA; see scripts/convert_dna.py) and the package rdata")
def test_conversion_script_reproduces_the_shipped_file(tmp_path):
    spec = importlib.util.spec_from_file_location("convert_dna", ROOT / "scripts" / "convert_dna.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "dna.npz"
    digest = mod.convert(_rda(), out)
    with np.load(out) as d:
        X, y = load_dna()
        np.testing.assert_array_equal(d["X"], X)
        np.testing.assert_array_equal(d["y"], y)
    assert digest == DNA_SHA256
