"""Keras 3's losses in float64 numpy, for evaluating an exported file (which carries no framework).

The same formulas as the torch builders (``backends/torch_backend/losses.py``) and Keras's own classes,
which the tests compare them with: channels-last scores (logits for a cross-entropy when the file has
them), targets as the data gives them, one value per row (Dice: one per batch).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .numerics import KERAS_EPSILON

Loss = Callable[[Any, np.ndarray, np.ndarray, bool], np.ndarray]


def _per_row(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), int(np.prod(values.shape[1:]))).mean(axis=1) if values.ndim > 1 else values


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _clip(p: np.ndarray) -> np.ndarray:
    """Keras's clip to [eps, 1 - eps] at float32's bounds (1 - 1e-7 is 0.99999988 there): a probability
    clipped to its top leaves 1.19e-7, not 1e-7, for log(1 - p)."""
    low, high = np.float32(KERAS_EPSILON), np.float32(1 - KERAS_EPSILON)
    return np.clip(p, float(low), float(high))


def _one_hot(classes: np.ndarray, count: int) -> np.ndarray:
    return np.eye(count)[classes]


def _crossentropy(loss: Any, scores: np.ndarray, classes: np.ndarray, from_logits: bool) -> np.ndarray:
    count = scores.shape[-1]
    if from_logits:
        log_p = _log_softmax(scores)
    elif loss.one_hot_targets:  # categorical: renormalised, clipped
        log_p = np.log(_clip(scores / scores.sum(axis=-1, keepdims=True)))
    else:  # sparse: Keras takes the log of the clipped probabilities as logits
        log_p = _log_softmax(np.log(_clip(scores)))
    targets = _one_hot(classes, count)
    if getattr(loss, "label_smoothing", 0.0):
        targets = targets * (1 - loss.label_smoothing) + loss.label_smoothing / count
    return _per_row(-(targets * log_p).sum(axis=-1))


def _binary_crossentropy(loss: Any, scores: np.ndarray, targets: np.ndarray, from_logits: bool) -> np.ndarray:
    if loss.label_smoothing:
        targets = targets * (1 - loss.label_smoothing) + 0.5 * loss.label_smoothing
    if from_logits:  # log(1 + e^-|z|) + max(z, 0) - z y, as tf.nn.sigmoid_cross_entropy_with_logits
        values = np.maximum(scores, 0) - scores * targets + np.log1p(np.exp(-np.abs(scores)))
    else:
        p = _clip(scores)
        values = -(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    return _per_row(values)


def _huber(loss: Any, scores: np.ndarray, targets: np.ndarray, from_logits: bool) -> np.ndarray:
    error = scores - targets
    size = np.abs(error)
    return _per_row(np.where(size <= loss.delta, 0.5 * error**2, loss.delta * size - 0.5 * loss.delta**2))


def _dice(loss: Any, scores: np.ndarray, targets: np.ndarray, from_logits: bool) -> np.ndarray:
    if targets.dtype.kind in "iu":
        targets = _one_hot(targets, scores.shape[-1])
    return np.asarray(1 - 2.0 * (targets * scores).sum() / (targets.sum() + scores.sum() + KERAS_EPSILON))


LOSSES: dict[str, Loss] = {
    "categorical_crossentropy": _crossentropy,
    "sparse_categorical_crossentropy": _crossentropy,
    "binary_crossentropy": _binary_crossentropy,
    "mean_squared_error": lambda loss, scores, targets, from_logits: _per_row((scores - targets) ** 2),
    "mean_absolute_error": lambda loss, scores, targets, from_logits: _per_row(np.abs(scores - targets)),
    "huber": _huber,
    "dice": _dice,
}


def loss_values(loss: Any, scores: np.ndarray, targets: np.ndarray, from_logits: bool) -> np.ndarray:
    """Per-row values (or the batch's one value) of ``loss``, in float64."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets) if loss.target_kind(scores.shape[-1]) == "classes" else np.asarray(targets, float)
    return LOSSES[loss.type](loss, scores, targets, from_logits)
