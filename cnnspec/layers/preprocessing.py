"""Preprocessing that is part of the model (and of its exports), so raw inputs work at inference."""

from typing import Annotated, Literal

from pydantic import Field

from ..fields import Float
from ..registry import register_layer
from ..shapes import Shape, ShapeViolation
from .base import LayerSpec

__all__ = ["Normalization", "Rescaling"]


@register_layer
class Rescaling(LayerSpec):
    """Keras ``Rescaling``: ``x * scale + offset`` (``scale: 0.00392156862745098`` takes 0-255 pixels to 0-1)."""

    keras_class = "Rescaling"
    type: Literal["rescaling"] = "rescaling"
    scale: Float
    offset: Float = 0.0

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape


# a number for every channel, or one list entry per channel
Moments = Float | Annotated[list[Float], Field(min_length=1)]


@register_layer
class Normalization(LayerSpec):
    """Keras ``Normalization`` over the channels: ``(x - mean) / max(sqrt(variance), 1e-7)``. With ``mean`` and
    ``variance`` given (a number, or one per channel) they are constants, as in Keras; without, they are
    non-trainable variables (``mean`` and ``variance``), as a Keras model that ``adapt`` would fill holds them.
    Nothing adapts at run time."""

    keras_class = "Normalization"
    keras_fixed = {"axis": (-1, [-1], (-1,), 3, [3], (3,)), "invert": (False,)}
    keras_attributes = {"mean": "adapt_mean", "variance": "adapt_variance"}
    non_trainable = frozenset({"mean", "variance"})
    type: Literal["normalization"] = "normalization"
    mean: Moments | None = None
    variance: Moments | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        for field in ("mean", "variance"):
            value = getattr(self, field)
            if isinstance(value, list) and len(value) not in (1, input_shape[-1]):
                raise ShapeViolation(f"{field} has {len(value)} values for {input_shape[-1]} channels", field,
                                     "one_per_channel", value)  # fmt: skip
        if (self.mean is None) != (self.variance is None):
            raise ShapeViolation("give both mean and variance, or neither (then they are variables)", "mean",
                                 "both_moments", self.mean)  # fmt: skip
        return input_shape

    def variables(self, input_shape: Shape) -> dict[str, Shape]:
        if self.mean is not None:
            return {}
        return {"mean": (input_shape[-1],), "variance": (input_shape[-1],)}

    def param_counts(self, input_shape: Shape) -> tuple[int, int]:
        """Keras also counts ``count``, the integer ``adapt`` keeps beside mean and variance; no backend computes
        with it, so it is not a canonical variable, but it is one of Keras's parameters."""
        trainable, frozen = super().param_counts(input_shape)
        return trainable, frozen + (self.mean is None)

    def initializer(self, variable: str) -> str | float:
        return "ones" if variable == "variance" else "zeros"
