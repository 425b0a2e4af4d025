"""Training with the torch backend: the run directory, determinism, resume, NaN, early stopping."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import cnnspec
from cnnspec.weights import load_weights
from tests.cli.helpers import ROOT, assert_clean_failure, cnnspec as run_cli
from tests.data_files import write_npz

pytest.importorskip("torch")

TINY = {
    "name": "tiny",
    "input_shape": [8, 8, 1],
    "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "batch_norm"},
        {"type": "max_pool2d"},
        {"type": "dropout", "rate": 0.2},
        {"type": "flatten"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ],
    "training": {"epochs": 3, "batch_size": 64},
}


def test_run_directory_holds_what_the_contract_lists(tmp_path):
    result = cnnspec.train(TINY, "torch", out=tmp_path / "run", verbose=False)
    root = tmp_path / "run"
    for name in ("spec.json", "run.json", "weights.safetensors", "history.json", "history.png", "metrics.json"):
        assert (root / name).is_file(), name
    assert (root / "checkpoint" / "state.json").is_file()
    spec = cnnspec.load_spec(json.loads((root / "spec.json").read_text()))
    assert spec == cnnspec.load_spec(TINY)
    history = json.loads((root / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    metrics = json.loads((root / "metrics.json").read_text())
    assert metrics["n"] == 360 and 0 <= metrics["accuracy"] <= 1
    assert metrics == result.metrics
    weights = load_weights(root / "weights.safetensors", spec)
    assert weights["conv2d_0/kernel"].shape == (3, 3, 1, 4)  # Keras layout on disk
    assert (root / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cnnspec.evaluate(root)["accuracy"] == pytest.approx(metrics["accuracy"])


def test_best_weights_by_validation_loss_are_kept(tmp_path):
    result = cnnspec.train(TINY, "torch", out=tmp_path / "run", epochs=4, learning_rate=0.05, verbose=False)
    best = int(np.argmin(result.history["val_loss"])) + 1
    assert result.metrics["best_epoch"] == best


def test_seeded_runs_repeat_exactly(tmp_path):
    first = cnnspec.train(TINY, "torch", out=tmp_path / "a", verbose=False, seed=7)
    second = cnnspec.train(TINY, "torch", out=tmp_path / "b", verbose=False, seed=7)
    other = cnnspec.train(TINY, "torch", out=tmp_path / "c", verbose=False, seed=8)
    assert first.history["loss"] == second.history["loss"]
    assert first.history["loss"] != other.history["loss"]
    a, b = (load_weights(tmp_path / d / "weights.safetensors") for d in "ab")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_early_stopping_follows_keras_patience(tmp_path):
    spec = {
        **TINY,
        "training": {
            **TINY["training"],
            "epochs": 30,
            "early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 10.0},
        },
    }
    result = cnnspec.train(spec, "torch", out=tmp_path / "run", verbose=False)
    # min_delta 10 means nothing counts as an improvement after the first epoch
    assert result.stop_reason == "early_stopping" and result.metrics["epochs_run"] == 2


def test_overrides_and_npz_data(tmp_path):
    spec = {**TINY, "layers": [*TINY["layers"][:-1], {"type": "dense", "units": 3, "activation": "softmax"}]}
    data = write_npz(tmp_path / "d.npz")
    result = cnnspec.train(spec, "torch", data=f"npz:{data}", epochs=2, batch_size=8, out=tmp_path / "r", verbose=False)
    assert result.metrics["n"] == 9 and len(result.history["loss"]) == 2
    settings = json.loads((tmp_path / "r" / "run.json").read_text())["settings"]
    assert (settings["epochs"], settings["batch_size"], settings["data"]) == (2, 8, f"npz:{data}")


# bf16 too: its test metrics come from a float32 copy of the model, which must never be built from
# diverged weights (CI on an AMX machine chose bf16 through --precision auto and failed there).
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_nan_loss_stops_with_a_clear_message_and_keeps_good_weights(tmp_path, precision):
    spec = {**TINY, "training": {"optimizer": {"type": "sgd", "learning_rate": 1e30}, "epochs": 5}}
    spec["layers"] = [layer for layer in TINY["layers"] if layer["type"] != "batch_norm"]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    proc = run_cli("train", path, "--out", tmp_path / "run", "--precision", precision)
    assert_clean_failure(proc)
    assert "NaN" in proc.stderr and "lower learning rate" in proc.stderr
    # nothing finite was ever reached, or the kept weights are finite
    weights = tmp_path / "run" / "weights.safetensors"
    if weights.exists():
        assert all(np.isfinite(v).all() for v in load_weights(weights).values())


def test_existing_run_is_not_overwritten(tmp_path):
    cnnspec.train(TINY, "torch", out=tmp_path / "run", epochs=1, verbose=False)
    before = (tmp_path / "run" / "weights.safetensors").read_bytes()
    with pytest.raises(cnnspec.RunError, match="already holds a run"):
        cnnspec.train(TINY, "torch", out=tmp_path / "run", epochs=1, verbose=False)
    assert (tmp_path / "run" / "weights.safetensors").read_bytes() == before


def _spec_file(tmp_path, epochs):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({**TINY, "training": {**TINY["training"], "epochs": epochs}}))
    return path


def _start_training(spec_path, out):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cnnspec", "train", str(spec_path), "--out", str(out), "-q"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_epoch(out, epoch, proc, timeout=120):
    state = out / "checkpoint" / "state.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if state.exists():
            try:
                if json.loads(state.read_text())["epoch"] >= epoch:
                    return
            except (ValueError, KeyError):
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("training did not reach the epoch in time")


def test_killed_run_resumes_to_the_same_result_as_an_uninterrupted_one(tmp_path):
    spec_path = _spec_file(tmp_path, epochs=12)
    proc = _start_training(spec_path, tmp_path / "killed")
    _wait_for_epoch(tmp_path / "killed", 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((tmp_path / "killed" / "checkpoint" / "state.json").read_text())
    assert 3 <= state["epoch"] < 12
    resumed = run_cli("train", "--resume", tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {state['epoch']}" in resumed.stdout

    straight = cnnspec.train(spec_path, "torch", out=tmp_path / "straight", verbose=False)
    history = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert history["epoch"] == list(range(1, 13))
    assert history["loss"] == straight.history["loss"]  # the same seeded shuffles and dropout masks
    assert json.loads((tmp_path / "killed" / "metrics.json").read_text())["accuracy"] == straight.metrics["accuracy"]


def test_ctrl_c_keeps_finished_epochs_and_says_how_to_resume(tmp_path):
    proc = _start_training(_spec_file(tmp_path, epochs=200), tmp_path / "run")
    _wait_for_epoch(tmp_path / "run", 2, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "--resume" in stderr
    assert json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())["epoch"] >= 2


def test_second_writer_on_the_same_run_is_refused(tmp_path):
    proc = _start_training(_spec_file(tmp_path, epochs=200), tmp_path / "run")
    try:
        _wait_for_epoch(tmp_path / "run", 1, proc)
        second = run_cli("train", "--resume", tmp_path / "run")
        assert_clean_failure(second)
        assert "in use by another cnnspec run" in second.stderr
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--data", "npz:/nope.npz"], "no such file"),
        (["--data", "mnist"], "input_shape|cache"),
        (["--backend", "onnx"], "cannot train"),
        (["--epochs", "0"], "at least 1"),
    ],
)
def test_cli_bad_training_input_exits_1_without_traceback(tmp_path, args, message):
    result = run_cli("train", "specs/digits_cnn.yaml", "--out", tmp_path / "r", *args)
    assert_clean_failure(result)
    assert re.search(message, result.stderr), result.stderr


def test_cli_train_then_evaluate(tmp_path):
    result = run_cli("train", _spec_file(tmp_path, epochs=2), "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "Epoch 2/2" in result.stdout and "Test: accuracy" in result.stdout
    data = json.loads(run_cli("evaluate", tmp_path / "run", "--json").stdout)
    assert set(data) == {"accuracy", "loss", "n"} and data["n"] == 360


def test_get_weights_returns_copies_that_training_leaves_alone():
    """The driver keeps the best epoch's weights in memory: they must not follow later steps."""
    import numpy as np

    import cnnspec
    from cnnspec.backends import torch_backend as tb

    spec = cnnspec.load_spec("specs/every_layer.yaml")
    model = tb.build(spec)
    before = tb.get_weights(model)
    kept = {key: value.copy() for key, value in before.items()}
    for tensor in model.parameters():
        tensor.data.add_(1.0)
    for key in before:
        np.testing.assert_array_equal(before[key], kept[key], err_msg=key)
