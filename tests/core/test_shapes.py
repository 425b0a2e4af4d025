"""Shape and parameter inference equals Keras (figures taken from Keras 3.15 models built by hand)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, strategies as st

import cnnspec
from cnnspec.layers import MaxPool2D
from cnnspec.shapes import window
from tests.conftest import ROOT
from tests.strategies import valid_spec_dicts

# (output shape, params) per layer, and the total, as Keras's count_params() reports them.
KERAS_FIGURES = {
    "digits_cnn": (
        [
            ((8, 8, 32), 320),
            ((8, 8, 32), 9248),
            ((4, 4, 32), 0),
            ((4, 4, 32), 0),
            ((512,), 0),
            ((64,), 32832),
            ((64,), 0),
            ((10,), 650),
        ],
        43050,
        43050,
    ),
    "mnist_cnn": (
        [
            ((28, 28, 32), 320),
            ((14, 14, 32), 0),
            ((14, 14, 64), 18496),
            ((7, 7, 64), 0),
            ((3136,), 0),
            ((64,), 200768),
            ((10,), 650),
        ],
        220234,
        220234,
    ),
    "mnist_mlp": ([((784,), 0), ((512,), 401920), ((512,), 262656), ((10,), 5130)], 669706, 669706),
    "mnist_deep": (
        [
            ((26, 26, 32), 320),
            ((13, 13, 32), 0),
            ((11, 11, 64), 18496),
            ((5, 5, 64), 0),
            ((3, 3, 64), 36928),
            ((576,), 0),
            ((64,), 36928),
            ((10,), 650),
        ],
        93322,
        93322,
    ),
    "mnist_dropout": (
        [
            ((26, 26, 32), 320),
            ((24, 24, 32), 9248),
            ((12, 12, 32), 0),
            ((12, 12, 32), 0),
            ((4608,), 0),
            ((128,), 589952),
            ((10,), 1290),
        ],
        600810,
        600810,
    ),
    # augmentation layers keep the shape and have no weights
    "cifar10_augmented": (
        [
            ((32, 32, 3), 0),
            ((32, 32, 3), 0),
            ((32, 32, 32), 864),
            ((32, 32, 32), 128),
            ((32, 32, 32), 0),
            ((32, 32, 32), 9216),
            ((32, 32, 32), 128),
            ((32, 32, 32), 0),
            ((16, 16, 32), 0),
            ((16, 16, 32), 0),
            ((16, 16, 64), 18432),
            ((16, 16, 64), 256),
            ((16, 16, 64), 0),
            ((16, 16, 64), 36864),
            ((16, 16, 64), 256),
            ((16, 16, 64), 0),
            ((8, 8, 64), 0),
            ((8, 8, 64), 0),
            ((8, 8, 128), 73728),
            ((8, 8, 128), 512),
            ((8, 8, 128), 0),
            ((8, 8, 128), 147456),
            ((8, 8, 128), 512),
            ((8, 8, 128), 0),
            ((128,), 0),
            ((128,), 0),
            ((10,), 1290),
        ],
        289642,
        288746,
    ),
    # a graph: per layer in spec order (Keras's own model.get_layer(name))
    "resnet20_cifar": (
        [
            ((32, 32, 16), 432),
            ((32, 32, 16), 64),
            ((32, 32, 16), 0),
            ((32, 32, 16), 2304),
            ((32, 32, 16), 64),
            ((32, 32, 16), 0),
            ((32, 32, 16), 2304),
            ((32, 32, 16), 64),
            ((32, 32, 16), 0),
            ((32, 32, 16), 0),
            ((32, 32, 16), 2304),
            ((32, 32, 16), 64),
            ((32, 32, 16), 0),
            ((32, 32, 16), 2304),
            ((32, 32, 16), 64),
            ((32, 32, 16), 0),
            ((32, 32, 16), 0),
            ((32, 32, 16), 2304),
            ((32, 32, 16), 64),
            ((32, 32, 16), 0),
            ((32, 32, 16), 2304),
            ((32, 32, 16), 64),
            ((32, 32, 16), 0),
            ((32, 32, 16), 0),
            ((16, 16, 32), 4608),
            ((16, 16, 32), 128),
            ((16, 16, 32), 0),
            ((16, 16, 32), 9216),
            ((16, 16, 32), 128),
            ((16, 16, 32), 512),
            ((16, 16, 32), 128),
            ((16, 16, 32), 0),
            ((16, 16, 32), 0),
            ((16, 16, 32), 9216),
            ((16, 16, 32), 128),
            ((16, 16, 32), 0),
            ((16, 16, 32), 9216),
            ((16, 16, 32), 128),
            ((16, 16, 32), 0),
            ((16, 16, 32), 0),
            ((16, 16, 32), 9216),
            ((16, 16, 32), 128),
            ((16, 16, 32), 0),
            ((16, 16, 32), 9216),
            ((16, 16, 32), 128),
            ((16, 16, 32), 0),
            ((16, 16, 32), 0),
            ((8, 8, 64), 18432),
            ((8, 8, 64), 256),
            ((8, 8, 64), 0),
            ((8, 8, 64), 36864),
            ((8, 8, 64), 256),
            ((8, 8, 64), 2048),
            ((8, 8, 64), 256),
            ((8, 8, 64), 0),
            ((8, 8, 64), 0),
            ((8, 8, 64), 36864),
            ((8, 8, 64), 256),
            ((8, 8, 64), 0),
            ((8, 8, 64), 36864),
            ((8, 8, 64), 256),
            ((8, 8, 64), 0),
            ((8, 8, 64), 0),
            ((8, 8, 64), 36864),
            ((8, 8, 64), 256),
            ((8, 8, 64), 0),
            ((8, 8, 64), 36864),
            ((8, 8, 64), 256),
            ((8, 8, 64), 0),
            ((8, 8, 64), 0),
            ((64,), 0),
            ((10,), 650),
        ],
        274042,
        272474,
    ),
    "mobilenetv2_block": (
        [
            ((8, 8, 16), 144),
            ((8, 8, 16), 64),
            ((8, 8, 16), 0),
            ((8, 8, 96), 1536),
            ((8, 8, 96), 384),
            ((8, 8, 96), 0),
            ((8, 8, 96), 864),
            ((8, 8, 96), 384),
            ((8, 8, 96), 0),
            ((8, 8, 16), 1536),
            ((8, 8, 16), 64),
            ((8, 8, 16), 0),
            ((8, 8, 96), 1536),
            ((8, 8, 96), 384),
            ((8, 8, 96), 0),
            ((4, 4, 96), 864),
            ((4, 4, 96), 384),
            ((4, 4, 96), 0),
            ((4, 4, 24), 2304),
            ((4, 4, 24), 96),
            ((24,), 0),
            ((10,), 250),
        ],
        10794,
        9914,
    ),
    # counted by hand too: separable = 3*3*in*mult + in*mult*filters + filters
    "mobilenet_tiny": (
        [
            ((8, 8, 16), 144),
            ((8, 8, 16), 64),
            ((8, 8, 16), 0),
            ((8, 8, 16), 144),
            ((8, 8, 16), 64),
            ((8, 8, 16), 0),
            ((8, 8, 32), 512),
            ((8, 8, 32), 128),
            ((8, 8, 32), 0),
            ((4, 4, 64), 2400),
            ((4, 4, 64), 9408),
            ((64,), 0),
            ((64,), 0),
            ((10,), 650),
        ],
        13514,
        13386,
    ),
    # min/sum pooling measured as MaxPooling2D with the same window (Keras has no such class).
    "every_layer": (
        [
            ((8, 7, 8), 192),
            ((8, 7, 8), 32),
            ((8, 7, 8), 0),
            ((4, 4, 8), 0),
            ((4, 4, 12), 876),
            ((4, 4, 12), 0),
            ((4, 2, 12), 0),
            ((3, 1, 12), 0),
            ((3, 1, 12), 0),
            ((12,), 0),
            ((12,), 36),
            ((16,), 208),
            ((5,), 85),
        ],
        1429,
        1389,
    ),
}

# The large example specs' figures, read off the Keras models (count_params, output.shape) into a JSON file
# when each spec was added; tests/backends/test_keras_backend.py checks every spec against Keras live.
KERAS_FIGURES.update(
    (name, ([(tuple(shape), params) for shape, params in figures["layers"]], figures["total"], figures["trainable"]))
    for name, figures in json.loads((ROOT / "tests" / "core" / "keras_figures.json").read_text()).items()
)


def test_every_example_spec_has_keras_figures(example_spec_path):
    assert example_spec_path.stem in KERAS_FIGURES


@pytest.mark.parametrize("name", sorted(KERAS_FIGURES))
def test_example_shapes_and_params_equal_keras(name):
    layers, total, trainable = KERAS_FIGURES[name]
    report = cnnspec.load_spec(ROOT / "specs" / f"{name}.yaml").summary()
    assert [(layer.output_shape, layer.params) for layer in report.layers] == layers
    assert (report.total_params, report.trainable_params) == (total, trainable)
    assert report.non_trainable_params == total - trainable


@pytest.mark.parametrize(
    "size,k,s,d,padding,expected",
    [
        (7, 3, 2, 1, "same", (4, 1, 1)),
        (8, 4, 2, 1, "same", (4, 1, 1)),  # total 2: one each side
        (15, 4, 2, 1, "same", (8, 1, 2)),  # total 3: the extra cell goes after (bottom/right)
        (6, 2, 2, 1, "same", (3, 0, 0)),
        (5, 1, 3, 1, "same", (2, 0, 0)),
        (5, 3, 1, 2, "same", (5, 2, 2)),  # dilated span 5
        (2, 5, 1, 1, "same", (2, 2, 2)),  # window larger than input is fine with same
        (28, 3, 1, 1, "valid", (26, 0, 0)),
        (7, 2, 2, 1, "valid", (3, 0, 0)),
        (9, 3, 1, 3, "valid", (3, 0, 0)),
    ],
)
def test_window_follows_keras_padding_rules(size, k, s, d, padding, expected):
    assert tuple(window(size, k, s, d, padding)) == expected


@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.sampled_from(["valid", "same"]))
def test_window_formula_properties(size, k, s, padding):
    out, before, after = window(size, k, s, 1, padding)
    if padding == "same":
        assert out == math.ceil(size / s)
        assert after - before in (0, 1)
    elif k <= size:
        assert out == (size - k) // s + 1
    # The last window starts inside the padded input.
    assert (out - 1) * s + k <= size + before + after or padding == "valid"


def test_real_cell_counts_exclude_padding():
    layer = MaxPool2D(pool_size=3, strides=2, padding="same")
    # 5x5 input, same padding, one cell each side: corner windows see 2x2 real cells.
    assert layer.real_cell_counts((5, 5, 1)) == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]


def test_dense_needs_flat_input_and_names_the_layer():
    with pytest.raises(cnnspec.SpecError) as info:
        cnnspec.load_spec({"input_shape": [8, 8, 1], "layers": [{"type": "dense", "units": 10}]})
    issue = info.value.issues[0]
    assert (issue.layer, issue.name, issue.rule) == (0, "dense_0", "flat_input")
    assert "flatten" in issue.message


def test_window_larger_than_valid_input_is_refused_with_sizes():
    doc = {
        "input_shape": [6, 6, 1],
        "layers": [
            {"type": "conv2d", "filters": 2, "kernel_size": 3},
            {"type": "max_pool2d", "pool_size": 2},
            {"type": "conv2d", "filters": 2, "kernel_size": 3},
            {"type": "flatten"},
            {"type": "dense", "units": 2},
        ],
    }
    with pytest.raises(cnnspec.SpecError) as info:
        cnnspec.load_spec(doc)
    assert (
        str(info.value) == "layer 2 'conv2d_2' (kernel_size): kernel 3x3 is larger than its 2x2 input (padding=valid)"
    )


def test_dilated_kernel_is_measured_by_its_span():
    doc = {
        "input_shape": [4, 4, 1],
        "layers": [
            {"type": "conv2d", "filters": 1, "kernel_size": 3, "dilation_rate": 2},
            {"type": "flatten"},
            {"type": "dense", "units": 2},
        ],
    }
    with pytest.raises(cnnspec.SpecError, match="dilated to 5x5"):
        cnnspec.load_spec(doc)


def test_loss_needs_two_classes_on_the_last_axis():
    doc = {"input_shape": [4, 4, 1], "layers": [{"type": "conv2d", "filters": 1, "kernel_size": 1}]}
    with pytest.raises(cnnspec.SpecError, match="at least 2 classes on the output's last axis, got \\(4, 4, 1\\)"):
        cnnspec.load_spec(doc)


def test_a_map_of_class_scores_is_a_valid_output():
    """A per-pixel map (a U-Net's) validates: its last axis holds the classes, as Keras's losses read it."""
    doc = {"input_shape": [4, 4, 1], "layers": [{"type": "conv2d", "filters": 3, "kernel_size": 1}]}
    spec = cnnspec.load_spec(doc)
    assert (spec.summary().output_shape, spec.num_classes, spec.classifies_images) == ((4, 4, 3), 3, False)


def test_batch_norm_statistics_are_non_trainable():
    doc = {
        "input_shape": [4, 4, 3],
        "layers": [{"type": "batch_norm", "scale": False}, {"type": "flatten"}, {"type": "dense", "units": 2}],
    }
    bn = cnnspec.load_spec(doc).summary().layers[0]
    assert (bn.params, bn.trainable_params, bn.non_trainable_params) == (9, 3, 6)


@given(valid_spec_dicts())
def test_random_valid_specs_infer(doc):
    report = cnnspec.load_spec(doc).summary()
    assert report.output_shape == (doc["layers"][-1]["units"],)
    assert all(all(d >= 1 for d in layer.output_shape) for layer in report.layers)


def test_summary_table_reads_like_keras():
    table = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml").summary().table()
    assert 'Model: "mnist_cnn"' in table
    assert "conv2d_0 (Conv2D)" in table and "(None, 28, 28, 32)" in table
    assert "Total params: 220,234 (860.29 KB)" in table
    assert "Non-trainable params: 0 (0.00 B)" in table
