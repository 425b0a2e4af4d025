"""Segmentation and regression losses and metrics are Keras's, in torch, in numpy (the ONNX path) and in training.

Three levels, each against Keras itself: the loss values (``keras.losses`` classes on the same outputs and
targets), the metric values (``keras.metrics`` classes over two batches), and training steps (torch and
Keras from the same weights and batch end at the same weights, reporting the same loss), for every loss
on vector and map outputs, through a final softmax, sigmoid or none.
"""

from __future__ import annotations

import numpy as np
import pytest

import cnnspec
from cnnspec.metrics import METRICS, MetricSums
from cnnspec.numpy_losses import loss_values
from cnnspec.weights import random_weights
from tests.parity.helpers import ATOL, spec_of
from tests.parity.test_training_step_parity import _assert_same, _run

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
torch_backend = pytest.importorskip("cnnspec.backends.torch_backend")
keras_backend = pytest.importorskip("cnnspec.backends.keras_backend")
from cnnspec.backends.keras_backend.trainer import LOSSES as KERAS_LOSSES, METRICS as KERAS_METRICS  # noqa: E402
from cnnspec.backends.torch_backend.losses import LOSSES as TORCH_LOSSES  # noqa: E402

# (loss, final activation, output shape): every loss on the outputs it is used with
CASES = [
    ("sparse_categorical_crossentropy", "softmax", (5, 4, 3)),
    ("categorical_crossentropy", "softmax", (5, 4, 3)),
    ({"type": "categorical_crossentropy", "label_smoothing": 0.2}, "softmax", (5, 4, 3)),
    ({"type": "sparse_categorical_crossentropy", "from_logits": True}, "linear", (5, 4, 3)),
    ("binary_crossentropy", "sigmoid", (5, 4, 1)),
    ({"type": "binary_crossentropy", "from_logits": True, "label_smoothing": 0.1}, "linear", (5, 4, 1)),
    ({"type": "binary_crossentropy", "label_smoothing": 0.2}, "sigmoid", (4,)),  # multi-label
    ("binary_crossentropy", "softplus", (4,)),  # not a sigmoid: probabilities, clipped
    ("mean_squared_error", "linear", (2,)),
    ("mean_squared_error", "sigmoid", (5, 4, 1)),  # reads the sigmoid's output, not its logits
    ("mean_absolute_error", "linear", (3,)),
    ({"type": "huber", "delta": 0.3}, "linear", (2,)),
    ("huber", "tanh", (5, 4, 2)),
    ("dice", "softmax", (5, 4, 3)),  # one-hot classes
    ("dice", "sigmoid", (5, 4, 1)),  # 0/1 values
]


def _name(loss):
    return loss if isinstance(loss, str) else "-".join(map(str, loss.values()))


def _spec(loss, activation, output, optimizer=None):
    """A small conv net ending in ``output`` (a map of the input's size, or a vector)."""
    last = {"activation": activation, "padding": "same", "kernel_size": 3}
    if len(output) == 3:
        layers = [
            {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
            {"type": "batch_norm", "momentum": 0.9},
            {"type": "conv2d", "filters": output[-1], **last},
        ]
    else:
        layers = [
            {"type": "conv2d", "filters": 4, "kernel_size": 3, "strides": 2, "activation": "relu"},
            {"type": "flatten"},
            {"type": "dense", "units": output[0], "activation": activation},
        ]
    optimizer = optimizer or {"type": "adam", "learning_rate": 0.01}
    return spec_of(layers, (5, 4, 2), head=False, loss=loss, optimizer=optimizer, metrics=[])


def _targets(spec, n, rng):
    """Random targets of the kind the spec's loss reads (0/1 values for the probability losses)."""
    if spec.target_kind == "classes":
        return rng.integers(0, spec.num_classes, (n, *spec.target_shape))
    if spec.training.loss.type in ("binary_crossentropy", "dice"):
        return (rng.random((n, *spec.target_shape)) > 0.5).astype(np.float32)
    return rng.normal(0, 1, (n, *spec.target_shape)).astype(np.float32)


@pytest.mark.parametrize("loss,activation,output", CASES, ids=[f"{_name(c[0])}-{c[1]}-{len(c[2])}d" for c in CASES])
def test_training_steps_agree_for_every_loss(loss, activation, output):
    spec = _spec(loss, activation, output)
    weights = random_weights(spec, seed=3)
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (6, *spec.input_shape)).astype(np.float32)
    y = _targets(spec, 6, rng)
    torch_run = _run(torch_backend, spec, weights, x, y, 3)
    keras_run = _run(keras_backend, spec, weights, x, y, 3)
    _assert_same(torch_run, keras_run, weights)
    moved = [key for key in weights if not key.endswith(("moving_mean", "moving_variance"))]
    assert all(np.abs(torch_run[0][key] - weights[key]).max() > 1e-5 for key in moved), "a variable did not train"


