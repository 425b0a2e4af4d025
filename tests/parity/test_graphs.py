"""Branching specs: layers name their inputs; add and concatenate merge; shapes, errors, summary, every backend.

Per-node parity runs on hand-written residual/inception-style blocks and on random graphs from
hypothesis (adds and concatenations over branches of different depth); ResNet-20 and a
MobileNetV2-style spec, loaded with the same canonical weights, give the outputs of Keras models
written by hand here with plain keras.layers.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cnnspec
from cnnspec.errors import SpecError
from cnnspec.numerics import max_difference, tolerance_for
from cnnspec.weights import random_weights
from tests.conftest import ROOT
from tests.parity.helpers import assert_same_per_layer, batch

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


# The hand-written models' weighted Keras classes: the spec layer type each stands for, and its variables'
# names where the canonical format names them otherwise (Keras 3 calls a depthwise kernel "kernel";
# canonical weights keep Keras 2's "depthwise_kernel").
HAND_WRITTEN = {
    "Conv2D": ("conv2d", {}),
    "DepthwiseConv2D": ("depthwise_conv2d", {"kernel": "depthwise_kernel"}),
    "BatchNormalization": ("batch_norm", {}),
    "Dense": ("dense", {}),
}
PUBLISHED = [("resnet20_cifar", _keras_resnet20), ("mobilenetv2_block", _keras_mobilenetv2_blocks)]


def _inbound(value) -> list[str]:
    """The names of the layers whose outputs a serialized Keras call reads."""
    if isinstance(value, dict):
        if "keras_history" in value:
            return [value["keras_history"][0]]
        return [name for item in value.values() for name in _inbound(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _inbound(item)]
    return []


def _data_flow_order(model) -> list:
    """The model's layers depth first from the input: after a layer, the layers that read it, the one with
    the longer way to the output first; a merge once all its inputs are done. That is the order both specs
    list their layers in (a block's main path, then its shortcut). Not creation order: in
    ``BatchNormalization()(Conv2D(...)(x))`` Python makes the batch norm first."""
    reads = {entry["name"]: _inbound(entry["inbound_nodes"]) for entry in model.get_config()["layers"]}
    readers = {name: [other for other, inputs in reads.items() if name in inputs] for name in reads}
    distance: dict[str, int] = {}

    def to_output(name: str) -> int:
        if name not in distance:
            distance[name] = 1 + max((to_output(reader) for reader in readers[name]), default=0)
        return distance[name]

    done: list[str] = []
    stack = [name for name, inputs in reads.items() if not inputs]
    while stack:
        name = stack.pop()
        done.append(name)
        ready = [r for r in readers[name] if r not in done and r not in stack and set(reads[r]) <= set(done)]
        stack += sorted(ready, key=to_output)  # the longest way to the output is popped first
    assert sorted(done) == sorted(reads), "the model's graph is not connected from its input"
    return [model.get_layer(name) for name in done]


def _load_canonical(model, spec, weights) -> None:
    """Set every variable of the hand-written ``model`` from canonical ``weights``.

    Order: the spec's layers of each type in spec order against the model's layers of the matching Keras
    class in ``_data_flow_order`` (stage by stage, block by block, main path before shortcut). A
    layer missing or extra on either side fails the count; one made out of order gets the wrong tensor,
    which fails on its shape or changes the outputs; every canonical weight must be used exactly once.
    """
    weighted = {type(layer).__name__ for layer in model.layers if layer.weights}
    assert weighted <= set(HAND_WRITTEN), f"no canonical counterpart for {sorted(weighted - set(HAND_WRITTEN))}"
    used: collections.Counter[str] = collections.Counter()
    order = _data_flow_order(model)
    for keras_class, (layer_type, renamed) in HAND_WRITTEN.items():
        ours = [layer for layer in spec.layers if layer.type == layer_type]
        theirs = [layer for layer in order if type(layer).__name__ == keras_class]
        assert len(ours) == len(theirs), f"{len(ours)} {layer_type} layers in the spec, {len(theirs)} {keras_class}"
        for layer, hand in zip(ours, theirs):
            for variable in hand.weights:
                key = f"{layer.name}/{renamed.get(variable.name, variable.name)}"
                assert key in weights, f"{hand.name}/{variable.name}: no canonical {key}"
                assert tuple(variable.shape) == weights[key].shape, (hand.name, key, variable.shape, weights[key].shape)
                variable.assign(weights[key])
                used[key] += 1
    assert not set(weights) - set(used), f"canonical weights never used: {sorted(set(weights) - set(used))}"
    assert max(used.values()) == 1, f"used twice: {sorted(key for key, n in used.items() if n > 1)}"


def _hand_written_outputs(model, x):
    """The hand-written model's pooled features and probabilities, and the tolerance rule's bound for
    them: 1e-5 scaled by the largest magnitude the model carried (input and every layer's output)."""
    import keras

    (pool,) = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    probe = keras.Model(model.input, [layer.output for layer in model.layers[1:]])
    outputs = [np.asarray(o) for o in probe(x, training=False)]
    features = outputs[model.layers[1:].index(pool)]
    return features, outputs[-1], tolerance_for(x, *outputs)


def _published_differences(name, build, inputs, backends):
    """Per backend: (largest difference from the hand-written model in the pooled features, in the
    probabilities), and the tolerance rule's bound for both. Canonical random weights (seed 0: glorot
    kernels, biases, batch-norm gamma/beta/mean/variance all away from their defaults) go into both."""
    spec = cnnspec.load_spec(ROOT / "specs" / f"{name}.yaml")
    weights = random_weights(spec, 0)
    x = batch(spec, seed=1, inputs=inputs)
    model = build()
    _load_canonical(model, spec, weights)
    features, probabilities, allowed = _hand_written_outputs(model, x)
    pool = [layer.type for layer in spec.layers].index("global_avg_pool2d")
    differences = {}
    for backend_name, backend in backends:
        compiled = backend.build(spec, weights)
        differences[backend_name] = (
            max_difference(backend.layer_outputs(compiled, x)[pool], features),
            max_difference(backend.predict(compiled, x), probabilities),
        )
    return differences, allowed, probabilities


@pytest.mark.parametrize("inputs", ["normal", "uniform"])
@pytest.mark.parametrize(("name", "build"), PUBLISHED)
def test_published_architectures_equal_keras_written_by_hand(name, build, inputs):
    """ResNet-20 and the MobileNetV2 blocks, written independently as plain Keras, given the spec's canonical
    weights: cnnspec's Keras, torch and ONNX models give the same pooled features and probabilities within
    the tolerance rule, for N(0, 1) and [0, 1) images; parameter counts agree too."""
    pytest.importorskip("keras")
    differences, allowed, probabilities = _published_differences(name, build, inputs, _backends())
    assert set(differences) == {"keras", "torch", "onnx"}
    for backend_name, (features, outputs) in differences.items():
        assert max(features, outputs) <= allowed, (backend_name, features, outputs, allowed)
    # the probabilities are not saturated (a one-hot output would hide differences before the softmax)
    assert probabilities.max() < 0.999, probabilities.max()

    model, report = build(), cnnspec.load_spec(ROOT / "specs" / f"{name}.yaml").summary()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (report.total_params, report.trainable_params) == (model.count_params(), trainable)
    if name == "resnet20_cifar":
        assert 270_000 < report.total_params < 280_000  # "about 0.27M" (He et al. 2015, table 6)


def _replace_with_identity(entry):
    entry["class_name"] = "Identity"
    entry["config"] = {key: entry["config"][key] for key in ("name", "trainable", "dtype")}
    entry.pop("build_config", None)
    for node in entry["inbound_nodes"]:
        node["kwargs"] = {}  # batch norm is called with mask=None, which Identity does not take


def _second_conv_strides(layers):
    """Stage 2's stride moves from the block's first 3x3 convolution to its second: the same shapes."""
    convs = [e for e in layers if e["class_name"] == "Conv2D" and list(e["config"]["kernel_size"]) == [3, 3]]
    first = next(i for i, e in enumerate(convs) if list(e["config"]["strides"]) == [2, 2])
    convs[first]["config"]["strides"], convs[first + 1]["config"]["strides"] = [1, 1], [2, 2]


def _valid_strided_depthwise(layers):
    """The stride-2 depthwise convolution pads nothing: 3x3 instead of 4x4, which global pooling hides."""
    (entry,) = [e for e in layers if e["class_name"] == "DepthwiseConv2D" and list(e["config"]["strides"]) == [2, 2]]
    entry["config"]["padding"] = "valid"


def _no_third_relu(layers):
    _replace_with_identity([e for e in layers if e["class_name"] == "ReLU"][2])


def _no_fourth_batch_norm(layers):
    _replace_with_identity([e for e in layers if e["class_name"] == "BatchNormalization"][3])


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("resnet20_cifar", _second_conv_strides),
        ("resnet20_cifar", _no_fourth_batch_norm),
        ("mobilenetv2_block", _valid_strided_depthwise),
        ("mobilenetv2_block", _no_third_relu),
    ],
)
def test_a_mistake_in_the_hand_written_model_fails_the_comparison(name, change):
    """The check above is not vacuous: a hand-written model with a stride moved, a padding changed or a
    layer left out fails, either while loading the canonical weights or by far more than the tolerance."""
    keras = pytest.importorskip("keras")
    build = dict(PUBLISHED)[name]

    def mutant():
        config = build().get_config()
        change(config["layers"])
        return keras.Model.from_config(config)

    kb = pytest.importorskip("cnnspec.backends.keras_backend")
    try:
        differences, allowed, _ = _published_differences(name, mutant, "normal", [("keras", kb)])
    except AssertionError as error:
        assert "batch_norm layers in the spec" in str(error), error
        return
    assert max(differences["keras"]) > 100 * allowed, (differences, allowed)


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
