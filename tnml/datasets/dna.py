"""Statlog DNA (splice-junction gene sequences), shipped with tnml as a small array file.

Loaded with numpy alone, no network: ``tnml/datasets/data/dna.npz`` (65 KB) was written once from mlbench's
``DNA.rda`` by ``scripts/convert_dna.py``.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np

__all__ = ["DNA_CLASSES", "DNA_SHA256", "load_dna"]

#: class names; class id ``k`` of :func:`load_dna` is ``DNA_CLASSES[k]``
DNA_CLASSES = ("ei", "ie", "n")
#: SHA-256 of the shipped ``dna.npz`` (``scripts/convert_dna.py`` reproduces it from ``DNA.rda``)
DNA_SHA256 = "d2253de05fc0001776df2b85726457fa426781d308533f1c44dc1a6ab6b5d8b5"
_FILE = "dna.npz"


def _data_file():
    return resources.files("tnml.datasets").joinpath("data", _FILE)


def load_dna(*, return_class_names: bool = False, verify: bool = False):
    """The Statlog DNA data set: 3 186 splice-junction sequences of 60 nucleotides, 3 classes.

    Each nucleotide is three binary indicators (A = 100, C = 010, G = 001, T = 000), so a sample is 180 binary
    features in sequence order: nucleotide ``i`` (0-based) occupies columns ``3i, 3i + 1, 3i + 2``. The task is
    to recognize the boundary in the middle of the window: ``ei`` (exon → intron, a donor site), ``ie``
    (intron → exon, an acceptor site) or ``n`` (neither). Class counts ei / ie / n = 767 / 765 / 1654.

    Parameters
    ----------
    return_class_names : bool, default False
        Also return the class names ``("ei", "ie", "n")``.
    verify : bool, default False
        Check the shipped file's SHA-256 against :data:`DNA_SHA256` first.

    Returns
    -------
    X : ndarray (3186, 180) uint8
        0/1 indicators, sequence order (a new array on every call).
    y : ndarray (3186,) int64
        Class ids 0, 1, 2 (ei, ie, n), in the rows' original order (not shuffled: split with a seed yourself).
    class_names : tuple of str
        Only with ``return_class_names=True``.

    Notes
    -----
    **Provenance.** The data come from the UCI Machine Learning Repository, *Molecular Biology (Splice-junction
    Gene Sequences)* (donors G. Towell, M. Noordewier, J. Shavlik; sequences from GenBank 64.1), in the StatLog
    version prepared by Ross King (University of Strathclyde): the 60 symbolic nucleotides replaced by 3 indicator
    bits each, sample names and the few samples with ambiguous nucleotides removed. tnml's file was converted
    from ``DNA.rda`` of the R package *mlbench* 2.1-3 (F. Leisch, E. Dimitriadou), as packaged by Debian
    (``r-cran-mlbench`` 2.1-3-1), by ``scripts/convert_dna.py``; rows and columns are kept in mlbench's order.

    **Licence.** UCI lists the splice-junction data under the Creative Commons Attribution 4.0 licence (CC BY
    4.0); mlbench, which redistributes them, is GPL-2. Cite the data as below when you use them.

    References
    ----------
    Noordewier, Towell, Shavlik. *Training Knowledge-Based Neural Networks to Recognize Genes in DNA Sequences.*
    NIPS 1991. — Michie, Spiegelhalter, Taylor (eds.). *Machine Learning, Neural and Statistical
    Classification* (StatLog), 1994. — Dua, Graff. *UCI Machine Learning Repository*, University of California,
    Irvine. — Leisch, Dimitriadou. *mlbench: Machine Learning Benchmark Problems*, R package.

    Examples
    --------
    >>> X, y, names = load_dna(return_class_names=True)
    >>> X.shape, X.dtype, names
    ((3186, 180), dtype('uint8'), ('ei', 'ie', 'n'))
    >>> np.bincount(y).tolist()
    [767, 765, 1654]
    >>> int(X.reshape(-1, 60, 3).sum(-1).max())  # at most one indicator per nucleotide
    1
    """
    if not isinstance(return_class_names, bool) or not isinstance(verify, bool):
        raise TypeError(f"return_class_names and verify must be bools, got {return_class_names!r}, {verify!r}")
    path = _data_file()
    raw = path.read_bytes()
    if verify:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != DNA_SHA256:
            raise OSError(f"{path} has SHA-256 {digest}, expected {DNA_SHA256}; reinstall tnml or rerun "
                          "scripts/convert_dna.py")
    import io

    with np.load(io.BytesIO(raw), allow_pickle=False) as d:
        x = d["X"].astype(np.uint8, copy=True)
        y = d["y"].astype(np.int64)
        names = tuple(str(c) for c in d["classes"])
    if names != DNA_CLASSES:
        raise OSError(f"{path} lists classes {names}, expected {DNA_CLASSES}; reinstall tnml")
    return (x, y, names) if return_class_names else (x, y)
