"""Specs whose output is a map of class scores (a U-Net's per-pixel classes), not one vector per image.

specs/unet_small.yaml is checked against a U-Net written by hand here with plain keras.layers and given
the spec's canonical weights: same output at every pixel. Then the spec runs equal layer by layer in
torch, Keras and ONNX Runtime; its exported file gives a channels-last map (as Keras does) in every
installed runtime; it round-trips through a Keras file; and training it is refused with one clear
sentence (the data sets give one label per image).
"""

from __future__ import annotations

import numpy as np
import pytest

import cnnspec
from cnnspec.errors import DataError
from cnnspec.numerics import layer_tolerances, max_difference, tolerance_for
from cnnspec.weights import random_weights
from tests.conftest import ROOT
from tests.parity.helpers import assert_same_per_layer, batch

UNET = ROOT / "specs" / "unet_small.yaml"


def _hand_written_unet():
    """The U-Net of Ronneberger et al. at toy size, as Keras's segmentation examples write one."""
    from keras import Input, Model, layers

    def conv(filters, name):
        return layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)

    inputs = Input((32, 32, 3))
    enc1 = conv(8, "enc1_conv2")(conv(8, "enc1_conv1")(inputs))
    enc2 = conv(16, "enc2_conv2")(conv(16, "enc2_conv1")(layers.MaxPooling2D(2)(enc1)))
    bottom = conv(32, "bottom_conv2")(conv(32, "bottom_conv1")(layers.MaxPooling2D(2)(enc2)))
    up2 = layers.Conv2DTranspose(16, 2, strides=2, name="dec2_up")(bottom)
    dec2 = conv(16, "dec2_conv2")(conv(16, "dec2_conv1")(layers.Concatenate()([up2, enc2])))
    up1 = conv(8, "dec1_up_conv")(layers.UpSampling2D(2, interpolation="bilinear")(dec2))
    dec1 = conv(8, "dec1_conv2")(conv(8, "dec1_conv1")(layers.Concatenate()([up1, enc1])))
    outputs = layers.Conv2D(3, 1, activation="softmax", name="classes")(dec1)
    return Model(inputs, outputs)


def test_unet_spec_equals_a_unet_written_by_hand_in_keras():
    pytest.importorskip("keras")
    spec = cnnspec.load_spec(UNET)
    weights = random_weights(spec, 0)
    model = _hand_written_unet()
    assert model.count_params() == spec.summary().total_params
    for layer in (layer for layer in model.layers if layer.weights):
        for variable in layer.weights:
            variable.assign(weights.pop(f"{layer.name}/{variable.name}"))
    assert not weights, f"canonical weights the hand-written model has no place for: {sorted(weights)}"
    kb = pytest.importorskip("cnnspec.backends.keras_backend")
    x = batch(spec, seed=1)
    expected = np.asarray(model(x, training=False))
    got = kb.predict(kb.build(spec, random_weights(spec, 0)), x)
    assert got.shape == expected.shape == (len(x), 32, 32, 3)
    assert max_difference(got, expected) <= tolerance_for(x, expected)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_predict_gives_the_map_channels_last_as_keras_does(backend):
    """``cnnspec.predict`` (and the report, which reads it) in every backend: (N, H, W, classes), Keras's values."""
    spec = cnnspec.load_spec(UNET)
    weights = random_weights(spec, 0)
    x = batch(spec, n=3, seed=3)
    kb, other = (pytest.importorskip(f"cnnspec.backends.{name}_backend") for name in ("keras", backend))
    expected = kb.predict(kb.build(spec, weights), x)
    got = other.predict(other.build(spec, weights), x)
    assert got.shape == expected.shape == (3, 32, 32, 3)
    assert max_difference(got, expected) <= tolerance_for(x, expected)


@pytest.mark.parametrize("inputs", ["normal", "uniform"])
def test_unet_runs_equal_layer_by_layer_in_every_backend(inputs):
    backends = [(name, pytest.importorskip(f"cnnspec.backends.{name}_backend")) for name in ("keras", "torch", "onnx")]
    assert_same_per_layer(cnnspec.load_spec(UNET), backends, inputs=inputs)


