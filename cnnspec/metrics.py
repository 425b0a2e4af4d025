"""The metrics a spec can ask for (``training.metrics``), as Keras 3 defines them, for any output shape.

Each metric is a sum of parts accumulated over an epoch, and its value is read from the sums at the end
(so the hot loop does not wait on the host for bookkeeping; on a GPU, mean IoU's ``bincount`` does, once
a batch, to size its result). The parts are computed with operations that numpy arrays
and torch tensors both have, so the torch trainer and the ONNX evaluator share one definition; the Keras
trainer uses Keras's own metric classes (``keras_class``), which the parity tests compare with these.
Outputs are channels-last (the scores of each position on the last axis).

>>> import numpy as np
>>> scores, classes = np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0])
>>> METRICS["accuracy"].value(METRICS["accuracy"].parts(np, scores, classes, 2))
0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

from .numerics import KERAS_EPSILON

Parts = Callable[[Any, Any, Any, int], list[Any]]  # (xp, output, targets, classes) -> parts to sum


@dataclass(frozen=True)
class Metric:
    """One metric: ``parts`` of a batch (summed over batches, ``size`` numbers in all) and ``value`` of the sums.

    ``targets``: the targets it reads (``classes``: class indices, compared with the argmax of the scores;
    ``values``: numbers of the output's shape). ``higher_is_better`` sets the direction early stopping,
    ReduceLROnPlateau and the kept checkpoint use. ``keras_class``: the ``keras.metrics`` class it is.
    """

    name: str
    targets: Literal["classes", "values"]
    higher_is_better: bool
    keras_class: str
    parts: Parts
    value: Callable[[Any], float]
    size: Callable[[int], int] = lambda classes: 2
    summary: str = ""


def _count(xp: Any, targets: Any) -> int:
    return int(targets.numel()) if hasattr(targets, "numel") else int(targets.size)  # torch, numpy


def _ratio(sums: Any) -> float:
    return float(sums[0]) / max(float(sums[1]), 1.0)


def _accuracy(xp: Any, output: Any, targets: Any, classes: int) -> list[Any]:
    return [(output.argmax(-1) == targets).sum(), _count(xp, targets)]


def _binary_accuracy(xp: Any, output: Any, targets: Any, classes: int) -> list[Any]:
    # Keras: cast(y_pred > 0.5) == y_true, so a target counts only at exactly 0 or 1
    return [(xp.where(output > 0.5, 1.0, 0.0) == targets).sum(), _count(xp, targets)]


def _absolute(xp: Any, output: Any, targets: Any, classes: int) -> list[Any]:
    return [xp.abs(output - targets).sum(), _count(xp, targets)]


def _squared(xp: Any, output: Any, targets: Any, classes: int) -> list[Any]:
    return [((output - targets) ** 2).sum(), _count(xp, targets)]


def _confusion(xp: Any, output: Any, targets: Any, classes: int) -> list[Any]:
    """The confusion matrix (true class x predicted class), flattened."""
    cells = targets.reshape(-1) * classes + output.argmax(-1).reshape(-1)
    return [xp.bincount(cells, minlength=classes * classes)]


def mean_iou(sums: Any) -> float:
    """Keras's ``MeanIoU``: per class TP / (TP + FP + FN + eps), averaged over the classes that occur in the
    targets or the predictions (a class in neither counts for nothing)."""
    import numpy as np

    flat = np.asarray(sums, dtype=np.float64)
    classes = int(round(len(flat) ** 0.5))
    matrix = flat.reshape(classes, classes)
    true_positives = np.diag(matrix)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positives
    valid = denominator > 1e-9
    iou = np.where(valid, true_positives / (denominator + KERAS_EPSILON), 0.0)
    return float(iou.sum() / (valid.sum() + KERAS_EPSILON))


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("accuracy", "classes", True, "Accuracy", _accuracy, _ratio,
               summary="share of positions whose highest score is the true class"),
        Metric("mean_io_u", "classes", True, "MeanIoU", _confusion, mean_iou, lambda classes: classes * classes,
               summary="Keras's MeanIoU: intersection over union per class, averaged over the classes present"),
        Metric("binary_accuracy", "values", True, "BinaryAccuracy", _binary_accuracy, _ratio,
               summary="share of outputs on the target's side of 0.5 (targets 0 or 1)"),
        Metric("mae", "values", False, "MeanAbsoluteError", _absolute, _ratio, summary="mean absolute error"),
        Metric("mse", "values", False, "MeanSquaredError", _squared, _ratio, summary="mean squared error"),
        Metric("rmse", "values", False, "RootMeanSquaredError", _squared, lambda sums: _ratio(sums) ** 0.5,
               summary="root of the mean squared error"),
    )
}  # fmt: skip
MetricName = Literal["accuracy", "mean_io_u", "binary_accuracy", "mae", "mse", "rmse"]


def higher_is_better(monitor: str) -> bool:
    """The direction of a monitored quantity: ``loss``/``val_loss`` go down, a metric as its table says."""
    name = monitor.removeprefix("val_")
    return name in METRICS and METRICS[name].higher_is_better


class MetricSums:
    """The running sums of a list of metrics over batches, in one float64 buffer (numpy or torch)."""

    def __init__(self, names: Sequence[str], classes: int, zeros: Callable[[int], Any]):
        self.names, self.classes = list(names), classes
        self.offsets: list[tuple[int, int]] = []
        start = 0
        for name in self.names:
            size = METRICS[name].size(classes)
            self.offsets.append((start, start + size))
            start += size
        self.buffer = zeros(start)

    def add(self, xp: Any, output: Any, targets: Any) -> None:
        """Add one batch (``output`` channels-last scores or values, ``targets`` classes or values)."""
        for name, (start, _) in zip(self.names, self.offsets):
            position = start
            for part in METRICS[name].parts(xp, output, targets, self.classes):
                size = 1 if getattr(part, "ndim", 0) == 0 else len(part)
                self.buffer[position : position + size] += part
                position += size

    def values(self, buffer: Any = None) -> dict[str, float]:
        """Each metric's value from ``buffer`` (this object's sums, or the same sums gathered elsewhere)."""
        sums = [float(value) for value in (self.buffer if buffer is None else buffer).tolist()]
        return {name: METRICS[name].value(sums[start:end]) for name, (start, end) in zip(self.names, self.offsets)}
