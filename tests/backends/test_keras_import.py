"""`cnnspec import keras`: Keras models become specs and canonical weights, or are refused by name.

Round trip: every example spec -> Keras model (compiled with its optimizer and
loss) -> .keras and .h5 -> import -> the same canonical spec and bit-identical
weights, and the imported run's ONNX export equals Keras's predict. Plain Keras
code as course notes write it imports with its parameter counts. Lambda layers,
unsupported arguments and shared layers exit 1 naming the layer and write nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnspec
from cnnspec.fields import ACTIVATION_ALIASES, ACTIVATIONS
from cnnspec.keras_import import UnsupportedKerasModel, import_keras, read_keras_file
from cnnspec.load import dump_spec
from cnnspec.weights import random_weights
from tests.cli.helpers import assert_clean_failure, cnnspec as run_cli
from tests.conftest import ROOT, SPECS

kb = pytest.importorskip("cnnspec.backends.keras_backend")
keras = pytest.importorskip("keras")
layers = keras.layers


def _layers_and_compiled_training(spec):
    """What a Keras file holds of a spec: name, input, layers, optimizer and loss (not epochs, seed, class
    names ...)."""
    document = spec.to_dict()
    document["training"] = {key: document["training"][key] for key in ("optimizer", "loss")}
    document["class_names"] = None
    return dump_spec(cnnspec.load_spec(document))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_every_example_spec_round_trips_through_a_keras_file(spec_path, suffix, tmp_path):
    spec = cnnspec.load_spec(spec_path)
    weights = random_weights(spec, seed=3)
    model = kb.build(spec, weights)
    kb.Trainer(model, spec.training)  # compiles the model with the spec's optimizer and loss, as training does
    path = tmp_path / f"model{suffix}"
    model.save(path)
    imported, imported_weights = import_keras(path)
    assert _layers_and_compiled_training(imported) == _layers_and_compiled_training(spec)
    assert imported_weights.keys() == weights.keys()
    for key, value in weights.items():
        assert imported_weights[key].tobytes() == value.tobytes(), key


# -- every spelling cnnspec's own Keras models are saved with reads back --------------------------------------
def _saved_and_imported(spec, suffix, tmp_path):
    """``spec`` built in Keras with random canonical weights, saved as ``suffix`` and imported:
    (weights, imported spec, imported weights, the Keras classes the file names)."""
    weights = random_weights(spec, seed=5)
    path = tmp_path / f"model{suffix}"
    kb.build(spec, weights).save(path)
    classes = [
        entry["class_name"].removeprefix("cnnspec>") for entry in read_keras_file(path).model["config"]["layers"]
    ]
    imported, imported_weights = import_keras(path)
    return weights, imported, imported_weights, classes


def _assert_same_model(spec, weights, imported, imported_weights):
    assert imported.to_dict()["layers"] == spec.to_dict()["layers"]
    assert imported_weights is not None and imported_weights.keys() == weights.keys()
    for key, value in weights.items():
        got = imported_weights[key]
        assert (got.dtype, got.shape, got.tobytes()) == (value.dtype, value.shape, value.tobytes()), key


def _activation_spec(activation):
    """``activation`` wherever a layer takes one: every convolution, an activation layer, a dense layer."""
    return cnnspec.load_spec({"name": "activations", "input_shape": [5, 5, 2], "layers": [
        {"type": "conv2d", "filters": 3, "kernel_size": 3, "activation": activation},
        {"type": "depthwise_conv2d", "kernel_size": 1, "activation": activation},
        {"type": "separable_conv2d", "filters": 2, "kernel_size": 1, "activation": activation},
        {"type": "activation", "activation": activation},
        {"type": "flatten"},
        {"type": "dense", "units": 3, "activation": activation},
    ]})  # fmt: skip


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("activation", [*ACTIVATIONS, *ACTIVATION_ALIASES])
def test_every_activation_spelling_round_trips_through_a_keras_file_under_its_canonical_name(
    activation, suffix, tmp_path
):
    """Keras saves some activations under another name (activation="swish" is written "silu"): each name the
    spec language accepts, canonical or alias, is written back canonical and imports as the same model."""
    spec = _activation_spec(activation)
    canonical = ACTIVATION_ALIASES.get(activation, activation)
    written = {layer["activation"] for layer in spec.to_dict()["layers"] if "activation" in layer}
    assert written == {canonical}
    _assert_same_model(spec, *_saved_and_imported(spec, suffix, tmp_path)[:3])


@pytest.mark.parametrize("alias,canonical", sorted(ACTIVATION_ALIASES.items()))
def test_an_activation_alias_is_the_same_function_in_keras(alias, canonical):
    """An alias may only name what its canonical name computes: Keras's own table says they are one function."""
    assert canonical in ACTIVATIONS and alias not in ACTIVATIONS
    assert keras.activations.get(alias) is keras.activations.get(canonical)


