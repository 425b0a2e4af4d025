"""Merge layers: several inputs (named by ``inputs``) become one output."""

from typing import ClassVar, Literal

from ..registry import register_layer
from ..shapes import Shape, ShapeViolation
from .base import LayerSpec

__all__ = ["Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract"]


class Merge(LayerSpec):
    """A layer with two or more inputs; ``merge_shape`` is its shape rule."""

    merges: ClassVar[bool] = True

    def output_shape(self, input_shape: Shape) -> Shape:
        return self.merge_shape([input_shape])

    def merge_shape(self, shapes: list[Shape]) -> Shape:
        raise NotImplementedError


def _shown(names: list[str], shapes: list[Shape]) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in zip(names, shapes))


class Elementwise(Merge):
    """An element-wise merge with Keras's broadcasting: inputs of one rank, each axis equal or 1 (a
    squeeze-and-excitation block multiplies (H, W, C) by (1, 1, C)); the output takes the larger size."""

    inputs_allowed: ClassVar[tuple[int, int | None]] = (2, None)  # (fewest, most) inputs

    def merge_shape(self, shapes: list[Shape]) -> Shape:
        fewest, most = self.inputs_allowed
        if most is not None and len(shapes) > most:
            raise ShapeViolation(f"{self.type} takes exactly {most} inputs, got {len(shapes)}", "inputs",
                                 "merge_inputs", self.inputs)  # fmt: skip
        out = list(shapes[0])
        for shape in shapes[1:]:
            if len(shape) != len(out) or any(a != b and 1 not in (a, b) for a, b in zip(shape, out)):
                raise ShapeViolation(
                    f"{self.type} needs inputs of one shape, or shapes that broadcast (each axis equal, or 1), "
                    f"got {_shown(self.inputs or [], shapes)}",
                    "inputs",
                    "merge_shapes",
                    [list(s) for s in shapes],
                )
            out = [max(a, b) for a, b in zip(out, shape)]
        return tuple(out)


@register_layer
class Add(Elementwise):
    """Keras ``Add``: the element-wise sum of the inputs, in order."""

    keras_class = "Add"
    type: Literal["add"] = "add"


@register_layer
class Multiply(Elementwise):
    """Keras ``Multiply``: the element-wise product of the inputs, in order."""

    keras_class = "Multiply"
    type: Literal["multiply"] = "multiply"


@register_layer
class Subtract(Elementwise):
    """Keras ``Subtract``: the first input minus the second."""

    keras_class = "Subtract"
    inputs_allowed = (2, 2)
    type: Literal["subtract"] = "subtract"


@register_layer
class Average(Elementwise):
    """Keras ``Average``: the inputs summed in order, then divided by their number."""

    keras_class = "Average"
    type: Literal["average"] = "average"


@register_layer
class Maximum(Elementwise):
    """Keras ``Maximum``: the element-wise maximum of the inputs."""

    keras_class = "Maximum"
    type: Literal["maximum"] = "maximum"


@register_layer
class Minimum(Elementwise):
    """Keras ``Minimum``: the element-wise minimum of the inputs."""

    keras_class = "Minimum"
    type: Literal["minimum"] = "minimum"


@register_layer
class Concatenate(Merge):
    """Keras ``Concatenate`` along channels (the last axis): equal height and width; channels add up."""

    keras_class = "Concatenate"
    keras_fixed = {"axis": (-1, 3)}  # channels (the features of a flat input)
    type: Literal["concatenate"] = "concatenate"

    def merge_shape(self, shapes: list[Shape]) -> Shape:
        if any(len(shape) != len(shapes[0]) or shape[:-1] != shapes[0][:-1] for shape in shapes):
            raise ShapeViolation(
                "concatenate needs inputs that differ only in channels (the last axis), got "
                f"{_shown(self.inputs or [], shapes)}",
                "inputs",
                "merge_shapes",
                [list(s) for s in shapes],
            )
        return (*shapes[0][:-1], sum(shape[-1] for shape in shapes))
