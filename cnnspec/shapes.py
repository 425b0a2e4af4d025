"""Shape checking: the window arithmetic, and the walk that gives a spec its summary.

Pure Python, no framework import. Each layer class holds its own rule
(``output_shape``, ``variables``; see ``cnnspec.layers``); this module applies them in
order, turns a ``ShapeViolation`` into a ``SpecError`` naming the layer, and builds
the Keras-style summary with the parameter counts Keras's ``count_params()``
reports. Backends read padding amounts from ``window`` (through each windowed
layer's ``windows``) instead of working them out again.

>>> window(7, kernel=3, stride=2, dilation=1, padding="same")
Window(size=4, pad_before=1, pad_after=1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import SpecError, SpecIssue

if TYPE_CHECKING:
    from .spec import ModelSpec  # only the annotation: the spec imports this module, not the reverse

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


# (pads (top, bottom, left, right), input (height, width) to keep, strides)
WindowPlan = tuple[tuple[int, int, int, int], tuple[int, int], tuple[int, int]]


def single_window_plan(
    size: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dilation: Sequence[int], padding: str
) -> WindowPlan:
    """The same convolution with stride 1 along any axis that has a single output position.

    There the stride changes nothing, but oneDNN's AVX-512 convolution kernels (torch, TensorFlow and
    OpenVINO use them on such CPUs) compute a narrow convolution one output column wide with a column
    stride above 1 wrongly (values up to 1e33). So the input cells the one window never reads are
    dropped and stride 1 is used; where no axis qualifies this is exactly Keras's window.
    """
    pads, ends, kept = [], list(size[:2]), list(strides)
    for axis in range(2):
        win = window(size[axis], kernel[axis], strides[axis], dilation[axis], padding)
        before, after = win.pad_before, win.pad_after
        if win.size == 1 and strides[axis] > 1:
            span = (kernel[axis] - 1) * dilation[axis] + 1
            unused = size[axis] + before + after - span  # cells after the one window
            trimmed = min(unused, after)
            after -= trimmed
            ends[axis] -= unused - trimmed
            kept[axis] = 1
        pads += [before, after]
    return (pads[0], pads[1], pads[2], pads[3]), (ends[0], ends[1]), (kept[0], kept[1])


class ShapeViolation(Exception):
    """Raised by a layer's shape rule; ``infer_shapes`` adds the layer index and name."""

    def __init__(self, message: str, field: str | None, rule: str, value: Any = None):
        super().__init__(message)
        self.field, self.rule, self.value = field, rule, value


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
    keras_class: str = ""
    inputs: tuple[str, ...] = ()  # the layers (or "input") it reads, in order
    input_shapes: tuple[Shape, ...] = ()  # their shapes (``input_shape`` is the first)

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
    def is_graph(self) -> bool:
        """True when some layer reads anything but the layer before it (a skip, a branch, a merge)."""
        previous = [INPUT, *(layer.name for layer in self.layers[:-1])]
        return any(layer.inputs != (before,) for layer, before in zip(self.layers, previous))

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
            # a graph's layers also say what they read (a straight spec's output keeps its documented form)
            "layers": [
                {**layer.to_dict(), "inputs": list(layer.inputs)} if self.is_graph else layer.to_dict()
                for layer in self.layers
            ],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
        }

    def table(self) -> str:
        """A Keras-style summary: layer (type), output shape with batch as None, params; a graph adds
        Keras's functional "Connected to" column."""
        graph = self.is_graph
        rows = [("Layer (type)", "Output Shape", "Param #", *(("Connected to",) if graph else ()))]
        for layer in self.layers:
            cells = (f"{layer.name} ({layer.keras_class})", _batch_shape(layer.output_shape), f"{layer.params:,}")
            rows.append((*cells, *((", ".join(layer.inputs),) if graph else ())))
        widths = [max(len(row[col]) for row in rows) + 2 for col in range(len(rows[0]))]
        widths[2] = max(widths[2], 10)
        rule_len = sum(widths) + (2 if graph else 0)

        def line(row: tuple[str, ...]) -> str:
            text = row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2].rjust(widths[2])
            return text + ("  " + row[3] if graph else "")

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

    def _repr_html_(self) -> str:
        """The summary as an HTML table (Jupyter)."""
        from .display import html_table

        graph = self.is_graph
        rows = [("input", "InputLayer", _batch_shape(self.input_shape), "0", *(("",) if graph else ()))]
        rows += [
            (
                li.name,
                li.keras_class,
                _batch_shape(li.output_shape),
                f"{li.params:,}",
                *((", ".join(li.inputs),) if graph else ()),
            )
            for li in self.layers
        ]
        totals = (
            f"Total params: {self.total_params:,} · trainable {self.trainable_params:,} · "
            f"non-trainable {self.non_trainable_params:,}"
        )
        headers = ("Layer", "Type", "Output Shape", "Param #", *(("Connected to",) if graph else ()))
        return html_table(headers, rows, caption=f'Model "{self.name}"') + (f"<p>{totals}</p>")


