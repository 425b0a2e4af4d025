"""Dense, flatten, dropout and activation layers."""

import math
from typing import Any, Literal

from ..fields import ActivationName, Bool, PositiveInt, Rate, Regularizer
from ..registry import register_layer
from ..shapes import Shape, ShapeViolation
from .base import CHANNELS_LAST, LayerSpec, needs_image
from .keras_config import UnsupportedKerasModel

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "SpatialDropout2D"]


@register_layer
class Dropout(LayerSpec):
    """Keras ``Dropout``; identity at inference."""

    keras_class = "Dropout"
    draws_in_training = "its masks come from each framework's generator; inference is the identity everywhere"
    added_fields = frozenset({"noise_shape"})
    type: Literal["dropout"] = "dropout"
    rate: Rate
    # Keras's: the mask's shape, batch first, None for the input's size (EfficientNet's (None, 1, 1, 1) drops
    # whole examples)
    noise_shape: tuple[PositiveInt | None, ...] | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        if self.noise_shape is not None:
            sizes = (None, *input_shape)
            if len(self.noise_shape) != len(sizes) or any(
                n not in (None, 1, size) for n, size in zip(self.noise_shape[1:], input_shape)
            ):
                raise ShapeViolation(
                    f"noise_shape {list(self.noise_shape)} does not fit the input {list(sizes)}: one entry per axis, "
                    "batch first, each null, 1 or the axis's size",
                    "noise_shape",
                    "noise_shape_fits",
                    list(self.noise_shape),
                )
        return input_shape


@register_layer
class SpatialDropout2D(LayerSpec):
    """Keras ``SpatialDropout2D``: drops whole channels of each example in training; identity at inference."""

    keras_class = "SpatialDropout2D"
    keras_fixed = CHANNELS_LAST
    draws_in_training = "its masks come from each framework's generator; inference is the identity everywhere"
    type: Literal["spatial_dropout2d"] = "spatial_dropout2d"
    rate: Rate

    def output_shape(self, input_shape: Shape) -> Shape:
        needs_image(self, input_shape)
        return input_shape


@register_layer
class Flatten(LayerSpec):
    """Keras ``Flatten``: channels-last order (H, W, C)."""

    keras_class = "Flatten"
    keras_fixed = CHANNELS_LAST
    type: Literal["flatten"] = "flatten"

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)


@register_layer
class Dense(LayerSpec):
    """Keras ``Dense`` on a flat input."""

    keras_class = "Dense"
    keras_fixed = dict.fromkeys(["kernel_constraint", "bias_constraint", "activity_regularizer", "lora_rank"], (None,))
    keras_ignored = frozenset({"lora_alpha"})
    type: Literal["dense"] = "dense"
    units: PositiveInt
    activation: ActivationName = "linear"
    use_bias: Bool = True
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ShapeViolation(
                f"dense needs a flat input, got {input_shape}; add a flatten or global pooling layer before it",
                None,
                "flat_input",
                input_shape,
            )
        return (self.units,)

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        kernel: dict[str, Shape] = {"kernel": (input_shape[0], self.units)}
        return {**kernel, "bias": (self.units,)} if self.use_bias else kernel

    @classmethod
    def from_keras(
        cls, kind: str, config: dict[str, Any], input_shape: tuple[Any, ...] | None = None
    ) -> dict[str, Any]:
        """Keras's Dense on an image acts on each position's channels (ConvNeXt's pointwise layers): the same as a
        1x1 convolution, which is what it becomes (its kernel (in, units) read as (1, 1, in, units))."""
        document = super().from_keras(kind, config)
        if input_shape is None or len(input_shape) < 2:
            return document
        if len(input_shape) != 3:
            raise UnsupportedKerasModel(f"layer {config.get('name', '?')!r} ({kind}): a Dense on an input of shape "
                                        f"{list(input_shape)}: only flat or image inputs can be expressed")  # fmt: skip
        return {**{k: v for k, v in document.items() if k != "units"}, "type": "conv2d", "filters": document["units"],
                "kernel_size": 1}  # fmt: skip

    def regularizers(self) -> dict[str, Regularizer]:
        chosen = {"kernel": self.kernel_regularizer, "bias": self.bias_regularizer if self.use_bias else None}
        return {variable: rule for variable, rule in chosen.items() if rule is not None}


@register_layer
class Activation(LayerSpec):
    """Keras ``Activation``."""

    keras_class = "Activation"
    type: Literal["activation"] = "activation"
    activation: ActivationName

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape
