"""`cnnspec export keras|torch`: files that plain Keras / plain torch load, equal to the run.

Every example spec is exported both ways from random weights; a fresh interpreter
that never imports cnnspec loads each file and its outputs are compared with the
run's backend within the tolerance rule. Min and sum pooling (cnnspec's own Keras
layers) need cnnspec's Keras module to load, and the export says so.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import cnnspec
from cnnspec.native_export import export_keras, export_torch
from cnnspec.numerics import layer_tolerances, max_difference
from cnnspec.weights import random_weights
from tests.backends.test_onnx_backend import _run_dir_with
from tests.cli.helpers import assert_clean_failure, cnnspec as run_cli
from tests.conftest import SPECS

pytest.importorskip("cnnspec.backends.torch_backend")
pytest.importorskip("cnnspec.backends.keras_backend")

# Loads every file with the framework alone and prints its outputs; fails if cnnspec gets imported.
PLAIN_LOADER = """
import json, sys
import numpy as np
jobs = json.loads(sys.argv[1])
out = {}
for job in jobs:
    x = np.load(job["x"])
    if job["framework"] == "torch":
        import torch
        module = torch.export.load(job["file"]).module()
        with torch.no_grad():
            out[job["file"]] = module(torch.from_numpy(x)).numpy().tolist()
    else:
        import keras
        model = keras.models.load_model(job["file"], compile=False, safe_mode=True)
        out[job["file"]] = np.asarray(model(x, training=False)).tolist()
assert not any(name.startswith("cnnspec") for name in sys.modules), "the loader imported cnnspec"
print(json.dumps(out))
"""


def _plain_outputs(jobs: list[dict]) -> dict[str, np.ndarray]:
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_LOADER, json.dumps(jobs)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {name: np.asarray(values, dtype=np.float32) for name, values in json.loads(proc.stdout).items()}


def test_every_example_spec_exports_files_plain_keras_and_plain_torch_load(tmp_path):
    jobs, expected = [], {}
    for spec_path in SPECS:
        spec = cnnspec.load_spec(spec_path)
        run = _run_dir_with(tmp_path / spec.name, spec, random_weights(spec, seed=4))
        x = np.random.default_rng(1).random((5, *spec.input_shape), dtype=np.float32)
        np.save(tmp_path / f"{spec.name}.npy", x)
        layers = cnnspec.build(spec, "torch", cnnspec.load_weights(run / "weights.safetensors")).layer_outputs(x)
        report = export_torch(run, tmp_path / f"{spec.name}.pt2")
        assert report.max_abs_diff <= report.tolerance
        jobs.append({"framework": "torch", "file": str(report.path), "x": str(tmp_path / f"{spec.name}.npy")})
        expected[str(report.path)] = (layers, x)
        keras_report = export_keras(run, tmp_path / f"{spec.name}.keras")
        if keras_report.needs is None:  # cnnspec's min/sum pooling need cnnspec to load: tested below
            jobs.append({"framework": "keras", "file": str(keras_report.path), "x": jobs[-1]["x"]})
            expected[str(keras_report.path)] = (layers, x)
    outputs = _plain_outputs(jobs)
    assert len(outputs) == len(jobs) and any(job["framework"] == "keras" for job in jobs)
    for name, got in outputs.items():
        layers, x = expected[name]
        assert max_difference(got, layers[-1]) <= layer_tolerances(x, layers)[-1], name


def test_min_and_sum_pooling_say_what_loading_needs(tmp_path):
    spec = cnnspec.load_spec({"input_shape": [6, 6, 2], "layers": [
        {"type": "min_pool2d"}, {"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"}]})  # fmt: skip
    run = _run_dir_with(tmp_path / "run", spec, random_weights(spec))
    proc = run_cli("export", "keras", run, "--output", tmp_path / "m.keras")
    assert proc.returncode == 0, proc.stderr
    assert "MinPooling2D" in proc.stdout and "import cnnspec.backends.keras_backend" in proc.stdout


def test_training_only_layers_are_left_out(tmp_path):
    from cnnspec.registry import LAYER_CLASSES

    augmentation = [cls for cls in LAYER_CLASSES.values() if cls.training_only]
    if not augmentation:
        pytest.skip("no training-only layer type is registered")
    spec = cnnspec.load_spec({"input_shape": [8, 8, 1], "layers": [
        {"type": "random_flip", "name": "flip"}, {"type": "flatten"},
        {"type": "dense", "units": 3, "activation": "softmax"}]})  # fmt: skip
    run = _run_dir_with(tmp_path / "run", spec, random_weights(spec))
    report = export_torch(run, tmp_path / "m.pt2")
    assert report.left_out == ["flip"]
    proc = run_cli("export", "keras", run, "--output", tmp_path / "m.keras")
    assert proc.returncode == 0 and "Left out (training only): flip" in proc.stdout
    import keras

    names = [layer.name for layer in keras.models.load_model(tmp_path / "m.keras").layers]
    assert "flip" not in names


def test_nchw_torch_export_takes_nchw(tmp_path):
    spec = cnnspec.load_spec(SPECS[0])
    run = _run_dir_with(tmp_path / "run", spec, random_weights(spec))
    report = export_torch(run, tmp_path / "m.pt2", layout="nchw")
    import torch

    module = torch.export.load(str(report.path)).module()
    x = np.random.default_rng(0).random((3, *spec.input_shape), dtype=np.float32)
    got = module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).detach().numpy()
    expected = cnnspec.build(spec, "torch", cnnspec.load_weights(run / "weights.safetensors")).predict(x)
    assert np.abs(got - expected).max() <= report.tolerance


def test_a_wrong_suffix_or_a_missing_run_is_a_clear_error(tmp_path):
    proc = run_cli("export", "keras", tmp_path / "nothing", "--output", tmp_path / "m.h5")
    assert_clean_failure(proc)
    proc = run_cli("export", "torch", tmp_path / "nothing", "--output", tmp_path / "m.pt2")
    assert_clean_failure(proc)
    assert not (tmp_path / "m.pt2").exists()
