"""Activation layers: Keras's ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU`` and ``Softmax`` classes, with their
arguments (an ``activation`` layer or field takes only an activation's name and Keras's default constants)."""

from typing import Annotated, Literal

from pydantic import Field, field_validator

from ..fields import Float, PositiveInt
from ..registry import register_layer
from ..shapes import Shape, ShapeViolation
from .base import LayerSpec

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]

NonNegativeFloat = Annotated[Float, Field(ge=0.0)]


class _Elementwise(LayerSpec):
    """The output has the input's shape."""

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape


@register_layer
class ReLU(_Elementwise):
    """Keras ``ReLU``: ``max_value`` at and above it; ``x`` from ``threshold`` up (and 0 at ``threshold`` or
    below it, when ``threshold`` > 0); ``negative_slope * (x - threshold)`` below ``threshold`` (Keras's
    ``activations.relu``, term for term). ``max_value: 6`` is ReLU6."""

    keras_class = "ReLU"
    type: Literal["relu"] = "relu"
    max_value: NonNegativeFloat | None = None
    negative_slope: NonNegativeFloat = 0.0
    threshold: NonNegativeFloat = 0.0


@register_layer
class LeakyReLU(_Elementwise):
    """Keras ``LeakyReLU``: ``x`` above 0, ``negative_slope * x`` below (the layer's default slope is 0.3; the
    ``leaky_relu`` activation's is 0.2)."""

    keras_class = "LeakyReLU"
    type: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: NonNegativeFloat = 0.3


@register_layer
class PReLU(_Elementwise):
    """Keras ``PReLU``: ``x`` above 0, ``alpha * x`` below, ``alpha`` learned per position and channel; the
    axes in ``shared_axes`` (1 = height, 2 = width, 3 = channels, as Keras counts them) share one value."""

    keras_class = "PReLU"
    keras_fixed = {"alpha_regularizer": (None,), "alpha_constraint": (None,)}
    keras_ignored = frozenset({"alpha_initializer"})
    type: Literal["prelu"] = "prelu"
    shared_axes: list[PositiveInt] | None = None

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        shape = list(input_shape)
        for axis in self.shared_axes or []:
            if axis > len(shape):
                raise ShapeViolation(
                    f"shared_axes {self.shared_axes}: axis {axis} is beyond the input's {len(shape)} axes",
                    "shared_axes",
                    "axis_in_range",
                    self.shared_axes,
                )
            shape[axis - 1] = 1
        return {"alpha": tuple(shape)}

    def output_shape(self, input_shape: Shape) -> Shape:
        self.variables(input_shape)  # refuses an axis the input does not have
        return input_shape


@register_layer
class ELU(_Elementwise):
    """Keras ``ELU``: ``x`` above 0, ``alpha * (exp(x) - 1)`` below."""

    keras_class = "ELU"
    type: Literal["elu"] = "elu"
    alpha: Float = 1.0


@register_layer
class Softmax(_Elementwise):
    """Keras ``Softmax`` over ``axis`` (Keras counts the batch as axis 0: -1 is the channels)."""

    keras_class = "Softmax"
    type: Literal["softmax"] = "softmax"
    axis: int = -1

    @field_validator("axis")
    @classmethod
    def _not_the_batch(cls, value: int) -> int:
        if value == 0:
            raise ValueError("axis 0 is the batch; a softmax runs over an axis of one example (-1: the channels)")
        return value

    def output_shape(self, input_shape: Shape) -> Shape:
        self.spatial_axis(input_shape)
        return input_shape

    def spatial_axis(self, input_shape: Shape) -> int:
        """The axis of one example, 0-based in (H, W, C) or (F,), that the softmax runs over."""
        axis = self.axis - 1 if self.axis > 0 else len(input_shape) + self.axis
        if not 0 <= axis < len(input_shape):
            raise ShapeViolation(
                f"axis {self.axis} does not exist for an input of {len(input_shape)} axes (and the batch)",
                "axis",
                "axis_in_range",
                self.axis,
            )
        return axis

    def final_activation(self) -> str | None:
        return "softmax" if self.axis == -1 else None