def test_keras_writes_swish_as_silu(tmp_path):
    """Why the alias exists (Keras 3.15): a model built with swish is saved naming silu, which must import."""
    spec = _activation_spec("swish")
    kb.build(spec).save(tmp_path / "m.keras")
    saved = read_keras_file(tmp_path / "m.keras").model["config"]["layers"]
    assert {entry["config"]["activation"] for entry in saved if "activation" in entry["config"]} == {"silu"}
    assert import_keras(tmp_path / "m.keras")[0] == spec


# cnnspec's own Keras classes: what the Keras backend builds for geometries TensorFlow mishandles (one output
# column at a column stride above 1; unequal depthwise strides) and for the pools Keras has none of
OWN_CLASS_CASES = {
    "SingleWindowConv2D": ({"type": "conv2d", "filters": 2, "kernel_size": 3, "strides": 2}, (5, 3, 2)),
    "ExplicitWindowDepthwiseConv2D": (
        {"type": "depthwise_conv2d", "kernel_size": 2, "strides": [1, 2], "depth_multiplier": 2},
        (4, 6, 2),
    ),
    "ExplicitWindowSeparableConv2D": (
        {"type": "separable_conv2d", "filters": 3, "kernel_size": 2, "strides": [2, 1], "padding": "same"},
        (5, 4, 2),
    ),
    "MinPooling2D": ({"type": "min_pool2d", "pool_size": [2, 3], "strides": [1, 2]}, (5, 7, 2)),
    "SumPooling2D": ({"type": "sum_pool2d", "pool_size": 3, "strides": 2, "padding": "same"}, (6, 5, 2)),
}


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("keras_class", OWN_CLASS_CASES)
def test_cnnspecs_own_keras_classes_round_trip_through_a_keras_file(keras_class, suffix, tmp_path):
    layer, shape = OWN_CLASS_CASES[keras_class]
    spec = cnnspec.load_spec({"name": "own", "input_shape": list(shape), "layers": [
        layer, {"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"},
    ]})  # fmt: skip
    weights, imported, imported_weights, classes = _saved_and_imported(spec, suffix, tmp_path)
    assert keras_class in classes  # the file really holds the class this case is about
    _assert_same_model(spec, weights, imported, imported_weights)


