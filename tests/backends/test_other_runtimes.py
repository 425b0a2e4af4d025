"""Exported ONNX in other runtimes: OpenVINO and OpenCV's DNN module compute what ONNX Runtime does.

Every registered layer type's cases (tests/layers/cases.py), every activation, every example spec
and random valid specs are exported with random weights and run in ONNX Runtime, the reference
(tests/parity proves it matches Keras and torch), and in each other runtime; every graph output
(the probabilities, the logits, and with ``all_layer_outputs`` each layer's output) must agree
within the tolerance rule of cnnspec/numerics.py. Layouts: OpenVINO gets the default NHWC export,
OpenCV the NCHW one (what ``cv2.dnn.blobFromImage`` makes); the example specs run in both layouts
in both runtimes. The batch stays dynamic: both runtimes take any batch size.

Where a runtime miscomputed a construct, graph.py writes an equivalent graph that it computes
right; the minimal graph that shows each bug is kept here as a strict xfail, so a release that
fixes it is noticed. README.md ("ONNX in other runtimes") has the table.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

import cnnspec
from cnnspec.fields import ACTIVATIONS
from cnnspec.numerics import layer_tolerances, max_difference, tolerance_for
from cnnspec.weights import random_weights
from tests.strategies import valid_spec_dicts

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
onnx_backend = pytest.importorskip("cnnspec.backends.onnx_backend")
from cnnspec.backends.onnx_backend import runners  # noqa: E402  (after the importorskip that guards it)

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.yaml"))
INSTALL = "install the runtimes extra: pip install -e '.[runtimes]'"
Outputs = dict[str, np.ndarray]


# -- the runtimes: ONNX bytes and an input -> every graph output by name (cnnspec's own runners) ---------
def run_onnxruntime(model: bytes, x: np.ndarray) -> Outputs:
    """The reference: ONNX Runtime at its default optimisation level (tests/parity proves it matches Keras)."""
    return runners.run("onnxruntime (enable_all)", model, x)


RUNNERS: dict[str, Callable[[bytes, np.ndarray], Outputs]] = {
    "openvino": functools.partial(runners.run, "openvino (CPU, f32)"),
    "opencv": functools.partial(runners.run, "opencv dnn"),
}
MODULES = {"openvino": "openvino", "opencv": "cv2"}
LAYOUTS = {"openvino": "nhwc", "opencv": "nchw"}  # each runtime's natural input layout


@pytest.fixture(params=list(RUNNERS), scope="module")
def runtime(request: pytest.FixtureRequest) -> str:
    pytest.importorskip(MODULES[request.param], reason=f"{request.param} is not installed; {INSTALL}")
    return request.param


def _tolerances(x: np.ndarray, reference: Outputs, model: onnx.ModelProto) -> dict[str, float]:
    """Per graph output, the tolerance rule: layer outputs (in layer order) get the largest magnitude
    carried up to them; the final outputs (probabilities, logits) the largest of all."""
    final = {"output", "logits"}
    layers = [o.name for o in model.graph.output if o.name not in final]
    tolerances = dict(zip(layers, layer_tolerances(x, [reference[name] for name in layers])))
    everything = tolerance_for(x, *reference.values())
    return {name: tolerances.get(name, everything) for name in reference}


def assert_runtime_matches(
    runtime: str, spec: cnnspec.ModelSpec, layout: str | None = None, opset: int | None = None, seed: int = 0
) -> None:
    """The spec's export, random weights and inputs: ``runtime`` gives ONNX Runtime's outputs.

    Twice: the file a user ships (probabilities and logits), then the same graph with every
    layer's output exposed, whose first differing output names the layer to blame.
    """
    layout = layout or LAYOUTS[runtime]
    weights = random_weights(spec, seed)
    x = np.random.default_rng(seed).normal(0, 1, (3, *spec.input_shape)).astype(np.float32)
    if layout == "nchw":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    for all_layer_outputs in (False, True):
        model = onnx_backend.to_onnx(
            spec, weights, opset=opset or onnx_backend.DEFAULT_OPSET, layout=layout, all_layer_outputs=all_layer_outputs
        )
        data = model.SerializeToString()
        expected = run_onnxruntime(data, x)
        got = RUNNERS[runtime](data, x)
        tolerances = _tolerances(x, expected, model)
        for name, reference in expected.items():
            assert name in got, f"{runtime} gave no output {name!r} (it has {sorted(got)})"
            diff = max_difference(got[name], reference)
            assert diff <= tolerances[name], (
                f"{spec.name}: {runtime} vs ONNX Runtime, output {name!r} ({layout}): {diff:.2e} > {tolerances[name]:.1e}"
            )


# -- what cnnspec exports ---------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [onnx_backend.MIN_OPSET, onnx_backend.DEFAULT_OPSET, onnx_backend.MAX_OPSET])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_in_every_place(runtime, activation, opset):
    # two activations in a row too: OpenCV miscomputed a GELU after a GELU (see the reproducer below);
    # from opset 20 GELU is one node
    layers = [
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "activation": activation},
        {"type": "activation", "activation": activation},
        {"type": "flatten"},
        {"type": "dense", "units": 5, "activation": activation},
    ]
    spec = cnnspec.load_spec({"name": "acts", "input_shape": [6, 5, 2], "layers": layers})
    assert_runtime_matches(runtime, spec, opset=opset)


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_example_spec(runtime, path, layout):
    assert_runtime_matches(runtime, cnnspec.load_spec(path), layout)


@settings(max_examples=25)
@given(doc=valid_spec_dicts())
def test_random_valid_specs(runtime, doc):
    assert_runtime_matches(runtime, cnnspec.load_spec(doc))


# One input channel, one output channel, a single output column and a column stride above 1: what
# OpenVINO computed wrongly on AVX-512 CPUs. graph.py writes stride 1 there (cropping the cells the one window
# never reads), so these specs, on grayscale-sized inputs, check that rule in every runtime and against numpy.
SINGLE_COLUMN = {
    "conv2d": {"type": "conv2d", "filters": 1},
    "depthwise_conv2d": {"type": "depthwise_conv2d"},
    "separable_conv2d": {"type": "separable_conv2d", "filters": 1},
    "sum_pool2d": {"type": "sum_pool2d"},
}
# (input, window, padding): the window overhangs a narrow input (padding trimmed), or leaves its
# right-hand cells unread (input cropped)
SINGLE_COLUMN_WINDOWS = [((7, 2, 1), [4, 4], "same"), ((6, 6, 1), [2, 4], "valid"), ((5, 3, 1), [3, 2], "same")]


def _single_column_spec(kind: str, shape: tuple, window: list, padding: str) -> cnnspec.ModelSpec:
    size_field = "pool_size" if kind.endswith("pool2d") else "kernel_size"
    layer = {**SINGLE_COLUMN[kind], size_field: window, "strides": [1, 3], "padding": padding}
    layers = [layer, {"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"}]
    spec = cnnspec.load_spec({"name": "single_column", "input_shape": list(shape), "layers": layers})
    assert spec.summary().layers[0].output_shape[1] == 1  # one output column, as the rule needs
    return spec


@pytest.mark.parametrize("shape,window,padding", SINGLE_COLUMN_WINDOWS, ids=lambda v: str(v))
@pytest.mark.parametrize("kind", list(SINGLE_COLUMN))
def test_a_single_output_column_with_a_stride(runtime, kind, shape, window, padding):
    assert_runtime_matches(runtime, _single_column_spec(kind, shape, window, padding))


def _single_column_reference(spec: cnnspec.ModelSpec, weights: dict, x: np.ndarray) -> np.ndarray:
    """The first layer's output in float64 numpy: one (kh, kw) kernel slid over Keras's zero padding."""
    layer, name = spec.layers[0], spec.layers[0].name
    if layer.type == "sum_pool2d":
        kernel, bias = np.ones(layer.pool_size), 0.0
    else:  # one channel in and out: every kind is one kernel (a separable one scaled by its pointwise weight)
        kernel = weights[f"{name}/kernel" if layer.type == "conv2d" else f"{name}/depthwise_kernel"][..., 0, 0]
        if layer.type == "separable_conv2d":
            kernel = kernel * weights[f"{name}/pointwise_kernel"][0, 0, 0, 0]
        bias = weights[f"{name}/bias"][0]
    rows, cols = layer.windows(spec.input_shape)
    padded = np.pad(x[..., 0], ((0, 0), (rows.pad_before, rows.pad_after), (cols.pad_before, cols.pad_after)))
    (kh, kw), (sh, sw) = kernel.shape, layer.window_strides
    sums = [
        [(padded[:, i * sh : i * sh + kh, j * sw : j * sw + kw] * kernel).sum(axis=(1, 2)) for j in range(cols.size)]
        for i in range(rows.size)
    ]
    return np.asarray(sums, np.float64).transpose(2, 0, 1)[..., None] + bias


@pytest.mark.parametrize("shape,window,padding", SINGLE_COLUMN_WINDOWS, ids=lambda v: str(v))
@pytest.mark.parametrize("kind", list(SINGLE_COLUMN))
def test_a_single_output_column_with_a_stride_is_computed_right_in_onnx_runtime(kind, shape, window, padding):
    # against numpy, not torch or Keras: on this kind of CPU (AVX-512/AMX) their oneDNN kernels share
    # OpenVINO's bug for this very convolution
    spec = _single_column_spec(kind, shape, window, padding)
    weights = random_weights(spec, 0)
    x = np.random.default_rng(0).normal(0, 1, (3, *spec.input_shape)).astype(np.float32)
    model = onnx_backend.to_onnx(spec, weights, all_layer_outputs=True)
    got = run_onnxruntime(model.SerializeToString(), x)[spec.layers[0].name].transpose(0, 2, 3, 1)
    expected = _single_column_reference(spec, weights, x.astype(np.float64))
    assert max_difference(got, expected) <= layer_tolerances(x, [expected])[0]


# -- the runtimes' own bugs, each in its smallest graph ---------------------------------------------------
def _graph(nodes: list, initializers: list, shape: list[int], output_shape: list[int]) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "reproducer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, output_shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _assert_same_as_onnxruntime(runtime: str, model: bytes, x: np.ndarray) -> None:
    expected = run_onnxruntime(model, x)
    got = RUNNERS[runtime](model, x)
    for name, reference in expected.items():
        assert max_difference(got[name], reference) <= tolerance_for(x, reference)


def _onednn_runs_avx512() -> bool:
    """Whether oneDNN picks its AVX-512 kernels here (the CPU has them and ONEDNN_MAX_CPU_ISA allows them)."""
    from cnnspec.hardware import cpu_info

    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return "avx512f" in cpu_info().flags and (limit in ("ALL", "DEFAULT") or limit.startswith("AVX512"))


@pytest.mark.xfail(
    _onednn_runs_avx512(),
    strict=True,
    raises=AssertionError,
    reason="OpenVINO CPU bug (2024.6 to 2026.4.1; oneDNN's AVX-512 kernels, right with AVX2): a Conv with one input "
    "and one output channel, one output column and a column stride above 1 gives wrong values; graph.py writes stride 1",
)
def test_openvino_single_column_strided_conv_reproducer():
    pytest.importorskip("openvino", reason=f"openvino is not installed; {INSTALL}")
    from onnx import helper, numpy_helper

    kernel = numpy_helper.from_array(np.random.default_rng(1).normal(size=(1, 1, 4, 4)).astype(np.float32), "kernel")
    conv = helper.make_node(
        "Conv", ["input", "kernel"], ["output"], kernel_shape=[4, 4], strides=[1, 3], pads=[1, 1, 2, 1]
    )
    model = _graph([conv], [kernel], [1, 1, 7, 2], [1, 1, 7, 1])  # 2 columns + 2 padding = one 4-wide window
    _assert_same_as_onnxruntime(
        "openvino", model, np.random.default_rng(0).normal(size=(1, 1, 7, 2)).astype(np.float32)
    )


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="OpenCV DNN bug (4.10 to 5.0.0): two exact GELUs written as (x * 0.5) * (1 + erf(x / sqrt 2)) in a row: "
    "the second comes out twice too large; graph.py halves last, (x * (1 + erf(x / sqrt 2))) * 0.5",
)
def test_opencv_gelu_after_gelu_reproducer():
    pytest.importorskip("cv2", reason=f"opencv is not installed; {INSTALL}")
    from onnx import helper, numpy_helper

    def gelu(x: str, out: str) -> tuple[list, list]:
        constants = {"sqrt2": math.sqrt(2.0), "half": 0.5, "one": 1.0}
        nodes = [
            helper.make_node("Div", [x, f"{out}/sqrt2"], [f"{out}/scaled"]),
            helper.make_node("Erf", [f"{out}/scaled"], [f"{out}/erf"]),
            helper.make_node("Mul", [x, f"{out}/half"], [f"{out}/half_x"]),
            helper.make_node("Add", [f"{out}/erf", f"{out}/one"], [f"{out}/one_plus"]),
            helper.make_node("Mul", [f"{out}/half_x", f"{out}/one_plus"], [out]),
        ]
        return nodes, [numpy_helper.from_array(np.float32(v), f"{out}/{k}") for k, v in constants.items()]

    (first, first_constants), (second, second_constants) = gelu("input", "gelu_1"), gelu("gelu_1", "gelu_2")
    model = _graph(first + second, first_constants + second_constants, [2, 3], [2, 3])
    _assert_same_as_onnxruntime("opencv", model, np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3))


# -- what the runtimes' optimisers rewrite: the file as written, at every optimisation level -----------------------
@pytest.mark.parametrize("zeros", [1, [[1, 2], [2, 1]], [[3, 0], [0, 3]]], ids=["1", "uneven", "beyond-window"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d", "min_pool2d", "sum_pool2d"])
def test_zero_padding_then_pooling_on_negative_values_in_every_runtime(pool, padding, zeros):
    """ResNetV2's stem (ZeroPadding2D, then MaxPooling2D) on values below zero, where a zero of the padding wins
    a max-pool window: the exported file gives Keras's output in ONNX Runtime at every optimisation level, in
    OpenVINO and in OpenCV. "beyond-window" pads 3 cells before a 3-wide pool: some windows are all padding."""
    keras_backend = pytest.importorskip("cnnspec.backends.keras_backend")
    layers = [
        {"type": "zero_padding2d", "padding": zeros},
        {"type": pool, "pool_size": 3, "strides": 2, "padding": padding},
        {"type": "flatten"},  # the pooled values themselves are the output
    ]
    spec = cnnspec.load_spec({"name": "stem", "input_shape": [7, 6, 3], "layers": layers})
    x = np.random.default_rng(0).normal(-1.5, 1.0, (3, 7, 6, 3)).astype(np.float32)
    expected = keras_backend.predict(keras_backend.build(spec), x)
    model = onnx_backend.to_onnx(spec, random_weights(spec, 0)).SerializeToString()
    ran = [name for name in runners.RUNNERS if runners.missing(name) is None]
    assert len(ran) >= len(runners.ONNXRUNTIME_RUNNERS)
    for name in ran:
        diff = max_difference(runners.run(name, model, x)["output"], expected)
        assert diff <= tolerance_for(x, expected), f"{name}: {diff:.2e}"


def _zero_pad_then_max_pool(pads: list[int], kernel: int) -> bytes:
    """Pad (zeros, NCHW pads) then MaxPool, nothing else: the pattern ONNX Runtime's PadFusion rewrites."""
    from onnx import helper, numpy_helper

    pads_tensor = numpy_helper.from_array(np.array(pads, np.int64), "pads")
    nodes = [
        helper.make_node("Pad", ["input", "pads"], ["padded"], mode="constant"),
        helper.make_node("MaxPool", ["padded"], ["output"], kernel_shape=[kernel, kernel], strides=[1, 1]),
    ]
    size = 4 + pads[2] + pads[6] - kernel + 1
    return _graph(nodes, [pads_tensor], [1, 1, 4, 4], [1, 1, size, size])


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="ONNX Runtime bug (1.31.1 and before; optimiser PadFusion, from ORT_ENABLE_BASIC): it folds a zero Pad "
    "into the pads of the MaxPool that reads it, where padding counts as -inf, so windows of negative values lose the "
    "zeros that should win; graph.py writes zero padding as Pad(-inf) then Max with a border of zeros",
)
def test_onnxruntime_folds_a_zero_pad_into_max_pool_reproducer():
    model = _zero_pad_then_max_pool([0, 0, 1, 1, 0, 0, 1, 1], kernel=3)
    x = -1.0 - np.random.default_rng(0).random((1, 1, 4, 4), dtype=np.float32)  # every value below zero
    as_written = runners.run("onnxruntime (disable_all)", model, x)["output"]
    assert (as_written[0, 0, 0, 0], as_written[0, 0, 1, 1]) == (0.0, x[0, 0, :3, :3].max())  # the file is right
    assert max_difference(runners.run("onnxruntime (enable_basic)", model, x)["output"], as_written) == 0.0


