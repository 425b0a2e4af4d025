"""Bad files and interrupted work: one clear message, exit 1, no traceback, nothing overwritten."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time

import numpy as np
import pytest

import cnnspec
from tests.backends.test_torch_training import TINY, _spec_file, _start_training, _wait_for_epoch
from tests.cli.helpers import assert_clean_failure, cnnspec as run_cli
from tests.data_files import write_folder

pytest.importorskip("cnnspec.backends.torch_backend")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad") / "run"
    cnnspec.train(TINY, "torch", out=root, epochs=1, verbose=False)
    return root


def _copy(run_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(run_dir, target)
    return target


@pytest.mark.parametrize("cut", [0, 7, 100, -20])
def test_truncated_weights_are_named(run_dir, tmp_path, cut):
    run = _copy(run_dir, tmp_path)
    weights = run / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    before = weights.read_bytes()
    result = run_cli("evaluate", run)
    assert_clean_failure(result)
    assert "weights.safetensors" in result.stderr and "corrupt or truncated" in result.stderr
    assert weights.read_bytes() == before  # nothing overwritten


def test_weights_from_a_different_spec_are_named(run_dir, tmp_path):
    other = tmp_path / "other"
    spec = {**TINY, "layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}
    cnnspec.train(spec, "torch", out=other, epochs=1, verbose=False)
    run = _copy(run_dir, tmp_path)
    shutil.copy(other / "weights.safetensors", run / "weights.safetensors")
    result = run_cli("evaluate", run)
    assert_clean_failure(result)
    assert "made for a different spec" in result.stderr


@pytest.mark.parametrize("content", ["{not json", "", "[1, 2]"])
def test_corrupt_spec_json_in_a_run(run_dir, tmp_path, content):
    run = _copy(run_dir, tmp_path)
    (run / "spec.json").write_text(content)
    result = run_cli("evaluate", run)
    assert_clean_failure(result)
    assert "spec" in result.stderr


def test_not_a_run_directory(tmp_path):
    result = run_cli("evaluate", tmp_path)
    assert_clean_failure(result)
    assert "is this a cnnspec run directory" in result.stderr


def test_output_directory_that_cannot_be_written_fails_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli("train", "specs/digits_cnn.yaml", "--out", blocker / "run", "--epochs", "1")
    assert_clean_failure(result)
    assert "cannot write the run directory" in result.stderr and "Epoch" not in result.stdout


def test_images_with_the_wrong_channel_count_suggest_resize(tmp_path):
    root = write_folder(tmp_path / "rgb", channels=3)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**TINY, "layers": [*TINY["layers"][:-1], {"type": "dense", "units": 3}]}))
    result = run_cli("train", spec, "--data", f"folder:{root}", "--out", tmp_path / "r")
    assert_clean_failure(result)
    assert "8x8x3" in result.stderr and "--resize" in result.stderr
    ok = run_cli("train", spec, "--data", f"folder:{root}", "--out", tmp_path / "r", "--resize", "--epochs", "1", "-q")
    assert ok.returncode == 0, ok.stderr


def test_labels_out_of_range_and_nan_data(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**TINY, "layers": [*TINY["layers"][:-1], {"type": "dense", "units": 2}]}))
    data = tmp_path / "d.npz"
    np.savez(
        data,
        x_train=np.zeros((4, 8, 8)),
        y_train=np.array([0, 1, 2, 1]),
        x_test=np.zeros((2, 8, 8)),
        y_test=np.array([0, 1]),
    )
    result = run_cli("train", spec, "--data", f"npz:{data}", "--out", tmp_path / "r")
    assert_clean_failure(result)
    assert "labels must be 0..1" in result.stderr and "found [2]" in result.stderr
    x = np.zeros((4, 8, 8))
    x[1, 2, 3] = np.nan
    np.savez(data, x_train=x, y_train=np.array([0, 1, 0, 1]), x_test=np.zeros((2, 8, 8)), y_test=np.array([0, 1]))
    result = run_cli("train", spec, "--data", f"npz:{data}", "--out", tmp_path / "r2")
    assert_clean_failure(result)
    assert "NaN" in result.stderr


def test_sigkill_at_random_moments_always_resumes_from_the_last_finished_epoch(tmp_path):
    """Kill during epochs and during checkpoint writes; every resume continues with an intact history."""
    rng = random.Random(1234)
    spec_path = _spec_file(tmp_path, epochs=8)
    out = tmp_path / "run"
    for attempt in range(3):
        proc = _start_training(spec_path, out) if attempt == 0 else _resume(out)
        if attempt == 0:
            _wait_for_epoch(out, 1, proc)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = json.loads((out / "checkpoint" / "state.json").read_text())
        history = json.loads((out / "history.json").read_text())
        assert history["epoch"] == list(range(1, len(history["epoch"]) + 1))
        assert state["epoch"] == len(history["epoch"]) or state["epoch"] == len(history["epoch"]) + 1
        assert (out / f"checkpoint/epoch-{state['epoch']:04d}.model.safetensors").exists()
        if state["epoch"] >= 8:
            break
    final = run_cli("train", "--resume", out)
    assert final.returncode == 0, final.stderr
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == list(range(1, 9))
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 8


def _resume(out):
    import os
    import subprocess
    import sys

    from tests.cli.helpers import ROOT

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "cnnspec", "train", "--resume", str(out), "-q"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_full_disk_is_reported_before_training(tmp_path, monkeypatch):
    import collections
    import shutil as shutil_module

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(cnnspec.RunError, match="only 0.0 MB free; checkpoints of this spec need about"):
        cnnspec.train("specs/mnist_cnn.yaml", "torch", data="digits", out=tmp_path / "run", resize=True, verbose=False)
    assert not (tmp_path / "run" / "run.json").exists()
