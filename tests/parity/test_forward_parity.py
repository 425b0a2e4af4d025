"""Forward parity: the same canonical weights give the same per-layer outputs in Keras, torch and ONNX Runtime.

Every registered layer type's cases (tests/layers/cases.py); then a matrix over
the windowed types, both paddings, strides 1-3, odd and even and
non-square kernels, odd input sizes, batch norm with non-trivial statistics and
every activation; then every example spec and random valid specs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import cnnspec
from cnnspec.fields import ACTIVATIONS
from tests.parity.helpers import assert_same_per_layer, spec_of
from tests.strategies import valid_spec_dicts

torch_backend = pytest.importorskip("cnnspec.backends.torch_backend")
keras_backend = pytest.importorskip("cnnspec.backends.keras_backend")
onnx_backend = pytest.importorskip("cnnspec.backends.onnx_backend")
BACKENDS = [("keras", keras_backend), ("torch", torch_backend), ("onnx", onnx_backend)]

WINDOWS = [(k, s, p) for k in (1, 2, 3, (2, 3), (4, 1)) for s in (1, 2, 3) for p in ("valid", "same")]
INPUTS = [(7, 9, 2), (8, 8, 3), (5, 11, 1)]


def _id(value):
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("input_shape", INPUTS, ids=_id)
@pytest.mark.parametrize("kernel,stride,padding", WINDOWS, ids=lambda v: _id(v))
def test_conv2d(kernel, stride, padding, input_shape):
    layer = {
        "type": "conv2d",
        "filters": 3,
        "kernel_size": list(kernel) if isinstance(kernel, tuple) else kernel,
        "strides": stride,
        "padding": padding,
    }
    assert_same_per_layer(spec_of([layer], input_shape), BACKENDS)


@pytest.mark.parametrize("dilation", [2, (1, 3)], ids=_id)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_dilated_conv2d(dilation, padding):
    layer = {
        "type": "conv2d",
        "filters": 2,
        "kernel_size": 3,
        "padding": padding,
        "dilation_rate": list(dilation) if isinstance(dilation, tuple) else dilation,
    }
    assert_same_per_layer(spec_of([layer], (9, 10, 2)), BACKENDS)


@pytest.mark.parametrize("kind", ["depthwise_conv2d", "separable_conv2d"])
@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("kernel,stride,padding", WINDOWS[::2], ids=lambda v: _id(v))
def test_depthwise_and_separable_conv2d(kind, multiplier, kernel, stride, padding):
    layer = {
        "type": kind,
        "kernel_size": list(kernel) if isinstance(kernel, tuple) else kernel,
        "strides": stride,
        "padding": padding,
        "depth_multiplier": multiplier,
    }
    if kind == "separable_conv2d":
        layer["filters"] = 3
    assert_same_per_layer(spec_of([layer], (7, 9, 2)), BACKENDS)


@pytest.mark.parametrize("kind", ["depthwise_conv2d", "separable_conv2d"])
@pytest.mark.parametrize("dilation", [2, (1, 3)], ids=_id)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_dilated_depthwise_and_separable_conv2d(kind, dilation, padding):
    layer = {
        "type": kind,
        "kernel_size": 3,
        "padding": padding,
        "depth_multiplier": 2,
        "dilation_rate": list(dilation) if isinstance(dilation, tuple) else dilation,
    }
    if kind == "separable_conv2d":
        layer["filters"] = 2
    assert_same_per_layer(spec_of([layer], (9, 10, 3)), BACKENDS)


@pytest.mark.parametrize("padding", [0, 2, [1, 3], [[0, 2], [3, 1]]], ids=str)
def test_zero_padding_then_valid_conv(padding):
    layers = [{"type": "zero_padding2d", "padding": padding}, {"type": "conv2d", "filters": 2, "kernel_size": 3}]
    assert_same_per_layer(spec_of(layers, (5, 6, 2)), BACKENDS)


def test_rescaling_takes_raw_pixels_to_what_the_network_expects():
    layers = [
        {"type": "rescaling", "scale": 1 / 255, "offset": -0.5},
        {"type": "conv2d", "filters": 2, "kernel_size": 2},
    ]
    spec = spec_of(layers, (4, 5, 1))
    raw = np.random.default_rng(0).integers(0, 256, (4, 4, 5, 1)).astype(np.float32)
    assert_same_per_layer(spec, BACKENDS, x=raw)


POOLS = ["max_pool2d", "avg_pool2d", "min_pool2d", "sum_pool2d"]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize(
    "size,stride,padding",
    [(k, s, p) for k in (2, 3, (2, 3)) for s in (1, 2, 3, None) for p in ("valid", "same")],
    ids=lambda v: _id(v),
)
def test_pooling(pool, size, stride, padding):
    layer = {"type": pool, "pool_size": list(size) if isinstance(size, tuple) else size, "padding": padding}
    if stride is not None:
        layer["strides"] = stride
    assert_same_per_layer(spec_of([layer], (7, 8, 2)), BACKENDS)


@pytest.mark.parametrize("pool", ["global_avg_pool2d", "global_max_pool2d"])
def test_global_pooling(pool):
    layers = [{"type": pool}, {"type": "dense", "units": 3, "activation": "softmax"}]
    assert_same_per_layer(spec_of(layers, (5, 7, 3), head=False), BACKENDS)


@pytest.mark.parametrize(
    "options", [{}, {"center": False}, {"scale": False}, {"epsilon": 0.1, "momentum": 0.5}], ids=str
)
@pytest.mark.parametrize("flat", [False, True])
def test_batch_norm_inference_with_non_trivial_statistics(options, flat):
    layers = [{"type": "flatten"}, {"type": "batch_norm", **options}] if flat else [{"type": "batch_norm", **options}]
    head = [{"type": "dense", "units": 3}] if flat else [{"type": "flatten"}, {"type": "dense", "units": 3}]
    assert_same_per_layer(spec_of(layers + head, (4, 5, 3), head=False), BACKENDS)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_in_every_place(activation):
    layers = [
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "activation": activation},
        {"type": "activation", "activation": activation},
        {"type": "flatten"},
        {"type": "dense", "units": 5, "activation": activation},
    ]
    assert_same_per_layer(spec_of(layers, (6, 5, 2), head=False), BACKENDS)


def test_dropout_is_identity_at_inference():
    assert_same_per_layer(spec_of([{"type": "dropout", "rate": 0.5}], (4, 4, 2)), BACKENDS)


def test_flatten_order_through_a_dense_layer():
    # A wide dense after a non-square feature map: a wrong flatten order cannot hide here.
    layers = [{"type": "conv2d", "filters": 5, "kernel_size": 2}, {"type": "flatten"}, {"type": "dense", "units": 7}]
    assert_same_per_layer(spec_of(layers, (6, 4, 3)), BACKENDS)


def test_every_example_spec(example_spec_path):
    assert_same_per_layer(cnnspec.load_spec(example_spec_path), BACKENDS)


@settings(max_examples=25)
@given(valid_spec_dicts())
def test_random_valid_specs(doc):
    assert_same_per_layer(cnnspec.load_spec(doc), BACKENDS)
