"""Training on images streamed from disk gives the run that in-memory training gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnspec
from tests.backends.test_torch_training import TINY
from tests.cli.helpers import cnnspec as run_cli
from tests.data_files import write_folder, write_idx

THREE_CLASSES = {
    **TINY,
    "layers": [*TINY["layers"][:-1], {"type": "dense", "units": 3, "activation": "softmax"}],
    "training": {"epochs": 3, "batch_size": 8},
}


@pytest.fixture(params=["idx", "folder"])
def source(request, tmp_path):
    if request.param == "folder":
        return f"folder:{write_folder(tmp_path / 'imgs', n_train=40, n_test=9)}"
    return f"idx:{write_idx(tmp_path / 'mnist', gz=False, n_train=40)}"


def test_torch_streamed_run_equals_the_in_memory_run(tmp_path, source):
    """Same batches in the same order: the same losses, weights and test metrics, exactly."""
    pytest.importorskip("torch")
    memory = cnnspec.train(THREE_CLASSES, "torch", source, out=tmp_path / "m", stream=False, verbose=False)
    streamed = cnnspec.train(THREE_CLASSES, "torch", source, out=tmp_path / "s", stream=True, verbose=False)
    assert streamed.history["loss"] == memory.history["loss"]
    assert streamed.history["val_loss"] == memory.history["val_loss"]
    assert streamed.metrics["accuracy"] == memory.metrics["accuracy"]
    assert json.loads((tmp_path / "s" / "run.json").read_text())["settings"]["stream"] is True


def test_keras_streamed_run_matches_the_in_memory_run(tmp_path, source):
    """Keras reads the batches through its own worker threads (a PyDataset); the losses agree."""
    pytest.importorskip("cnnspec.backends.keras_backend")
    memory = cnnspec.train(THREE_CLASSES, "keras", source, out=tmp_path / "m", stream=False, verbose=False)
    streamed = cnnspec.train(THREE_CLASSES, "keras", source, out=tmp_path / "s", stream=True, verbose=False)
    np.testing.assert_allclose(streamed.history["loss"], memory.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(streamed.history["val_loss"], memory.history["val_loss"], rtol=1e-5)
    assert streamed.metrics["accuracy"] == memory.metrics["accuracy"]


def test_cli_stream_flag_says_so_and_resume_keeps_streaming(tmp_path):
    pytest.importorskip("torch")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(THREE_CLASSES))
    data = f"idx:{write_idx(tmp_path / 'mnist', gz=False, n_train=40)}"
    first = run_cli("train", spec, "--data", data, "--stream", "--epochs", "1", "--out", tmp_path / "r")
    assert first.returncode == 0, first.stderr
    assert "(streamed from disk)" in first.stdout
    again = run_cli("train", "--resume", tmp_path / "r", "--epochs", "2")
    assert again.returncode == 0, again.stderr
    assert "(streamed from disk)" in again.stdout
