"""One training step from the same weights and batch gives the same weights in torch and Keras.

No dropout; batch norm in training mode (its moving statistics are compared too). The
training options (weight decay, AdamW, learning-rate schedules, loss options,
regularizers) are checked the same way, with the loss each framework reports; the
epoch-end rule ReduceLROnPlateau against Keras's own callback.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.errors import RunError
from cnnspec.numerics import tolerance_for
from cnnspec.schedules import Plateau, plateau_step, shortest_float32
from cnnspec.weights import random_weights
from tests.parity.helpers import ATOL, spec_of

torch_backend = pytest.importorskip("cnnspec.backends.torch_backend")
keras_backend = pytest.importorskip("cnnspec.backends.keras_backend")

LAYERS = [
    {"type": "conv2d", "filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
    {"type": "batch_norm", "momentum": 0.9},
    {"type": "avg_pool2d", "pool_size": 2, "strides": 1, "padding": "same"},
    {"type": "conv2d", "filters": 3, "kernel_size": [2, 3], "activation": "tanh"},
]
OPTIMIZERS = [
    {"type": "adam", "learning_rate": 0.01},
    {"type": "sgd", "learning_rate": 0.05},
    {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    {"type": "rmsprop", "learning_rate": 0.01},
    {"type": "rmsprop", "learning_rate": 0.01, "momentum": 0.5},
    {"type": "rmsprop", "learning_rate": 0.01, "centered": True},
    {"type": "rmsprop", "learning_rate": 0.01, "momentum": 0.5, "centered": True},
    # Keras 3's decoupled weight decay (w -= w * wd * lr before the update), on every optimizer; AdamW's default 0.004
    {"type": "adamw", "learning_rate": 0.01},
    {"type": "adamw", "learning_rate": 0.01, "weight_decay": 0.5},
    {"type": "adam", "learning_rate": 0.01, "weight_decay": 0.5},
    {"type": "sgd", "learning_rate": 0.05, "weight_decay": 0.5},
    {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.5},
    {"type": "rmsprop", "learning_rate": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.5},
]


def _steps(backend, spec, weights, x, y, steps):
    model = backend.build(spec, weights)
    trainer = backend.Trainer(model, spec.training)
    xb, yb = trainer.prepare(x, y)
    for _ in range(steps):
        trainer.train_step(xb, yb)
    return backend.get_weights(model)


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_training_steps_agree(optimizer, loss):
    spec = spec_of(LAYERS, (9, 7, 2), classes=3, optimizer=optimizer, loss=loss)
    weights = random_weights(spec, seed=2)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (6, 9, 7, 2)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    steps = 3
    t = _steps(torch_backend, spec, weights, x, y, steps)
    k = _steps(keras_backend, spec, weights, x, y, steps)
    for key in weights:
        assert np.abs(t[key] - k[key]).max() <= ATOL, f"{key}: {np.abs(t[key] - k[key]).max():.2e}"
        if not key.endswith(("moving_mean", "moving_variance")):
            assert np.abs(t[key] - weights[key]).max() > 1e-4, f"{key} did not move"
    assert np.abs(t["batch_norm_1/moving_variance"] - weights["batch_norm_1/moving_variance"]).max() > 1e-3


@pytest.mark.parametrize("activation", ["sigmoid", "softplus"])  # Keras: sigmoid -> its logits; else probabilities
def test_non_softmax_outputs_follow_keras_loss_rules(activation):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 3, "activation": activation}]
    spec = spec_of(layers, (4, 4, 1), head=False, optimizer={"type": "sgd", "learning_rate": 0.5})
    weights = random_weights(spec, seed=1)
    x = np.random.default_rng(1).normal(0, 1, (5, 4, 4, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1])
    t = _steps(torch_backend, spec, weights, x, y, 2)
    k = _steps(keras_backend, spec, weights, x, y, 2)
    for key in weights:
        np.testing.assert_allclose(t[key], k[key], atol=ATOL)


def test_a_few_epochs_on_digits_give_close_loss_curves(tmp_path):
    """Same seed, same initial weights and shuffles; only dropout masks differ between frameworks."""
    import cnnspec

    curves = {
        backend: cnnspec.train(
            "specs/digits_cnn.yaml", backend, epochs=4, out=tmp_path / backend, verbose=False
        ).history
        for backend in ("torch", "keras")
    }
    for key in ("loss", "val_loss"):
        torch_curve, keras_curve = np.array(curves["torch"][key]), np.array(curves["keras"][key])
        assert np.all(np.abs(torch_curve - keras_curve) <= 0.15 * keras_curve), (key, torch_curve, keras_curve)
        assert torch_curve[-1] < 0.5 * torch_curve[0] and keras_curve[-1] < 0.5 * keras_curve[0]  # both learn


# -- training options: both frameworks from the same weights, batch and spec -------------------------
def _run(backend, spec, weights, x, y, steps):
    """Weights after ``steps`` steps, the loss each step reported, the rate each step used, the trainer."""
    model = backend.build(spec, weights)
    trainer = backend.Trainer(model, spec.training)
    xb, yb = trainer.prepare(x, y)
    losses, rates = [], []
    for _ in range(steps):
        reported = trainer.train_step(xb, yb)  # torch: (loss, logits); Keras: the loss
        losses.append(float(reported[0] if isinstance(reported, tuple) else reported))
        rates.append(trainer.learning_rate())
    return backend.get_weights(model), losses, rates, trainer


def _both(spec, steps=3, seed=2, n=6):
    weights = random_weights(spec, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, *spec.input_shape)).astype(np.float32)
    y = rng.integers(0, spec.num_classes, n)
    return (
        weights,
        (x, y),
        _run(torch_backend, spec, weights, x, y, steps),
        _run(keras_backend, spec, weights, x, y, steps),
    )


def _assert_same(torch_run, keras_run, weights):
    (t, t_losses, t_rates, _), (k, k_losses, k_rates, _) = torch_run, keras_run
    for key in weights:
        assert np.abs(t[key] - k[key]).max() <= ATOL, f"{key}: {np.abs(t[key] - k[key]).max():.2e}"
    np.testing.assert_allclose(t_losses, k_losses, rtol=0, atol=tolerance_for(k_losses))
    np.testing.assert_allclose(t_rates, k_rates, rtol=1e-6)


SCHEDULES = [
    {"type": "exponential_decay", "initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.3},
    {"type": "exponential_decay", "initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.3, "staircase": True},
    {"type": "cosine_decay", "initial_learning_rate": 0.1, "decay_steps": 3},
    {"type": "cosine_decay", "initial_learning_rate": 0.1, "decay_steps": 2, "alpha": 0.2},
    {"type": "piecewise_constant_decay", "boundaries": [0, 2], "values": [0.1, 0.01, 0.2]},
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: "-".join(f"{v}" for v in s.values()))
def test_schedule_values_equal_keras_schedules(schedule):
    """cnnspec.schedules (torch's rates) against keras.optimizers.schedules, step by step, boundaries included."""
    import keras

    from cnnspec.backends.keras_backend.trainer import make_schedule

    ours = cnnspec_schedule(schedule)
    theirs = make_schedule(ours)
    assert isinstance(theirs, keras.optimizers.schedules.LearningRateSchedule)
    for step in range(12):
        assert ours.at(step) == pytest.approx(float(theirs(step)), rel=1e-6), step


def cnnspec_schedule(schedule):
    return spec_of([], (2, 2, 1), optimizer={"type": "sgd", "learning_rate": schedule}).training.optimizer.schedule


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: "-".join(f"{v}" for v in s.values()))
@pytest.mark.parametrize("optimizer", [{"type": "sgd", "momentum": 0.5}, {"type": "adam", "weight_decay": 0.5}])
def test_scheduled_steps_agree(schedule, optimizer):
    """Stepped per batch by the optimizer's iterations (0 first), weight decay at the scheduled rate too."""
    spec = spec_of(LAYERS[:2], (5, 5, 2), optimizer={**optimizer, "learning_rate": schedule})
    weights, _, torch_run, keras_run = _both(spec, steps=4)
    _assert_same(torch_run, keras_run, weights)
    rule = spec.training.optimizer.schedule
    assert torch_run[2] == [shortest_float32(rule.at(step)) for step in range(4)]
    assert len(set(torch_run[2])) > 1 or rule.type == "piecewise_constant_decay"


