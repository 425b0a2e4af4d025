"""Merge layers: several inputs (named by ``inputs``) become one output."""

from __future__ import annotations

from typing import ClassVar, Literal

from ..registry import register_layer
from ..shapes import Shape, ShapeViolation
from .base import LayerSpec

__all__ = ["Add", "Concatenate"]


class Merge(LayerSpec):
    """A layer with two or more inputs; ``merge_shape`` is its shape rule."""

    merges: ClassVar[bool] = True

    def output_shape(self, input_shape: Shape) -> Shape:
        return self.merge_shape([input_shape])

    def merge_shape(self, shapes: list[Shape]) -> Shape:
        raise NotImplementedError


def _shown(names: list[str], shapes: list[Shape]) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in zip(names, shapes))


@register_layer
class Add(Merge):
    """Keras ``Add``: the element-wise sum of inputs of one shape."""

    keras_class = "Add"
    type: Literal["add"] = "add"

    def merge_shape(self, shapes: list[Shape]) -> Shape:
        if any(shape != shapes[0] for shape in shapes):
            raise ShapeViolation(
                f"add needs inputs of one shape, got {_shown(self.inputs or [], shapes)}",
                "inputs",
                "merge_shapes",
                [list(s) for s in shapes],
            )
        return shapes[0]


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
