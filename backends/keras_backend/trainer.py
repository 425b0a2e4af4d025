"""Training through Keras's own ``fit``, one epoch per call, for the shared driver.

Keras's optimizers and losses, configured from the spec: the compiled model
trains exactly as a hand-written Keras model would, at the same speed.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from cnnspec.data import is_streamed
from cnnspec.errors import RunError
from cnnspec.placement import Placement
from cnnspec.registry import LOSS_CLASSES, BuilderTable
from cnnspec.schedules import shortest_float32
from cnnspec.spec import TrainingSpec
from cnnspec.streams import default_workers

from .placement import as_keras

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

LOSSES = BuilderTable("keras", LOSS_CLASSES, "loss")  # loss(spec) -> the keras.losses.Loss


@LOSSES.builds("categorical_crossentropy")
def _categorical(loss: Any) -> keras.losses.Loss:
    return keras.losses.CategoricalCrossentropy(from_logits=loss.from_logits, label_smoothing=loss.label_smoothing)


@LOSSES.builds("sparse_categorical_crossentropy")
def _sparse_categorical(loss: Any) -> keras.losses.Loss:
    # Keras 3's sparse loss has no label_smoothing (the spec keeps it at 0)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=loss.from_logits)


@LOSSES.builds("binary_crossentropy")
def _binary(loss: Any) -> keras.losses.Loss:
    return keras.losses.BinaryCrossentropy(from_logits=loss.from_logits, label_smoothing=loss.label_smoothing)


LOSSES.builds("mean_squared_error")(lambda loss: keras.losses.MeanSquaredError())
LOSSES.builds("mean_absolute_error")(lambda loss: keras.losses.MeanAbsoluteError())
LOSSES.builds("huber")(lambda loss: keras.losses.Huber(delta=loss.delta))
LOSSES.builds("dice")(lambda loss: keras.losses.Dice())

# keras.metrics object per spec metric (cnnspec.metrics): (classes, targets one-hot) -> the metric
METRICS: dict[str, Callable[[int, bool], keras.metrics.Metric]] = {
    "accuracy": lambda classes, one_hot: (
        keras.metrics.CategoricalAccuracy if one_hot else keras.metrics.SparseCategoricalAccuracy
    )(name="accuracy"),
    "mean_io_u": lambda classes, one_hot: keras.metrics.MeanIoU(
        classes, name="mean_io_u", sparse_y_true=not one_hot, sparse_y_pred=False
    ),
    "binary_accuracy": lambda classes, one_hot: keras.metrics.BinaryAccuracy(name="binary_accuracy"),
    "mae": lambda classes, one_hot: keras.metrics.MeanAbsoluteError(name="mae"),
    "mse": lambda classes, one_hot: keras.metrics.MeanSquaredError(name="mse"),
    "rmse": lambda classes, one_hot: keras.metrics.RootMeanSquaredError(name="rmse"),
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


# -- several replicas (tf.distribute.MirroredStrategy) ------------------------------------
class GlobalBatchGradient(keras.losses.Loss):
    """``loss`` whose gradients, summed over the replicas, are the gradient of the global batch's mean.

    Keras takes each replica's mean over its own rows times 1/replicas, and the optimizer sums
    the replicas' gradients: the global mean only when every replica has as many rows. The last
    batch of an epoch seldom splits evenly (65 rows on 2 replicas: 33 and 32), and there it
    weighs a row of the smaller share more. Here each row's gradient is scaled by
    ``rows here x replicas / global rows`` (that replica's mean becomes its sum / global rows)
    while the value stays the row's loss (``stop_gradient``): the "loss" Keras reports, which
    weights each replica's mean by its rows, stays the global mean, exactly.
    """

    def __init__(self, loss: keras.losses.Loss):
        if loss.reduction != "sum_over_batch_size":  # the mean that the scaling above assumes
            raise ValueError(f"a distributed loss must reduce by sum_over_batch_size, not {loss.reduction}")
        super().__init__(name=loss.name, reduction=loss.reduction, dtype=loss.dtype)
        self.loss = loss

    def call(self, y_true: Any, y_pred: Any) -> Any:
        values = self.loss.call(y_true, y_pred)  # (rows,): one loss per row
        context = tf.distribute.get_replica_context()  # None while Keras builds in the strategy's scope
        if context is None or context.num_replicas_in_sync == 1:
            return values
        rows = tf.cast(tf.shape(values)[0], values.dtype)
        share = rows * context.num_replicas_in_sync / context.all_reduce(tf.distribute.ReduceOp.SUM, rows)
        kept = tf.stop_gradient(values)
        return kept + share * (values - kept)  # the value of ``values`` (exactly), ``share`` times its gradient


def _build_from_example(model: keras.Model, example: tuple[np.ndarray, np.ndarray]) -> None:
    """Make Keras build its loss and metric state from ``example`` (one row) instead of the first batch.

    Under a strategy, Keras's ``fit`` and ``evaluate`` first average the first distributed batch over
    the replicas to build that state (``TensorFlowTrainer._maybe_symbolic_build``), which fails when
    that batch does not split evenly (a batch size or a test set not divisible by the replicas).
    The state depends on no batch size, so a one-row example builds the same.
    """
    build = model._maybe_symbolic_build
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: build(data_batch=(*example, None))


def _check_split(rows: int, batch_size: int, replicas: int) -> None:
    """Refuse a last batch with fewer rows than replicas: a replica would train on no rows, which TensorFlow
    does not survive (synchronized batch normalization fails; oneDNN's max-pool gradient aborts the process)."""
    last = rows % batch_size
    if 0 < last < replicas:
        raise RunError(
            f"{rows} training rows in batches of {batch_size} leave a last batch of {last} row(s), fewer than "
            f"the {replicas} replicas: choose a batch size that leaves at least {replicas} rows (or none) over"
        )


class Trainer:
    def __init__(
        self,
        model: keras.Model,
        training: TrainingSpec,
        learning_rate: float | None = None,
        precision: str = "fp32",
        *,
        placement: Placement | None = None,
    ):
        self.model, self.training, self.precision = model, training, precision
        self.placement = as_keras(placement)
        self.classes = model.output_shape[-1]
        spec = model._cnnspec_spec
        self.classes_target = spec.target_kind == "classes"
        self.one_hot = self.classes_target and training.loss.one_hot_targets
        if not training.loss.per_row and self.placement.distributed:
            raise RunError(
                f"{training.loss} is one value per batch, which replicas holding shares of a batch cannot add up; "
                "train it on one device"
            )
        loss = LOSSES[type(training.loss)](training.loss)
        self.metric_names = list(training.metrics)
        with self.placement.scope():  # the optimizer's and the metrics' variables: one copy per replica
            optimizer = make_optimizer(training.optimizer, learning_rate)
            self.model.compile(
                optimizer=optimizer,
                loss=GlobalBatchGradient(loss) if self.placement.distributed else loss,
                metrics=[METRICS[name](self.classes, self.one_hot) for name in self.metric_names],
            )
        if self.placement.distributed:
            example_target = np.zeros((1, *spec.target_shape), np.int64 if self.classes_target else np.float32)
            _build_from_example(
                self.model, self.prepare(np.zeros((1, *model.input_shape[1:]), np.float32), example_target)
            )
        schedule = training.optimizer.schedule
        self.schedule = make_schedule(schedule) if schedule is not None else None

    def prepare(self, x: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        """Targets as the loss wants them: classes one-hot (categorical, Dice) or as indices (sparse), values as
        float32; streamed images stay on disk."""
        y = np.asarray(y, dtype=np.int64 if self.classes_target else np.float32)
        if self.one_hot:
            y = np.eye(self.classes, dtype=np.float32)[y]
        return (x if is_streamed(x) else np.ascontiguousarray(x, dtype=np.float32)), y

    def fit_epoch(self, data: Any, order: np.ndarray, batch_size: int, seed: int, progress: Callable | None = None):
        """One epoch of Keras's ``fit`` over ``order``, in batches of ``batch_size`` (the global batch: with several
        replicas, Keras splits each batch across them)."""
        x, y = data
        _check_split(len(order), batch_size, self.placement.replicas)
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
        return {key: float(history.history[key][-1]) for key in ("loss", *self.metric_names)}

    def evaluate(self, data: Any, batch_size: int = 1024) -> dict[str, float]:
        x, y = data
        if is_streamed(x):
            result = self.model.evaluate(_Streamed(x, y, np.arange(len(y)), batch_size), verbose=0, return_dict=True)
        else:
            result = self.model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
        return {key: float(result[key]) for key in ("loss", *self.metric_names)}

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
        result = self.model.train_on_batch(x, y)  # [loss, metrics...], or the loss alone without metrics
        return float(result[0] if isinstance(result, (list, tuple)) else result)

    # -- checkpoint state -------------------------------------------------------------
    def optimizer_state(self) -> dict[str, np.ndarray]:
        optimizer = self._built_optimizer()
        return {f"{i:04d}:{v.path}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}

    def load_optimizer_state(self, arrays: dict[str, np.ndarray]) -> None:
        if not arrays:  # a checkpoint made before any training (an imported model): the optimizer starts fresh
            return
        variables = self._built_optimizer().variables
        if len(arrays) != len(variables):
            from cnnspec.errors import WeightsError

            raise WeightsError(
                f"optimizer checkpoint holds {len(arrays)} variables, the optimizer has {len(variables)}"
            )
        for (_, value), variable in zip(sorted(arrays.items()), variables):
            variable.assign(value)

    def _built_optimizer(self) -> keras.optimizers.Optimizer:
        """The optimizer with its variables (made on first use: under the strategy, one copy per replica)."""
        optimizer = self.model.optimizer
        if not optimizer.built:
            with self.placement.scope():
                optimizer.build(self.model.trainable_variables)
        return optimizer
