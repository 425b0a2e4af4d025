"""One epoch of training and one evaluation pass, for the backend-neutral driver.

Metrics accumulate as tensors and are read only when the progress bar asks,
so the hot loop never waits on a host sync for bookkeeping.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from cnnspec.data import is_streamed
from cnnspec.fields import Regularizer
from cnnspec.numerics import KERAS_EPSILON
from cnnspec.schedules import shortest_float32
from cnnspec.spec import TrainingSpec
from cnnspec.streams import stream_batches

from .augment import seed_augmentations
from .model import CompiledModel, to_nchw
from .optimizers import make_optimizer
from .weights import variables


def keras_crossentropy(
    output: torch.Tensor, labels: torch.Tensor, from_logits: bool, loss: str, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Per-sample cross-entropy exactly as Keras computes it (keras/src/backend/tensorflow/nn.py).

    ``from_logits``: ``output`` is logits (the model ends in a softmax or sigmoid, whose input
    Keras reads, or the spec says ``from_logits``); otherwise it is probabilities, renormalised
    (categorical) and clipped to [eps, 1 - eps]. ``label_smoothing`` ls (categorical only, as in
    Keras 3) trains on ``one_hot * (1 - ls) + ls / classes``.
    """
    output = output.float()
    if from_logits:
        return F.cross_entropy(output, labels, reduction="none", label_smoothing=label_smoothing)
    if loss == "categorical_crossentropy":
        probs = output / output.sum(dim=1, keepdim=True)
        probs = probs.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
        targets = F.one_hot(labels, output.shape[1]).float()
        if label_smoothing:
            targets = targets * (1 - label_smoothing) + label_smoothing / output.shape[1]
        return -(targets * probs.log()).sum(dim=1)
    logits = output.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON).log()
    return F.cross_entropy(logits, labels, reduction="none")


def regularized(model: CompiledModel) -> list[tuple[torch.Tensor, Regularizer]]:
    """(tensor, rule) for every canonical variable with a regularizer, in the spec's order."""
    rules = {f"{layer.name}/{name}": rule for layer in model.spec.layers for name, rule in layer.regularizers().items()}
    return [(tensor, rules[key]) for key, tensor, _ in variables(model) if key in rules]


def regularization_loss(terms: list[tuple[torch.Tensor, Regularizer]]) -> torch.Tensor:
    """Keras's ``L1L2`` per variable, ``l1 * sum(|w|) + l2 * sum(w**2)``, summed over the variables
    (keras/src/regularizers/regularizers.py; ``compute_loss`` sums ``model.losses``).

    The sums run over the torch tensor, a permutation of the Keras-layout variable, so they are the same.
    """
    per_variable = []
    for tensor, rule in terms:
        penalty = rule.l1 * tensor.abs().sum() if rule.l1 else torch.zeros((), device=tensor.device)
        if rule.l2:
            penalty = penalty + rule.l2 * tensor.square().sum()
        per_variable.append(penalty)
    return torch.stack(per_variable).sum() if per_variable else torch.zeros(())


Progress = Callable[[int, int, Callable[[], dict[str, float]]], None]


