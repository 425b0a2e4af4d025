"""Training through Keras's own ``fit``, one epoch per call, for the shared driver.

Keras's optimizers and losses, configured from the spec: the compiled model
trains exactly as a hand-written Keras model would, at the same speed.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np

from cnnspec.data import is_streamed
from cnnspec.schedules import shortest_float32
from cnnspec.spec import TrainingSpec
from cnnspec.streams import default_workers

# keras.optimizers.schedules class per spec schedule type; the spec's fields are Keras's arguments
SCHEDULES: dict[str, Callable[..., keras.optimizers.schedules.LearningRateSchedule]] = {
    "exponential_decay": keras.optimizers.schedules.ExponentialDecay,
    "cosine_decay": keras.optimizers.schedules.CosineDecay,
    "piecewise_constant_decay": keras.optimizers.schedules.PiecewiseConstantDecay,
}


def make_schedule(spec: Any) -> keras.optimizers.schedules.LearningRateSchedule:
    return SCHEDULES[spec.type](**spec.model_dump(exclude={"type"}))


def _around(o: Any) -> dict[str, Any]:
    """The arguments every Keras optimizer takes: the rate (a float, or a schedule object) and weight decay."""
    rate = make_schedule(o.schedule) if o.schedule is not None else o.learning_rate
    return {"learning_rate": rate, "weight_decay": o.weight_decay}


OPTIMIZERS: dict[str, Callable[[Any], keras.optimizers.Optimizer]] = {
    "adam": lambda o: keras.optimizers.Adam(beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon, **_around(o)),
    "adamw": lambda o: keras.optimizers.AdamW(beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon, **_around(o)),
    "sgd": lambda o: keras.optimizers.SGD(momentum=o.momentum, nesterov=o.nesterov, **_around(o)),
    "rmsprop": lambda o: keras.optimizers.RMSprop(
        rho=o.rho, momentum=o.momentum, epsilon=o.epsilon, centered=o.centered, **_around(o)
    ),
}

LOSSES: dict[str, Callable[[Any], keras.losses.Loss]] = {
    "categorical_crossentropy": lambda loss: keras.losses.CategoricalCrossentropy(
        from_logits=loss.from_logits, label_smoothing=loss.label_smoothing
    ),
    # Keras 3's sparse loss has no label_smoothing (the spec keeps it at 0)
    "sparse_categorical_crossentropy": lambda loss: keras.losses.SparseCategoricalCrossentropy(
        from_logits=loss.from_logits
    ),
}


def make_optimizer(spec: Any, learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    """The Keras optimizer a spec's ``training.optimizer`` names (``learning_rate`` replaces a constant rate)."""
    if learning_rate is not None:
        if spec.schedule is not None:
            raise ValueError("a learning_rate override cannot replace a schedule")
        spec = spec.model_copy(update={"learning_rate": learning_rate})
    return OPTIMIZERS[spec.type](spec)


class _BatchProgress(keras.callbacks.Callback):
    def __init__(self, progress: Callable, n_batches: int):
        super().__init__()
        self.progress, self.n_batches = progress, n_batches

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.progress(batch + 1, self.n_batches, lambda: {k: float(v) for k, v in logs.items()})


class _Streamed(keras.utils.PyDataset):
    """Batches of images read from disk; Keras's own worker threads read them ahead of ``fit``."""

    def __init__(self, x: Any, y: np.ndarray, order: np.ndarray, batch_size: int):
        super().__init__(workers=default_workers(), use_multiprocessing=False, max_queue_size=2 * default_workers())
        self.x, self.y, self.order, self.batch_size = x, y, order, batch_size

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[rows], self.y[rows]


class Trainer:
    def __init__(
        self, model: keras.Model, training: TrainingSpec, learning_rate: float | None = None, precision: str = "fp32"
    ):
        self.model, self.training, self.precision = model, training, precision
        optimizer = make_optimizer(training.optimizer, learning_rate)
        self.model.compile(optimizer=optimizer, loss=LOSSES[training.loss.type](training.loss), metrics=["accuracy"])
        self.classes = model.output_shape[-1]
        schedule = training.optimizer.schedule
        self.schedule = make_schedule(schedule) if schedule is not None else None

    def prepare(self, x: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        """Labels as the loss wants them: one-hot for categorical, indices for sparse; streamed images stay on disk."""
        y = np.asarray(y, dtype=np.int64)
        if self.training.loss.type == "categorical_crossentropy":
            y = np.eye(self.classes, dtype=np.float32)[y]
        return (x if is_streamed(x) else np.ascontiguousarray(x, dtype=np.float32)), y

    def fit_epoch(self, data: Any, order: np.ndarray, batch_size: int, seed: int, progress: Callable | None = None):
        x, y = data
        n_batches = -(-len(order) // batch_size)
        # a per-batch callback makes Keras sync every step: only when a bar is drawn
        callbacks = (
            [_BatchProgress(progress, n_batches)] if progress is not None and getattr(progress, "live", False) else []
        )
        if is_streamed(x):
            history = self.model.fit(
                _Streamed(x, y, order, batch_size), epochs=1, shuffle=False, verbose=0, callbacks=callbacks
            )
        else:
            history = self.model.fit(
                x[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=callbacks
            )
        return {"loss": float(history.history["loss"][-1]), "accuracy": float(history.history["accuracy"][-1])}

    def evaluate(self, data: Any, batch_size: int = 1024) -> dict[str, float]:
        x, y = data
        if is_streamed(x):
            result = self.model.evaluate(_Streamed(x, y, np.arange(len(y)), batch_size), verbose=0, return_dict=True)
        else:
            result = self.model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
        return {"loss": float(result["loss"]), "accuracy": float(result["accuracy"])}

    # -- the learning rate ------------------------------------------------------------
    def learning_rate(self) -> float:
        """The rate of the last optimizer step (the first step's before any), as the float32 Keras computes with."""
        optimizer = self.model.optimizer
        if self.schedule is not None:  # a twin of the optimizer's (stateless) schedule, called at the last step
            return shortest_float32(float(self.schedule(max(int(optimizer.iterations.numpy()) - 1, 0))))
        return shortest_float32(float(np.asarray(optimizer.learning_rate)))

    def set_learning_rate(self, value: float) -> None:
        """Keras's own setter: assigns the rate variable (a TypeError for a schedule, as in Keras)."""
        self.model.optimizer.learning_rate = value

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One optimizer step on one batch (parity tests)."""
        return float(self.model.train_on_batch(x, y)[0])

    # -- checkpoint state -------------------------------------------------------------
    def optimizer_state(self) -> dict[str, np.ndarray]:
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        return {f"{i:04d}:{v.path}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}

    def load_optimizer_state(self, arrays: dict[str, np.ndarray]) -> None:
        if not arrays:  # a checkpoint made before any training (an imported model): the optimizer starts fresh
            return
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        variables = optimizer.variables
        if len(arrays) != len(variables):
            from cnnspec.errors import WeightsError

            raise WeightsError(
                f"optimizer checkpoint holds {len(arrays)} variables, the optimizer has {len(variables)}"
            )
        for (_, value), variable in zip(sorted(arrays.items()), variables):
            variable.assign(value)
