"""One epoch of training and one evaluation pass, for the backend-neutral driver.

Metrics accumulate as tensors and are read only when the progress bar asks,
so the hot loop never waits on a host sync for bookkeeping.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from cnnspec.data import is_streamed
from cnnspec.errors import RunError
from cnnspec.fields import Regularizer
from cnnspec.metrics import METRICS, MetricSums
from cnnspec.placement import Placement
from cnnspec.schedules import shortest_float32
from cnnspec.spec import TrainingSpec
from cnnspec.streams import stream_batches

from .augment import seed_augmentations
from .losses import LOSSES
from .model import CompiledModel, to_nchw
from .normalization import BatchNorm
from .optimizers import make_optimizer
from .placement import TorchPlacement
from .weights import variables


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


class _Logits(nn.Module):
    """``forward_logits`` as a module's forward, for DistributedDataParallel (which wraps ``forward``)."""

    def __init__(self, model: CompiledModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_logits(x)


def synchronize_batch_norm(model: nn.Module, group: Any) -> None:
    """Every batch norm of ``model`` computes its training statistics over ``group``'s global batch."""
    for module in model.modules():
        if isinstance(module, BatchNorm):
            module.group = group


def split_batches(order: np.ndarray, batch_size: int, rank: int, processes: int) -> list[tuple[np.ndarray, int]]:
    """(this process's rows, the global batch's size) for each global batch of ``order``.

    Rank r of N takes rows r, r + N, ... of each batch: the shares partition it for any N, and
    differ in size by at most one. A share is empty when a last batch has fewer rows than N.
    """
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [(rows[rank::processes], len(rows)) for rows in batches]


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """NCHW -> NHWC (a view), so losses and metrics read the last axis as Keras does; other ranks as they are."""
    return t.movedim(1, -1) if t.dim() == 4 else t


# where a process's random streams start: rank 0 is the single-process run, the others are apart
RANK_SEED_STRIDE = 1_000_003


class Trainer:
    """Keras-exact optimizer and loss around a compiled model.

    ``placement`` (``place(...)``): the device, and when several processes train, this
    process's rank. Each global batch of ``order`` is then split across the processes
    (rank r takes rows r, r + N, ...), each process's loss is its share of the global
    batch's mean, DistributedDataParallel sums (averages, times N) the gradients, and
    batch norm uses the global batch's statistics: N processes compute one process's step.
    """

    def __init__(
        self,
        model: CompiledModel,
        training: TrainingSpec,
        learning_rate: float | None = None,
        precision: str = "fp32",
        *,
        placement: Placement | None = None,
    ):
        self.model, self.training, self.precision = model, training, precision
        # a neutral Placement (one process) says only the device
        self.placement = (
            placement
            if isinstance(placement, TorchPlacement)
            else TorchPlacement(device=getattr(placement, "device", "cpu"))
        )
        self.device = torch.device(self.placement.device)
        model.to(self.device)
        self.optimizer = make_optimizer(model.parameters(), training.optimizer, learning_rate)
        self.step_module: nn.Module = _Logits(model)
        if self.placement.processes > 1:
            from torch.nn.parallel import DistributedDataParallel

            synchronize_batch_norm(model, getattr(self.placement, "group", None))
            # buffers are not re-sent each step: synchronised batch norm keeps them equal everywhere
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_module = DistributedDataParallel(self.step_module, device_ids=ids, forward_sync_buffers=False)
        # bf16: mixed precision (autocast), float32 master weights, loss and softmax
        self.bf16 = precision == "bf16"
        loss = training.loss
        if not loss.per_row and self.placement.processes > 1:
            raise RunError(
                f"{loss} is one value per batch, which processes holding shares of a batch cannot add up; "
                "train it in one process"
            )
        # forward_logits leaves out a final softmax or sigmoid: a cross-entropy reads what is behind it, as
        # Keras on TensorFlow does; other losses and the metrics read the output itself
        self.stripped = model.loss_from_logits
        self.from_logits = (self.stripped and loss.reads_logits) or loss.takes_logits
        self.final_activation = model.blocks[-1][-1] if self.stripped else None
        self.metric_names = list(training.metrics)
        # class metrics read only the order of the scores, which a final softmax or sigmoid keeps: they take
        # the logits (as the loop always did for accuracy) and skip an activation per batch
        self.metrics_read_values = any(METRICS[name].targets == "values" for name in self.metric_names)
        self.classes = model.spec.num_classes
        self.classes_target = model.spec.target_kind == "classes"
        self.regularized = regularized(model)

    def prepare(self, x: Any, y: np.ndarray) -> tuple[Any, torch.Tensor]:
        """Convert a split once (channels-last numpy -> NCHW tensors in the model's memory format), not every epoch.

        Images streamed from disk stay an ``ImageStore``; ``batches`` reads them as it goes.
        """
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64 if self.classes_target else np.float32)).to(self.device)
        if is_streamed(x):
            return x, labels
        return to_nchw(x).to(self.device).contiguous(memory_format=self.model.memory_format), labels

    def batches(self, data: Any, order: np.ndarray, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) of each batch of ``order``: indexed from memory, or read ahead on worker threads."""
        x_all, y_all = data
        if is_streamed(x_all):
            for images, rows in stream_batches(x_all, order, batch_size):
                yield to_nchw(images).to(self.device, non_blocking=True), y_all[torch.from_numpy(rows).to(self.device)]
            return
        index = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self.device)
        for start in range(0, len(index), batch_size):
            rows = index[start : start + batch_size]
            yield x_all[rows], y_all[rows]

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """The model's output, channels-last, from what ``forward_logits`` gave."""
        logits = logits.float()  # the activation too in float32 under bf16 autocast, as the loss is
        return channels_last(self.final_activation(logits) if self.final_activation is not None else logits)

    def metric_input(self, logits: torch.Tensor) -> torch.Tensor:
        """What the metrics read: the output for value metrics, else the logits (the same argmax)."""
        return self.output(logits) if self.metrics_read_values else channels_last(logits)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss per row (a scalar for a per-batch loss), without the regularization term (per batch)."""
        loss = self.training.loss
        scores = channels_last(logits) if loss.reads_logits or self.final_activation is None else self.output(logits)
        return LOSSES[type(loss)](loss, scores, targets, self.from_logits)

    def metric_sums(self) -> MetricSums:
        return MetricSums(
            self.metric_names, self.classes, lambda size: torch.zeros(size, dtype=torch.float64, device=self.device)
        )

    def penalty(self) -> torch.Tensor:
        """The regularization loss Keras adds to every batch's loss (``model.losses``), float32."""
        return regularization_loss(self.regularized)

    def train_step(
        self, xb: torch.Tensor, yb: torch.Tensor, batch_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch; returns (the loss it minimised, logits), both detached.

        ``batch_size``: the global batch this process holds a share of (several processes).
        """
        objective, logits, _ = self._step(xb, yb, batch_size)
        return objective, logits

    def _step(
        self, xb: torch.Tensor, yb: torch.Tensor, batch_size: int | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(objective, logits, this batch's part of the epoch's loss sum), all detached.

        One process minimises the batch mean. With N, each minimises its share's sum times N over
        the global size: DistributedDataParallel averages the gradients, so they add up to the
        global batch mean's. The regularization term is the same in every process.
        """
        if not self.model.training:
            self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.step_module(xb)
        per_sample = self.loss(logits, yb)  # float32 (the losses cast)
        shared = batch_size is not None
        loss = per_sample.mean() if batch_size is None else per_sample.sum() * (self.placement.processes / batch_size)
        penalty = self.penalty() if self.regularized else None  # Keras adds model.losses; fit reports the total
        if penalty is not None:
            loss = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if not shared:
            return loss.detach(), logits.detach(), loss.detach() * len(yb)
        part = per_sample.detach().sum() + (penalty.detach() * len(yb) if penalty is not None else 0.0)
        return loss.detach(), logits.detach(), part

    def shares(
        self, data: Any, order: np.ndarray, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int | None]]:
        """(images, labels, global size) of this process's share of each global batch of ``order``
        (``split_batches``); an empty share still takes its step. One process: the batches, size None."""
        rank, processes = self.placement.rank, self.placement.processes
        if processes == 1:
            for xb, yb in self.batches(data, order, batch_size):
                yield xb, yb, None
            return
        split = split_batches(order, batch_size, rank, processes)
        # every share but the last has the first's length, so reading them in one pass keeps the read-ahead
        read = self.batches(data, np.concatenate([rows for rows, _ in split]), len(split[0][0]))
        for rows, size in split:
            xb, yb = next(read) if len(rows) else self._empty_batch(data)
            yield xb, yb, size

    def _empty_batch(self, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
        height_width_channels = tuple(self.model.spec.input_shape)
        images = to_nchw(np.zeros((0, *height_width_channels), np.float32)).to(self.device)
        return images.contiguous(memory_format=self.model.memory_format), data[1][:0]

    def fit_epoch(self, data: Any, order: np.ndarray, batch_size: int, seed: int, progress: Progress | None = None):
        """One epoch over ``order`` in global batches of ``batch_size``: Keras's epoch loss and metrics.

        With several processes the progress shows this process's share; the result is summed over all.
        """
        seed += self.placement.rank * RANK_SEED_STRIDE  # each process draws its own dropout and augmentation
        torch.manual_seed(seed)  # dropout masks: the same seed and epoch give the same run
        seed_augmentations(self.model.blocks, seed)  # and augmentation draws, so a resumed run repeats exactly
        self.model.train()
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss sum, rows seen
        sums = self.metric_sums()
        n_batches = -(-len(order) // batch_size)

        def metrics(reduced: Any = None) -> dict[str, float]:
            loss, seen = (totals if reduced is None else reduced[:2]).tolist()
            return {"loss": loss / max(seen, 1), **sums.values(None if reduced is None else reduced[2:])}

        for batch, (xb, yb, size) in enumerate(self.shares(data, order, batch_size)):
            _, logits, part = self._step(xb, yb, size)
            totals[0] += part
            totals[1] += len(yb)
            if self.metric_names:
                sums.add(torch, self.metric_input(logits), yb)
            if progress is not None:
                progress(batch + 1, n_batches, metrics)
        self.model.eval()
        return metrics(self.placement.all_sum(torch.cat([totals, sums.buffer])))

    @torch.no_grad()
    def evaluate(self, data: Any, batch_size: int = 1024) -> dict[str, float]:
        """Loss and metrics over ``data``; with several processes each takes every N-th row and the sums add up."""
        self.model.eval()
        loss_sum = torch.zeros(1, dtype=torch.float64, device=self.device)
        sums = self.metric_sums()
        rows = np.arange(len(data[1]))[self.placement.rank :: self.placement.processes]
        for xb, yb in self.batches(data, rows, batch_size):
            logits = self.model.forward_logits(xb)
            loss_sum += self.loss(logits, yb).double().mean() * len(yb)  # a per-batch loss weighs its rows
            sums.add(torch, self.metric_input(logits), yb)
        reduced = self.placement.all_sum(torch.cat([loss_sum, sums.buffer]))
        # Keras's evaluate adds model.losses to each batch's loss too: the mean gains the penalty once
        penalty = float(self.penalty()) if self.regularized else 0.0
        return {"loss": float(reduced[0]) / len(data[1]) + penalty, **sums.values(reduced[1:])}

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
