"""Convolutions: full, depthwise and depthwise-separable (Keras 3 meanings and variable layouts)."""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from ..fields import ActivationName, Bool, NonNegativePair, Padding, Pair, PositiveInt, Regularizer
from ..registry import register_layer
from ..shapes import Shape, ShapeViolation
from .base import CHANNELS_LAST, WindowedLayer

__all__ = ["Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"]


class _Convolution(WindowedLayer):
    """What the three convolutions share: a dilated kernel window, an activation, an optional bias."""

    convolutional = True
    window_field, window_label = "kernel_size", "kernel"
    # what Keras adds around a convolution that a spec cannot say (groups: one, for now)
    keras_fixed = {
        **CHANNELS_LAST,
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
    def _strides_or_dilation(self) -> "_Convolution":
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
    added_fields = frozenset({"groups"})
    type: Literal["conv2d"] = "conv2d"
    filters: PositiveInt
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "valid"
    dilation_rate: Pair = (1, 1)
    groups: PositiveInt = 1
    activation: ActivationName = "linear"
    use_bias: Bool = True
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        channels = input_shape[-1] if len(input_shape) == 3 else None
        if channels is not None and (channels % self.groups or self.filters % self.groups):
            raise ShapeViolation(
                f"groups {self.groups} must divide the input's {channels} channels and the {self.filters} filters",
                "groups",
                "groups_divide",
                self.groups,
            )
        return (*self.spatial_output(input_shape), self.filters)

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        kernel = (*self.kernel_size, input_shape[-1] // self.groups, self.filters)
        return self._with_bias({"kernel": kernel}, self.filters)

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


def transposed_length(size: int, kernel: int, stride: int, dilation: int, padding: str, extra: int | None) -> int:
    """Keras's ``deconv_output_length``: the output size of a transposed convolution along one axis."""
    span = (kernel - 1) * dilation + 1
    if extra is None:
        return size * stride + max(span - stride, 0) if padding == "valid" else size * stride
    pad = span // 2 if padding == "same" else 0
    return (size - 1) * stride + span - 2 * pad + extra


@register_layer
class Conv2DTranspose(_Convolution):
    """Keras ``Conv2DTranspose``: the gradient of a convolution, as TensorFlow computes it for Keras's output size
    (``transposed_length``): the full transposed convolution, cropped by the padding TensorFlow would give a
    convolution of that output (and zero-extended where the full one is shorter). Its kernel is
    (kh, kw, filters, in), as Keras stores it."""

    keras_class = "Conv2DTranspose"
    keras_classes = ("DilatedKernelConv2DTranspose",)  # the Keras backend's, where TensorFlow refuses a dilation
    type: Literal["conv2d_transpose"] = "conv2d_transpose"
    filters: PositiveInt
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "valid"
    output_padding: NonNegativePair | None = None
    dilation_rate: Pair = (1, 1)
    activation: ActivationName = "linear"
    use_bias: Bool = True
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None

    @model_validator(mode="after")
    def _output_padding_below_the_strides(self) -> "Conv2DTranspose":
        # Keras refuses it ("Strides must be greater than output padding")
        if self.output_padding is not None and any(p >= s for p, s in zip(self.output_padding, self.strides)):
            raise ValueError(
                f"output_padding {list(self.output_padding)} must be less than strides {list(self.strides)}"
            )
        return self

    def output_shape(self, input_shape: Shape) -> Shape:
        from .base import needs_image

        needs_image(self, input_shape)
        extras = self.output_padding or (None, None)
        sizes = [
            transposed_length(input_shape[axis], self.kernel_size[axis], self.strides[axis],
                              self.dilation_rate[axis], self.padding, extras[axis])
            for axis in range(2)
        ]  # fmt: skip
        return (sizes[0], sizes[1], self.filters)

    def crops(self, input_shape: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """Per axis (height, width): (cells cut from the start of the full transposed convolution, cells added
        (positive) or cut (negative) at its end) to give Keras's output."""
        out = self.output_shape(input_shape)
        crops = []
        for axis in range(2):
            span = (self.kernel_size[axis] - 1) * self.dilation_rate[axis] + 1
            full = (input_shape[axis] - 1) * self.strides[axis] + span
            before = max(full - out[axis], 0) // 2 if self.padding == "same" else 0
            crops.append((before, out[axis] + before - full))
        return crops[0], crops[1]

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        return self._with_bias({"kernel": (*self.kernel_size, self.filters, input_shape[-1])}, self.filters)

    def regularizers(self) -> dict[str, Regularizer]:
        return self._regularized(kernel=self.kernel_regularizer)