def _keras_value(spec, output, targets):
    """What Keras's loss object gives on a model's output (eager: no logits behind it, so from probabilities)."""
    keras_targets = keras_backend.Trainer.__new__(keras_backend.Trainer)
    keras_targets.classes_target = spec.target_kind == "classes"
    keras_targets.one_hot = keras_targets.classes_target and spec.training.loss.one_hot_targets
    keras_targets.classes = spec.num_classes
    _, y = keras_targets.prepare(np.zeros((len(targets), 1), np.float32), targets)
    return float(KERAS_LOSSES[type(spec.training.loss)](spec.training.loss)(y, output))


@pytest.mark.parametrize("loss,activation,output", CASES, ids=[f"{_name(c[0])}-{c[1]}-{len(c[2])}d" for c in CASES])
def test_loss_values_equal_keras_in_torch_and_numpy(loss, activation, output):
    """On outputs as given (probabilities unless the spec says logits): the formulas, clipping and smoothing."""
    spec = _spec(loss, activation, output)
    rng = np.random.default_rng(5)
    raw = rng.normal(0, 2, (7, *output)).astype(np.float32)
    squash = {
        "softmax": lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True),
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    }
    scores = squash.get(activation, lambda z: z)(raw).astype(np.float32)
    if activation == "softplus":
        scores = np.log1p(np.exp(raw)).astype(np.float32)
    scores[0].flat[0] = 0.0 if activation in ("softmax", "sigmoid") else scores[0].flat[0]  # reaches the clipping
    targets = _targets(spec, 7, rng)
    expected = _keras_value(spec, scores, targets)
    from_logits = spec.training.loss.takes_logits
    torch_values = TORCH_LOSSES[type(spec.training.loss)](
        spec.training.loss, torch.from_numpy(scores), torch.from_numpy(targets), from_logits
    )
    numpy_values = loss_values(spec.training.loss, scores, targets, from_logits)
    assert float(torch_values.mean()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(numpy_values.mean()) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_dice_is_one_value_for_the_batch():
    """Keras's Dice sums over the whole batch (axis=None): not the mean of per-image Dice values."""
    spec = _spec("dice", "sigmoid", (5, 4, 1))
    targets = np.zeros((2, 5, 4, 1), np.float32)
    targets[0] = 1.0
    scores = np.full((2, 5, 4, 1), 0.5, np.float32)
    value = loss_values(spec.training.loss, scores, targets, False)
    assert value.shape == () and float(value) == pytest.approx(1 - 2 * 10 / (20 + 20), abs=1e-6)
    assert float(value) == pytest.approx(_keras_value(spec, scores, targets), abs=1e-6)


# -- metrics ----------------------------------------------------------------------------
METRIC_CASES = [
    ("accuracy", "sparse_categorical_crossentropy", (5, 4, 3)),
    ("accuracy", "categorical_crossentropy", (3,)),
    ("mean_io_u", "sparse_categorical_crossentropy", (5, 4, 3)),
    ("mean_io_u", "categorical_crossentropy", (5, 4, 3)),  # Keras reads one-hot targets
    ("mean_io_u", "dice", (5, 4, 4)),  # a class absent from targets and predictions counts for nothing
    ("binary_accuracy", "binary_crossentropy", (5, 4, 1)),
    ("mae", "mean_squared_error", (2,)),
    ("mse", "huber", (5, 4, 2)),
    ("rmse", "mean_absolute_error", (3,)),
]


@pytest.mark.parametrize(
    "metric,loss,output", METRIC_CASES, ids=[f"{m}-{loss}-{len(o)}d" for m, loss, o in METRIC_CASES]
)
def test_metrics_equal_keras_over_two_batches(metric, loss, output):
    spec = _spec(
        loss,
        "softmax"
        if output[-1] > 1 and loss not in ("mean_squared_error", "huber", "mean_absolute_error")
        else "linear",
        output,
    )
    rng = np.random.default_rng(7)
    keras_metric = KERAS_METRICS[metric](
        spec.num_classes, spec.target_kind == "classes" and spec.training.loss.one_hot_targets
    )
    numpy_sums = MetricSums([metric], spec.num_classes, lambda size: np.zeros(size))
    torch_sums = MetricSums([metric], spec.num_classes, lambda size: torch.zeros(size, dtype=torch.float64))
    for n in (5, 3):
        scores = rng.random((n, *output)).astype(np.float32)
        targets = _targets(spec, n, rng)
        if metric == "mean_io_u" and output[-1] == 4:  # class 3 in neither targets nor predictions
            scores[..., 3] = -1.0
            targets = np.minimum(targets, 2)
        keras_targets = np.eye(spec.num_classes, dtype=np.float32)[targets] if keras_metric_one_hot(spec) else targets
        keras_metric.update_state(keras_targets, scores)
        numpy_sums.add(np, scores, targets)
        torch_sums.add(torch, torch.from_numpy(scores), torch.from_numpy(targets))
    expected = float(keras_metric.result())
    assert numpy_sums.values()[metric] == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert torch_sums.values()[metric] == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert METRICS[metric].higher_is_better == (metric in ("accuracy", "mean_io_u", "binary_accuracy"))


def keras_metric_one_hot(spec):
    return spec.target_kind == "classes" and spec.training.loss.one_hot_targets


# -- the exported file -----------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "dice"])
def test_an_exported_segmentation_model_evaluates_as_keras_does(tmp_path, layout, loss):
    """The .onnx file as written, in ONNX Runtime at its defaults: loss and metrics equal Keras's evaluate."""
    onnx_backend = pytest.importorskip("cnnspec.backends.onnx_backend")
    spec = cnnspec.load_spec(
        {
            **_spec(loss, "softmax", (5, 4, 3)).to_dict(),
            "training": {"loss": loss, "metrics": ["accuracy", "mean_io_u"]},
        }
    )
    weights = random_weights(spec, seed=4)
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (9, *spec.input_shape)).astype(np.float32)
    y = _targets(spec, 9, rng)
    trainer = keras_backend.Trainer(keras_backend.build(spec, weights), spec.training)
    expected = trainer.evaluate(trainer.prepare(x, y))
    path = tmp_path / "model.onnx"
    path.write_bytes(onnx_backend.to_onnx(spec, weights, layout=layout).SerializeToString())
    predictor = onnx_backend.Predictor(path)
    got = predictor.loss_and_metrics(x if layout == "nhwc" else x.transpose(0, 3, 1, 2), y)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=ATOL), key