@pytest.mark.xfail(
    strict=True,
    raises=runners.RuntimeFailed,
    reason="ONNX Runtime bug (1.31.1 and before; PadFusion again): where the folded pads reach the MaxPool's window "
    "size, the session refuses to load ('Pad should be smaller than kernel') a graph that is valid as written",
)
def test_onnxruntime_refuses_a_zero_pad_folded_beyond_the_window_reproducer():
    model = _zero_pad_then_max_pool([0, 0, 2, 2, 0, 0, 2, 2], kernel=2)
    x = np.random.default_rng(0).normal(size=(1, 1, 4, 4)).astype(np.float32)
    runners.run("onnxruntime (disable_all)", model, x)  # valid as written
    runners.run("onnxruntime (enable_basic)", model, x)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="OpenCV DNN bug (5.0.0): a BatchNormalization after a Conv and an activation other than ReLU (tanh, "
    "sigmoid, elu, swish, gelu) is fused into the Conv as if it came before the activation, 0.1 to 1.9 off; "
    "graph.py writes inference batch norm as Mul and Add",
)
def test_opencv_fuses_batch_norm_across_an_activation_reproducer():
    pytest.importorskip("cv2", reason=f"opencv is not installed; {INSTALL}")
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)
    constants = {
        "kernel": rng.normal(size=(2, 2, 1, 1)),
        "gamma": rng.uniform(0.5, 2.0, 2),
        "beta": rng.normal(size=2),
        "mean": rng.normal(size=2),
        "variance": rng.uniform(0.5, 2.0, 2),
    }
    nodes = [
        helper.make_node("Conv", ["input", "kernel"], ["conv"], kernel_shape=[1, 1]),
        helper.make_node("Tanh", ["conv"], ["tanh"]),
        helper.make_node("BatchNormalization", ["tanh", "gamma", "beta", "mean", "variance"], ["output"]),
    ]
    initializers = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in constants.items()]
    model = _graph(nodes, initializers, [1, 2, 3, 3], [1, 2, 3, 3])
    _assert_same_as_onnxruntime("opencv", model, rng.normal(size=(1, 2, 3, 3)).astype(np.float32))


