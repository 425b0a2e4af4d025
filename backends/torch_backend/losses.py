"""Keras 3's losses in torch, one builder per registered loss type.

Each takes channels-last scores (``logits`` for a loss that ``reads_logits`` when the model has them,
else the model's output) and the targets as the data gives them (class indices, or values of the
output's shape) and returns one value per row (the mean over the row's positions, as Keras's
``sum_over_batch_size`` averages them), or one value for the batch (Dice). Formulas are Keras's
(keras/src/losses/losses.py, keras/src/backend/tensorflow/nn.py), epsilon included.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from cnnspec.numerics import KERAS_EPSILON
from cnnspec.registry import LOSS_CLASSES, BuilderTable

# loss(spec, scores, targets, from_logits) -> per-row values (N,), or a scalar for a per-batch loss
LOSSES = BuilderTable("torch", LOSS_CLASSES, "loss")


def per_row(values: torch.Tensor) -> torch.Tensor:
    """(N, ...) per-position values -> (N,) means (Keras then averages the rows: the mean of all positions)."""
    return values.flatten(1).mean(dim=1) if values.dim() > 1 else values  # flatten: an empty share stays (0,)


def one_hot(classes: torch.Tensor, count: int) -> torch.Tensor:
    return F.one_hot(classes, count).float()


@LOSSES.builds("categorical_crossentropy", "sparse_categorical_crossentropy")
def keras_crossentropy(loss: Any, scores: torch.Tensor, classes: torch.Tensor, from_logits: bool) -> torch.Tensor:
    """Cross-entropy over the last axis at every position, exactly as Keras computes it.

    ``from_logits``: ``scores`` are logits; otherwise probabilities, renormalised (categorical) and
    clipped to [eps, 1 - eps]. ``label_smoothing`` ls (categorical only, as in Keras 3) trains on
    ``one_hot * (1 - ls) + ls / classes``.
    """
    scores, count = scores.float(), scores.shape[-1]
    flat, labels = scores.reshape(-1, count), classes.reshape(-1)
    if from_logits:
        values = F.cross_entropy(flat, labels, reduction="none", label_smoothing=loss.label_smoothing)
    elif loss.one_hot_targets:
        probs = (flat / flat.sum(dim=1, keepdim=True)).clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
        targets = one_hot(labels, count)
        if loss.label_smoothing:
            targets = targets * (1 - loss.label_smoothing) + loss.label_smoothing / count
        values = -(targets * probs.log()).sum(dim=1)
    else:
        values = F.cross_entropy(flat.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON).log(), labels, reduction="none")
    return per_row(values.reshape(classes.shape))


@LOSSES.builds("binary_crossentropy")
def binary_crossentropy(loss: Any, scores: torch.Tensor, targets: torch.Tensor, from_logits: bool) -> torch.Tensor:
    """Keras's ``mean(bce, axis=-1)``: sigmoid cross-entropy of logits, or of probabilities clipped to
    [eps, 1 - eps]; label smoothing ls moves targets to ``y * (1 - ls) + ls / 2``."""
    scores, targets = scores.float(), targets.float()
    if loss.label_smoothing:
        targets = targets * (1 - loss.label_smoothing) + 0.5 * loss.label_smoothing
    if from_logits:
        values = F.binary_cross_entropy_with_logits(scores, targets, reduction="none")
    else:
        probs = scores.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
        values = -(targets * probs.log() + (1 - targets) * (1 - probs).log())
    return per_row(values)


@LOSSES.builds("mean_squared_error")
def mean_squared_error(loss: Any, scores: torch.Tensor, targets: torch.Tensor, from_logits: bool) -> torch.Tensor:
    return per_row((scores.float() - targets) ** 2)


@LOSSES.builds("mean_absolute_error")
def mean_absolute_error(loss: Any, scores: torch.Tensor, targets: torch.Tensor, from_logits: bool) -> torch.Tensor:
    return per_row((scores.float() - targets).abs())


@LOSSES.builds("huber")
def huber(loss: Any, scores: torch.Tensor, targets: torch.Tensor, from_logits: bool) -> torch.Tensor:
    """Keras's formula (torch's ``huber_loss`` is the same function; written out so the rule is in view)."""
    error = scores.float() - targets
    size = error.abs()
    values = torch.where(size <= loss.delta, 0.5 * error**2, loss.delta * size - 0.5 * loss.delta**2)
    return per_row(values)


@LOSSES.builds("dice")
def dice(loss: Any, scores: torch.Tensor, targets: torch.Tensor, from_logits: bool) -> torch.Tensor:
    """Keras 3's ``dice`` with ``axis=None``: one value for the whole batch. Class indices are one-hot
    encoded first (an output of two or more channels)."""
    scores = scores.float()
    if targets.dtype == torch.int64:
        targets = one_hot(targets, scores.shape[-1])
    intersection = (targets * scores).sum()
    return 1 - 2.0 * intersection / (targets.sum() + scores.sum() + KERAS_EPSILON)