def test_the_imported_run_exports_onnx_equal_to_keras_predict(tmp_path):
    spec = cnnspec.load_spec(SPECS[0])
    model = kb.build(spec, random_weights(spec, seed=1))
    model.save(tmp_path / "m.keras")
    proc = run_cli("import", "keras", tmp_path / "m.keras", "--output", tmp_path / "s.yaml", "--run", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    report = cnnspec.export_onnx(tmp_path / "run", tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((8, *spec.input_shape), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    got = cnnspec.Predictor(tmp_path / "m.onnx").predict(x)
    assert np.abs(got - expected).max() <= report.tolerance


def _course_models():
    """The course notes' models, as plain Keras code writes them (input_shape on the first layer)."""
    return {
        "mnist_cnn": (220_234, [
            layers.Conv2D(32, (3, 3), activation="relu", padding="same", input_shape=(28, 28, 1)),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]),
        "mnist_mlp": (669_706, [
            layers.Flatten(input_shape=(28, 28, 1)),
            layers.Dense(512, activation="relu"),
            layers.Dense(512, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]),
        "mnist_dropout": (600_810, [
            layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["mnist_cnn", "mnist_mlp", "mnist_dropout"])
def test_course_models_import_with_their_parameter_counts(name, tmp_path):
    count, stack = _course_models()[name]
    model = keras.Sequential(stack)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    assert model.count_params() == count
    model.save(tmp_path / "m.keras")
    proc = run_cli("import", "keras", tmp_path / "m.keras", "--output", tmp_path / "s.yaml")
    assert proc.returncode == 0, proc.stderr
    spec = cnnspec.load_spec(tmp_path / "s.yaml")
    assert spec.summary().total_params == count
    assert spec.training.optimizer.type == "adam"


def test_a_json_config_imports_without_weights(tmp_path):
    count, stack = _course_models()["mnist_cnn"]
    (tmp_path / "m.json").write_text(keras.Sequential(stack).to_json())
    spec, weights = import_keras(tmp_path / "m.json")
    assert weights is None and spec.summary().total_params == count
    proc = run_cli("import", "keras", tmp_path / "m.json", "--output", tmp_path / "s.yaml", "--run", tmp_path / "r")
    assert_clean_failure(proc)
    assert "without weights" in proc.stderr and not (tmp_path / "s.yaml").exists()


def _refused(tmp_path, model, *fragments):
    model.save(tmp_path / "m.keras")
    out, run = tmp_path / "s.yaml", tmp_path / "run"
    proc = run_cli("import", "keras", tmp_path / "m.keras", "--output", out, "--run", run)
    assert_clean_failure(proc)
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    assert not out.exists() and not run.exists()  # nothing written


def test_a_lambda_layer_is_refused_by_name_and_never_loaded(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Lambda(lambda x: x * 2, name="doubler"),
                              layers.Flatten(), layers.Dense(3)])  # fmt: skip
    _refused(tmp_path, model, "'doubler'", "Lambda", "arbitrary code")


def test_an_unsupported_argument_is_refused_naming_layer_class_and_argument(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, name="c", kernel_constraint="non_neg"),
                              layers.Flatten(), layers.Dense(3)])  # fmt: skip
    _refused(tmp_path, model, "'c'", "Conv2D", "kernel_constraint")


def test_an_l2_regularizer_imports_as_the_spec_field(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(),
                              layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.01), name="d")])  # fmt: skip
    model.save(tmp_path / "m.keras")
    spec, _ = import_keras(tmp_path / "m.keras")
    rule = spec.layers[1].kernel_regularizer
    assert (rule.l1, rule.l2) == (0.0, pytest.approx(0.01))


def test_a_functional_model_with_a_skip_connection_imports_as_a_graph(tmp_path):
    inputs = keras.Input((8, 8, 2))
    a = layers.Conv2D(2, 3, padding="same", name="a")(inputs)
    b = layers.Conv2D(2, 3, padding="same", name="b")(a)
    both = layers.Concatenate(name="both")([layers.Add(name="skip")([a, b]), inputs])
    model = keras.Model(inputs, layers.Dense(3, name="out")(layers.Flatten(name="flat")(both)))
    model.save(tmp_path / "m.keras")
    spec, weights = import_keras(tmp_path / "m.keras")
    by_name = {layer.name: layer for layer in spec.layers}
    assert by_name["skip"].inputs == ["a", "b"] and by_name["both"].inputs == ["skip", "input"]
    assert by_name["b"].inputs is None  # reads the layer before it: the default
    x = np.random.default_rng(0).random((4, 8, 8, 2), dtype=np.float32)
    got = cnnspec.build(spec, "torch", weights).predict(x)
    assert np.abs(got - model.predict(x, verbose=0)).max() < 1e-5


def test_a_shared_layer_is_refused(tmp_path):
    inputs = keras.Input((8, 8, 2))
    conv = layers.Conv2D(2, 3, padding="same", name="shared")
    out = layers.Dense(3)(layers.Flatten()(layers.Add()([conv(inputs), conv(conv(inputs))])))
    _refused(tmp_path, keras.Model(inputs, out), "'shared'", "more than once")


def test_not_a_keras_file_is_a_clear_error(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"not a zip")
    proc = run_cli("import", "keras", tmp_path / "m.keras", "--output", tmp_path / "s.yaml")
    assert_clean_failure(proc)
    assert "m.keras" in proc.stderr


