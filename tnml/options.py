"""The string options of the public API as ``Literal`` types: one place for their names and values.

A signature annotated with one of these aliases tells a type checker (and a reader) which strings are accepted;
:func:`tnml.validation.check_option` checks the same alias at run time, so the static and the run-time lists
cannot drift apart::

    def f(init: NetworkInit = "identity") -> None:
        init = check_option("init", init, NetworkInit)

:func:`choices` gives the values of an alias as a tuple.

Examples
--------
>>> from tnml.options import NetworkInit, choices
>>> choices(NetworkInit)
('identity', 'normal')
"""

from __future__ import annotations

from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

if TYPE_CHECKING:  # this module imports nothing of tnml at run time, so that every layer can use it
    from tnml.feature_maps import FeatureMap

__all__ = [
    "AdjacencyLayout",
    "BisectBackend",
    "BuiltinFeatureMap",
    "ConstantColumns",
    "FeatureMapLike",
    "GNNInit",
    "GNNOutput",
    "IGTDDistance",
    "KarateFeatures",
    "LossReduction",
    "NamedPartitions",
    "NetworkInit",
    "OutputSide",
    "PartitionConvention",
    "PlanKind",
    "QEMethod",
    "QuimbInit",
    "RearrangeMethod",
    "SparsifyMethod",
    "SpectraMethod",
    "SpectrumRoute",
    "SuitabilityGain",
    "TieBreak",
    "TreeMethod",
    "choices",
]

#: ``plan=`` of every :class:`tnml.TNModel`: ``"auto"`` picks by geometry (the tree plan for loop-free networks,
#: the star plan for CP-like ones, the generic cotengra-path plan otherwise); ``"sequential"``, ``"log-depth"`` and
#: ``"blocked"`` force a chain's tree plan onto one route
PlanKind = Literal["auto", "tree", "star", "generic", "sequential", "log-depth", "blocked"]

#: ``init=`` of :class:`~tnml.networks.MPS` and :class:`~tnml.networks.TTN`: the norm-neutral identity
#: (pass-through) init, or i.i.d. normal cores
NetworkInit = Literal["identity", "normal"]

#: ``init=`` of :class:`~tnml.networks.ProductGNN`
GNNInit = Literal["normal", "orthogonal"]

#: ``output=`` of :class:`~tnml.networks.ProductGNN` and the walk-index bounds: graph or vertex prediction
GNNOutput = Literal["graph", "vertex"]

#: ``init=`` of :meth:`tnml.TNModel.from_quimb`: keep the network's values (None) or draw normal cores
QuimbInit = Literal["normal"]

#: the feature maps tnml registers itself (:func:`tnml.feature_maps.available_feature_maps` lists these and any
#: registered later with :func:`tnml.register_feature_map`)
BuiltinFeatureMap = Literal["trig", "polynomial", "onehot", "identity", "linear"]

#: ``feature_map=`` of the models: a registered name (built-in or user-registered, so any ``str`` at the type
#: level), a ``(name, kwargs)`` pair, or a :class:`~tnml.feature_maps.FeatureMap` instance
FeatureMapLike = Union[BuiltinFeatureMap, str, tuple[str, dict[str, Any]], "FeatureMap"]

#: ``method=`` of the Schmidt-spectrum functions of :mod:`tnml.entanglement`
SpectraMethod = Literal["auto", "tree", "factor", "gram"]

#: ``route=`` of :func:`tnml.spectrum.default_rtol`: how a spectrum was computed
SpectrumRoute = Literal["svd", "gram", "sampled"]

#: ``convention=`` of :func:`tnml.entanglement.canonical_partitions`: tnml's recursive halving, or the per-level
#: chunks of the code released with P5 (Alexander, De La Vega, Razin, Cohen, NeurIPS 2023)
PartitionConvention = Literal["tnml", "p5"]

#: ``output_side=`` of the min-cut bounds of :mod:`tnml.entanglement`: the side of the split that the output leg
#: joins (``None`` beside it leaves the output leg unconstrained)
OutputSide = Literal["A", "B"]

