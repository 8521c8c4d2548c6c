"""tnml: neural networks as tensor networks, contracted with torch, with tools to measure their entanglement."""

from tnml import settings
from tnml.feature_maps import (
    FeatureMap,
    IdentityMap,
    LinearMap,
    OneHotMap,
    PolynomialMap,
    TrigMap,
    available_feature_maps,
    get_feature_map,
    register_feature_map,
)
from tnml.model import OutputScaleWarning, TNModel
from tnml.settings import MemoryLimitError
from tnml.structure import TensorSpec, TNStructure

__version__ = "0.1.0"

__all__ = [
    "FeatureMap",
    "IdentityMap",
    "LinearMap",
    "MemoryLimitError",
    "OneHotMap",
    "OutputScaleWarning",
    "PolynomialMap",
    "TNModel",
    "TNStructure",
    "TensorSpec",
    "TrigMap",
    "available_feature_maps",
    "get_feature_map",
    "register_feature_map",
    "settings",
]
