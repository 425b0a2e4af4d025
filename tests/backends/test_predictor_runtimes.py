"""`predict`, `evaluate FILE.onnx` and `cnnspec.Predictor` run an exported file in ONNX Runtime, OpenVINO,
or the faster of the two here (`auto`), with the same results: the file as written, at each runtime's
defaults but float32 (OpenVINO's CPU default is bf16 where the CPU has it, about 1e-3 off)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnspec
from cnnspec.errors import CnnspecError
from cnnspec.numerics import max_difference, tolerance_for
from cnnspec.weights import random_weights
from tests.cli.helpers import assert_clean_failure, cnnspec as run_cli

ob = pytest.importorskip("cnnspec.backends.onnx_backend")
pytest.importorskip("openvino")


@pytest.fixture(scope="module", params=["digits_cnn", "unet_shapes"])
def exported(request, tmp_path_factory):
    """An exported example spec with random weights, and a batch for it."""
    spec = cnnspec.load_spec(f"specs/{request.param}.yaml")
    path = tmp_path_factory.mktemp("runtimes") / f"{request.param}.onnx"
    path.write_bytes(ob.to_onnx(spec, random_weights(spec, 1)).SerializeToString())
    x = np.random.default_rng(1).random((5, *spec.input_shape), dtype=np.float32)
    return path, x


def test_openvino_predicts_what_onnx_runtime_does(exported):
    path, x = exported
    expected = cnnspec.Predictor(path).predict(x)
    predictor = cnnspec.Predictor(path, runtime="openvino")
    got = predictor.predict(x)
    assert predictor.runtime == "openvino" and predictor.providers == ["OpenVINO CPU"]
    assert got.shape == expected.shape and max_difference(got, expected) <= tolerance_for(x, expected)
    assert max_difference(predictor.predict(x[:1]), expected[:1]) <= tolerance_for(x, expected)  # any batch size


def test_auto_takes_one_of_the_two_and_says_what_it_measured(exported):
    path, x = exported
    predictor = cnnspec.Predictor(path, runtime="auto")
    assert predictor.runtime in ("onnxruntime", "openvino")
    assert "onnxruntime" in predictor.runtime_reason and "openvino" in predictor.runtime_reason
    expected = cnnspec.Predictor(path).predict(x)
    assert max_difference(predictor.predict(x), expected) <= tolerance_for(x, expected)


def test_evaluate_and_predict_cli_take_the_runtime(tmp_path):
    spec = cnnspec.load_spec("specs/digits_cnn.yaml")
    path = tmp_path / "d.onnx"
    path.write_bytes(ob.to_onnx(spec, random_weights(spec, 2)).SerializeToString())
    results = {
        runtime: json.loads(run_cli("evaluate", path, "--json", "--runtime", runtime).stdout)
        for runtime in ("onnxruntime", "openvino")
    }
    assert results["openvino"]["accuracy"] == results["onnxruntime"]["accuracy"]
    assert results["openvino"]["loss"] == pytest.approx(results["onnxruntime"]["loss"], abs=1e-5)
    np.save(tmp_path / "x.npy", cnnspec.load_data("digits").x_test[:4])
    printed = {
        runtime: json.loads(run_cli("predict", path, tmp_path / "x.npy", "--json", "--runtime", runtime).stdout)
        for runtime in ("onnxruntime", "openvino")
    }
    classes = {runtime: [row["top"][0]["class"] for row in rows] for runtime, rows in printed.items()}
    assert classes["openvino"] == classes["onnxruntime"]


def test_bad_runtime_choices_are_one_clear_error(tmp_path, monkeypatch):
    spec = cnnspec.load_spec("specs/digits_cnn.yaml")
    path = tmp_path / "d.onnx"
    path.write_bytes(ob.to_onnx(spec, random_weights(spec, 2)).SerializeToString())
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 1), np.float32))
    result = run_cli("predict", path, tmp_path / "x.npy", "--runtime", "tensorflow")
    assert_clean_failure(result)
    assert "runtime must be one of onnxruntime, openvino, auto" in result.stderr
    with pytest.raises(CnnspecError, match="--provider chooses ONNX Runtime's device"):
        cnnspec.Predictor(path, provider="cpu", runtime="openvino")
    import importlib.util

    from cnnspec.backends.onnx_backend import sessions

    real = importlib.util.find_spec
    monkeypatch.setattr(sessions.importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name))
    with pytest.raises(CnnspecError, match=r"openvino runtime is not installed; pip install 'cnnspec\[runtimes\]'"):
        cnnspec.Predictor(path, runtime="openvino")
    auto = cnnspec.Predictor(path, runtime="auto")  # without OpenVINO, auto is ONNX Runtime, and says why
    assert auto.runtime == "onnxruntime" and "openvino is not installed" in auto.runtime_reason
