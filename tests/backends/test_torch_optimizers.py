"""Torch optimizers and loss equal numpy references written from Keras 3's update formulas.

Weight decay and schedules follow keras/src/optimizers/base_optimizer.py: the rate of step
``iterations`` (0 first), and ``w -= w * weight_decay * lr`` before the update.
"""

from __future__ import annotations

import numpy as np
import pytest

import cnnspec

torch = pytest.importorskip("torch")
from cnnspec.backends.torch_backend.losses import keras_crossentropy  # noqa: E402
from cnnspec.backends.torch_backend.optimizers import KerasAdam, KerasRMSprop, KerasSGD  # noqa: E402


def numpy_adam(w, grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-7, weight_decay=None, schedule=None):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        lr = schedule(t - 1) if schedule else lr
        if weight_decay is not None:
            w = w - w * weight_decay * lr
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        w = w - m * alpha / (np.sqrt(v) + eps)
    return w


def numpy_sgd(w, grads, lr=0.01, momentum=0.0, nesterov=False, weight_decay=None, schedule=None):
    m = np.zeros_like(w)
    for step, g in enumerate(grads):
        lr = schedule(step) if schedule else lr
        if weight_decay is not None:
            w = w - w * weight_decay * lr
        if momentum == 0:
            w = w - lr * g
            continue
        m = momentum * m - lr * g
        w = w + (momentum * m - lr * g if nesterov else m)
    return w


def numpy_rmsprop(w, grads, lr=0.01, rho=0.9, momentum=0.0, eps=1e-7, centered=False, weight_decay=None):
    v, avg, mom = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        if weight_decay is not None:
            w = w - w * weight_decay * lr
        v = rho * v + (1 - rho) * g * g
        if centered:
            avg = rho * avg + (1 - rho) * g
            denominator = v - avg * avg + eps
        else:
            denominator = v + eps
        increment = lr * g / np.sqrt(denominator)
        if momentum > 0:
            mom = momentum * mom + increment
            w = w - mom
        else:
            w = w - increment
    return w


CASES = [
    (lambda p: KerasAdam(p, lr=0.01), lambda w, g: numpy_adam(w, g)),
    (
        lambda p: KerasAdam(p, lr=0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-4),
        lambda w, g: numpy_adam(w, g, lr=0.003, b1=0.8, b2=0.99, eps=1e-4),
    ),
    (lambda p: KerasSGD(p, lr=0.05), lambda w, g: numpy_sgd(w, g, lr=0.05)),
    (lambda p: KerasSGD(p, lr=0.05, momentum=0.9), lambda w, g: numpy_sgd(w, g, lr=0.05, momentum=0.9)),
    (
        lambda p: KerasSGD(p, lr=0.05, momentum=0.9, nesterov=True),
        lambda w, g: numpy_sgd(w, g, lr=0.05, momentum=0.9, nesterov=True),
    ),
    (lambda p: KerasRMSprop(p, lr=0.01), lambda w, g: numpy_rmsprop(w, g)),
    (lambda p: KerasRMSprop(p, lr=0.01, momentum=0.5), lambda w, g: numpy_rmsprop(w, g, momentum=0.5)),
    (lambda p: KerasRMSprop(p, lr=0.01, centered=True), lambda w, g: numpy_rmsprop(w, g, centered=True)),
    (
        lambda p: KerasRMSprop(p, lr=0.01, momentum=0.5, centered=True, rho=0.8),
        lambda w, g: numpy_rmsprop(w, g, momentum=0.5, centered=True, rho=0.8),
    ),
    # weight decay (AdamW is KerasAdam with it) and schedules, stepped by iterations from 0
    (lambda p: KerasAdam(p, lr=0.01, weight_decay=0.3), lambda w, g: numpy_adam(w, g, weight_decay=0.3)),
    (
        lambda p: KerasSGD(p, lr=0.05, momentum=0.9, weight_decay=0.3),
        lambda w, g: numpy_sgd(w, g, lr=0.05, momentum=0.9, weight_decay=0.3),
    ),
    (
        lambda p: KerasRMSprop(p, lr=0.01, weight_decay=0.3),
        lambda w, g: numpy_rmsprop(w, g, weight_decay=0.3),
    ),
    (
        lambda p: KerasSGD(p, schedule=lambda step: 0.1 * 0.5**step, weight_decay=0.2),
        lambda w, g: numpy_sgd(w, g, schedule=lambda step: 0.1 * 0.5**step, weight_decay=0.2),
    ),
    (
        lambda p: KerasAdam(p, schedule=lambda step: 0.01 / (1 + step)),
        lambda w, g: numpy_adam(w, g, schedule=lambda step: 0.01 / (1 + step)),
    ),
]


