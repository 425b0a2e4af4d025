"""A segmentation or regression run records its own metrics everywhere a classification run records accuracy.

The epoch loop is shared by the backends: these runs are torch's (one Keras run checks it logs the same
keys). What is checked: the progress line, history.json, metrics.json, the learning-curve panels, the
kept weights by ``keep_best`` in the metric's direction, early stopping on a higher-is-better metric, the
report's figures and test metrics, and `evaluate`'s line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnspec
from tests.cli.helpers import cnnspec as run_cli

pytest.importorskip("torch")


def _masks(n=96, seed=0):
    """Images of noise and masks of where they are bright: a task a 3x3 convolution learns in a few epochs."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1)).astype(np.float32)
    return x, (x[..., 0] > 0.5).astype(np.int64)


SEGMENTER = {
    "name": "bright",
    "input_shape": [8, 8, 1],
    "layers": [{"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "same", "activation": "softmax"}],
    "training": {
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["mean_io_u", "accuracy"],
        "optimizer": {"type": "adam", "learning_rate": 0.05},
        "epochs": 6,
        "batch_size": 16,
        "keep_best": "val_mean_io_u",
    },
}


def _npz(folder, x, y, train=80):
    """An ``npz:`` source of (x, y) split at ``train``: a run on it can be evaluated and reported later."""
    np.savez(folder / "data.npz", x_train=x[:train], y_train=y[:train], x_test=x[train:], y_test=y[train:])
    return f"npz:{folder / 'data.npz'}"


@pytest.fixture(scope="module")
def segmentation_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seg")
    return cnnspec.train(SEGMENTER, "torch", data=_npz(folder, *_masks()), out=folder / "run", verbose=False)


def test_history_and_metrics_hold_the_specs_metrics(segmentation_run):
    root = segmentation_run.run_dir
    history = json.loads((root / "history.json").read_text())
    for key in ("loss", "mean_io_u", "accuracy", "val_loss", "val_mean_io_u", "val_accuracy"):
        assert len(history[key]) == 6, key
    metrics = json.loads((root / "metrics.json").read_text())
    assert {"mean_io_u", "accuracy", "loss"} <= set(metrics) and 0 <= metrics["mean_io_u"] <= 1
    assert history["val_mean_io_u"][-1] > history["val_mean_io_u"][0]  # it learns


def test_keep_best_keeps_the_epoch_of_the_highest_validation_iou(segmentation_run):
    history = segmentation_run.history
    assert segmentation_run.metrics["best_epoch"] == 1 + int(np.argmax(history["val_mean_io_u"]))
    # the test metrics are those of the kept weights
    evaluated = cnnspec.evaluate(segmentation_run.run_dir)
    assert set(evaluated) == {"mean_io_u", "accuracy", "loss", "n"}


def test_early_stopping_on_iou_waits_for_it_to_stop_rising(tmp_path):
    """A higher-is-better monitor: a falling loss must not count as an improvement, a rising IoU must."""
    x, y = _masks()
    spec = {**SEGMENTER, "training": {**SEGMENTER["training"], "epochs": 30,
                                      "early_stopping": {"monitor": "val_mean_io_u", "patience": 2}}}  # fmt: skip
    result = cnnspec.train(spec, "torch", data=(x, y), out=tmp_path / "run", verbose=False)
    scores = result.history["val_mean_io_u"]
    best = int(np.argmax(scores))
    assert result.stop_reason == "early_stopping" and len(scores) == best + 3, scores


def test_learning_curves_have_a_panel_per_metric():
    from cnnspec.figures import learning_curves

    history = {"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "mae": [0.5, 0.3], "rmse": [0.7, 0.4]}
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    png = learning_curves(history)
    assert png.startswith(b"\x89PNG") and set(plt.get_fignums()) == before  # drawn and closed
    import io

    from PIL import Image

    width = Image.open(io.BytesIO(png)).size[0]
    one_panel = Image.open(io.BytesIO(learning_curves({"epoch": [1, 2], "loss": [1.0, 0.5]}))).size[0]
    assert width > 2.5 * one_panel  # loss, mae and rmse side by side


def test_report_and_evaluate_show_segmentation_metrics(segmentation_run):
    from cnnspec.report import build_report

    report = build_report(segmentation_run.run_dir)
    assert report.task == "segmentation" and set(report.metrics) == {"mean_io_u", "accuracy"}
    assert report.confusion.sum() == 16 * 8 * 8  # every test pixel
    assert {"predictions", "confusion_matrix", "learning_curves"} <= set(report.figures)
    result = run_cli("evaluate", str(segmentation_run.run_dir))
    assert result.returncode == 0, result.stderr
    assert "mean_io_u " in result.stdout and "accuracy " in result.stdout and "(16 test images)" in result.stdout


def test_a_regression_run_reports_mae_and_plots_predicted_against_true(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((96, 8, 8, 1)).astype(np.float32)
    y = np.stack([x.mean(axis=(1, 2, 3)), x.max(axis=(1, 2, 3))], axis=1)
    spec = {
        "name": "stats",
        "input_shape": [8, 8, 1],
        "class_names": ["mean", "max"],
        "layers": [{"type": "flatten"}, {"type": "dense", "units": 2}],
        "training": {"loss": "huber", "metrics": ["mae", "rmse"], "epochs": 3, "keep_best": "val_rmse"},
    }
    result = cnnspec.train(spec, "torch", data=_npz(tmp_path, x, y), out=tmp_path / "run", verbose=False)
    assert result.metrics["best_epoch"] == 1 + int(np.argmin(result.history["val_rmse"]))
    assert result.metrics["rmse"] >= result.metrics["mae"] > 0  # the root of the mean square bounds the mean
    from cnnspec.report import build_report

    report = build_report(tmp_path / "run")
    assert report.task == "regression" and "predicted_vs_true" in report.figures and report.confusion is None


def test_keras_logs_the_same_metric_keys(tmp_path):
    pytest.importorskip("cnnspec.backends.keras_backend")
    x, y = _masks(48)
    spec = {**SEGMENTER, "training": {**SEGMENTER["training"], "epochs": 1}}
    result = cnnspec.train(spec, "keras", data=(x, y, x[:8], y[:8]), out=tmp_path / "run", verbose=False)
    assert set(result.history) >= {"loss", "mean_io_u", "accuracy", "val_loss", "val_mean_io_u", "val_accuracy"}
