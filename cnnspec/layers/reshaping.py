"""Layers that change the spatial shape without weights."""

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from ..fields import NonNegativeInt, Pair
from ..registry import register_layer
from ..shapes import Shape, ShapeViolation
from .base import CHANNELS_LAST, LayerSpec, needs_image

__all__ = ["Cropping2D", "Reshape", "UpSampling2D", "ZeroPadding2D"]


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


@register_layer
class UpSampling2D(LayerSpec):
    """Keras ``UpSampling2D``: ``size`` times the rows and columns; ``nearest`` repeats each cell (exactly),
    ``bilinear`` interpolates with half-pixel centres, as ``tf.image.resize`` does. (Keras's other modes have
    no equal in ONNX Runtime and torch together; a spec refuses them.)"""

    keras_class = "UpSampling2D"
    keras_fixed = CHANNELS_LAST
    type: Literal["up_sampling2d"] = "up_sampling2d"
    size: Pair = (2, 2)
    interpolation: Literal["nearest", "bilinear"] = "nearest"

    def output_shape(self, input_shape: Shape) -> Shape:
        needs_image(self, input_shape)
        return (input_shape[0] * self.size[0], input_shape[1] * self.size[1], input_shape[2])


@register_layer
class Reshape(LayerSpec):
    """Keras ``Reshape``: the example's values, in channels-last order, laid out as ``target_shape``: one axis
    (features) or three (height, width, channels); one entry may be -1, inferred from the size."""

    keras_class = "Reshape"
    type: Literal["reshape"] = "reshape"
    target_shape: Annotated[list[int], Field(min_length=1, max_length=3)]

    def output_shape(self, input_shape: Shape) -> Shape:
        target, size = list(self.target_shape), math.prod(input_shape)
        problem = None
        if len(target) not in (1, 3):
            problem = f"a target of {len(target)} axes: cnnspec's layers take one (features) or three (an image)"
        elif any(d == 0 or d < -1 for d in target) or target.count(-1) > 1:
            problem = "sizes must be positive, with at most one -1"
        else:
            known = math.prod(d for d in target if d != -1)
            if -1 in target and size % known == 0:
                target[target.index(-1)] = size // known
            if math.prod(target) != size:
                problem = f"{size} values cannot be laid out as {list(self.target_shape)}"
        if problem:
            raise ShapeViolation(f"target_shape {list(self.target_shape)}: {problem}", "target_shape",
                                 "reshape_size", list(self.target_shape))  # fmt: skip
        return tuple(target)
