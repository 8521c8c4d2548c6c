"""Explicit regularization: the gradient-cosine anti-locality regularizer (SPEC §3)."""

from tnml.regularization.gradient_cosine import GradientCosineRegularizer, rect_patch

__all__ = ["GradientCosineRegularizer", "rect_patch"]
