"""Embedded data sets and loaders for real files."""

from tnml.datasets.dna import DNA_CLASSES, load_dna
from tnml.datasets.embedded import digits, digits_upsampled
from tnml.datasets.graph_io import load_edge_list, load_npz_graph
from tnml.datasets.idx_io import load_idx, write_idx
from tnml.datasets.synthetic import planted_pairs
from tnml.datasets.tabular_io import load_csv, read_csv_table

__all__ = [
    "DNA_CLASSES",
    "digits",
    "digits_upsampled",
    "load_csv",
    "load_dna",
    "load_edge_list",
    "load_idx",
    "load_npz_graph",
    "planted_pairs",
    "read_csv_table",
    "write_idx",
]
