"""Explicit regularization: the gradient-cosine anti-locality regularizer (P3: Razin, Maman, Cohen, ICML 2022)."""

from tnml.regularization.gradient_cosine import GradientCosineRegularizer, rect_patch

__all__ = ["GradientCosineRegularizer", "rect_patch"]
