"""Convolutions."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from ..fields import ActivationName, Bool, Padding, Pair, PositiveInt
from ..registry import register_layer
from ..shapes import Shape
from .base import WindowedLayer

__all__ = ["Conv2D"]


@register_layer
class Conv2D(WindowedLayer):
    """Keras ``Conv2D``: channels-last, glorot_uniform kernel, zero bias."""

    keras_class = "Conv2D"
    convolutional = True
    window_field, window_label = "kernel_size", "kernel"

    type: Literal["conv2d"] = "conv2d"
    filters: PositiveInt
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "valid"
    dilation_rate: Pair = (1, 1)
    activation: ActivationName = "linear"
    use_bias: Bool = True

    @model_validator(mode="after")
    def _strides_or_dilation(self) -> Conv2D:
        # Keras refuses the combination; every backend would disagree on it anyway.
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"strides {list(self.strides)} > 1 cannot be combined with "
                f"dilation_rate {list(self.dilation_rate)} > 1 (Keras refuses it)"
            )
        return self

    @property
    def window_dilation(self) -> tuple[int, int]:
        return self.dilation_rate

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*self.spatial_output(input_shape), self.filters)

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        kernel: dict[str, Shape] = {"kernel": (*self.kernel_size, input_shape[-1], self.filters)}
        return {**kernel, "bias": (self.filters,)} if self.use_bias else kernel
