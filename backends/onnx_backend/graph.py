"""spec + canonical weights -> ONNX graph, built directly with ``onnx.helper``.

No torch.onnx, no tf2onnx: one registered builder per spec class in ``BUILDERS``,
each appending a few nodes, so export takes milliseconds. Tensors are NCHW inside;
padding comes from the layer's own ``windows`` as explicit ``pads`` [top, left, bottom,
right]. Every layer's output tensor is named after the layer, so the graph
reads like the spec in Netron and the parity tool can fetch any of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from cnnspec import layers as spec_layers
from cnnspec.layers import WindowedLayer
from cnnspec.layouts import conv_to_oihw, conv_transpose_to_iohw, dense_to_out_in, depthwise_to_grouped
from cnnspec.numerics import LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE
from cnnspec.registry import BuilderTable, Site
from cnnspec.weights import Weights

FLOAT = TensorProto.FLOAT

# The graph's own interface: its input and its outputs. A layer may be called "output" or "logits" (the
# last layer of LeNet-5 is OUTPUT in the paper; "input" is refused by the spec, which means the model input
# by it), so the tensor of such a layer takes a name no layer can have (layer names have no colon).
INTERFACE = frozenset({"input", "output", "logits"})


def tensor_name(name: str) -> str:
    """The graph tensor that holds a layer's (or a layer's internal) output called ``name``."""
    return f"layer:{name}" if name in INTERFACE else name


@dataclass
class Graph:
    """Nodes and initializers under construction; ``opset`` decides which ops exist.

    Every tensor name is written once (ONNX graphs are in static single assignment form): a second
    writer is a bug in a builder, reported here by name rather than by the runtime that loads the file.
    """

    opset: int
    weights: Weights
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    written: set[str] = field(default_factory=lambda: {"input"})

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        """Append ``op``; its output tensor (and node) is called ``output``, or ``tensor_name(output)``."""
        return self._append(op, inputs, tensor_name(output), **attrs)

    def interface(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        """A node writing one of the graph's interface tensors (``INTERFACE``, or the input's NCHW view)."""
        return self._append(op, inputs, output, **attrs)

    def _append(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self._claim(output)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def constant(self, name: str, value: np.ndarray | np.floating, dtype: type = np.float32) -> str:
        self._claim(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def _claim(self, name: str) -> None:
        if name in self.written:
            raise ValueError(f"ONNX tensor {name!r} would be written twice (a builder reuses a name)")
        self.written.add(name)


# -- activations ---------------------------------------------------------------------------
def _gelu(g: Graph, x: str, out: str) -> str:
    if g.opset >= 20:
        return g.node("Gelu", [x], out)  # exact (erf) form by default
    # (x * (1 + erf(x / sqrt 2))) * 0.5, halved last: the same float32 result as halving x first (0.5 is exact),
    # and the order OpenCV's DNN (4.10 to 5.0.0) fuses correctly: with x * 0.5 first, two such GELUs in a row
    # come out twice too large (tests/backends/test_other_runtimes.py keeps the reproducer)
    half, root2 = g.constant(f"{out}/half", np.float32(0.5)), g.constant(f"{out}/sqrt2", np.float32(math.sqrt(2.0)))
    one = g.constant(f"{out}/one", np.float32(1.0))
    erf = g.node("Erf", [g.node("Div", [x, root2], f"{out}/scaled")], f"{out}/erf")
    x_one_plus = g.node("Mul", [x, g.node("Add", [erf, one], f"{out}/one_plus")], f"{out}/x_one_plus")
    return g.node("Mul", [x_one_plus, half], out)


def _clip(g: Graph, x: str, low: float | None, high: float | None, out: str) -> str:
    """Clip (min and max as inputs since opset 11; an empty name leaves one side open)."""
    bounds = [g.constant(f"{out}/{side}", np.float32(value)) if value is not None else "" for side, value in
              (("min", low), ("max", high))]  # fmt: skip
    return g.node("Clip", [x, *bounds], out)


def _hard_sigmoid(g: Graph, x: str, out: str) -> str:
    """Keras 3's ``relu6(x + 3) / 6``, in that order (ONNX's HardSigmoid, x / 6 + 0.5 clipped, rounds otherwise)."""
    shifted = g.node("Add", [x, g.constant(f"{out}/three", np.float32(3.0))], f"{out}/shifted")
    return g.node("Div", [_clip(g, shifted, 0.0, 6.0, f"{out}/relu6"), g.constant(f"{out}/six", np.float32(6.0))], out)


ACTIVATIONS: dict[str, Callable[[Graph, str, str], str]] = {
    "linear": lambda g, x, out: g.node("Identity", [x], out),
    "relu": lambda g, x, out: g.node("Relu", [x], out),
    "elu": lambda g, x, out: g.node("Elu", [x], out, alpha=1.0),
    "selu": lambda g, x, out: g.node("Selu", [x], out, alpha=SELU_ALPHA, gamma=SELU_SCALE),
    "sigmoid": lambda g, x, out: g.node("Sigmoid", [x], out),
    "tanh": lambda g, x, out: g.node("Tanh", [x], out),
    "softmax": lambda g, x, out: g.node("Softmax", [x], out, axis=1),  # channels: NCHW axis 1 (opset >= 13)
    "softplus": lambda g, x, out: g.node("Softplus", [x], out),
    "swish": lambda g, x, out: g.node("Mul", [x, g.node("Sigmoid", [x], f"{out}/sigmoid")], out),
    "gelu": _gelu,
    "leaky_relu": lambda g, x, out: g.node("LeakyRelu", [x], out, alpha=LEAKY_RELU_SLOPE),
    "relu6": lambda g, x, out: _clip(g, x, 0.0, 6.0, out),
    "hard_sigmoid": lambda g, x, out: _hard_sigmoid(g, x, out),
    "hard_silu": lambda g, x, out: g.node("Mul", [x, _hard_sigmoid(g, x, f"{out}/hard_sigmoid")], out),
    "mish": lambda g, x, out: g.node(
        "Mul", [x, g.node("Tanh", [g.node("Softplus", [x], f"{out}/softplus")], f"{out}/tanh")], out
    ),  # fmt: skip
}


def _activate(g: Graph, x: str, activation: str, name: str) -> str:
    return ACTIVATIONS[activation](g, x, name)


# -- layers: one builder per spec class ------------------------------------------------------
# @BUILDERS.builds("conv2d"): builder(layer, site) appends nodes to ``site.graph``, reading ``site.inputs``
# (tensor names), and returns the name of the tensor holding the layer's output
BUILDERS = BuilderTable("onnx")


def _window_attrs(layer: WindowedLayer, shape: tuple, kernel: tuple) -> dict[str, Any]:
    rows, cols = layer.windows(shape)
    return {
        "kernel_shape": list(kernel),
        "strides": list(layer.window_strides),
        "pads": [rows.pad_before, cols.pad_before, rows.pad_after, cols.pad_after],
    }


def _conv_window(
    g: Graph, layer: WindowedLayer, x: str, shape: tuple, kernel: tuple, out: str
) -> tuple[str, dict[str, Any]]:
    """A Conv's input and window; stride 1 along an axis with a single output position.

    There the stride spaces out positions of which there is one: it changes nothing, but oneDNN's AVX-512
    kernels, which OpenVINO's CPU plugin runs (2024.6 to 2026.4), compute a one-channel-in, one-channel-out
    Conv wrongly when its output is one column wide and the column stride is above 1
    (tests/backends/test_other_runtimes.py keeps the reproducer). So the input cells the single window
    never reads are dropped (trailing padding, then a Slice of the input) and the stride written is 1:
    the same window, the same sum.
    """
    # the same rule the torch and Keras backends use (cnnspec.shapes.single_window_plan): torch and
    # TensorFlow share that oneDNN bug on such CPUs
    (top, bottom, left, right), kept, strides = layer.single_window_plan(shape)
    attrs = {"kernel_shape": list(kernel), "strides": list(strides), "pads": [top, left, bottom, right]}
    ends = list(kept)
    if ends != list(shape[:2]):
        starts, axes = (
            g.constant(f"{out}/starts", np.zeros(2), np.int64),
            g.constant(f"{out}/axes", np.array([2, 3]), np.int64),
        )
        x = g.node("Slice", [x, starts, g.constant(f"{out}/ends", np.array(ends), np.int64), axes], f"{out}/window")
    return x, attrs


def _convolve(
    g: Graph, layer: Any, x: str, shape: tuple, kernel: tuple[str, np.ndarray], bias: str | None, out: str, **attrs: Any
) -> str:
    """A Conv node with the layer's window (strides, dilation, Keras's padding as explicit pads)."""
    x, window = _conv_window(g, layer, x, shape, layer.kernel_size, out)
    inputs = [x, g.constant(*kernel)]
    if bias is not None:
        inputs.append(g.constant(f"{layer.name}/bias", g.weights[bias]))
    return g.node("Conv", inputs, out, dilations=list(layer.dilation_rate), **window, **attrs)


def _then_activation(g: Graph, layer: Any, build: Callable[[str], str]) -> str:
    """``build(output name)``, then the layer's activation; the layer's own name ends up on the last node."""
    if layer.activation == "linear":
        return build(layer.name)
    return _activate(g, build(f"{layer.name}/linear"), layer.activation, layer.name)


def _depthwise_kernel(g: Graph, layer: Any) -> tuple[str, np.ndarray]:
    """Keras (kh, kw, in, mult) -> ONNX grouped (in * mult, 1, kh, kw)."""
    name = f"{layer.name}/depthwise_kernel"
    return name, depthwise_to_grouped(g.weights[name])


def _bias(layer: Any) -> str | None:
    return f"{layer.name}/bias" if layer.use_bias else None


@BUILDERS.builds("conv2d")
def _conv(layer: spec_layers.Conv2D, site: Site) -> str:
    g, x, shape = site.graph, site.x, site.input_shape
    kernel = (f"{layer.name}/kernel", conv_to_oihw(g.weights[f"{layer.name}/kernel"]))
    return _then_activation(
        g, layer, lambda out: _convolve(g, layer, x, shape, kernel, _bias(layer), out, group=layer.groups)
    )


@BUILDERS.builds("depthwise_conv2d")
def _depthwise_conv(layer: spec_layers.DepthwiseConv2D, site: Site) -> str:
    g, x, shape = site.graph, site.x, site.input_shape
    kernel = _depthwise_kernel(g, layer)
    return _then_activation(
        g, layer, lambda out: _convolve(g, layer, x, shape, kernel, _bias(layer), out, group=shape[-1])
    )


@BUILDERS.builds("separable_conv2d")
def _separable_conv(layer: spec_layers.SeparableConv2D, site: Site) -> str:
    g, x, shape = site.graph, site.x, site.input_shape
    depthwise = _convolve(
        g, layer, x, shape, _depthwise_kernel(g, layer), None, f"{layer.name}/depthwise", group=shape[-1]
    )
    pointwise = g.constant(f"{layer.name}/pointwise_kernel", conv_to_oihw(g.weights[f"{layer.name}/pointwise_kernel"]))
    inputs = [depthwise, pointwise] + (
        [g.constant(f"{layer.name}/bias", g.weights[f"{layer.name}/bias"])] if layer.use_bias else []
    )
    # kernel_shape written though ONNX infers it from the weights: OpenCV 4.10's importer refuses a Conv without it
    return _then_activation(g, layer, lambda out: g.node("Conv", inputs, out, kernel_shape=[1, 1]))


@BUILDERS.builds("rescaling")
def _rescaling(layer: spec_layers.Rescaling, site: Site) -> str:
    g, x = site.graph, site.x
    scaled = g.node("Mul", [x, g.constant(f"{layer.name}/scale", np.float32(layer.scale))], f"{layer.name}/scaled")
    return g.node("Add", [scaled, g.constant(f"{layer.name}/offset", np.float32(layer.offset))], layer.name)


@BUILDERS.builds("zero_padding2d")
def _zero_padding(layer: spec_layers.ZeroPadding2D, site: Site) -> str:
    """Zeros around the image, written as data: padding with -inf, then the elementwise maximum with a
    constant that is 0 on the border and -inf inside (``max(x, -inf) = x``; ``max(-inf, 0) = 0``).

    Not a zero ``Pad``: optimisers fold a zero Pad into the pads of the pool that reads it, and a
    MaxPool's pads count as -inf. ONNX Runtime's PadFusion does so from ORT_ENABLE_BASIC on (every level
    but the lowest): a max pool over negative values near the border then loses its zeros, and where
    the folded pads reach the pool's size the session refuses to load (tests/backends/test_other_runtimes.py
    keeps the reproducer). No optimiser folds a Max into a pool, and a -inf Pad folded into a MaxPool
    would mean what it says.
    """
    g, x, shape = site.graph, site.x, site.input_shape
    (top, bottom), (left, right) = layer.padding
    height, width = shape[0] + top + bottom, shape[1] + left + right
    pads = g.constant(f"{layer.name}/pads", np.array([0, 0, top, left, 0, 0, bottom, right]), np.int64)
    fill = g.constant(f"{layer.name}/fill", np.float32(-np.inf))
    padded = g.node("Pad", [x, pads, fill], f"{layer.name}/padded", mode="constant")
    border = np.zeros((1, 1, height, width), np.float32)  # broadcast over batch and channels
    border[:, :, top : top + shape[0], left : left + shape[1]] = -np.inf
    return g.node("Max", [padded, g.constant(f"{layer.name}/border", border)], layer.name)


@BUILDERS.builds("max_pool2d")
def _max_pool(layer: Any, site: Site) -> str:
    g, x, shape = site.graph, site.x, site.input_shape
    # ONNX MaxPool's padding never wins a window, as in Keras
    return g.node("MaxPool", [x], layer.name, **_window_attrs(layer, shape, layer.pool_size))


@BUILDERS.builds("min_pool2d")
def _min_pool(layer: Any, site: Site) -> str:
    g, x, shape = site.graph, site.x, site.input_shape
    negated = g.node("Neg", [x], f"{layer.name}/neg")
    pooled = g.node("MaxPool", [negated], f"{layer.name}/max", **_window_attrs(layer, shape, layer.pool_size))
    return g.node("Neg", [pooled], layer.name)


@BUILDERS.builds("avg_pool2d")
def _avg_pool(layer: Any, site: Site) -> str:
    g, x, shape = site.graph, site.x, site.input_shape
    attrs = _window_attrs(layer, shape, layer.pool_size)
    return g.node("AveragePool", [x], layer.name, count_include_pad=0, **attrs)  # real cells only


@BUILDERS.builds("sum_pool2d")
def _sum_pool(layer: Any, site: Site) -> str:
    g, x, shape = site.graph, site.x, site.input_shape
    # a depthwise Conv with a kernel of ones, as the Keras layer computes it: zero padding adds
    # nothing, and the sum is exact (a mean times the area would round twice, off by 1e-5 on big sums)
    channels = shape[-1]
    ones = g.constant(f"{layer.name}/ones", np.ones((channels, 1, *layer.pool_size), np.float32))
    x, window = _conv_window(g, layer, x, shape, layer.pool_size, layer.name)
    return g.node("Conv", [x, ones], layer.name, group=channels, **window)


_GLOBAL_OPS = {"global_avg_pool2d": "GlobalAveragePool", "global_max_pool2d": "GlobalMaxPool"}


@BUILDERS.builds(*_GLOBAL_OPS)
def _global_pool(layer: Any, site: Site) -> str:
    g, x = site.graph, site.x
    if layer.keepdims:  # (N, C, 1, 1): the NCHW form of (1, 1, C)
        return g.node(_GLOBAL_OPS[layer.type], [x], layer.name)
    return g.node("Flatten", [g.node(_GLOBAL_OPS[layer.type], [x], f"{layer.name}/pool")], layer.name, axis=1)


@BUILDERS.builds("flatten")
def _flatten(layer: Any, site: Site) -> str:
    g, x, shape = site.graph, site.x, site.input_shape
    if len(shape) == 3:  # NCHW -> NHWC first: Keras flattens in (H, W, C) order
        x = g.node("Transpose", [x], f"{layer.name}/nhwc", perm=[0, 2, 3, 1])
    return g.node("Flatten", [x], layer.name, axis=1)


@BUILDERS.builds("dense")
def _dense(layer: Any, site: Site) -> str:
    g, x = site.graph, site.x
    inputs = [x, g.constant(f"{layer.name}/kernel", dense_to_out_in(g.weights[f"{layer.name}/kernel"]))]  # transB=1
    if layer.use_bias:
        inputs.append(g.constant(f"{layer.name}/bias", g.weights[f"{layer.name}/bias"]))
    gemm_out = layer.name if layer.activation == "linear" else f"{layer.name}/gemm"
    y = g.node("Gemm", inputs, gemm_out, transB=1)
    return y if layer.activation == "linear" else _activate(g, y, layer.activation, layer.name)


# Keras's element-wise merges as ONNX's (multidirectional broadcasting, as Keras's); Average is Keras's sum, then
# the division by the number of inputs (ONNX's Mean rounds its own way)
_ELEMENTWISE_OPS = {"add": "Sum", "multiply": "Mul", "subtract": "Sub", "maximum": "Max", "minimum": "Min"}


@BUILDERS.builds(*_ELEMENTWISE_OPS, "average")
def _elementwise(layer: Any, site: Site) -> str:
    g, xs, name = site.graph, list(site.inputs), layer.name
    op = _ELEMENTWISE_OPS.get(layer.type, "Sum")
    if op in ("Mul", "Sub"):  # binary ops: folded over the inputs in order, as Keras does
        total = xs[0]
        for index, x in enumerate(xs[1:], start=1):
            total = g.node(
                op, [total, x], name if index == len(xs) - 1 and layer.type != "average" else f"{name}/{index}"
            )
        return total
    if layer.type != "average":
        return g.node(op, xs, name)
    summed = g.node("Sum", xs, f"{name}/sum")
    return g.node("Div", [summed, g.constant(f"{name}/count", np.float32(len(xs)))], name)


@BUILDERS.builds("concatenate")
def _concatenate(layer: spec_layers.Concatenate, site: Site) -> str:
    g, xs = site.graph, list(site.inputs)
    return g.node("Concat", xs, layer.name, axis=1)  # channels: NCHW axis 1, and the features of a flat input


@BUILDERS.builds("dropout", "spatial_dropout2d")
def _dropout(layer: spec_layers.Dropout, site: Site) -> str:
    g, x = site.graph, site.x
    return g.node("Identity", [x], layer.name)  # inference: identity


@BUILDERS.builds("activation")
def _activation(layer: spec_layers.Activation, site: Site) -> str:
    g, x = site.graph, site.x
    return _activate(g, x, layer.activation, layer.name)


@BUILDERS.builds("cropping2d")
def _cropping(layer: spec_layers.Cropping2D, site: Site) -> str:
    g, (height, width) = site.graph, site.input_shape[:2]
    (top, bottom), (left, right) = layer.cropping
    starts = g.constant(f"{layer.name}/starts", np.array([top, left]), np.int64)
    ends = g.constant(f"{layer.name}/ends", np.array([height - bottom, width - right]), np.int64)
    axes = g.constant(f"{layer.name}/axes", np.array([2, 3]), np.int64)
    return g.node("Slice", [site.x, starts, ends, axes], layer.name)


@BUILDERS.builds("conv2d_transpose")
def _conv_transpose(layer: spec_layers.Conv2DTranspose, site: Site) -> str:
    """ConvTranspose: its pads crop the full transposed convolution to Keras's output, its output_padding adds the
    cells at the end where the full one is shorter (the spec class's ``crops``)."""
    g = site.graph
    (top, rows), (left, columns) = layer.crops(site.input_shape)
    attrs = {
        "kernel_shape": list(layer.kernel_size), "strides": list(layer.strides), "dilations": list(layer.dilation_rate),
        "pads": [top, left, max(-rows, 0), max(-columns, 0)], "output_padding": [max(rows, 0), max(columns, 0)],
    }  # fmt: skip
    inputs = [site.x, g.constant(f"{layer.name}/kernel", conv_transpose_to_iohw(g.weights[f"{layer.name}/kernel"]))]
    if layer.use_bias:
        inputs.append(g.constant(f"{layer.name}/bias", g.weights[f"{layer.name}/bias"]))
    return _then_activation(g, layer, lambda out: g.node("ConvTranspose", inputs, out, **attrs))


def _bilinear(g: Graph, x: str, height: int, size: tuple[int, int], name: str) -> str:
    """Resize (linear, half-pixel). An image one row high is resized with its rows and columns swapped:
    OpenCV's DNN (5.0) reads past the end of a one-row input (tests/backends/test_other_runtimes.py keeps the
    reproducer), and the same interpolation of the transposed image is the same arithmetic."""
    if height != 1:
        scales = g.constant(f"{name}/scales", np.array([1.0, 1.0, *size]))
        return g.node("Resize", [x, "", scales], name, mode="linear", coordinate_transformation_mode="half_pixel")
    swapped = g.node("Transpose", [x], f"{name}/swapped", perm=[0, 1, 3, 2])
    scales = g.constant(f"{name}/scales", np.array([1.0, 1.0, size[1], size[0]]))
    resized = g.node("Resize", [swapped, "", scales], f"{name}/resized", mode="linear",
                     coordinate_transformation_mode="half_pixel")  # fmt: skip
    return g.node("Transpose", [resized], name, perm=[0, 1, 3, 2])


@BUILDERS.builds("up_sampling2d")
def _up_sampling(layer: spec_layers.UpSampling2D, site: Site) -> str:
    g, name, (rows, columns) = site.graph, layer.name, layer.size
    if layer.interpolation == "bilinear":  # half-pixel centres, as tf.image.resize
        return _bilinear(g, site.x, site.input_shape[0], (rows, columns), name)
    # nearest: each cell repeated, exactly (a Resize's nearest rounding differs between runtimes at some factors)
    height, width, channels = site.input_shape
    spread = g.node("Unsqueeze", [site.x, g.constant(f"{name}/axes", np.array([3, 5]), np.int64)], f"{name}/spread")
    repeats = g.constant(f"{name}/repeats", np.array([1, 1, 1, rows, 1, columns]), np.int64)
    tiled = g.node("Expand", [spread, repeats], f"{name}/tiled")
    shape = g.constant(f"{name}/shape", np.array([0, channels, height * rows, width * columns]), np.int64)
    return g.node("Reshape", [tiled, shape], name)


@BUILDERS.builds("reshape")
def _reshape(layer: spec_layers.Reshape, site: Site) -> str:
    g, x, target = site.graph, site.x, layer.output_shape(site.input_shape)
    if len(site.input_shape) == 3:  # channels-last order, as Keras reads the values
        x = g.node("Transpose", [x], f"{layer.name}/nhwc", perm=[0, 2, 3, 1])
    shape = g.constant(f"{layer.name}/shape", np.array([-1, *target]), np.int64)
    if len(target) == 1:
        return g.node("Reshape", [x, shape], layer.name)
    laid_out = g.node("Reshape", [x, shape], f"{layer.name}/nhwc_out")
    return g.node("Transpose", [laid_out], layer.name, perm=[0, 3, 1, 2])
