"""``cnnspec.build`` returns a ``Model`` that knows its backend; ``predict`` needs no backend named twice."""

from __future__ import annotations

import numpy as np
import pytest

import cnnspec
from cnnspec.model import Model
from cnnspec.weights import random_weights

pytest.importorskip("torch")

TINY = {
    "name": "tiny_model",
    "input_shape": [8, 8, 1],
    "layers": [
        {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "batch_norm"},
        {"type": "max_pool2d"},
        {"type": "flatten"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ],
    "training": {"epochs": 1, "batch_size": 64},
}
X = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)


def _backend(name):
    if name == "keras":
        pytest.importorskip("keras")
    if name == "onnx":
        pytest.importorskip("onnxruntime")
    from cnnspec.backends import load_backend

    return load_backend(name)


@pytest.mark.parametrize("backend", ["torch", "keras", "onnx"])
def test_build_gives_a_model_whose_predict_is_the_backends(backend):
    module = _backend(backend)
    spec = cnnspec.load_spec(TINY)
    weights = random_weights(spec, 1)
    model = cnnspec.build(spec, backend=backend, weights=weights)
    assert isinstance(model, Model) and model.backend == backend and model.spec == spec
    expected = module.predict(module.build(spec, weights), X)
    np.testing.assert_array_equal(model.predict(X), expected)
    np.testing.assert_array_equal(cnnspec.predict(model, X), expected)  # no backend named
    np.testing.assert_array_equal(cnnspec.predict(model.native, X), expected)  # a bare model: told by its type
    np.testing.assert_array_equal(cnnspec.predict(model.native, X, backend=backend), expected)  # the old form
    outputs = model.layer_outputs(X)
    assert len(outputs) == len(spec.layers)
    np.testing.assert_allclose(outputs[-1], expected, atol=1e-6)
    got = model.get_weights()
    assert set(got) == set(weights)
    for key in weights:
        np.testing.assert_allclose(got[key], weights[key], rtol=1e-6)
    assert model.summary().total_params == spec.summary().total_params
    text = repr(model)
    assert backend in text and "tiny_model" in text


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_set_weights_changes_what_the_model_predicts(backend):
    _backend(backend)
    spec = cnnspec.load_spec(TINY)
    model = cnnspec.build(spec, backend=backend)
    other = cnnspec.build(spec, backend="torch", weights=random_weights(spec, 2))
    assert model.set_weights(other.get_weights()) is model
    np.testing.assert_allclose(model.predict(X), other.predict(X), atol=1e-6)


def test_build_reads_weights_from_a_file(tmp_path):
    spec = cnnspec.load_spec(TINY)
    weights = random_weights(spec, 3)
    cnnspec.save_weights(tmp_path / "w.safetensors", weights, spec)
    model = cnnspec.build(TINY, weights=tmp_path / "w.safetensors")
    np.testing.assert_array_equal(model.get_weights()["dense_4/kernel"], weights["dense_4/kernel"])


def test_predict_refuses_a_backend_other_than_the_models_and_unknown_objects():
    model = cnnspec.build(TINY, backend="torch")
    with pytest.raises(cnnspec.CnnspecError, match="built for the torch backend"):
        cnnspec.predict(model, X, backend="keras")
    with pytest.raises(cnnspec.CnnspecError, match="cannot tell which backend"):
        cnnspec.predict(object(), X)
    with pytest.raises(cnnspec.BackendUnavailable, match="unknown backend"):
        cnnspec.build(TINY, backend="jax")


def test_train_returns_the_trained_model_with_its_backend(tmp_path):
    result = cnnspec.train(TINY, "torch", out=tmp_path / "run", epochs=1, precision="fp32", verbose=False)
    assert isinstance(result.model, Model) and result.model.backend == "torch"
    run = cnnspec.load_run(tmp_path / "run")
    assert run.settings.backend == "torch" and run.settings.epochs == 1
    kept = cnnspec.build(run.spec, run.settings.backend, run.weights)
    np.testing.assert_array_equal(cnnspec.predict(result.model, X), kept.predict(X))  # it holds the kept weights
    accuracy = float((result.model.predict(run.dataset().x_test).argmax(1) == run.dataset().y_test).mean())
    assert accuracy == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    assert cnnspec.evaluate(tmp_path / "run")["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    with pytest.raises(cnnspec.BackendUnavailable, match="does not train"):  # evaluation needs its Trainer
        cnnspec.evaluate(tmp_path / "run", backend="onnx")
