"""The ONNX backend: export checks, opsets and layouts, ONNX Runtime inference, and the CLI around it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnspec
from cnnspec.placement import Placement
from cnnspec.weights import random_weights
from tests.backends.test_torch_training import TINY
from tests.cli.helpers import assert_clean_failure, cnnspec as run_cli

onnx = pytest.importorskip("onnx")
ob = pytest.importorskip("cnnspec.backends.onnx_backend")
pytest.importorskip("cnnspec.backends.torch_backend")


@pytest.mark.parametrize("opset", [13, 17, 20, ob.MAX_OPSET])
def test_every_layer_at_every_supported_opset_loads_and_matches_torch(opset):
    from cnnspec.backends import torch_backend as tb

    spec = cnnspec.load_spec("specs/every_layer.yaml")
    spec = spec.model_copy(
        update={"layers": [*spec.layers[:-2], cnnspec.Dense(name="gelu", units=16, activation="gelu"), spec.layers[-1]]}
    )
    weights = random_weights(spec, 4)
    model, tensors = ob.to_onnx_with_layers(spec, weights, opset=opset)
    ob.check_model(model, spec, tensors)
    x = np.random.default_rng(0).normal(size=(3, *spec.input_shape)).astype(np.float32)
    got = ob.Predictor(model).predict(x)
    np.testing.assert_allclose(got, tb.predict(tb.build(spec, weights), x), atol=1e-5)


def test_opset_out_of_range_is_refused():
    spec = cnnspec.load_spec("specs/mnist_mlp.yaml")
    for opset in (12, ob.MAX_OPSET + 1):
        with pytest.raises(cnnspec.CnnspecError, match=f"opset {opset} is not supported"):
            ob.to_onnx(spec, random_weights(spec), opset=opset)


def test_graph_is_readable_and_carries_metadata():
    spec = cnnspec.load_spec("specs/digits_cnn.yaml")
    model = ob.to_onnx(spec, random_weights(spec), class_names=list("0123456789"))
    node_names = {node.name for node in model.graph.node}
    assert {layer.name for layer in spec.layers} <= node_names  # every layer is a named node
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output", "logits"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [8, 8, 1]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["spec_name"] == "digits_cnn" and props["num_classes"] == "10"
    assert cnnspec.load_spec(json.loads(props["spec"])) == spec
    assert json.loads(props["class_names"]) == list("0123456789")
    assert model.ir_version <= 13  # what ONNX Runtime 1.31 accepts
    ops = {node.op_type for node in model.graph.node}
    assert "Dropout" not in ops  # dropped at inference


def test_batch_norm_carries_the_spec_epsilon():
    """Inference batch norm is written as Mul and Add (graph.py says why): the folded scale uses the spec's
    epsilon (Keras's 1e-3 here), never ONNX BatchNormalization's default 1e-5."""
    spec = cnnspec.load_spec("specs/every_layer.yaml")
    weights = random_weights(spec)
    model = ob.to_onnx(spec, weights)
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for layer in (layer for layer in spec.layers if layer.type == "batch_norm"):
        expected = weights[f"{layer.name}/gamma"] / np.sqrt(weights[f"{layer.name}/moving_variance"] + 1e-3)
        np.testing.assert_allclose(constants[f"{layer.name}/scale"].ravel(), expected, rtol=1e-6)


def test_nchw_layout_takes_channels_first():
    spec = cnnspec.load_spec("specs/every_layer.yaml")
    weights = random_weights(spec)
    x = np.random.default_rng(0).normal(size=(2, *spec.input_shape)).astype(np.float32)
    nhwc = ob.Predictor(ob.to_onnx(spec, weights)).predict(x)
    nchw = ob.Predictor(ob.to_onnx(spec, weights, layout="nchw")).predict(x.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(nhwc, nchw, atol=1e-6)


def test_provider_choice_is_quiet_without_cuda(capfd):
    providers = ob.choose_providers()
    assert providers[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in providers) == ob.cuda_works()
    captured = capfd.readouterr()
    assert "CUDA" not in captured.err and "error" not in captured.err.lower()


@pytest.mark.skipif(
    not ob.cuda_works(), reason="needs ONNX Runtime's CUDA provider to load (onnxruntime-gpu, CUDA, cuDNN)"
)
def test_onnx_runtime_picks_cuda_where_it_works():
    spec = cnnspec.load_spec("specs/every_layer.yaml")
    weights = random_weights(spec)
    x = np.random.default_rng(0).normal(size=(4, *spec.input_shape)).astype(np.float32)
    on_gpu = ob.Predictor(ob.to_onnx(spec, weights))
    assert on_gpu.providers[0] == "CUDAExecutionProvider"
    placed = ob.build(spec, weights, placement=Placement(device="cuda:0"))
    assert placed.predictor.providers[0] == "CUDAExecutionProvider"
    on_cpu = ob.Predictor(ob.to_onnx(spec, weights), provider="cpu")
    # Ten times the tolerance rule's base, and not measured (no GPU where this was written): cuDNN's convolution
    # algorithms sum in another order than the CPU's, and may use TensorFloat-32 on Ampere and later GPUs.
    np.testing.assert_allclose(on_gpu.predict(x), on_cpu.predict(x), atol=1e-4)


def test_a_cpu_placement_builds_on_the_cpu_provider():
    spec = cnnspec.load_spec("specs/every_layer.yaml")
    model = ob.build(spec, placement=Placement(device="cpu"))
    assert model.predictor.providers == ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx") / "run"
    cnnspec.train(TINY, "torch", out=root, epochs=2, verbose=False)
    return root


def test_export_cli_verifies_and_evaluates_the_same(trained_run, tmp_path):
    out = tmp_path / "m.onnx"
    result = run_cli("export", "onnx", trained_run, "--output", out)
    assert result.returncode == 0, result.stderr
    assert "Verified: the file in ONNX Runtime at each of its 5 optimisation levels vs torch, max abs" in result.stdout
    onnx_metrics = json.loads(run_cli("evaluate", out, "--json").stdout)
    run_metrics = json.loads((trained_run / "metrics.json").read_text())
    assert onnx_metrics["accuracy"] == pytest.approx(run_metrics["accuracy"], abs=1e-9)
    assert onnx_metrics["loss"] == pytest.approx(run_metrics["loss"], abs=1e-5)


def test_export_refuses_beyond_tolerance_and_writes_nothing(trained_run, tmp_path):
    out = tmp_path / "m.onnx"
    result = run_cli("export", "onnx", trained_run, "--output", out, "--tolerance", "0")
    assert_clean_failure(result)
    assert "nothing written" in result.stderr and not out.exists()
    assert run_cli("export", "onnx", trained_run, "--output", out, "--tolerance", "0", "--no-verify").returncode == 0
    assert out.exists()


def test_python_api_export_and_predictor(trained_run, tmp_path):
    report = cnnspec.export_onnx(trained_run, tmp_path / "api.onnx")
    assert report.max_abs_diff <= 1e-5 and report.export_seconds < 5
    assert set(report.runners) == set(ob.ONNXRUNTIME_RUNNERS)  # the file verified at every optimisation level
    predictor = cnnspec.Predictor(tmp_path / "api.onnx")
    assert predictor.class_names == [str(i) for i in range(10)]
    probs = predictor.predict(np.zeros((8, 8, 1), np.float32))  # a single image works too
    assert probs.shape == (1, 10)
    assert predictor.top_k(np.zeros((2, 8, 8, 1), np.float32), k=2)[0][0][0] == int(probs.argmax())


def test_predict_cli_on_images_and_arrays(trained_run, tmp_path):
    from PIL import Image

    model = tmp_path / "m.onnx"
    cnnspec.export_onnx(trained_run, model)
    data = cnnspec.load_data("digits")
    np.save(tmp_path / "three.npy", data.x_test[:3])
    Image.fromarray((data.x_test[0, :, :, 0] * 255).astype(np.uint8)).resize((24, 24)).save(tmp_path / "d.png")
    result = run_cli("predict", model, tmp_path / "three.npy", tmp_path / "d.png", "--json", "--top", "2")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["input"].rsplit("/", 1)[-1] for r in rows] == ["three.npy[0]", "three.npy[1]", "three.npy[2]", "d.png"]
    assert all(len(r["top"]) == 2 and 0 <= r["top"][0]["probability"] <= 1 for r in rows)
    expected = ob.Predictor(str(model)).predict(data.x_test[:3]).argmax(1)
    assert [r["top"][0]["class"] for r in rows[:3]] == expected.tolist()


@pytest.mark.parametrize("content", [b"", b"garbage bytes", b"\x08\x07" * 50])
def test_corrupt_onnx_file_is_a_clear_error(tmp_path, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    for args in (["evaluate", bad], ["predict", bad, "specs/mnist_cnn.yaml"]):
        result = run_cli(*args)
        assert_clean_failure(result)
        assert "bad.onnx" in result.stderr


def test_parity_cli_reports_every_layer():
    result = run_cli("parity", "specs/every_layer.yaml", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["reference"] == "keras" and report["compared"] == ["torch", "onnx"]
    assert [row["name"] for row in report["layers"]][:2] == ["stem", "stem_bn"]
    assert report["max_abs_diff"] <= 1e-5
    strict = run_cli("parity", "specs/every_layer.yaml", "--tolerance", "0")
    assert strict.returncode == 1 and "MISMATCH: first diverging layer" in strict.stdout


def _run_dir_with(root, spec, weights):
    """A run directory holding ``weights`` as its kept weights (as if a torch run had trained them)."""
    from cnnspec.runs import RunPaths, write_json

    paths = RunPaths(root)
    root.mkdir(parents=True)
    write_json(paths.spec, spec.to_dict())
    write_json(paths.run, {"settings": {"backend": "torch", "data": "digits"}})
    cnnspec.save_weights(paths.weights, weights, spec)
    return root


def test_export_accepts_a_correct_large_magnitude_model_and_still_checks_it(tmp_path):
    """Sums of hundreds in a sum pool, then a linear 3-unit output: float32 rounding there exceeds 1e-5
    absolute, which once made export refuse a correct model. The rule scales with the network's magnitude."""
    from cnnspec.backends import torch_backend as tb
    from cnnspec.numerics import ATOL

    spec = cnnspec.load_spec(
        {
            "name": "big",
            "input_shape": [9, 11, 3],
            "layers": [
                {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"},
                {"type": "sum_pool2d", "pool_size": 3, "strides": [1, 2], "padding": "same"},
                {"type": "flatten"},
                {"type": "dense", "units": 3},
            ],
        }
    )
    weights = {key: value * 40 for key, value in random_weights(spec, 7).items()}
    run = _run_dir_with(tmp_path / "run", spec, weights)
    report = cnnspec.export_onnx(run, tmp_path / "big.onnx")
    assert report.tolerance > 100 * ATOL  # the network carries values in the thousands
    assert report.max_abs_diff <= report.tolerance
    x = np.random.default_rng(1).random((5, *spec.input_shape), dtype=np.float32)
    got, want = ob.Predictor(tmp_path / "big.onnx").predict(x), tb.predict(tb.build(spec, weights), x)
    assert np.abs(got - want).max() <= report.tolerance
    assert np.abs(want).max() > 1e3
    with pytest.raises(cnnspec.CnnspecError, match="nothing written"):  # the check is still a check
        cnnspec.export_onnx(run, tmp_path / "strict.onnx", atol=0.0)
    assert not (tmp_path / "strict.onnx").exists()


def test_an_exported_model_runs_where_training_it_would_not_fit(trained_run, tmp_path):
    """The training-memory estimate belongs to training: inference on a small machine must not be refused."""
    model = tmp_path / "m.onnx"
    cnnspec.export_onnx(trained_run, model)
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 1), np.float32))
    tiny = {"CNNSPEC_MAX_MEMORY": "1KB"}  # far below what training this spec needs
    assert run_cli("validate", trained_run / "spec.json", env=tiny).returncode == 1
    for args in (["evaluate", model, "--json"], ["predict", model, tmp_path / "x.npy"], ["evaluate", trained_run]):
        result = run_cli(*args, env=tiny)
        assert result.returncode == 0, (args, result.stderr)