LOSSES = [  # (loss, final activation)
    ({"type": "categorical_crossentropy", "label_smoothing": 0.2}, "softmax"),  # Keras reads the softmax's logits
    ({"type": "categorical_crossentropy", "label_smoothing": 0.2}, "softplus"),  # probabilities, renormalised
    ({"type": "categorical_crossentropy", "from_logits": True}, "linear"),
    ({"type": "categorical_crossentropy", "from_logits": True, "label_smoothing": 0.3}, "linear"),
    ({"type": "sparse_categorical_crossentropy", "from_logits": True}, "linear"),
    ({"type": "sparse_categorical_crossentropy"}, "softplus"),
]


@pytest.mark.parametrize(
    "loss,activation", LOSSES, ids=lambda v: "-".join(map(str, v.values())) if isinstance(v, dict) else v
)
def test_loss_options_agree(loss, activation):
    layers = [*LAYERS[:2], {"type": "flatten"}, {"type": "dense", "units": 3, "activation": activation}]
    spec = spec_of(layers, (5, 5, 2), head=False, optimizer={"type": "sgd", "learning_rate": 0.1}, loss=loss)
    weights, _, torch_run, keras_run = _both(spec, steps=2)
    _assert_same(torch_run, keras_run, weights)


def _penalty(spec, weights):
    """Keras's L1L2 by hand from canonical weights: l1 * sum|w| + l2 * sum w^2 over the regularized variables."""
    total = 0.0
    for layer in spec.layers:
        for name, rule in layer.regularizers().items():
            w = weights[f"{layer.name}/{name}"].astype(np.float64)
            total += rule.l1 * np.abs(w).sum() + rule.l2 * np.square(w).sum()
    return total


