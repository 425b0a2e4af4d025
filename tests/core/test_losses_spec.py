"""training.loss and training.metrics in a spec: names, options, what each combination refuses, and
what a spec predicts from its output. No framework: these are the spec language's rules."""

from __future__ import annotations

import numpy as np
import pytest

import cnnspec
from cnnspec import SpecError

MAP = {
    "input_shape": [6, 5, 1],
    "layers": [{"type": "conv2d", "filters": 1, "kernel_size": 3, "padding": "same"}],
}


def _spec(training, filters=1, activation="linear"):
    layer = {**MAP["layers"][0], "filters": filters, "activation": activation}
    return cnnspec.load_spec({**MAP, "layers": [layer], "training": training})


@pytest.mark.parametrize(
    "written,canonical",
    [("mse", "mean_squared_error"), ("MeanAbsoluteError", "mean_absolute_error"), ("mae", "mean_absolute_error"),
     ("Huber", "huber"), ("Dice", "dice"), ("BinaryCrossentropy", "binary_crossentropy")],
)  # fmt: skip
def test_keras_names_of_the_losses_are_accepted(written, canonical):
    spec = _spec({"loss": written}, activation="sigmoid")
    assert spec.training.loss.type == canonical and spec.to_dict()["training"]["loss"] == canonical


def test_a_loss_with_options_is_written_back_with_them():
    spec = _spec({"loss": {"type": "huber", "delta": 0.5}})
    assert spec.to_dict()["training"]["loss"] == {"type": "huber", "delta": 0.5}
    assert cnnspec.load_spec(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "loss,metrics", [("mse", ["mae"]), ("huber", ["mae"]), ("binary_crossentropy", ["binary_accuracy"]), ("dice", [])]
)
def test_without_metrics_a_spec_gets_its_losss_own(loss, metrics):
    assert _spec({"loss": loss}, activation="sigmoid").training.metrics == metrics


@pytest.mark.parametrize(
    "training,message",
    [
        ({"loss": ["mse"]}, "loss"),
        ({"loss": "mse", "metrics": ["mae", "mae"]}, "listed more than once"),
        ({"loss": "mse", "metrics": ["mean_io_u"]}, "need classes targets"),
        ({"loss": "mse", "keep_best": "val_accuracy"}, "keep_best is 'val_accuracy', which is not recorded"),
        ({"loss": "mse", "early_stopping": {"monitor": "mse"}}, "not recorded"),
        ({"loss": "sparse_categorical_crossentropy"}, "needs at least 2 classes"),
    ],
    ids=["unhashable-loss", "repeated-metric", "metric-for-classes", "keep-best", "monitor", "one-channel-classes"],
)
def test_combinations_that_cannot_train_are_refused_in_one_message(training, message):
    with pytest.raises(SpecError, match=message):
        _spec(training)


def test_tasks_and_predicted_classes_follow_the_loss_and_output():
    assert _spec({"loss": "dice"}, activation="sigmoid").task == "segmentation"
    assert _spec({"loss": "sparse_categorical_crossentropy"}, filters=3, activation="softmax").task == "segmentation"
    assert _spec({"loss": "mse"}).task == "regression"
    output = np.array([[[[0.3], [0.7]]]], np.float32)
    assert _spec({"loss": "binary_crossentropy"}, activation="sigmoid").predicted_classes(output).tolist() == [[[0, 1]]]
    logits = _spec({"loss": {"type": "binary_crossentropy", "from_logits": True}})
    assert logits.predicted_classes(np.array([[[[-0.1], [0.2]]]])).tolist() == [[[0, 1]]]  # a logit above 0
