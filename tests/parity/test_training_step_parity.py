"""One training step from the same weights and batch gives the same weights in torch and Keras.

No dropout; batch norm in training mode (its moving statistics are compared too).
"""

from __future__ import annotations

import numpy as np
import pytest

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
