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
from cnnspec.numerics import KERAS_EPSILON
from cnnspec.spec import TrainingSpec
from cnnspec.streams import stream_batches

from .model import CompiledModel, to_nchw
from .optimizers import make_optimizer


def keras_crossentropy(output: torch.Tensor, labels: torch.Tensor, from_logits: bool, loss: str) -> torch.Tensor:
    """Per-sample cross-entropy exactly as Keras computes it.

    From logits when the model ends in a softmax or sigmoid (Keras reaches behind
    either for its input); otherwise from probabilities, clipped to [eps, 1 - eps].
    """
    output = output.float()
    if from_logits:
        return F.cross_entropy(output, labels, reduction="none")
    if loss == "categorical_crossentropy":
        probs = output / output.sum(dim=1, keepdim=True)
        probs = probs.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
        return -probs.log().gather(1, labels[:, None])[:, 0]
    logits = output.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON).log()
    return F.cross_entropy(logits, labels, reduction="none")


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
        return keras_crossentropy(logits, labels, self.model.loss_from_logits, self.training.loss)

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch; returns (batch mean loss, logits), both detached."""
        if not self.model.training:
            self.model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model.forward_logits(xb)
        loss = self.loss(logits, yb).mean()  # float32 (keras_crossentropy casts)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), logits.detach()

    def fit_epoch(self, data: Any, order: np.ndarray, batch_size: int, seed: int, progress: Progress | None = None):
        torch.manual_seed(seed)  # dropout masks: the same seed and epoch give the same run
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
        return {"loss": total_loss / len(data[1]), "accuracy": correct / len(data[1])}

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