@pytest.mark.parametrize(
    "loss",
    [
        {"type": "sparse_categorical_crossentropy", "from_logits": True},
        {"type": "categorical_crossentropy", "label_smoothing": 0.2},
    ],
)
def test_an_onnx_file_reports_the_loss_the_run_trains_with(tmp_path, loss):
    """from_logits: the file's output is logits; label smoothing: the targets are smoothed, as in torch and Keras."""
    from cnnspec.backends import torch_backend as tb

    head = (
        {"type": "dense", "units": 3}
        if loss.get("from_logits")
        else {"type": "dense", "units": 3, "activation": "softmax"}
    )
    spec = cnnspec.load_spec(
        {"input_shape": [6, 6, 1], "training": {"loss": loss}, "layers": [{"type": "flatten"}, head]}
    )
    weights = random_weights(spec, 1)
    x = np.random.default_rng(0).random((20, 6, 6, 1), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 3, 20)
    trainer = tb.Trainer(tb.build(spec, weights), spec.training)
    expected = trainer.evaluate(trainer.prepare(x, y))["loss"]
    predictor = ob.Predictor(ob.to_onnx(spec, weights))
    assert predictor.loss_and_metrics(x, y)["loss"] == pytest.approx(expected, rel=1e-5)
    probabilities = [p for _, _, p in predictor.top_k(x[:1], k=3)[0]]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5) and min(probabilities) >= 0


