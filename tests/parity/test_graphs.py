"""Branching specs: layers name their inputs; add and concatenate merge; shapes, errors, summary, every backend.

Per-node parity runs on hand-written residual/inception-style blocks and on random graphs from
hypothesis (adds and concatenations over branches of different depth); ResNet-20 and a
MobileNetV2-style spec are checked against Keras models built independently here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cnnspec
from cnnspec.errors import SpecError
from tests.conftest import ROOT
from tests.parity.helpers import assert_same_per_layer

RESIDUAL = {
    "name": "residual",
    "input_shape": [8, 8, 2],
    "layers": [
        {"type": "conv2d", "name": "c1", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        # no bias before batch norm: its gradient is zero up to rounding, which Adam would amplify
        {"type": "conv2d", "name": "c2", "filters": 4, "kernel_size": 3, "padding": "same", "use_bias": False},
        {"type": "batch_norm", "name": "bn"},
        {"type": "add", "name": "skip", "inputs": ["bn", "c1"]},
        {"type": "activation", "activation": "relu"},
        {"type": "conv2d", "name": "a", "filters": 2, "kernel_size": 1},
        {"type": "conv2d", "name": "b", "filters": 3, "kernel_size": 3, "padding": "same", "inputs": ["skip"]},
        {"type": "max_pool2d", "name": "p", "pool_size": 3, "strides": 1, "padding": "same", "inputs": ["input"]},
        {"type": "concatenate", "name": "mix", "inputs": ["a", "b", "p"]},
        {"type": "global_avg_pool2d"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ],
}


def _backends():
    return [(name, pytest.importorskip(f"cnnspec.backends.{name}_backend")) for name in ("keras", "torch", "onnx")]


def test_shapes_and_the_connected_to_column():
    spec = cnnspec.load_spec(RESIDUAL)
    report = spec.summary()
    mix = report.layers[8]
    assert mix.inputs == ("a", "b", "p") and mix.output_shape == (8, 8, 7)
    assert report.layers[4].inputs == ("skip",)  # the default: the layer before
    assert report.is_graph and "Connected to" in report.table() and "a, b, p" in report.table()
    assert not cnnspec.load_spec(ROOT / "specs" / "digits_cnn.yaml").summary().is_graph


@pytest.mark.parametrize(
    "change,message,field",
    [
        ({3: {"inputs": ["bn", "nope"]}}, "no layer named 'nope'", "inputs"),
        ({3: {"inputs": ["bn", "a"]}}, "comes later", "inputs"),
        ({3: {"inputs": ["bn"]}}, "merges two or more inputs", "inputs"),
        ({4: {"inputs": ["skip", "c1"]}}, "reads one input, got 2", "inputs"),
        (
            {3: {"inputs": ["bn", "input"]}},
            r"add needs inputs of one shape, or shapes that broadcast \(each axis "
            r"equal, or 1\), got bn 8x8x4, input 8x8x2",
            "inputs",
        ),
        ({8: {"inputs": ["a", "b"]}}, "nothing reads the output of 'p'", "inputs"),
        ({0: {"name": "input"}}, "names the model input", "name"),
    ],
)
def test_graph_errors_name_the_layer_and_what_is_wrong(change, message, field):
    document = {**RESIDUAL, "layers": [dict(layer) for layer in RESIDUAL["layers"]]}
    for index, update in change.items():
        document["layers"][index].update(update)
    with pytest.raises(SpecError, match=message) as info:
        cnnspec.load_spec(document)
    assert info.value.issues[0].field == field


def test_per_node_parity_of_a_residual_and_inception_style_spec():
    assert_same_per_layer(cnnspec.load_spec(RESIDUAL), _backends())


@st.composite
def branching_specs(draw):
    """Random graphs: each new layer reads one or more earlier outputs; unread ones are concatenated at the end."""
    channels = draw(st.integers(1, 3))
    outputs = {"input": channels}  # name -> channels (every layer keeps height and width)
    unread = {"input"}
    layers = []
    for index in range(draw(st.integers(2, 7))):
        name = f"n{index}"
        kind = draw(st.sampled_from(["conv", "conv", "act", "add", "concat"]))
        pick = draw(st.sampled_from(sorted(outputs)))
        if kind == "add":
            same = sorted(n for n, c in outputs.items() if c == outputs[pick])
            other = draw(st.sampled_from(same))
            layer, width = {"type": "add", "inputs": [pick, other]}, outputs[pick]
            if other == pick:
                continue
        elif kind == "concat":
            other = draw(st.sampled_from(sorted(outputs)))
            if other == pick:
                continue
            layer, width = {"type": "concatenate", "inputs": [pick, other]}, outputs[pick] + outputs[other]
        elif kind == "conv":
            width = draw(st.integers(1, 3))
            size = draw(st.sampled_from([1, 2, 3]))
            layer = {"type": "conv2d", "filters": width, "kernel_size": size, "padding": "same", "inputs": [pick]}
        else:
            layer, width = {"type": "activation", "activation": "tanh", "inputs": [pick]}, outputs[pick]
        layers.append({**layer, "name": name})
        unread -= set(layer["inputs"])
        unread.add(name)
        outputs[name] = width
    tail = sorted(unread)
    if len(tail) > 1:
        layers.append({"type": "concatenate", "name": "joined", "inputs": tail})
    elif not layers or tail != [layers[-1]["name"]]:
        layers.append({"type": "activation", "name": "joined", "activation": "linear", "inputs": tail})
    layers += [{"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"}]
    return {"name": "random_graph", "input_shape": [5, 4, channels], "layers": layers}


@settings(max_examples=15, deadline=None)
@given(branching_specs())
def test_per_node_parity_of_random_branching_specs(document):
    assert_same_per_layer(cnnspec.load_spec(document), _backends())


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adamw"])
def test_one_training_step_on_a_residual_spec_is_equal_in_torch_and_keras(optimizer, tmp_path):
    pytest.importorskip("cnnspec.backends.torch_backend")
    pytest.importorskip("cnnspec.backends.keras_backend")
    from tests.parity.test_training_step_parity import _assert_same, _both

    spec = cnnspec.load_spec({**RESIDUAL, "training": {"optimizer": {"type": optimizer}}})
    weights, _, torch_run, keras_run = _both(spec, steps=2)
    _assert_same(torch_run, keras_run, weights)


def _keras_resnet20():
    """ResNet-20 (option B shortcuts) written as plain Keras, independently of the spec."""
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)))
    for filters in (16, 32, 64):
        for block in range(3):
            stride = 2 if filters > 16 and block == 0 else 1
            y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
            y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(
                layers.ReLU()(layers.BatchNormalization()(y))))  # fmt: skip
            if stride != 1:
                x = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=2, use_bias=False)(x))
            x = layers.ReLU()(layers.Add()([y, x]))
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def _keras_mobilenetv2_blocks():
    import keras
    from keras import layers

    def bn_relu(x):
        return layers.ReLU()(layers.BatchNormalization()(x))

    inputs = keras.Input((8, 8, 1))
    stem = bn_relu(layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs))
    x = bn_relu(layers.Conv2D(96, 1, use_bias=False)(stem))
    x = bn_relu(layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x))
    x = layers.Add()([stem, layers.BatchNormalization()(layers.Conv2D(16, 1, use_bias=False)(x))])
    x = bn_relu(layers.Conv2D(96, 1, use_bias=False)(x))
    x = bn_relu(layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x))
    x = layers.BatchNormalization()(layers.Conv2D(24, 1, use_bias=False)(x))
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "name,build", [("resnet20_cifar", _keras_resnet20), ("mobilenetv2_block", _keras_mobilenetv2_blocks)]
)
def test_published_architectures_count_as_keras_built_by_hand(name, build):
    pytest.importorskip("keras")
    import numpy as np

    model = build()
    report = cnnspec.load_spec(ROOT / "specs" / f"{name}.yaml").summary()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (report.total_params, report.trainable_params) == (model.count_params(), trainable)
    if name == "resnet20_cifar":
        assert 270_000 < report.total_params < 280_000  # "about 0.27M" (He et al. 2015, table 6)


def test_onnx_of_a_residual_spec_equals_keras_predict():
    kb = pytest.importorskip("cnnspec.backends.keras_backend")
    ob = pytest.importorskip("cnnspec.backends.onnx_backend")
    from cnnspec.numerics import layer_tolerances, max_difference
    from cnnspec.weights import random_weights

    spec = cnnspec.load_spec(ROOT / "specs" / "resnet20_cifar.yaml")
    weights = random_weights(spec, 0)
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    expected = kb.layer_outputs(kb.build(spec, weights), x)
    got = ob.predict(ob.build(spec, weights), x)
    assert max_difference(got, expected[-1]) <= layer_tolerances(x, expected)[-1]


SQUEEZE_EXCITE = {
    "name": "squeeze_excite",
    "input_shape": [6, 5, 4],
    "layers": [
        {"type": "conv2d", "name": "features", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "global_avg_pool2d", "name": "squeeze", "keepdims": True},
        {"type": "conv2d", "name": "reduce", "filters": 2, "kernel_size": 1, "activation": "relu"},
        {"type": "conv2d", "name": "expand", "filters": 4, "kernel_size": 1, "activation": "hard_sigmoid"},
        {"type": "multiply", "name": "excite", "inputs": ["features", "expand"]},
        {"type": "subtract", "name": "less", "inputs": ["excite", "squeeze"]},
        {"type": "maximum", "name": "most", "inputs": ["less", "expand", "features"]},
        {"type": "average", "name": "mean", "inputs": ["most", "squeeze"]},
        {"type": "flatten"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ],
}


def test_broadcasting_merges_of_a_squeeze_and_excitation_block_agree_everywhere():
    """(H, W, C) with (1, 1, C), Keras's broadcasting, in every merge: torch and ONNX per layer, and the file in
    every runtime."""
    spec = cnnspec.load_spec(SQUEEZE_EXCITE)
    assert spec.summary().layers[4].output_shape == (6, 5, 4)
    assert_same_per_layer(spec, _backends())
    report = cnnspec.run_parity(spec)
    assert report.ok, report.verdict()


def test_a_merge_of_shapes_that_do_not_broadcast_or_too_many_subtracted_inputs_is_refused():
    document = {**SQUEEZE_EXCITE, "layers": [dict(layer) for layer in SQUEEZE_EXCITE["layers"]]}
    document["layers"][5]["inputs"] = ["excite", "squeeze", "features"]
    with pytest.raises(SpecError, match="subtract takes exactly 2 inputs, got 3"):
        cnnspec.load_spec(document)
    document["layers"][5]["inputs"] = ["excite", "reduce"]
    with pytest.raises(SpecError, match="shapes that broadcast .* got excite 6x5x4, reduce 1x1x2"):
        cnnspec.load_spec(document)