@pytest.mark.xfail(
    strict=True,
    raises=runners.RuntimeFailed,
    reason="OpenCV DNN bug (5.0.0): a PRelu after a Conv is fused into it as an activation that must have one "
    "slope per channel, so a slope per position (Keras's PReLU without shared_axes) fails an assertion "
    "('activParams.size() == K'); graph.py writes PReLU as relu(x) - alpha * relu(-x)",
)
def test_opencv_fuses_prelu_into_a_convolution_reproducer():
    pytest.importorskip("cv2", reason=f"opencv is not installed; {INSTALL}")
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Conv", ["input", "kernel"], ["conv"], kernel_shape=[1, 1]),
        helper.make_node("PRelu", ["conv", "slope"], ["output"]),
    ]
    initializers = [
        numpy_helper.from_array(rng.normal(size=(2, 2, 1, 1)).astype(np.float32), "kernel"),
        numpy_helper.from_array(rng.uniform(0.1, 0.5, (2, 3, 3)).astype(np.float32), "slope"),
    ]
    model = _graph(nodes, initializers, [1, 2, 3, 3], [1, 2, 3, 3])
    _assert_same_as_onnxruntime("opencv", model, rng.normal(size=(1, 2, 3, 3)).astype(np.float32))


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="OpenCV DNN bug (5.0.0): a linear Resize of an input one row high reads past the end of it (values "
    "around 1e10, from whatever memory follows, so not on every run; twenty runs show it); graph.py resizes such "
    "an image with its rows and columns swapped",
)
def test_opencv_resizes_a_one_row_image_reproducer():
    pytest.importorskip("cv2", reason=f"opencv is not installed; {INSTALL}")
    from onnx import helper, numpy_helper

    node = helper.make_node("Resize", ["input", "", "scales"], ["output"], mode="linear",
                            coordinate_transformation_mode="half_pixel")  # fmt: skip
    scales = numpy_helper.from_array(np.array([1.0, 1.0, 2.0, 3.0], np.float32), "scales")
    model = _graph([node], [scales], [3, 2, 1, 5], [3, 2, 2, 15])
    for seed in range(20):
        _assert_same_as_onnxruntime(
            "opencv", model, np.random.default_rng(seed).normal(size=(3, 2, 1, 5)).astype(np.float32)
        )
