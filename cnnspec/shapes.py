"""Shape and parameter inference: the only place shapes are computed.

Pure Python, no framework import. One rule per layer type in ``SHAPE_RULES``;
each takes the layer and its input shape (channels-last, no batch dimension) and
returns the output shape with the trainable and non-trainable parameter counts
that Keras's ``count_params()`` reports. Backends read padding amounts and
window geometry from here instead of working them out again.

>>> window(7, kernel=3, stride=2, dilation=1, padding="same")
Window(size=4, pad_before=1, pad_after=1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .errors import SpecError, SpecIssue

if TYPE_CHECKING:
    from .spec import ModelSpec

Shape = tuple[int, ...]


class Window(NamedTuple):
    """One spatial axis of a conv or pool: output size and the zero/-inf padding Keras adds."""

    size: int
    pad_before: int
    pad_after: int


def window(size: int, kernel: int, stride: int, dilation: int, padding: str) -> Window:
    """Keras/TensorFlow rules. ``same``: out = ceil(in/s), the odd padding cell goes after."""
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        return Window((size - span) // stride + 1, 0, 0)
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return Window(out, total // 2, total - total // 2)


def spatial_windows(layer: Any, input_shape: Shape) -> tuple[Window, Window]:
    """The (height, width) windows of a conv or pool layer on ``input_shape`` (H, W, C)."""
    kernel = layer.kernel_size if layer.type == "conv2d" else layer.pool_size
    dilation = layer.dilation_rate if layer.type == "conv2d" else (1, 1)
    return (
        window(input_shape[0], kernel[0], layer.strides[0], dilation[0], layer.padding),
        window(input_shape[1], kernel[1], layer.strides[1], dilation[1], layer.padding),
    )


def real_cell_counts(layer: Any, input_shape: Shape) -> list[list[int]]:
    """How many real (unpadded) input cells each output window covers, row by row.

    Average pooling with ``same`` padding divides by this, as Keras does.
    """
    counts = []
    for axis, win in enumerate(spatial_windows(layer, input_shape)):
        size, k, s = input_shape[axis], layer.pool_size[axis], layer.strides[axis]
        axis_counts = []
        for out_index in range(win.size):
            start = out_index * s - win.pad_before
            axis_counts.append(min(start + k, size) - max(start, 0))
        counts.append(axis_counts)
    return [[h * w for w in counts[1]] for h in counts[0]]


class _Violation(Exception):
    """Raised by a rule; ``infer_shapes`` adds the layer index and name."""

    def __init__(self, message: str, field: str | None, rule: str, value: Any = None):
        super().__init__(message)
        self.field, self.rule, self.value = field, rule, value


def _fmt(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def _needs_image(layer: Any, shape: Shape) -> None:
    if len(shape) != 3:
        raise _Violation(
            f"{layer.type} needs a (height, width, channels) input, got {shape}",
            None, "input_rank", shape,
        )  # fmt: skip


def _windowed(layer: Any, shape: Shape, kernel: tuple[int, int], field: str) -> tuple[int, int]:
    _needs_image(layer, shape)
    dilation = getattr(layer, "dilation_rate", (1, 1))
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    label = "kernel" if layer.type == "conv2d" else "pool"
    if layer.padding == "valid" and (span[0] > shape[0] or span[1] > shape[1]):
        dilated = f" (dilated to {_fmt(span)})" if span != tuple(kernel) else ""
        raise _Violation(
            f"{label} {_fmt(kernel)}{dilated} is larger than its {_fmt(shape[:2])} input (padding=valid)",
            field, "window_fits_input", list(kernel),
        )  # fmt: skip
    wins = spatial_windows(layer, shape)
    return wins[0].size, wins[1].size


def _conv(layer: Any, shape: Shape) -> tuple[Shape, int, int]:
    h, w = _windowed(layer, shape, layer.kernel_size, "kernel_size")
    kh, kw = layer.kernel_size
    params = kh * kw * shape[2] * layer.filters + (layer.filters if layer.use_bias else 0)
    return (h, w, layer.filters), params, 0


def _pool(layer: Any, shape: Shape) -> tuple[Shape, int, int]:
    h, w = _windowed(layer, shape, layer.pool_size, "pool_size")
    return (h, w, shape[2]), 0, 0


def _global_pool(layer: Any, shape: Shape) -> tuple[Shape, int, int]:
    _needs_image(layer, shape)
    return (shape[2],), 0, 0


def _batch_norm(layer: Any, shape: Shape) -> tuple[Shape, int, int]:
    channels = shape[-1]
    trainable = channels * (int(layer.center) + int(layer.scale))
    return shape, trainable, 2 * channels  # moving mean and variance


def _same_shape(layer: Any, shape: Shape) -> tuple[Shape, int, int]:
    return shape, 0, 0


def _flatten(layer: Any, shape: Shape) -> tuple[Shape, int, int]:
    return (math.prod(shape),), 0, 0


def _dense(layer: Any, shape: Shape) -> tuple[Shape, int, int]:
    if len(shape) != 1:
        raise _Violation(
            f"dense needs a flat input, got {shape}; add a flatten or global pooling layer before it",
            None, "flat_input", shape,
        )  # fmt: skip
    params = shape[0] * layer.units + (layer.units if layer.use_bias else 0)
    return (layer.units,), params, 0


ShapeRule = Callable[[Any, Shape], "tuple[Shape, int, int]"]
SHAPE_RULES: dict[str, ShapeRule] = {
    "conv2d": _conv,
    "max_pool2d": _pool,
    "avg_pool2d": _pool,
    "min_pool2d": _pool,
    "sum_pool2d": _pool,
    "global_avg_pool2d": _global_pool,
    "global_max_pool2d": _global_pool,
    "batch_norm": _batch_norm,
    "dropout": _same_shape,
    "flatten": _flatten,
    "dense": _dense,
    "activation": _same_shape,
}

KERAS_CLASS = {
    "conv2d": "Conv2D",
    "max_pool2d": "MaxPooling2D",
    "avg_pool2d": "AveragePooling2D",
    "min_pool2d": "MinPooling2D",
    "sum_pool2d": "SumPooling2D",
    "global_avg_pool2d": "GlobalAveragePooling2D",
    "global_max_pool2d": "GlobalMaxPooling2D",
    "batch_norm": "BatchNormalization",
    "dropout": "Dropout",
    "flatten": "Flatten",
    "dense": "Dense",
    "activation": "Activation",
}


@dataclass(frozen=True)
class LayerShape:
    """What one layer does to the shape, and what it costs in parameters."""

    index: int
    name: str
    type: str
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable_params: int

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
        }


@dataclass(frozen=True)
class ShapeReport:
    """Per-layer shapes and parameter counts of a spec; ``str()`` gives the summary table."""

    name: str
    input_shape: Shape
    layers: tuple[LayerShape, ...]

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        """The ``cnnspec validate --json`` object."""
        return {
            "valid": True,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "layers": [layer.to_dict() for layer in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
        }

    def table(self) -> str:
        """A Keras-style summary: layer (type), output shape with batch as None, params."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for layer in self.layers:
            shape = "(None, " + ", ".join(str(d) for d in layer.output_shape) + ")"
            rows.append((f"{layer.name} ({KERAS_CLASS[layer.type]})", shape, f"{layer.params:,}"))
        widths = [max(len(row[col]) for row in rows) + 2 for col in range(3)]
        widths[2] = max(widths[2], 10)
        rule_len = sum(widths)

        def line(row: tuple[str, str, str]) -> str:
            return row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2].rjust(widths[2])

        out = [f'Model: "{self.name}"', "─" * rule_len, line(rows[0]), "━" * rule_len]
        out += [line(row) for row in rows[1:]]
        out.append("━" * rule_len)
        for label, count in (
            ("Total params", self.total_params),
            ("Trainable params", self.trainable_params),
            ("Non-trainable params", self.non_trainable_params),
        ):
            out.append(f"{label}: {count:,} ({format_bytes(count * 4)})")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def format_bytes(size: float) -> str:
    """Bytes as Keras's summary writes them (1024-based units, two decimals)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def infer_shapes(spec: ModelSpec) -> ShapeReport:
    """Walk the layers; raise ``SpecError`` naming the first layer that does not fit."""
    shape: Shape = tuple(spec.input_shape)
    layers = []
    for index, layer in enumerate(spec.layers):
        name = layer.name or f"{layer.type}_{index}"
        try:
            out, trainable, frozen = SHAPE_RULES[layer.type](layer, shape)
        except _Violation as err:
            raise SpecError(SpecIssue(str(err), index, name, err.field, err.rule, err.value)) from None
        layers.append(LayerShape(index, name, layer.type, shape, out, trainable + frozen, trainable))
        shape = out
    _check_loss_output(spec, layers[-1])
    return ShapeReport(spec.name, tuple(spec.input_shape), tuple(layers))


def _check_loss_output(spec: ModelSpec, last: LayerShape) -> None:
    loss = spec.training.loss
    if len(last.output_shape) != 1:
        message = (
            f"{loss} needs a 1-D output of class scores, got {last.output_shape}; "
            "end with flatten (or global pooling) and a dense layer"
        )
    elif last.output_shape[0] < 2:
        message = f"{loss} needs at least 2 classes, got an output of {last.output_shape[0]}"
    else:
        return
    raise SpecError(SpecIssue(message, last.index, last.name, None, "loss_output", list(last.output_shape)))