@pytest.mark.parametrize("make,reference", CASES)
def test_optimizer_steps_equal_keras_formulas(make, reference):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 5)).astype(np.float32)
    grads = [rng.normal(size=(4, 5)).astype(np.float32) for _ in range(5)]
    param = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    optimizer = make([param])
    for g in grads:
        param.grad = torch.from_numpy(g)
        optimizer.step()
    expected = reference(w0.astype(np.float64), [g.astype(np.float64) for g in grads])
    np.testing.assert_allclose(param.detach().numpy(), expected, atol=1e-6, rtol=1e-5)
    assert optimizer.iterations() == len(grads)  # Keras's counter, which schedules read


def _dense_spec(optimizer):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 2}]
    return cnnspec.load_spec({"input_shape": [2, 2, 1], "layers": layers, "training": {"optimizer": optimizer}})


def test_the_rate_is_settable_without_a_schedule_and_refused_with_one():
    from cnnspec.backends import torch_backend as tb

    spec = _dense_spec({"type": "sgd", "learning_rate": 0.5})
    trainer = tb.Trainer(tb.build(spec), spec.training)
    assert trainer.learning_rate() == 0.5
    trainer.set_learning_rate(0.05)
    assert trainer.learning_rate() == 0.05 and trainer.optimizer.param_groups[0]["lr"] == 0.05
    schedule = {"type": "piecewise_constant_decay", "boundaries": [0], "values": [0.5, 0.1]}
    scheduled = _dense_spec({"type": "sgd", "learning_rate": schedule})
    trainer = tb.Trainer(tb.build(scheduled), scheduled.training)
    with pytest.raises(TypeError, match="schedule"):
        trainer.set_learning_rate(0.05)


def test_optimizer_state_round_trips_through_the_trainer():
    from cnnspec.backends import torch_backend as tb

    spec = cnnspec.load_spec("specs/every_layer.yaml")
    x = np.random.default_rng(0).random((8, *spec.input_shape), dtype=np.float32)
    y = np.arange(8) % 5
    trainer = tb.Trainer(tb.build(spec), spec.training)
    data = trainer.prepare(x, y)
    trainer.fit_epoch(data, np.arange(8), 4, seed=0)
    state = trainer.optimizer_state()
    other = tb.Trainer(tb.build(spec, tb.get_weights(trainer.model)), spec.training)
    other.load_optimizer_state(state)
    trainer.fit_epoch(data, np.arange(8), 4, seed=1)
    other.fit_epoch(other.prepare(x, y), np.arange(8), 4, seed=1)
    for key, value in tb.get_weights(trainer.model).items():
        np.testing.assert_array_equal(value, tb.get_weights(other.model)[key])


def _numpy_softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_loss_from_logits_when_the_output_is_softmax():
    z = np.random.default_rng(0).normal(0, 5, (6, 4))
    labels = np.array([0, 1, 2, 3, 0, 1])
    got = keras_crossentropy(cnnspec.CategoricalCrossentropy(), torch.tensor(z), torch.tensor(labels), True).numpy()
    expected = -np.log(_numpy_softmax(z)[np.arange(6), labels])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_loss_from_probabilities_clips_like_keras():
    probs = np.array([[0.0, 1.0], [0.2, 0.6]], np.float32)  # unnormalised second row
    labels = np.array([0, 1])
    categorical = keras_crossentropy(
        cnnspec.CategoricalCrossentropy(), torch.tensor(probs), torch.tensor(labels), False
    )
    normalised = probs / probs.sum(1, keepdims=True)
    clipped = np.clip(normalised, 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(categorical.numpy(), -np.log(clipped[np.arange(2), labels]), rtol=1e-5)
    sparse = keras_crossentropy(
        cnnspec.SparseCategoricalCrossentropy(), torch.tensor(probs), torch.tensor(labels), False
    )
    logp = np.log(np.clip(probs, 1e-7, 1 - 1e-7))
    np.testing.assert_allclose(
        sparse.numpy(), -(logp - np.log(np.exp(logp).sum(1, keepdims=True)))[np.arange(2), labels], rtol=1e-5
    )


def _smoothed(labels, classes, ls):
    return np.eye(classes)[labels] * (1 - ls) + ls / classes


def test_label_smoothing_from_logits_is_keras_formula():
    z = np.random.default_rng(2).normal(0, 3, (5, 4))
    labels = np.array([0, 3, 2, 1, 0])
    got = keras_crossentropy(
        cnnspec.CategoricalCrossentropy(label_smoothing=0.2), torch.tensor(z), torch.tensor(labels), True
    ).numpy()
    expected = -(_smoothed(labels, 4, 0.2) * np.log(_numpy_softmax(z))).sum(1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_label_smoothing_on_probabilities_renormalises_and_clips():
    probs = np.array([[0.0, 0.5, 0.5], [0.2, 0.6, 0.4]], np.float32)
    labels = np.array([1, 0])
    got = keras_crossentropy(
        cnnspec.CategoricalCrossentropy(label_smoothing=0.3), torch.tensor(probs), torch.tensor(labels), False
    )
    clipped = np.clip(probs / probs.sum(1, keepdims=True), 1e-7, 1 - 1e-7)
    expected = -(_smoothed(labels, 3, 0.3) * np.log(clipped)).sum(1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