# The last layer of LeNet-5 is OUTPUT in the paper; "output" and "logits" are also the exported graph's outputs.
NAMED_LIKE_THE_GRAPH = {
    "name": "lenet_names",
    "input_shape": [8, 8, 1],
    "layers": [
        {"type": "conv2d", "name": "logits", "filters": 4, "kernel_size": 3, "activation": "tanh"},
        {"type": "flatten", "name": "Input"},
        {"type": "dense", "name": "OUTPUT", "units": 6, "activation": "tanh"},
        {"type": "dense", "name": "output", "units": 10, "activation": "softmax"},
    ],
}


def test_layers_named_like_the_graph_outputs_export_verify_and_run(tmp_path):
    from cnnspec.backends import torch_backend as tb

    spec = cnnspec.load_spec(NAMED_LIKE_THE_GRAPH)
    weights = random_weights(spec, 3)
    run = _run_dir_with(tmp_path / "run", spec, weights)
    result = run_cli("export", "onnx", run, "--output", tmp_path / "lenet.onnx")
    assert result.returncode == 0, result.stderr
    model = ob.to_onnx(spec, weights)
    assert [o.name for o in model.graph.output] == ["output", "logits"]
    assert {"layer:output", "layer:logits", "OUTPUT", "Input"} <= {node.name for node in model.graph.node}
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(
        ob.Predictor(tmp_path / "lenet.onnx").predict(x), tb.predict(tb.build(spec, weights), x), atol=1e-5
    )
    parity = run_cli("parity", tmp_path / "run" / "spec.json")
    assert parity.returncode == 0, parity.stdout + parity.stderr