# -- the example specs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,source", [("unet_shapes", "shapes"), ("regression_counts", "shape_counts")])
def test_one_training_step_of_the_example_specs_is_the_same_in_torch_and_keras(name, source):
    """specs/unet_shapes.yaml and specs/regression_counts.yaml as written, on a batch of their own data set,
    with plain SGD instead of their Adam: Adam's first step is about +-learning_rate for every weight whatever
    the gradient's size, so a gradient that is zero but for rounding (a ReLU that is off) could take either
    sign; SGD's step is the gradient itself, which is what the two frameworks must agree on."""
    spec = cnnspec.load_spec(f"specs/{name}.yaml").to_dict()
    spec["training"]["optimizer"] = {"type": "sgd", "learning_rate": 0.1}
    spec = cnnspec.load_spec(spec)
    data = cnnspec.data.fit_to_spec(cnnspec.data.load_data(source), spec)
    x, y = data.x_train[:16], data.y_train[:16]
    weights = random_weights(spec, seed=0)
    torch_run = _run(torch_backend, spec, weights, x, y, 1)
    keras_run = _run(keras_backend, spec, weights, x, y, 1)
    _assert_same(torch_run, keras_run, weights)
    assert max(np.abs(torch_run[0][key] - weights[key]).max() for key in weights) > 1e-3  # it did train


@pytest.mark.parametrize("loss,activation,output", CASES, ids=[f"{_name(c[0])}-{c[1]}-{len(c[2])}d" for c in CASES])
def test_an_empty_share_of_a_batch_has_no_rows(loss, activation, output):
    """Several processes: a last batch with fewer rows than processes leaves one of them an empty share."""
    spec = _spec(loss, activation, output)
    if not spec.training.loss.per_row:
        pytest.skip("a per-batch loss is refused with several processes")
    targets = _targets(spec, 0, np.random.default_rng(0))
    scores = np.zeros((0, *output), np.float32)
    values = TORCH_LOSSES[type(spec.training.loss)](
        spec.training.loss, torch.from_numpy(scores), torch.from_numpy(targets), False
    )
    assert tuple(values.shape) == (0,)
    assert loss_values(spec.training.loss, scores, targets, False).shape == (0,)
