"""Normalisation."""

from typing import Annotated, Literal

from pydantic import Field

from ..fields import Bool, Float
from ..registry import register_layer
from ..shapes import Shape
from .base import LayerSpec

__all__ = ["BatchNorm", "LayerNormalization", "Scale"]


@register_layer
class BatchNorm(LayerSpec):
    """Keras ``BatchNormalization`` over the last (channel) axis."""

    keras_class = "BatchNormalization"
    non_trainable = frozenset({"moving_mean", "moving_variance"})
    keras_fixed = {
        "axis": (-1, 3, [-1], [3]),  # the channels of an image, or the features of a flat input
        "synchronized": (False,),
        "renorm": (False,),
        **dict.fromkeys(["beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"], (None,)),
    }
    keras_ignored = frozenset({"renorm_clipping", "renorm_momentum"})  # read only when renorm is on

    type: Literal["batch_norm"] = "batch_norm"
    momentum: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.99
    epsilon: Annotated[Float, Field(gt=0.0)] = 0.001
    center: Bool = True
    scale: Bool = True

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        channels = (input_shape[-1],)
        wanted = {"gamma": self.scale, "beta": self.center, "moving_mean": True, "moving_variance": True}
        return {variable: channels for variable, present in wanted.items() if present}


@register_layer
class LayerNormalization(LayerSpec):
    """Keras ``LayerNormalization`` over the channels (the last axis) of each position:
    ``x * inv + (beta - mean * inv)`` with ``inv = gamma / sqrt(variance + epsilon)``, Keras's own arithmetic."""

    keras_class = "LayerNormalization"
    keras_fixed = {
        "axis": (-1, [-1], (-1,)),
        "rms_scaling": (False,),
        **dict.fromkeys(["beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"], (None,)),
    }
    type: Literal["layer_normalization"] = "layer_normalization"
    epsilon: Annotated[Float, Field(gt=0.0)] = 0.001
    center: Bool = True
    scale: Bool = True

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        channels = (input_shape[-1],)
        return {name: channels for name, present in (("gamma", self.scale), ("beta", self.center)) if present}


@register_layer
class Scale(LayerSpec):
    """A learned multiplier per channel, ConvNeXt's ``LayerScale`` (keras.applications.convnext): ``x * gamma``,
    ``gamma`` starting at ``init_values``."""

    keras_class = "LayerScale"
    keras_ignored = frozenset({"projection_dim"})  # the input's channels
    type: Literal["scale"] = "scale"
    init_values: Float = 1e-6

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        return {"gamma": (input_shape[-1],)}

    def initializer(self, variable: str) -> str | float:
        return self.init_values