def test_exported_unet_gives_a_channels_last_map_in_every_runtime():
    tb = pytest.importorskip("cnnspec.backends.torch_backend")
    ob = pytest.importorskip("cnnspec.backends.onnx_backend")
    spec = cnnspec.load_spec(UNET)
    weights = random_weights(spec, 0)
    x = batch(spec, n=3, seed=2)
    layers = tb.layer_outputs(tb.build(spec, weights), x)
    bound = layer_tolerances(x, layers)[-1]
    model = ob.to_onnx(spec, weights)
    dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 32, 32, 3]
    data = model.SerializeToString()
    for name in (name for name in ob.RUNNERS if ob.runner_missing(name) is None):
        got = ob.run_file(name, data, x)["output"]
        assert got.shape == (3, 32, 32, 3), name
        assert max_difference(got, layers[-1]) <= bound, name
    np.testing.assert_allclose(layers[-1].sum(axis=-1), 1.0, atol=1e-5)  # a softmax over each pixel's classes


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_unet_round_trips_through_a_keras_file(suffix, tmp_path):
    kb = pytest.importorskip("cnnspec.backends.keras_backend")
    from cnnspec.keras_import import import_keras

    spec = cnnspec.load_spec(UNET)
    weights = random_weights(spec, 3)
    kb.build(spec, weights).save(tmp_path / f"unet{suffix}")
    imported, imported_weights = import_keras(tmp_path / f"unet{suffix}")
    assert imported.summary().output_shape == (32, 32, 3)
    assert [layer.type for layer in imported.layers] == [layer.type for layer in spec.layers]
    for key, value in weights.items():
        assert imported_weights[key].tobytes() == value.tobytes(), key


def test_training_a_map_output_on_one_label_per_image_is_refused_in_one_sentence(tmp_path):
    """Per-pixel targets train a map (tests/parity/test_task_losses.py); digits' one label per image does not."""
    message = r"train labels are one number per image, but the spec's output \[32, 32, 3\] trains on class indices"
    with pytest.raises(DataError, match=message):
        cnnspec.train(UNET, backend="torch", data="digits", resize=True, epochs=1, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_imported_unet_exports_verifies_and_predicts_masks_but_does_not_evaluate_on_digits(tmp_path):
    """A Keras U-Net imported with a run directory: `cnnspec export onnx` verifies it (a map comes out in the
    input's layout), `cnnspec predict` writes a mask, and `cnnspec evaluate` on the run or the file with
    digits (one label per image) exits 1 in one line instead of reading digit labels as pixel classes."""
    from tests.cli.helpers import assert_clean_failure, cnnspec as run_cli

    kb = pytest.importorskip("cnnspec.backends.keras_backend")
    spec = cnnspec.load_spec(UNET)
    kb.build(spec, random_weights(spec, 0)).save(tmp_path / "unet.keras")
    imported = run_cli("import", "keras", str(tmp_path / "unet.keras"), "--output", str(tmp_path / "unet.yaml"),
                       "--run", str(tmp_path / "run"))  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    for layout in ("nhwc", "nchw"):
        exported = run_cli("export", "onnx", str(tmp_path / "run"), "--output", str(tmp_path / f"{layout}.onnx"),
                           "--layout", layout)  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        assert "Verified" in exported.stdout
    for target in (tmp_path / "run", tmp_path / "nhwc.onnx"):
        result = run_cli("evaluate", str(target), "--resize")
        assert_clean_failure(result)
        assert "labels are one number per image, but the spec's output [32, 32, 3]" in result.stderr
    np.save(tmp_path / "x.npy", np.zeros((1, 32, 32, 3), np.float32))
    result = run_cli("predict", str(tmp_path / "nhwc.onnx"), str(tmp_path / "x.npy"), "--masks", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(tmp_path / "m" / "x.png") as mask:  # one class index per pixel
        assert mask.size == (32, 32) and mask.mode == "L" and max(mask.getdata()) < 3