def _batch_shape(shape: Shape) -> str:
    return "(None, " + ", ".join(str(d) for d in shape) + ")"


def format_bytes(size: float) -> str:
    """Bytes as Keras's summary writes them (1024-based units, two decimals)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


INPUT = "input"  # how ``inputs`` names the model input (no layer may be called that)


def infer_shapes(spec: ModelSpec) -> ShapeReport:
    """Walk the layers in order (each reads earlier layers: by default the one before it); raise
    ``SpecError`` naming the first layer that does not fit, or a layer whose output nothing reads."""
    shapes: dict[str, Shape] = {INPUT: tuple(spec.input_shape)}
    later = {layer.name: index for index, layer in enumerate(spec.layers)}
    read: set[str] = set()
    layers: list[LayerShape] = []
    previous = INPUT
    for index, layer in enumerate(spec.layers):
        name = layer.name or f"{layer.type}_{index}"
        sources = list(layer.inputs) if layer.inputs is not None else [previous]
        try:
            ins = [_source_shape(source, shapes, later, index) for source in sources]
            out = _layer_output(layer, sources, ins)
            trainable, frozen = layer.param_counts(ins[0])
        except ShapeViolation as err:
            raise SpecError(SpecIssue(str(err), index, name, err.field, err.rule, err.value)) from None
        read.update(sources)
        layers.append(LayerShape(
            index, name, layer.type, ins[0], out, trainable + frozen, trainable, layer.keras_class,
            tuple(sources), tuple(ins),
        ))  # fmt: skip
        shapes[name] = out
        previous = name
    for info in layers[:-1]:
        if info.name not in read:
            raise SpecError(SpecIssue(
                f"nothing reads the output of {info.name!r} (a dead branch): the last layer is the model's only "
                "output, so every other layer must feed a later one", info.index, info.name, "inputs", "dead_branch",
            ))  # fmt: skip
    _check_loss_output(spec, layers[-1])
    return ShapeReport(spec.name, tuple(spec.input_shape), tuple(layers))


def _source_shape(source: str, shapes: dict[str, Shape], later: dict[str, int], index: int) -> Shape:
    if source in shapes:
        return shapes[source]
    if source in later:
        raise ShapeViolation(
            f"input {source!r} is layer {later[source]}, which comes later: layers run in the order they are "
            "listed, so a layer can only read earlier ones", "inputs", "input_order", source,
        )  # fmt: skip
    known = ", ".join([INPUT, *list(shapes)[1:]][-6:])
    raise ShapeViolation(f"no layer named {source!r} before this one (known: {known})", "inputs", "input_name", source)


def _layer_output(layer: Any, sources: list[str], shapes: list[Shape]) -> Shape:
    if layer.merges:
        if len(sources) < 2:
            raise ShapeViolation(
                f"{layer.type} merges two or more inputs, got {len(sources)}", "inputs", "merge_inputs", sources
            )
        return layer.merge_shape(shapes)
    if len(sources) != 1:
        raise ShapeViolation(
            f"{layer.type} reads one input, got {len(sources)} ({', '.join(sources)}): merge them with add or "
            "concatenate first", "inputs", "one_input", sources,
        )  # fmt: skip
    return layer.output_shape(shapes[0])


def _check_loss_output(spec: ModelSpec, last: LayerShape) -> None:
    """A cross-entropy over classes reads the last axis as class scores, at every position of any others (a
    vector of scores, or a map of them: Keras's losses take (batch, ..., classes) alike); other losses read
    any output."""
    loss = spec.training.loss
    if last.output_shape[-1] >= loss.min_channels:
        return
    message = (
        f"{loss} needs at least {loss.min_channels} classes on the output's last axis, got {last.output_shape}"
        + ("; for one probability per output use binary_crossentropy" if last.output_shape[-1] == 1 else "")
    )
    raise SpecError(SpecIssue(message, last.index, last.name, None, "loss_output", list(last.output_shape)))
