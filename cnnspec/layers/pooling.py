"""Pooling: windowed (max, average, min, sum) and global."""

from typing import Literal

from pydantic import Field, model_validator

from ..fields import Bool, Padding, Pair
from ..registry import register_layer
from ..shapes import Shape
from .base import CHANNELS_LAST, LayerSpec, WindowedLayer, needs_image

__all__ = ["AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "MaxPool2D", "MinPool2D", "SumPool2D"]


class Pool2D(WindowedLayer):
    """A window reduction; channels pass through."""

    window_field, window_label = "pool_size", "pool"

    pool_size: Pair = (2, 2)
    strides: Pair | None = Field(default=None, description="default: pool_size")
    padding: Padding = "valid"

    @model_validator(mode="after")
    def _strides_default_to_pool_size(self) -> "Pool2D":
        if self.strides is None:
            object.__setattr__(self, "strides", self.pool_size)
        return self

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*self.spatial_output(input_shape), input_shape[2])

    def real_cell_counts(self, input_shape: Shape) -> list[list[int]]:
        """How many real (unpadded) input cells each output window covers, row by row.

        Average pooling with ``same`` padding divides by this, as Keras does.
        """
        counts = []
        for axis, win in enumerate(self.windows(input_shape)):
            size, k, s = input_shape[axis], self.window_size[axis], self.window_strides[axis]
            counts.append(
                [min(i * s - win.pad_before + k, size) - max(i * s - win.pad_before, 0) for i in range(win.size)]
            )
        return [[h * w for w in counts[1]] for h in counts[0]]


@register_layer
class MaxPool2D(Pool2D):
    """Keras ``MaxPooling2D``; ``same`` padding never wins a window."""

    keras_class, aliases = "MaxPooling2D", ("MaxPool2D",)
    type: Literal["max_pool2d"] = "max_pool2d"


@register_layer
class AvgPool2D(Pool2D):
    """Keras ``AveragePooling2D``; ``same`` padding averages only real cells."""

    keras_class, aliases = "AveragePooling2D", ("AvgPool2D",)
    type: Literal["avg_pool2d"] = "avg_pool2d"


@register_layer
class MinPool2D(Pool2D):
    """Minimum of each window, ``-max(-x)``; padding never wins (cnnspec's Keras ``MinPooling2D``)."""

    keras_class = "MinPooling2D"
    type: Literal["min_pool2d"] = "min_pool2d"


@register_layer
class SumPool2D(Pool2D):
    """Sum of each window's real cells (cnnspec's Keras ``SumPooling2D``)."""

    keras_class = "SumPooling2D"
    type: Literal["sum_pool2d"] = "sum_pool2d"


class GlobalPool2D(LayerSpec):
    """(H, W, C) -> (C,)."""

    keras_fixed = CHANNELS_LAST
    added_fields = frozenset({"keepdims"})
    keepdims: Bool = False  # (1, 1, C), as squeeze-and-excitation blocks keep it

    def output_shape(self, input_shape: Shape) -> Shape:
        needs_image(self, input_shape)
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)


@register_layer
class GlobalAvgPool2D(GlobalPool2D):
    """Keras ``GlobalAveragePooling2D``: (H, W, C) -> (C,)."""

    keras_class, aliases = "GlobalAveragePooling2D", ("GlobalAvgPool2D",)
    type: Literal["global_avg_pool2d"] = "global_avg_pool2d"


@register_layer
class GlobalMaxPool2D(GlobalPool2D):
    """Keras ``GlobalMaxPooling2D``: (H, W, C) -> (C,)."""

    keras_class, aliases = "GlobalMaxPooling2D", ("GlobalMaxPool2D",)
    type: Literal["global_max_pool2d"] = "global_max_pool2d"
