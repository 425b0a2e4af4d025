"""The layer harness: every case of every registered layer type through every framework, with no per-type code.

For each case (tests/layers/cases.py): output shape and parameter count equal Keras's; per-layer forward
parity of torch, Keras and ONNX Runtime with inputs N(0, 1) and [0, 1); the exported file, as written, in
every installed runtime (ONNX Runtime at each optimisation level, OpenVINO, OpenCV); one training step
equal in torch and Keras, with gradients through the layer; the Keras import round trip through ``.keras``
and ``.h5``; and the ``.keras`` and ``.pt2`` exports loading back in plain Keras and plain torch. A type
without cases, or without a builder, fails in tests/layers/test_contract.py by name; here its cases fail.
Hand-written tests elsewhere cover what is special to a type (tests/backends/test_augmentation.py: random
layers in training).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnnspec
from cnnspec.numerics import layer_tolerances, max_difference, tolerance_for
from cnnspec.registry import LAYER_CLASSES
from cnnspec.weights import random_weights
from tests.layers.harness import case_index, case_params, case_spec, training_spec
from tests.parity.helpers import assert_same_per_layer

torch_backend = pytest.importorskip("cnnspec.backends.torch_backend")
keras_backend = pytest.importorskip("cnnspec.backends.keras_backend")
onnx_backend = pytest.importorskip("cnnspec.backends.onnx_backend")
from cnnspec.backends.onnx_backend import runners  # noqa: E402

BACKENDS = [("keras", keras_backend), ("torch", torch_backend), ("onnx", onnx_backend)]
CASES = case_params()


@pytest.mark.parametrize("kind,layer,shape", CASES)
def test_shapes_and_parameter_counts_equal_keras(kind, layer, shape):
    spec = case_spec(layer, shape)
    model = keras_backend.build(spec)
    report = spec.summary()
    keras_layers = [model.get_layer(layer.name) for layer in spec.layers]
    assert [tuple(layer.output.shape[1:]) for layer in keras_layers] == [info.output_shape for info in report.layers]
    assert [layer.count_params() for layer in keras_layers] == [info.params for info in report.layers]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (model.count_params(), trainable) == (report.total_params, report.trainable_params)


@pytest.mark.parametrize("inputs", ["normal", "uniform"])
@pytest.mark.parametrize("kind,layer,shape", CASES)
def test_forward_parity_of_torch_keras_and_onnx(kind, layer, shape, inputs):
    """N(0, 1) inputs show sign and scale mistakes; inputs in [0, 1), like images, hold layers that stay
    below 1 to the headline bound, 1e-5 absolute (benchmarks/bench_parity.py tabulates the bounds applied)."""
    assert_same_per_layer(case_spec(layer, shape), BACKENDS, inputs=inputs)


@pytest.mark.parametrize("kind,layer,shape", CASES)
def test_the_exported_file_runs_right_in_every_runtime(kind, layer, shape):
    spec = case_spec(layer, shape)
    weights = random_weights(spec, 0)
    x = np.random.default_rng(0).normal(0, 1, (3, *spec.input_shape)).astype(np.float32)
    expected = keras_backend.layer_outputs(keras_backend.build(spec, weights), x)
    model = onnx_backend.to_onnx(spec, weights).SerializeToString()
    for name in (name for name in runners.RUNNERS if runners.missing(name) is None):
        diff = max_difference(runners.run(name, model, x)["output"], expected[-1])
        assert diff <= layer_tolerances(x, expected)[-1], f"{name}: {diff:.2e}"


@pytest.mark.parametrize("kind,layer,shape", CASES)
def test_one_training_step_is_equal_in_torch_and_keras(kind, layer, shape):
    """Gradients through the layer: the weights before it move by what its backward pass hands back."""
    if LAYER_CLASSES[kind].draws_in_training:
        pytest.skip(f"{kind} draws random numbers in training: {LAYER_CLASSES[kind].draws_in_training}")
    spec = training_spec(layer, shape, optimizer={"type": "sgd", "learning_rate": 0.1})
    weights = random_weights(spec, 2)
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (6, *spec.input_shape)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    after = {}
    for name, backend in (("torch", torch_backend), ("keras", keras_backend)):
        model = backend.build(spec, weights)
        trainer = backend.Trainer(model, spec.training)
        trainer.train_step(*trainer.prepare(x, y))
        after[name] = backend.get_weights(model)
    for key, start in weights.items():
        allowed = tolerance_for(start, after["keras"][key])
        assert max_difference(after["torch"][key], after["keras"][key]) <= allowed, key
    moved = after["keras"]["before/kernel"] - weights["before/kernel"]
    assert np.abs(moved).max() > 1e-6, "no gradient reached the layer before: the step proves nothing"


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("kind,layer,shape", CASES)
def test_a_keras_file_of_the_case_imports_back_the_same(kind, layer, shape, suffix, tmp_path):
    spec = case_spec(layer, shape)
    weights = random_weights(spec, 3)
    keras_backend.build(spec, weights).save(tmp_path / f"model{suffix}")
    imported, imported_weights = cnnspec.import_keras(tmp_path / f"model{suffix}")
    assert imported.to_dict()["layers"] == spec.to_dict()["layers"]
    assert imported_weights is not None and imported_weights.keys() == weights.keys()
    for key, value in weights.items():
        assert imported_weights[key].tobytes() == value.tobytes(), key


# -- the .keras and .pt2 exports, loaded back by the framework alone ---------------------------------------
LOADER = """
import json, sys
import numpy as np
jobs, allowed = json.loads(sys.argv[1]), sys.argv[2]
if allowed:
    __import__(allowed)  # cnnspec's own Keras layers, which the file says it needs
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
assert allowed or not any(name.startswith("cnnspec") for name in sys.modules), "the plain loader imported cnnspec"
print(json.dumps(out))
"""


def _load_alone(jobs: list[dict], allowed: str = "") -> dict[str, np.ndarray]:
    if not jobs:
        return {}
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(jobs), allowed],
        capture_output=True,
        text=True,
        timeout=900,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {name: np.asarray(values, dtype=np.float32) for name, values in json.loads(proc.stdout).items()}


@pytest.fixture(scope="module")
def native_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every case exported both ways, then loaded back in two fresh interpreters: one that never imports
    cnnspec, one that imports only cnnspec's Keras layers (for the files whose export says they need them).
    Case id -> ((torch output, keras output), per-layer reference outputs, input)."""
    from cnnspec.native_export import export_keras, export_torch
    from tests.backends.test_onnx_backend import _run_dir_with

    root = tmp_path_factory.mktemp("native")
    plain, needing, cases = [], [], {}
    for param in CASES:
        case_id, (_, layer, shape) = param.id, param.values
        spec = case_spec(layer, shape)
        run = _run_dir_with(root / case_id, spec, random_weights(spec, 4))
        x = np.random.default_rng(1).random((5, *spec.input_shape), dtype=np.float32)
        np.save(root / f"{case_id}.npy", x)
        torch_file, keras_file = (
            export_torch(run, root / f"{case_id}.pt2"),
            export_keras(run, root / f"{case_id}.keras"),
        )
        plain.append({"framework": "torch", "file": str(torch_file.path), "x": str(root / f"{case_id}.npy")})
        keras_job = {"framework": "keras", "file": str(keras_file.path), "x": str(root / f"{case_id}.npy")}
        (needing if keras_file.needs else plain).append(keras_job)
        layers = cnnspec.build(spec, "torch", cnnspec.load_weights(run / "weights.safetensors")).layer_outputs(x)
        cases[case_id] = ((str(torch_file.path), str(keras_file.path)), layers, x)
    outputs = {**_load_alone(plain), **_load_alone(needing, "cnnspec.backends.keras_backend")}
    return {case_id: (tuple(outputs.get(f) for f in files), layers, x) for case_id, (files, layers, x) in cases.items()}


@pytest.mark.parametrize("kind,layer,shape", CASES)
def test_keras_and_torch_exports_load_back_without_cnnspec(kind, layer, shape, native_exports, request):
    case_id = request.node.callspec.id
    (from_torch, from_keras), layers, x = native_exports[case_id]
    allowed = layer_tolerances(x, layers)[-1]
    for framework, got in (("torch", from_torch), ("keras", from_keras)):
        assert got is not None, f"{framework}: the file did not load"
        assert max_difference(got, layers[-1]) <= allowed, framework


def test_the_harness_sees_every_type_case_and_spec_that_trains(tmp_path: Path):
    assert {param.values[0] for param in CASES} == set(LAYER_CLASSES)
    for param in CASES:
        kind, layer, shape = param.values
        spec = training_spec(layer, shape)
        assert spec.layers[2 if len(shape) == 1 else 1].type == kind
        assert type(case_spec(layer, shape).layers[case_index(shape)]).__name__ == LAYER_CLASSES[kind].__name__
