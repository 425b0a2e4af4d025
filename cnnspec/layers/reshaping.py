"""Layers that change the spatial shape without weights."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, WithJsonSchema

from ..fields import NonNegativeInt
from ..registry import register_layer
from ..shapes import Shape, ShapeViolation
from .base import CHANNELS_LAST, LayerSpec, needs_image

__all__ = ["Cropping2D", "ZeroPadding2D"]


def _as_pairs(value: Any) -> Any:
    """Keras's three spellings: ``p``, ``[ph, pw]``, ``[[top, bottom], [left, right]]`` -> the last."""
    if isinstance(value, int) and not isinstance(value, bool):
        return ((value, value), (value, value))
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return ((value[0], value[0]), (value[1], value[1]))
    if isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


_NON_NEGATIVE = {"type": "integer", "minimum": 0}
_PADDING_SCHEMA = {
    "anyOf": [
        _NON_NEGATIVE,
        {"type": "array", "items": _NON_NEGATIVE, "minItems": 2, "maxItems": 2},
        {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {"type": "array", "items": _NON_NEGATIVE, "minItems": 2, "maxItems": 2},
        },
    ]
}
PaddingAmounts = Annotated[
    tuple[tuple[NonNegativeInt, NonNegativeInt], tuple[NonNegativeInt, NonNegativeInt]],
    BeforeValidator(_as_pairs),
    WithJsonSchema(_PADDING_SCHEMA),
]


@register_layer
class ZeroPadding2D(LayerSpec):
    """Keras ``ZeroPadding2D``: zeros around the image, ``((top, bottom), (left, right))`` cells."""

    keras_class = "ZeroPadding2D"
    keras_fixed = CHANNELS_LAST
    type: Literal["zero_padding2d"] = "zero_padding2d"
    padding: PaddingAmounts = ((1, 1), (1, 1))

    def output_shape(self, input_shape: Shape) -> Shape:
        needs_image(self, input_shape)
        (top, bottom), (left, right) = self.padding
        return (input_shape[0] + top + bottom, input_shape[1] + left + right, input_shape[2])


@register_layer
class Cropping2D(LayerSpec):
    """Keras ``Cropping2D``: ``((top, bottom), (left, right))`` rows and columns cut off the image."""

    keras_class = "Cropping2D"
    keras_fixed = CHANNELS_LAST
    type: Literal["cropping2d"] = "cropping2d"
    cropping: PaddingAmounts = ((0, 0), (0, 0))

    def output_shape(self, input_shape: Shape) -> Shape:
        needs_image(self, input_shape)
        (top, bottom), (left, right) = self.cropping
        height, width = input_shape[0] - top - bottom, input_shape[1] - left - right
        if height < 1 or width < 1:
            raise ShapeViolation(
                f"cropping {top}+{bottom} rows and {left}+{right} columns leaves nothing of a "
                f"{input_shape[0]}x{input_shape[1]} input",
                "cropping",
                "output_size",
                [[top, bottom], [left, right]],
            )
        return (height, width, input_shape[2])
