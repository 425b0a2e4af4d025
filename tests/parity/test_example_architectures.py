"""The published architectures among the example specs equal their Keras originals by outputs.

specs/mobilenet_v2.yaml and specs/efficientnet_b0.yaml were written by hand from the papers;
keras.applications' MobileNetV2 and EfficientNetB0 by Keras's authors. Given the same weights (the
application's, with random batch-norm statistics, moved onto the spec's layers in order), both give the
same probabilities, in cnnspec's Keras and torch backends. specs/se_resnet_block.yaml is checked the same
way against the block written here in plain Keras. Parameter counts alone would not catch a swapped stride,
a missing ReLU6 or a wrong padding.
"""

from __future__ import annotations

import numpy as np
import pytest

import cnnspec
from cnnspec.numerics import layer_tolerances, max_difference
from cnnspec.weights import random_weights
from tests.conftest import ROOT

keras = pytest.importorskip("keras")
kb = pytest.importorskip("cnnspec.backends.keras_backend")
tb = pytest.importorskip("cnnspec.backends.torch_backend")


def _weights_in_order(spec, weights):
    """The canonical weights of ``spec``'s weighted layers, in layer order: [(type, {variable: array})]."""
    by_layer: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        layer, variable = key.split("/", 1)
        by_layer.setdefault(layer, {})[variable] = value
    return [(layer.type, by_layer[layer.name]) for layer in spec.layers if layer.name in by_layer]


def _moved_onto(spec, source_spec, source_weights):
    """``source_weights`` (of ``source_spec``) as weights of ``spec``: the n-th weighted layer of ``spec`` takes
    the n-th of the source, which must be of the same type and hold variables of the same shapes."""
    theirs = _weights_in_order(source_spec, source_weights)
    mine = [layer for layer, info in zip(spec.layers, spec.summary().layers) if layer.variables(info.input_shape)]
    assert [layer.type for layer in mine] == [kind for kind, _ in theirs]
    moved = {}
    for layer, (_, variables) in zip(mine, theirs):
        for name, value in variables.items():
            moved[f"{layer.name}/{name}"] = value
    expected = random_weights(spec, 0)
    assert {key: value.shape for key, value in moved.items()} == {key: value.shape for key, value in expected.items()}
    return moved


def _assert_same_probabilities(spec, weights, expected, x):
    keras_layers = kb.layer_outputs(kb.build(spec, weights), x)
    bound = layer_tolerances(x, keras_layers)[-1]
    for backend in (kb, tb):
        got = backend.predict(backend.build(spec, weights), x)
        assert max_difference(got, expected) <= bound, (backend.NAME, max_difference(got, expected), bound)
    assert expected.max() < 0.999  # not saturated: a one-hot output would hide differences


# spec file, the application it is checked against, and the images it is given (as that application expects)
APPLICATION_SPECS = {
    "mobilenet_v2": ("MobileNetV2", lambda pixels: pixels / 127.5 - 1.0),  # its preprocess_input: [-1, 1]
    "efficientnet_b0": ("EfficientNetB0", lambda pixels: pixels),  # it scales 0-255 pixels itself
}


@pytest.mark.parametrize("spec_name", APPLICATION_SPECS)
def test_spec_written_from_the_paper_equals_the_keras_application(spec_name):
    from tests.applications import build_application, images

    application_name, preprocess = APPLICATION_SPECS[spec_name]
    application = build_application(application_name)
    source_spec, source_weights = cnnspec.import_keras(application)
    spec = cnnspec.load_spec(ROOT / "specs" / f"{spec_name}.yaml")
    assert spec.summary().total_params == application.count_params()
    weights = _moved_onto(spec, source_spec, source_weights)
    x = preprocess(images(32, n=4))
    _assert_same_probabilities(spec, weights, np.asarray(application(x, training=False)), x)


def _hand_written_se_block():
    from keras import Input, Model, layers

    inputs = Input((32, 32, 3))
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(inputs)
    stem = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(32, 3, padding="same", use_bias=False)(stem)))
    x = layers.BatchNormalization()(layers.Conv2D(32, 3, padding="same", use_bias=False)(x))
    se = layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = layers.Conv2D(8, 1, activation="relu")(se)
    se = layers.Conv2D(32, 1, activation="sigmoid")(se)
    x = layers.ReLU()(layers.Add()([layers.Multiply()([x, se]), stem]))
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return Model(inputs, outputs)


def test_se_resnet_block_spec_equals_the_block_written_by_hand_in_keras():
    spec = cnnspec.load_spec(ROOT / "specs" / "se_resnet_block.yaml")
    weights = random_weights(spec, 0)
    model = _hand_written_se_block()
    assert model.count_params() == spec.summary().total_params
    # the hand-written model's weighted layers in the order they were called, the spec's in its order
    ordered = [layer for layer in model.layers if layer.weights]
    for (_, variables), layer in zip(_weights_in_order(spec, weights), ordered, strict=True):
        for variable in layer.weights:
            variable.assign(variables[variable.name])
    x = np.random.default_rng(1).normal(0, 1, (4, 32, 32, 3)).astype(np.float32)
    _assert_same_probabilities(spec, weights, np.asarray(model(x, training=False)), x)