L1, L2 = {"l1": 0.05}, {"l2": 0.1}
REGULARIZED = {  # id -> layers, each a case of which variable carries which penalty
    "conv-kernel-l1": [{"type": "conv2d", "filters": 3, "kernel_size": 2, "kernel_regularizer": L1}],
    "conv-bias-l2": [{"type": "conv2d", "filters": 3, "kernel_size": 2, "bias_regularizer": L2}],
    "dense-kernel-l2": [
        {"type": "conv2d", "filters": 3, "kernel_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 4, "kernel_regularizer": L2},
    ],
    "dense-bias-l1": [
        {"type": "conv2d", "filters": 3, "kernel_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 4, "bias_regularizer": L1},
    ],
    "all-l1l2": [
        {
            "type": "conv2d",
            "filters": 3,
            "kernel_size": 2,
            "kernel_regularizer": {"l1": 0.01, "l2": 0.02},
            "bias_regularizer": {"l1": 0.03, "l2": 0.04},
        },
        {"type": "depthwise_conv2d", "kernel_size": 2, "depthwise_regularizer": {"l1": 0.02, "l2": 0.01}},
        {
            "type": "separable_conv2d",
            "filters": 2,
            "kernel_size": 1,
            "depthwise_regularizer": L2,
            "pointwise_regularizer": L1,
            "bias_regularizer": {"l1": 0.01, "l2": 0.01},
        },
        {"type": "flatten"},
        {"type": "dense", "units": 4, "kernel_regularizer": {"l1": 0.01, "l2": 0.02}, "bias_regularizer": L2},
    ],
}


@pytest.mark.parametrize("layers", REGULARIZED.values(), ids=REGULARIZED.keys())
def test_regularized_steps_agree_and_report_the_penalty(layers):
    """Weights and reported losses agree, and the reported loss is the cross-entropy plus l1*sum|w| + l2*sum w^2."""
    spec = spec_of(layers, (5, 5, 2), optimizer={"type": "sgd", "learning_rate": 0.1})
    plain = spec_of(
        [{k: v for k, v in layer.items() if not k.endswith("_regularizer")} for layer in layers],
        (5, 5, 2),
        optimizer={"type": "sgd", "learning_rate": 0.1},
    )
    weights, (x, y), torch_run, keras_run = _both(spec, steps=3)
    _assert_same(torch_run, keras_run, weights)
    penalty = _penalty(spec, weights)
    assert penalty > 0.01
    for backend, run in ((torch_backend, torch_run), (keras_backend, keras_run)):
        _, plain_losses, _, _ = _run(backend, plain, weights, x, y, 1)
        assert run[1][0] - plain_losses[0] == pytest.approx(penalty, rel=1e-5, abs=1e-6)  # the first step's loss
    # evaluate (validation and test loss) adds the penalty of the current weights too, as Keras's does
    trained = torch_run[0]
    evaluations = [run[3].evaluate(run[3].prepare(x, y)) for run in (torch_run, keras_run)]
    plain_eval = torch_backend.Trainer(torch_backend.build(plain, trained), plain.training)
    unregularized = plain_eval.evaluate(plain_eval.prepare(x, y))["loss"]
    for evaluation in evaluations:
        assert evaluation["loss"] == pytest.approx(unregularized + _penalty(spec, trained), rel=1e-5)


def test_keras_model_losses_hold_the_regularizers():
    """The Keras mechanism is real: model.losses (what fit and evaluate add) equals the formula, per variable."""
    spec = spec_of(REGULARIZED["all-l1l2"], (5, 5, 2))
    weights = random_weights(spec, seed=3)
    model = keras_backend.build(spec, weights)
    losses = [float(loss) for loss in model.losses]
    assert len(losses) == sum(len(layer.regularizers()) for layer in spec.layers) == 8
    assert sum(losses) == pytest.approx(_penalty(spec, weights), rel=1e-5)
    for layer in spec.layers:  # and the layers' own arguments say so, for get_config and saved models
        for name, rule in layer.regularizers().items():
            config = model.get_layer(layer.name).get_config()[f"{name.removesuffix('_kernel')}_regularizer"]
            assert config["config"] == pytest.approx({"l1": rule.l1, "l2": rule.l2}), (layer.name, name)


# -- ReduceLROnPlateau: cnnspec's epoch-end rule against keras.callbacks.ReduceLROnPlateau -------------
PLATEAUS = [  # (rule, monitored values per epoch)
    ({"monitor": "val_loss", "patience": 2}, [1.0, 0.9, 0.95, 0.9, 0.91, 0.5, 0.6, 0.7, 0.8, 0.4, 0.41, 0.42]),
    ({"monitor": "loss", "patience": 0, "factor": 0.5}, [1.0, 1.0, 0.5, 0.6, 0.4, 0.4]),
    ({"monitor": "val_loss", "patience": 1, "min_delta": 0.1}, [1.0, 0.95, 0.85, 0.8, 0.7, 0.69, 0.68, 0.3, 0.29]),
    ({"monitor": "val_loss", "patience": 1, "factor": 0.2, "min_lr": 0.003}, [1.0] * 10),  # stops at min_lr
    ({"monitor": "val_accuracy", "patience": 1}, [0.5, 0.6, 0.6, 0.6, 0.7, 0.65, 0.7001, 0.9, 0.8, 0.8]),
    ({"monitor": "accuracy", "patience": 2, "min_delta": 0.05}, [0.5, 0.54, 0.53, 0.56, 0.6, 0.61, 0.62, 0.7]),
]


def _keras_plateau(rule, values, lr):
    """Keras's callback driven with the same logs, on a real compiled model (it reads and sets the optimizer's rate)."""
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.evaluate(np.zeros((2, 2)), np.zeros(2), verbose=0)  # builds the metrics its auto mode looks up
    callback = keras.callbacks.ReduceLROnPlateau(**rule)
    callback.set_model(model)
    callback.on_train_begin()
    rates, waits = [], []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {rule["monitor"]: value})
        rates.append(shortest_float32(float(np.asarray(model.optimizer.learning_rate))))
        waits.append(callback.wait)
    return rates, waits


@pytest.mark.parametrize("rule,values", PLATEAUS, ids=[f"{r['monitor']}-{i}" for i, (r, _) in enumerate(PLATEAUS)])
def test_plateau_rule_reduces_at_the_epochs_keras_does(rule, values):
    training = spec_of([], (2, 2, 1), reduce_lr_on_plateau=rule).training
    plateau = training.reduce_lr_on_plateau
    lr, state, rates, waits = 0.1, Plateau(), [], []
    for value in values:
        lr = plateau_step(
            state,
            value,
            lr,
            factor=plateau.factor,
            patience=plateau.patience,
            min_delta=plateau.min_delta,
            min_lr=plateau.min_lr,
            lower_is_better=plateau.monitor.endswith("loss"),
        )
        rates.append(lr)
        waits.append(state.wait)
    keras_rates, keras_waits = _keras_plateau(plateau.model_dump(), values, 0.1)
    assert rates == keras_rates
    assert waits == keras_waits
    assert len(set(rates)) > 1  # each case reduces at least once


def test_learning_rate_history_agrees_and_survives_resume(tmp_path):
    """A plateau rule that always fires (min_delta huge) halves the rate every other epoch, in both backends;
    a run stopped after 3 epochs and resumed goes on from the reduced rate and its wait count."""
    import cnnspec

    doc = {
        "name": "plateau",
        "input_shape": [8, 8, 1],
        "layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}],
        "training": {
            "batch_size": 256,
            "optimizer": {"type": "sgd", "learning_rate": 0.1},
            "reduce_lr_on_plateau": {"monitor": "val_loss", "patience": 2, "factor": 0.5, "min_delta": 100.0},
        },
    }
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]  # epoch 1 sets `best`; then every second epoch reduces
    straight = cnnspec.train(doc, "torch", epochs=6, out=tmp_path / "straight", verbose=False)
    assert straight.history["learning_rate"] == expected
    cnnspec.train(doc, "torch", epochs=3, out=tmp_path / "resumed", verbose=False)
    resumed = cnnspec.train(resume=tmp_path / "resumed", epochs=6, verbose=False)
    assert resumed.history["learning_rate"] == expected
    assert resumed.history["loss"] == straight.history["loss"]  # the same rates from epoch 4 on
    cnnspec.train(doc, "keras", epochs=3, out=tmp_path / "keras", verbose=False)
    keras_run = cnnspec.train(resume=tmp_path / "keras", epochs=6, verbose=False)
    assert keras_run.history["learning_rate"] == expected


