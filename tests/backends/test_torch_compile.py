"""The PyTorch compiler: shapes equal the shape checker's; weights round-trip exactly; layer rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import cnnspec
from cnnspec.weights import expected_weights, random_weights
from tests.strategies import valid_spec_dicts

torch = pytest.importorskip("torch")
from cnnspec.backends import torch_backend as tb  # noqa: E402

STATE_BUFFERS = {"running_mean", "running_var", "mean", "variance"}  # batch norm's statistics, Normalization's


def _shapes_match(spec):
    model = tb.build(spec)
    x = np.random.default_rng(0).random((2, *spec.input_shape), dtype=np.float32)
    outputs = tb.layer_outputs(model, x)
    assert [o.shape[1:] for o in outputs] == [layer.output_shape for layer in spec.summary().layers]
    n_params = sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.state_dict().items() if name.rsplit(".", 1)[-1] in STATE_BUFFERS
    )  # the state dict leaves out constant buffers (a Normalization given its mean and variance)
    # Keras counts an adaptable Normalization's sample count too, which no computation reads
    keras_sample_counts = sum(layer.type == "normalization" and layer.mean is None for layer in spec.layers)
    assert n_params + keras_sample_counts == spec.summary().total_params


def test_example_specs_compile_with_checked_shapes(example_spec_path):
    _shapes_match(cnnspec.load_spec(example_spec_path))


@settings(max_examples=40)
@given(valid_spec_dicts())
def test_random_specs_compile_with_checked_shapes(doc):
    _shapes_match(cnnspec.load_spec(doc))


def test_canonical_weights_round_trip_exactly(example_spec_path):
    spec = cnnspec.load_spec(example_spec_path)
    weights = random_weights(spec, seed=3)
    back = tb.get_weights(tb.build(spec, weights))
    assert list(back) == list(expected_weights(spec))
    for key in weights:
        np.testing.assert_array_equal(back[key], weights[key])


def test_wrong_weights_name_the_tensor():
    spec = cnnspec.load_spec("specs/digits_cnn.yaml")
    weights = random_weights(spec)
    weights["conv2d_0/kernel"] = np.zeros((5, 5, 1, 32), np.float32)
    with pytest.raises(cnnspec.WeightsError, match=r"conv2d_0/kernel has shape \(5, 5, 1, 32\)"):
        tb.build(spec, weights)
    del weights["dense_7/bias"]
    with pytest.raises(cnnspec.WeightsError, match="missing dense_7/bias"):
        tb.build(spec, weights)


def _one_layer(layer, input_shape):
    head = [] if layer.get("type") in ("dense",) else [{"type": "flatten"}]
    return cnnspec.load_spec(
        {"input_shape": list(input_shape), "layers": [layer, *head, {"type": "dense", "units": 2}]}
    )


def _run_first_layer(spec, x):
    model = tb.build(spec, random_weights(spec, seed=1))
    return tb.layer_outputs(model, x)[0]


def test_flatten_uses_keras_hwc_order():
    spec = _one_layer({"type": "flatten"}, (2, 3, 4))
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(_run_first_layer(spec, x), x.reshape(1, -1))


def test_same_max_pool_never_picks_the_padding():
    spec = _one_layer({"type": "max_pool2d", "pool_size": 2, "strides": 2, "padding": "same"}, (3, 3, 1))
    x = -np.ones((1, 3, 3, 1), np.float32) * np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    out = _run_first_layer(spec, x)[0, :, :, 0]
    np.testing.assert_array_equal(out, [[-1, -3], [-7, -9]])


def test_same_avg_pool_divides_by_real_cells_and_sum_pool_adds_them():
    x = np.ones((1, 3, 3, 1), np.float32)
    avg = _run_first_layer(_one_layer({"type": "avg_pool2d", "pool_size": 2, "padding": "same"}, (3, 3, 1)), x)
    np.testing.assert_allclose(avg[0, :, :, 0], np.ones((2, 2)))
    total = _run_first_layer(_one_layer({"type": "sum_pool2d", "pool_size": 2, "padding": "same"}, (3, 3, 1)), x)
    np.testing.assert_allclose(total[0, :, :, 0], [[4, 2], [2, 1]])


def test_min_pool_ignores_padding():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    out = _run_first_layer(_one_layer({"type": "min_pool2d", "pool_size": 2, "padding": "same"}, (3, 3, 1)), x)
    np.testing.assert_array_equal(out[0, :, :, 0], [[1, 3], [7, 9]])


def test_even_kernel_same_padding_puts_the_extra_cell_bottom_right():
    # 4x4 input, 2x2 kernel of ones, stride 1, same: pads 0 before, 1 after (Keras rule).
    spec = _one_layer(
        {"type": "conv2d", "filters": 1, "kernel_size": 2, "padding": "same", "use_bias": False}, (4, 4, 1)
    )
    weights = random_weights(spec)
    weights["conv2d_0/kernel"] = np.ones((2, 2, 1, 1), np.float32)
    model = tb.build(spec, weights)
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    out = tb.layer_outputs(model, x)[0][0, :, :, 0]
    padded = np.pad(x[0, :, :, 0], ((0, 1), (0, 1)))
    expected = padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "activation,reference",
    [
        ("leaky_relu", lambda x: np.where(x > 0, x, 0.2 * x)),  # Keras's slope, not torch's 0.01
        ("elu", lambda x: np.where(x > 0, x, np.expm1(x))),
        ("selu", lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
        ("softplus", lambda x: np.log1p(np.exp(x))),
        ("swish", lambda x: x / (1 + np.exp(-x))),
        ("gelu", lambda x: 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2)))),  # exact, not tanh
        ("softmax", lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    ],
)
def test_activations_use_keras_definitions(activation, reference):
    spec = _one_layer({"type": "activation", "activation": activation}, (2, 3, 4))
    x = np.random.default_rng(0).normal(0, 2, (2, 2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(_run_first_layer(spec, x), reference(x.astype(np.float64)), atol=1e-5, rtol=1e-5)


def test_batch_norm_updates_moving_variance_with_biased_variance_and_keras_momentum():
    spec = cnnspec.load_spec(
        {
            "input_shape": [3, 3, 2],
            "layers": [{"type": "batch_norm", "momentum": 0.9}, {"type": "flatten"}, {"type": "dense", "units": 2}],
        }
    )
    model = tb.build(spec)
    x = np.random.default_rng(0).normal(2.0, 3.0, (4, 3, 3, 2)).astype(np.float32)
    bn = model.blocks[0][0]
    bn.train()
    bn(tb.model.to_nchw(x))
    flat = x.reshape(-1, 2).astype(np.float64)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * flat.var(0), rtol=1e-5)  # ddof=0


def test_initial_weights_are_glorot_uniform_with_zero_bias():
    spec = cnnspec.load_spec("specs/mnist_cnn.yaml")
    weights = tb.get_weights(tb.build(spec, seed=0))
    kernel = weights["dense_5/kernel"]
    limit = np.sqrt(6 / (3136 + 64))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert np.abs(kernel.std() - limit / np.sqrt(3)) < 0.01 * limit
    assert not weights["dense_5/bias"].any()
    conv_limit = np.sqrt(6 / (9 * 1 + 9 * 32))  # fans include the kernel area
    assert conv_limit * 0.95 < np.abs(weights["conv2d_0/kernel"]).max() <= conv_limit


def test_predict_accepts_channels_last_numpy():
    spec = cnnspec.load_spec("specs/digits_cnn.yaml")
    out = cnnspec.predict(tb.build(spec), np.zeros((5, 8, 8, 1), np.float32), backend="torch")
    assert out.shape == (5, 10)
    np.testing.assert_allclose(out.sum(1), 1, rtol=1e-6)


def test_any_numpy_strides_give_the_same_outputs():
    """Inputs are channels-last views of the caller's array: a grey channel made by `(rgb @ luma)[..., None]`
    (stride 0 on its size-1 axis) and a strided slice must give what a packed copy gives."""
    spec = cnnspec.load_spec("specs/digits_cnn.yaml")
    model = tb.build(spec, random_weights(spec, 1))
    rgb = np.random.default_rng(0).random((6, 8, 8, 3), dtype=np.float32)
    grey = (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    assert grey.strides[-1] == 0
    np.testing.assert_array_equal(tb.predict(model, grey), tb.predict(model, grey.copy()))
    np.testing.assert_array_equal(tb.predict(model, grey[::2]), tb.predict(model, grey.copy()[::2]))
