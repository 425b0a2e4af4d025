"""int8 and float16 exports: checked for accuracy on the test split, not assumed."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnspec
from tests.cli.helpers import cnnspec as run_cli

pytest.importorskip("cnnspec.backends.onnx_backend")
pytest.importorskip("cnnspec.backends.torch_backend")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants") / "run"
    cnnspec.train("specs/digits_cnn.yaml", "torch", out=root, epochs=12, verbose=False)
    return root


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_variant_keeps_digits_accuracy_within_half_a_point(digits_run, tmp_path, variant):
    out = tmp_path / f"{variant}.onnx"
    report = cnnspec.export_onnx(digits_run, out, variant=variant)
    assert report.accuracy_fp32 > 0.9
    assert abs(report.accuracy - report.accuracy_fp32) <= 0.005, report
    fp32 = cnnspec.export_onnx(digits_run, tmp_path / "fp32.onnx")
    assert out.stat().st_size < fp32.size_bytes  # int8 about 1/3, fp16 about 1/2
    predictor = cnnspec.Predictor(out)
    data = cnnspec.load_data("digits")
    agree = (
        predictor.predict(data.x_test).argmax(1)
        == cnnspec.Predictor(tmp_path / "fp32.onnx").predict(data.x_test).argmax(1)
    ).mean()
    assert agree >= 0.99
    assert cnnspec.evaluate(out)["accuracy"] == pytest.approx(report.accuracy, abs=1e-9)


def test_cli_reports_accuracy_change_and_speed(digits_run, tmp_path):
    result = run_cli("export", "onnx", digits_run, "--output", tmp_path / "q.onnx", "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    assert "int8: test accuracy" in result.stdout and "points" in result.stdout and "img/s" in result.stdout
    assert run_cli("export", "onnx", digits_run, "--quantize", "int4").returncode == 2
    assert run_cli("export", "onnx", digits_run, "--quantize", "int8", "--fp16").returncode == 2


def test_variant_metadata_names_the_precision(digits_run, tmp_path):
    import onnx

    cnnspec.export_onnx(digits_run, tmp_path / "h.onnx", variant="fp16")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "h.onnx")).metadata_props}
    assert props["precision"] == "fp16" and json.loads(props["spec"])["name"] == "digits_cnn"
    assert np.isfinite(cnnspec.Predictor(tmp_path / "h.onnx").predict(np.zeros((1, 8, 8, 1), np.float32))).all()