def test_scheduled_learning_rate_history_is_the_last_steps_rate(tmp_path):
    import cnnspec

    schedule = {"type": "exponential_decay", "initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.5}
    doc = {
        "name": "decay",
        "input_shape": [8, 8, 1],
        "layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}],
        "training": {"batch_size": 512, "optimizer": {"type": "sgd", "learning_rate": schedule}},
    }
    histories = {
        backend: cnnspec.train(doc, backend, epochs=2, out=tmp_path / backend, verbose=False).history
        for backend in ("torch", "keras")
    }
    rule = cnnspec.load_spec(doc).training.optimizer.schedule
    # digits: 1,294 training images in batches of 512 -> 3 steps an epoch; the last steps are 2 and 5
    expected = [shortest_float32(rule.at(2)), shortest_float32(rule.at(5))]
    assert histories["torch"]["learning_rate"] == expected
    np.testing.assert_allclose(histories["keras"]["learning_rate"], expected, rtol=1e-6)
    # the optimizer's step count is checkpointed, so a resumed run goes on along the schedule
    cnnspec.train(doc, "torch", epochs=1, out=tmp_path / "resumed", verbose=False)
    resumed = cnnspec.train(resume=tmp_path / "resumed", epochs=2, verbose=False).history
    assert resumed["learning_rate"] == expected and resumed["loss"] == histories["torch"]["loss"]
    with pytest.raises(RunError, match="schedule"):  # --lr replaces a constant rate only
        cnnspec.train(doc, "torch", learning_rate=0.1, out=tmp_path / "lr", verbose=False)