class Trainer:
    """Keras-exact optimizer and loss around a compiled model."""

    def __init__(
        self, model: CompiledModel, training: TrainingSpec, learning_rate: float | None = None, precision: str = "fp32"
    ):
        self.model, self.training, self.precision = model, training, precision
        self.optimizer = make_optimizer(model.parameters(), training.optimizer, learning_rate)
        # bf16: mixed precision (autocast), float32 master weights, loss and softmax
        self.bf16 = precision == "bf16"
        # Keras reads the logits behind a final softmax or sigmoid; `from_logits` says the output is logits
        self.from_logits = model.loss_from_logits or training.loss.from_logits
        self.regularized = regularized(model)

    def prepare(self, x: Any, y: np.ndarray) -> tuple[Any, torch.Tensor]:
        """Convert a split once (channels-last numpy -> NCHW tensors in the model's memory format), not every epoch.

        Images streamed from disk stay an ``ImageStore``; ``batches`` reads them as it goes.
        """
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
        if is_streamed(x):
            return x, labels
        return to_nchw(x).contiguous(memory_format=self.model.memory_format), labels

    def batches(self, data: Any, order: np.ndarray, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) of each batch of ``order``: indexed from memory, or read ahead on worker threads."""
        x_all, y_all = data
        if is_streamed(x_all):
            for images, rows in stream_batches(x_all, order, batch_size):
                yield to_nchw(images), y_all[torch.from_numpy(rows)]
            return
        index = torch.from_numpy(np.asarray(order, dtype=np.int64))
        for start in range(0, len(index), batch_size):
            rows = index[start : start + batch_size]
            yield x_all[rows], y_all[rows]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-sample cross-entropy (without the regularization term, which is per batch)."""
        loss = self.training.loss
        return keras_crossentropy(logits, labels, self.from_logits, loss.type, loss.label_smoothing)

    def penalty(self) -> torch.Tensor:
        """The regularization loss Keras adds to every batch's loss (``model.losses``), float32."""
        return regularization_loss(self.regularized)

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch; returns (batch mean loss, logits), both detached."""
        if not self.model.training:
            self.model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model.forward_logits(xb)
        loss = self.loss(logits, yb).mean()  # float32 (keras_crossentropy casts)
        if self.regularized:  # Keras's total loss: the compiled loss plus model.losses; fit reports it
            loss = loss + self.penalty()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), logits.detach()

    def fit_epoch(self, data: Any, order: np.ndarray, batch_size: int, seed: int, progress: Progress | None = None):
        torch.manual_seed(seed)  # dropout masks: the same seed and epoch give the same run
        seed_augmentations(self.model.blocks, seed)  # and augmentation draws, so a resumed run repeats exactly
        self.model.train()
        total_loss = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        seen, n_batches = 0, -(-len(order) // batch_size)

        def metrics() -> dict[str, float]:
            return {"loss": float(total_loss) / max(seen, 1), "accuracy": float(correct) / max(seen, 1)}

        for batch, (xb, yb) in enumerate(self.batches(data, order, batch_size)):
            loss, logits = self.train_step(xb, yb)
            total_loss += loss * len(yb)
            correct += (logits.argmax(dim=1) == yb).sum()
            seen += len(yb)
            if progress is not None:
                progress(batch + 1, n_batches, metrics)
        self.model.eval()
        return metrics()

    @torch.no_grad()
    def evaluate(self, data: Any, batch_size: int = 1024) -> dict[str, float]:
        self.model.eval()
        total_loss, correct = 0.0, 0
        for xb, yb in self.batches(data, np.arange(len(data[1])), batch_size):
            logits = self.model.forward_logits(xb)
            total_loss += float(self.loss(logits, yb).double().sum())
            correct += int((logits.argmax(dim=1) == yb).sum())
        # Keras's evaluate adds model.losses to each batch's loss too: the mean gains the penalty once
        penalty = float(self.penalty()) if self.regularized else 0.0
        return {"loss": total_loss / len(data[1]) + penalty, "accuracy": correct / len(data[1])}

    # -- the learning rate ------------------------------------------------------------
    def learning_rate(self) -> float:
        """The rate of the last optimizer step (the first step's before any), as the float32 it computes with."""
        optimizer = self.optimizer
        last = max(optimizer.iterations() - 1, 0)
        value = optimizer.schedule(last) if optimizer.schedule is not None else optimizer.param_groups[0]["lr"]
        return shortest_float32(value)

    def set_learning_rate(self, value: float) -> None:
        """Set a constant rate (ReduceLROnPlateau); the spec refuses a plateau rule with a schedule."""
        if self.optimizer.schedule is not None:
            raise TypeError("the learning rate of an optimizer with a schedule is not settable (as in Keras)")
        for group in self.optimizer.param_groups:
            group["lr"] = value

    # -- checkpoint state -------------------------------------------------------------
    def optimizer_state(self) -> dict[str, np.ndarray]:
        state = self.optimizer.state_dict()["state"]
        return {
            f"{index}/{key}": value.detach().cpu().numpy()
            for index, slots in state.items()
            for key, value in slots.items()
        }

    def load_optimizer_state(self, arrays: dict[str, np.ndarray]) -> None:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in arrays.items():
            index, name = key.split("/", 1)
            state.setdefault(int(index), {})[name] = torch.from_numpy(np.array(value))
        current = self.optimizer.state_dict()
        self.optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