def _zero_pad_node(layer, site):
    """What graph.py wrote for zero_padding2d before: a zero Pad, which ONNX Runtime folds into a MaxPool."""
    (top, bottom), (left, right) = layer.padding
    pads = site.graph.constant(f"{layer.name}/pads", np.array([0, 0, top, left, 0, 0, bottom, right]), np.int64)
    return site.graph.node("Pad", [site.x, pads], layer.name, mode="constant")


# ResNetV2's stem: values below zero reach a zero padding, then a max pool
STEM = {
    "name": "stem",
    "input_shape": [9, 9, 2],
    "layers": [
        {"type": "rescaling", "scale": 1.0, "offset": -2.0},
        {"type": "zero_padding2d", "padding": 1},
        {"type": "max_pool2d", "pool_size": 3, "strides": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ],
}


def test_parity_fails_when_the_exported_file_is_wrong_though_every_layer_agrees(tmp_path, monkeypatch):
    """With the old zero padding, every layer agrees in the per-layer graph (which exposes the Pad's output and
    so keeps ONNX Runtime from folding it), but the file export writes does not: parity exits 1 and says where."""
    from typer.testing import CliRunner

    from cnnspec.cli import app
    from cnnspec.layers import ZeroPadding2D

    path = tmp_path / "stem.json"
    path.write_text(json.dumps(STEM))
    assert CliRunner().invoke(app, ["parity", str(path)]).exit_code == 0
    monkeypatch.setitem(ob.BUILDERS, ZeroPadding2D, _zero_pad_node)
    result = CliRunner().invoke(app, ["parity", str(path)])
    assert result.exit_code == 1, result.output
    assert "MISMATCH: the exported file in onnxruntime (enable_basic)" in result.output
    assert "every layer agrees in the per-layer graph" in result.output
    report = cnnspec.run_parity(cnnspec.load_spec(STEM))
    assert report.first_divergence is None and not report.ok
    assert {row["runner"] for row in report.exported_failures} >= {
        "onnxruntime (enable_basic)",
        "onnxruntime (enable_all)",
    }


def test_export_verifies_the_file_at_every_optimisation_level(tmp_path, monkeypatch):
    """The same fault: export refuses it, naming the level, and writes nothing."""
    from cnnspec.layers import ZeroPadding2D

    spec = cnnspec.load_spec(STEM)
    run = _run_dir_with(tmp_path / "run", spec, random_weights(spec, 0))
    assert cnnspec.export_onnx(run, tmp_path / "right.onnx").max_abs_diff <= 1e-5
    monkeypatch.setitem(ob.BUILDERS, ZeroPadding2D, _zero_pad_node)
    with pytest.raises(cnnspec.CnnspecError, match=r"onnxruntime \(enable_basic\).*nothing written"):
        cnnspec.export_onnx(run, tmp_path / "wrong.onnx")
    assert not (tmp_path / "wrong.onnx").exists()