def test_the_imported_run_fine_tunes_with_resume(tmp_path):
    spec = cnnspec.load_spec(ROOT / "specs" / "digits_cnn.yaml")  # trains on the built-in digits
    model = kb.build(spec, random_weights(spec, seed=2))
    model.save(tmp_path / "m.keras")
    proc = run_cli("import", "keras", tmp_path / "m.keras", "-o", tmp_path / "s.yaml", "--run", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    before = cnnspec.evaluate(tmp_path / "run")
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    settings["epochs"] = 2
    (tmp_path / "run" / "run.json").write_text(json.dumps({"settings": settings}))
    proc = run_cli("train", "--resume", tmp_path / "run", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / "history.json").read_text())["epoch"] == [1, 2]
    assert cnnspec.evaluate(tmp_path / "run")["loss"] < before["loss"]


def test_unsupported_model_is_a_cnnspec_error():
    with pytest.raises(UnsupportedKerasModel, match="model class"):
        from cnnspec.keras_import import spec_document

        spec_document({"class_name": "Subclassed", "config": {}})


def _keras_unet(classes, activation):
    """A small U-Net written by hand in Keras for the 32x32x1 shapes set: one pooling stage, a transposed
    convolution back up, a skip connection."""
    inputs = keras.Input((32, 32, 1))
    down = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    bottom = layers.Conv2D(16, 3, padding="same", activation="relu")(layers.MaxPooling2D(2)(down))
    up = layers.Conv2DTranspose(8, 2, strides=2)(bottom)
    merged = layers.Concatenate()([up, down])
    return keras.Model(inputs, layers.Conv2D(classes, 1, activation=activation)(merged))


@pytest.mark.parametrize(
    "loss,classes,activation,metrics",
    [
        (keras.losses.Dice(), 4, "softmax", "accuracy"),
        (keras.losses.SparseCategoricalCrossentropy(), 4, "softmax", "accuracy"),
        ("binary_crossentropy", 1, "sigmoid", "binary_accuracy"),
    ],
    ids=["dice", "sparse_categorical_crossentropy", "binary_crossentropy"],
)
@pytest.mark.slow  # 35 s each (a Keras model saved, imported, trained in a subprocess): `make test` stays under 30 min
def test_a_keras_unet_compiled_for_segmentation_imports_and_fine_tunes(tmp_path, loss, classes, activation, metrics):
    """Issue 25's check: a Keras U-Net compiled with a Dice or cross-entropy loss imports with its loss, and
    `train --resume` fine-tunes the imported run on per-pixel masks (the built-in shapes set)."""
    model = _keras_unet(classes, activation)
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss=loss, metrics=[metrics])
    model.save(tmp_path / "m.keras")
    proc = run_cli(
        "import", "keras", tmp_path / "m.keras", "-o", tmp_path / "s.yaml", "--run", tmp_path / "run"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    spec = cnnspec.load_spec(tmp_path / "s.yaml")
    assert spec.training.loss.type == (loss if isinstance(loss, str) else loss.name)
    assert spec.summary().total_params == model.count_params()
    data = cnnspec.data.load_data("shapes")  # a quarter of it, enough to see a loss go down
    masks = (lambda y: (y > 0)[..., None]) if classes == 1 else (lambda y: y)  # 1 channel: shape or background
    arrays = (data.x_train[:512], masks(data.y_train[:512]), data.x_test[:64], masks(data.y_test[:64]))
    np.savez(tmp_path / "masks.npz", **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays)))
    source = f"npz:{tmp_path / 'masks.npz'}"
    before = cnnspec.evaluate(tmp_path / "run", data=source)
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    settings.update(epochs=1, data=source)
    (tmp_path / "run" / "run.json").write_text(json.dumps({"settings": settings}))
    proc = run_cli("train", "--resume", tmp_path / "run", "--quiet")
    assert proc.returncode == 0, proc.stderr
    after = cnnspec.evaluate(tmp_path / "run", data=source)
    assert after["loss"] < before["loss"]
    assert set(after) == set(before) == {"loss", "n", *spec.training.metrics}  # the loss's own metrics