#: ``partitions=`` of :func:`tnml.entanglement.entanglement_report`, when given by name
NamedPartitions = Literal["canonical", "contiguous", "interleaved", "tree"]

#: ``gain=`` of :func:`tnml.workflows.suitability.suitability`: how the gain of rearranging the features is
#: measured (``None`` beside it skips the rearrangement)
SuitabilityGain = Literal["qe", "surrogate"]

#: ``method=`` of :func:`tnml.entanglement.data_entanglement` and :func:`tnml.workflows.suitability.suitability`:
#: how the quantum entanglement of the data is computed (``"auto"`` picks by the number of samples)
QEMethod = Literal["auto", "exact", "sketch", "batches"]

#: ``constant=`` of :func:`tnml.datasets.load_csv`: what to do with constant feature columns
ConstantColumns = Literal["error", "drop", "keep"]

#: ``layout=`` of :func:`tnml.baselines.normalized_adjacency`: the sparse layout of the matrix
AdjacencyLayout = Literal["csr", "coo"]

#: ``tie_break=`` of the walk-index sparsifiers (:func:`tnml.preprocessing.walk_index_sparsification`,
#: :func:`tnml.preprocessing.one_wis`): which of several edges with equal walk-index vectors goes first
TieBreak = Literal["vertex", "first", "last", "authors"]

#: ``method=`` of :func:`tnml.preprocessing.spectral_sparsification`: sample edges by effective resistance, or
#: remove the lowest-resistance edges greedily
SparsifyMethod = Literal["sample", "greedy"]

#: ``distance=`` of :class:`tnml.preprocessing.IGTDRearrangement`: ``1 - Pearson`` or ``1 - |Pearson|``
IGTDDistance = Literal["pearson", "abs_pearson"]

#: ``features=`` of :func:`tnml.datasets.graphs.karate_club`: identity features or seeded normal ones
KarateFeatures = Literal["onehot", "random"]

#: ``reduction=`` of the factorization losses of :mod:`tnml.dynamics` (``"half_sum"``: ``0.5 · Σ``, the scale of
#: the gradient-flow analyses)
LossReduction = Literal["mean", "sum", "half_sum"]

#: ``method=`` of :func:`tnml.workflows.learn_mode_tree` and :func:`tnml.workflows.design_ttn`: how the splits
#: are scored (the correlation surrogate, or the quantum entanglement of the data)
TreeMethod = Literal["surrogate", "qe"]

#: ``method=`` of :class:`tnml.preprocessing.FeatureRearrangement`: recursive minimum-cut bisection of the
#: feature-correlation graph
RearrangeMethod = Literal["mincut"]

#: ``backend=`` of :class:`tnml.preprocessing.FeatureRearrangement`: METIS (pymetis) when installed, else
#: spectral + Kernighan–Lin (``"auto"``); or either one forced
BisectBackend = Literal["auto", "metis", "kl"]


def choices(option: Any) -> tuple:
    """The values an option accepts, as a tuple.

    Parameters
    ----------
    option : Literal type or collection
        A ``Literal[...]`` alias of this module (a union with ``None`` lists ``None`` too), or any collection of
        values (a tuple, list, set or dict's keys), returned as a tuple in its own order.

    Returns
    -------
    tuple
        The accepted values.

    Raises
    ------
    TypeError
        ``option`` is a string (a common slip for a one-element tuple).

    Examples
    --------
    >>> choices(GNNOutput | None)
    ('graph', 'vertex', None)
    """
    if get_origin(option) is Literal:
        return tuple(get_args(option))
    if get_origin(option) in (Union, UnionType):
        out: list = []
        for arg in get_args(option):
            out.extend([None] if arg is type(None) else choices(arg))
        return tuple(out)
    if isinstance(option, (str, bytes)):
        raise TypeError(f"choices must be a Literal type or a collection of values, got the string {option!r}")
    return tuple(option)
