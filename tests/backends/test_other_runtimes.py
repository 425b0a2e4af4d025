"""Exported ONNX in other runtimes: OpenVINO and OpenCV's DNN module compute what ONNX Runtime does.

Every registered layer type's cases (tests/layer_cases.py), every activation, every example spec
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
from tests.layer_cases import case_spec, layer_case_params
from tests.strategies import valid_spec_dicts

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
onnx_backend = pytest.importorskip("cnnspec.backends.onnx_backend")

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.yaml"))
INSTALL = "install the runtimes extra: pip install -e '.[runtimes]'"
Outputs = dict[str, np.ndarray]


# -- the runtimes: ONNX bytes and an input -> every graph output by name ---------------------------
@functools.cache
def _openvino_core():
    import openvino

    return openvino.Core()


def run_openvino(model: bytes, x: np.ndarray) -> Outputs:
    import openvino
    import openvino.properties.hint as hints

    core = _openvino_core()
    # f32, not the CPU plugin's default: on CPUs with native bf16 (AVX512-BF16, AMX) that default is
    # bf16 inference, whose ~1e-3 errors no float32 tolerance admits
    compiled = core.compile_model(core.read_model(model, b""), "CPU", {hints.inference_precision: openvino.Type.f32})
    results = compiled(x)
    return {name: results[output] for output in compiled.outputs for name in output.get_names()}  # a tensor has aliases


def run_opencv(model: bytes, x: np.ndarray) -> Outputs:
    import cv2

    net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
    net.setInput(x)
    names = list(net.getUnconnectedOutLayersNames())  # OpenCV 5's engine answers all graph outputs or none
    return dict(zip(names, net.forward(names)))


def run_onnxruntime(model: bytes, x: np.ndarray) -> Outputs:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x})))


RUNNERS: dict[str, Callable[[bytes, np.ndarray], Outputs]] = {"openvino": run_openvino, "opencv": run_opencv}
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
@pytest.mark.parametrize("layer,shape", layer_case_params())
def test_every_registered_layer_type(runtime, layer, shape):
    assert_runtime_matches(runtime, case_spec(layer, shape))


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
