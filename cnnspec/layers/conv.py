"""Convolutions: full, depthwise and depthwise-separable (Keras 3 meanings and variable layouts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from ..fields import ActivationName, Bool, Padding, Pair, PositiveInt, Regularizer
from ..registry import register_layer
from ..shapes import Shape
from .base import CHANNELS_LAST, WindowedLayer

__all__ = ["Conv2D", "DepthwiseConv2D", "SeparableConv2D"]


class _Convolution(WindowedLayer):
    """What the three convolutions share: a dilated kernel window, an activation, an optional bias."""

    convolutional = True
    window_field, window_label = "kernel_size", "kernel"
    # what Keras adds around a convolution that a spec cannot say (groups: one, for now)
    keras_fixed = {
        **CHANNELS_LAST,
        "groups": (1,),
        **dict.fromkeys(
            ["kernel_constraint", "bias_constraint", "depthwise_constraint", "pointwise_constraint"], (None,)
        ),
        **dict.fromkeys(["activity_regularizer", "lora_rank"], (None,)),
    }
    keras_ignored = frozenset({"lora_alpha"})

    if TYPE_CHECKING:  # each subclass declares its fields itself, in Keras's argument order (dumps read like Keras)
        kernel_size: tuple[int, int]
        strides: tuple[int, int]
        dilation_rate: tuple[int, int]
        activation: str
        use_bias: bool
        bias_regularizer: Regularizer | None

    @model_validator(mode="after")
    def _strides_or_dilation(self) -> _Convolution:
        # Keras refuses the combination for Conv2D (TensorFlow for the depthwise ones); backends would disagree on it.
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"strides {list(self.strides)} > 1 cannot be combined with "
                f"dilation_rate {list(self.dilation_rate)} > 1 (Keras refuses it)"
            )
        return self

    @property
    def window_dilation(self) -> tuple[int, int]:
        return self.dilation_rate

    def _with_bias(self, kernels: Mapping[str, Shape], channels: int) -> dict[str, Shape]:
        return {**kernels, "bias": (channels,)} if self.use_bias else dict(kernels)

    def _regularized(self, **by_variable: Regularizer | None) -> dict[str, Regularizer]:
        chosen = {**by_variable, "bias": self.bias_regularizer if self.use_bias else None}
        return {variable: rule for variable, rule in chosen.items() if rule is not None}


@register_layer
class Conv2D(_Convolution):
    """Keras ``Conv2D``: channels-last, glorot_uniform kernel, zero bias."""

    keras_class = "Conv2D"
    keras_classes = ("SingleWindowConv2D",)  # the Keras backend's, for narrow geometries TensorFlow computes wrongly
    type: Literal["conv2d"] = "conv2d"
    filters: PositiveInt
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "valid"
    dilation_rate: Pair = (1, 1)
    activation: ActivationName = "linear"
    use_bias: Bool = True
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*self.spatial_output(input_shape), self.filters)

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        return self._with_bias({"kernel": (*self.kernel_size, input_shape[-1], self.filters)}, self.filters)

    def regularizers(self) -> dict[str, Regularizer]:
        return self._regularized(kernel=self.kernel_regularizer)


@register_layer
class DepthwiseConv2D(_Convolution):
    """Keras ``DepthwiseConv2D``: each input channel convolved with its own ``depth_multiplier`` kernels.

    Output channel ``c * depth_multiplier + m`` comes from input channel ``c`` (Keras's order).
    """

    keras_class = "DepthwiseConv2D"
    keras_classes = ("ExplicitWindowDepthwiseConv2D",)  # the Keras backend's, for strides TensorFlow refuses
    keras_attributes = {"depthwise_kernel": "kernel"}  # Keras 3 calls it so (tf.keras said depthwise_kernel)
    keras_ignored = frozenset({"lora_alpha", "filters"})  # Keras 3 writes filters=None
    type: Literal["depthwise_conv2d"] = "depthwise_conv2d"
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "valid"
    depth_multiplier: PositiveInt = 1
    dilation_rate: Pair = (1, 1)
    activation: ActivationName = "linear"
    use_bias: Bool = True
    depthwise_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*self.spatial_output(input_shape), input_shape[-1] * self.depth_multiplier)

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        depthwise = {"depthwise_kernel": (*self.kernel_size, input_shape[-1], self.depth_multiplier)}
        return self._with_bias(depthwise, input_shape[-1] * self.depth_multiplier)

    def regularizers(self) -> dict[str, Regularizer]:
        return self._regularized(depthwise_kernel=self.depthwise_regularizer)


@register_layer
class SeparableConv2D(_Convolution):
    """Keras ``SeparableConv2D``: a depthwise convolution, then a 1x1 convolution to ``filters``, then the bias."""

    keras_class = "SeparableConv2D"
    keras_classes = ("ExplicitWindowSeparableConv2D",)
    type: Literal["separable_conv2d"] = "separable_conv2d"
    filters: PositiveInt
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "valid"
    depth_multiplier: PositiveInt = 1
    dilation_rate: Pair = (1, 1)
    activation: ActivationName = "linear"
    use_bias: Bool = True
    depthwise_regularizer: Regularizer | None = None
    pointwise_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*self.spatial_output(input_shape), self.filters)

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        middle = input_shape[-1] * self.depth_multiplier
        kernels = {
            "depthwise_kernel": (*self.kernel_size, input_shape[-1], self.depth_multiplier),
            "pointwise_kernel": (1, 1, middle, self.filters),
        }
        return self._with_bias(kernels, self.filters)

    def regularizers(self) -> dict[str, Regularizer]:
        return self._regularized(
            depthwise_kernel=self.depthwise_regularizer, pointwise_kernel=self.pointwise_regularizer
        )
