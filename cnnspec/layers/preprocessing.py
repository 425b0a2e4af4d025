"""Preprocessing that is part of the model (and of its exports), so raw inputs work at inference."""

from __future__ import annotations

from typing import Literal

from ..fields import Float
from ..registry import register_layer
from ..shapes import Shape
from .base import LayerSpec

__all__ = ["Rescaling"]


@register_layer
class Rescaling(LayerSpec):
    """Keras ``Rescaling``: ``x * scale + offset`` (``scale: 0.00392156862745098`` takes 0-255 pixels to 0-1)."""

    keras_class = "Rescaling"
    type: Literal["rescaling"] = "rescaling"
    scale: Float
    offset: Float = 0.0

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape
