"""The training setup of a spec: learning-rate schedules, optimizers, losses, callbacks, ``TrainingSpec``.

Keras 3's names, arguments and defaults, as for layers. Optimizers and losses are registered types (like
layer types: ``@register_optimizer``, ``@register_loss``): each backend implements each by its class,
never by matching a name.
"""

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, ValidationError, field_validator, model_serializer, model_validator

from .fields import Bool, Float, NonNegativeInt, PositiveFloat, PositiveInt, Rate, SpecModel
from .issues import issues_from_validation_error
from .metrics import MetricName
from .registry import (
    LOSS_ALIASES,
    LOSS_CLASSES,
    OPTIMIZER_ALIASES,
    OPTIMIZER_CLASSES,
    SEALED,
    canonical_type,
    register_loss,
    register_optimizer,
)
from .schedules import SCHEDULES

__all__ = [
    "SGD", "Adam", "AdamW", "BinaryCrossentropy", "CategoricalCrossentropy", "Crossentropy", "Dice", "Huber",
    "MeanAbsoluteError", "MeanSquaredError", "CosineDecay", "EarlyStopping", "ExponentialDecay",
    "LearningRateSchedule", "LossSpec", "OptimizerSpec", "PiecewiseConstantDecay", "RMSprop", "ReduceLROnPlateau",
    "SparseCategoricalCrossentropy", "TrainingSpec",
]  # fmt: skip

NonNegativeFloat = Annotated[Float, Field(ge=0.0)]


class LearningRateSchedule(SpecModel):
    """A Keras 3 ``keras.optimizers.schedules`` class: the learning rate as a function of the optimizer step.

    Stepped per batch by the optimizer's ``iterations`` (0 for the first batch), as Keras does;
    the formulas are in ``cnnspec.schedules``, shared by the torch optimizer and the history.
    """

    keras_class: ClassVar[str] = ""
    type: str

    def at(self, step: int) -> float:
        """The learning rate of optimizer step ``step``."""
        return SCHEDULES[self.type](step, **self.model_dump(exclude={"type"}))


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (exponent floored when ``staircase``)."""

    keras_class = "ExponentialDecay"
    type: Literal["exponential_decay"] = "exponential_decay"
    initial_learning_rate: PositiveFloat
    decay_steps: PositiveInt
    decay_rate: PositiveFloat
    staircase: Bool = False


class CosineDecay(LearningRateSchedule):
    """Half a cosine from ``initial_learning_rate`` to ``alpha * initial_learning_rate`` over ``decay_steps``."""

    keras_class = "CosineDecay"
    type: Literal["cosine_decay"] = "cosine_decay"
    initial_learning_rate: PositiveFloat
    decay_steps: PositiveInt
    alpha: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.0


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``step <= boundaries[i]``; ``values[-1]`` after the last boundary."""

    keras_class = "PiecewiseConstantDecay"
    type: Literal["piecewise_constant_decay"] = "piecewise_constant_decay"
    boundaries: Annotated[list[NonNegativeInt], Field(min_length=1)]
    values: Annotated[list[PositiveFloat], Field(min_length=2)]

    @model_validator(mode="after")
    def _one_value_per_interval(self) -> "PiecewiseConstantDecay":
        # Keras refuses the first; the second would make a boundary mean nothing.
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"piecewise_constant_decay needs one more value than boundaries, "
                f"got {len(self.boundaries)} boundaries and {len(self.values)} values"
            )
        if any(b >= a for b, a in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"piecewise_constant_decay boundaries must increase strictly, got {self.boundaries}")
        return self


SCHEDULE_CLASSES: tuple[type[LearningRateSchedule], ...] = (ExponentialDecay, CosineDecay, PiecewiseConstantDecay)
SCHEDULE_TYPES = {cls.model_fields["type"].default: cls for cls in SCHEDULE_CLASSES}
SCHEDULE_ALIASES = {cls.keras_class: name for name, cls in SCHEDULE_TYPES.items()}


def _schedule(value: dict[str, Any]) -> LearningRateSchedule:
    """A schedule from its mapping; its problems become one message (pydantic would report every union branch)."""
    kind = value.get("type")
    cls = SCHEDULE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(kind), list(SCHEDULE_TYPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown schedule type {kind!r}{hint}; known types: {', '.join(SCHEDULE_TYPES)}")
    try:
        return cls.model_validate(value)
    except ValidationError as err:
        issues = issues_from_validation_error(err, value, cls)
        raise ValueError(
            "; ".join(f"{kind}.{i.field}: {i.message}" if i.field else i.message for i in issues)
        ) from None


if TYPE_CHECKING:
    LearningRate = float | LearningRateSchedule
else:  # a constant, or a schedule chosen by its `type`
    LearningRate = Union[
        PositiveFloat, Annotated[Union[SCHEDULE_CLASSES], Field(discriminator="type")]  # noqa: UP007
    ]


class OptimizerSpec(SpecModel):
    """An optimizer and its Keras 3 arguments; register a subclass with ``@register_optimizer``.

    ``learning_rate`` is a constant or a schedule; ``weight_decay`` (Keras 3's, on every optimizer)
    is decoupled: ``w -= w * weight_decay * learning_rate`` before each update, on every trainable variable.
    """

    aliases: ClassVar[tuple[str, ...]] = ()  # Keras class names accepted for `type`

    type: str
    learning_rate: LearningRate  # each optimizer sets Keras's default
    weight_decay: NonNegativeFloat | None = None

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _constant_or_schedule(cls, value: Any) -> Any:
        """Decide between a number and a schedule here, so a mistake in one is not also reported as the other."""
        if isinstance(value, dict):
            return _schedule(canonical_type(value, SCHEDULE_ALIASES))
        if isinstance(value, LearningRateSchedule):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(
                "learning_rate is a positive number or a schedule, a mapping with a type "
                f"({', '.join(SCHEDULE_TYPES)}); got {value!r}"
            )
        return value

    @property
    def schedule(self) -> LearningRateSchedule | None:
        """The learning-rate schedule, or None for a constant rate."""
        return self.learning_rate if isinstance(self.learning_rate, LearningRateSchedule) else None

    @property
    def initial_learning_rate(self) -> float:
        """The rate of the first step: the constant, or the schedule at step 0."""
        schedule = self.schedule
        return schedule.at(0) if schedule is not None else float(self.learning_rate)  # type: ignore[arg-type]


@register_optimizer
class Adam(OptimizerSpec):
    """Keras 3 ``Adam`` (epsilon added to the uncorrected sqrt(v))."""

    aliases = ("Adam",)
    type: Literal["adam"] = "adam"
    learning_rate: LearningRate = 0.001
    beta_1: Rate = 0.9
    beta_2: Rate = 0.999
    epsilon: PositiveFloat = 1e-7


@register_optimizer
class AdamW(OptimizerSpec):
    """Keras 3 ``AdamW``: Adam with weight decay on by default (Keras refuses ``weight_decay=None`` for it)."""

    aliases = ("AdamW",)
    type: Literal["adamw"] = "adamw"
    learning_rate: LearningRate = 0.001
    weight_decay: NonNegativeFloat = 0.004
    beta_1: Rate = 0.9
    beta_2: Rate = 0.999
    epsilon: PositiveFloat = 1e-7


@register_optimizer
class SGD(OptimizerSpec):
    """Keras 3 ``SGD`` (m = momentum*m - lr*g; w += m)."""

    aliases = ("SGD",)
    type: Literal["sgd"] = "sgd"
    learning_rate: LearningRate = 0.01
    momentum: Rate = 0.0
    nesterov: Bool = False


@register_optimizer
class RMSprop(OptimizerSpec):
    """Keras 3 ``RMSprop`` (epsilon inside the square root)."""

    aliases = ("RMSprop", "RMSProp")
    type: Literal["rmsprop"] = "rmsprop"
    learning_rate: LearningRate = 0.001
    rho: Rate = 0.9
    momentum: Rate = 0.0
    epsilon: PositiveFloat = 1e-7
    centered: Bool = False


SEALED["optimizers"] = True
if TYPE_CHECKING:
    Optimizer = OptimizerSpec
else:
    Optimizer = Annotated[Union[tuple(OPTIMIZER_CLASSES.values())], Field(discriminator="type")]


class LossSpec(SpecModel):
    """A Keras 3 loss and its options; ``loss: NAME`` is short for ``{type: NAME}``; register a subclass with
    ``@register_loss``.

    ``targets``: what the data gives for each output: ``classes`` (class indices, one per position of the
    output's last axis of scores; a one-hot or 1-channel form is converted), ``values`` (numbers of the
    output's shape), or ``either`` (classes when the output has two or more channels, else values).
    ``reads_logits``: Keras on TensorFlow computes it from the logits behind a final softmax or sigmoid.
    ``per_row``: it has one value per row (a mean over the row's positions), which the batch mean averages;
    Dice has one value per batch (Keras's default ``axis=None``).
    """

    keras_class: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()  # Keras's other names for it (``mse`` ...)
    targets: ClassVar[Literal["classes", "values", "either"]] = "values"
    one_hot_targets: ClassVar[bool] = False  # classes reach the loss one-hot (True) or as indices
    reads_logits: ClassVar[bool] = False
    per_row: ClassVar[bool] = True
    probabilities: ClassVar[bool] = False  # it reads the output as probabilities of 0/1 targets (masks)
    min_channels: ClassVar[int] = 1  # the fewest scores on the output's last axis it can read
    default_metrics: ClassVar[tuple[str, ...]] = ()
    keras_axis: ClassVar[int | None] = -1  # Keras's `axis` argument, where it has one: the one a spec means
    type: str

    def __str__(self) -> str:  # messages name the loss as a spec writes it
        return self.type

    @property
    def takes_logits(self) -> bool:
        """The spec says the model's output is logits (``from_logits``; only cross-entropies have it)."""
        return bool(getattr(self, "from_logits", False))

    def target_kind(self, channels: int) -> Literal["classes", "values"]:
        """``classes`` or ``values`` for an output with ``channels`` entries on its last axis."""
        if self.targets == "either":
            return "classes" if channels >= 2 else "values"
        return self.targets

    @model_serializer(mode="wrap")
    def _short_form(self, handler: Any) -> Any:
        """Written back as ``loss: NAME`` when its options are the defaults, as specs always wrote it."""
        defaults = all(
            getattr(self, key) == info.default for key, info in type(self).model_fields.items() if key != "type"
        )
        return self.type if defaults else handler(self)


class Crossentropy(LossSpec):
    """A cross-entropy. ``from_logits``: the model's output is logits (a final layer without softmax or
    sigmoid). When it is false, a final softmax or sigmoid is still read through to its logits, as Keras on
    TensorFlow does."""

    reads_logits = True
    from_logits: Bool = False
    label_smoothing: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.0


@register_loss
class CategoricalCrossentropy(Crossentropy):
    """One-hot labels (class indices in the data are one-hot encoded); ``label_smoothing`` ls turns them into
    ``y * (1 - ls) + ls / classes``. Over the last axis at every position of a map."""

    keras_class = "CategoricalCrossentropy"
    targets = "classes"
    one_hot_targets = True
    min_channels = 2
    default_metrics = ("accuracy",)
    type: Literal["categorical_crossentropy"] = "categorical_crossentropy"


@register_loss
class SparseCategoricalCrossentropy(Crossentropy):
    """Integer labels. Keras 3's SparseCategoricalCrossentropy has no ``label_smoothing``, so it must stay 0."""

    keras_class = "SparseCategoricalCrossentropy"
    targets = "classes"
    min_channels = 2
    default_metrics = ("accuracy",)
    type: Literal["sparse_categorical_crossentropy"] = "sparse_categorical_crossentropy"

    @field_validator("label_smoothing")
    @classmethod
    def _no_smoothing(cls, value: float) -> float:
        if value:
            raise ValueError(
                "Keras 3's sparse_categorical_crossentropy has no label_smoothing; "
                "use categorical_crossentropy to smooth labels"
            )
        return value


@register_loss
class BinaryCrossentropy(Crossentropy):
    """Each output a probability of its own (multi-label, or per pixel), targets 0..1; Keras's
    ``mean(-(y log p + (1 - y) log(1 - p)), axis=-1)``, p clipped to [eps, 1 - eps] or computed from logits;
    ``label_smoothing`` ls trains on ``y * (1 - ls) + ls / 2``."""

    keras_class = "BinaryCrossentropy"
    probabilities = True
    default_metrics = ("binary_accuracy",)
    type: Literal["binary_crossentropy"] = "binary_crossentropy"


@register_loss
class MeanSquaredError(LossSpec):
    """Keras's ``mean((y - p) ** 2, axis=-1)``."""

    keras_class = "MeanSquaredError"
    aliases = ("mse", "MSE")
    default_metrics = ("mae",)
    type: Literal["mean_squared_error"] = "mean_squared_error"


@register_loss
class MeanAbsoluteError(LossSpec):
    """Keras's ``mean(|y - p|, axis=-1)``."""

    keras_class = "MeanAbsoluteError"
    aliases = ("mae", "MAE")
    default_metrics = ("mae",)
    type: Literal["mean_absolute_error"] = "mean_absolute_error"


@register_loss
class Huber(LossSpec):
    """Keras's ``mean(0.5 e**2 if |e| <= delta else delta |e| - 0.5 delta**2, axis=-1)``, e = p - y."""

    keras_class = "Huber"
    aliases = ("huber_loss",)
    default_metrics = ("mae",)
    type: Literal["huber"] = "huber"
    delta: PositiveFloat = 1.0


@register_loss
class Dice(LossSpec):
    """Keras 3's ``Dice`` (``axis=None``): ``1 - 2 sum(y p) / (sum(y) + sum(p) + eps)``, the sums over the whole
    batch, so one value per batch. Targets: one-hot classes for an output of two or more channels (a softmax),
    0..1 values for one channel (a sigmoid)."""

    keras_class = "Dice"
    targets = "either"
    one_hot_targets = True
    per_row = False
    probabilities = True
    keras_axis = None
    type: Literal["dice"] = "dice"


SEALED["losses"] = True
# Keras on TensorFlow reads the logits behind a final softmax or sigmoid (`_keras_logits`)
LOGIT_ACTIVATIONS = ("softmax", "sigmoid")
if TYPE_CHECKING:
    Loss = LossSpec
else:
    Loss = Annotated[Union[tuple(LOSS_CLASSES.values())], Field(discriminator="type")]


# what early stopping and ReduceLROnPlateau can watch: the loss or a metric of training.metrics, or their
# values on the validation split (val_...); the direction is the metric's (cnnspec.metrics)
Monitor = Annotated[str, Field(pattern=r"^(val_)?[a-z_]+$")]


class EarlyStopping(SpecModel):
    """Keras ``EarlyStopping``: stop after ``patience`` epochs without improvement."""

    monitor: Monitor = "val_loss"
    patience: NonNegativeInt = 0
    min_delta: Annotated[Float, Field(ge=0.0)] = 0.0


class ReduceLROnPlateau(SpecModel):
    """Keras ``ReduceLROnPlateau`` (mode from the monitor's name, cooldown 0): after ``patience`` epochs
    without an improvement of more than ``min_delta``, multiply the learning rate by ``factor``, not below ``min_lr``.
    """

    monitor: Monitor = "val_loss"
    factor: Annotated[Float, Field(gt=0.0, lt=1.0)] = 0.1  # Keras refuses factor >= 1
    patience: NonNegativeInt = 10
    min_delta: NonNegativeFloat = 1e-4
    min_lr: NonNegativeFloat = 0.0


def _or_by_name(types: Mapping[str, Any], aliases: Mapping[str, str]) -> Any:
    """A field's JSON Schema that also takes a name alone (``loss: mse``), as the field's validator does."""

    def extra(schema: dict[str, Any]) -> None:
        full = {key: schema.pop(key) for key in list(schema) if key not in ("title", "description")}
        schema["anyOf"] = [{"enum": sorted([*types, *aliases])}, full]

    return extra


class TrainingSpec(SpecModel):
    """How to train; every field has a default."""

    loss: Loss = Field(
        default_factory=CategoricalCrossentropy, json_schema_extra=_or_by_name(LOSS_CLASSES, LOSS_ALIASES)
    )
    optimizer: Optimizer = Field(
        default_factory=Adam, json_schema_extra=_or_by_name(OPTIMIZER_CLASSES, OPTIMIZER_ALIASES)
    )
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 10
    metrics: list[MetricName] = Field(
        default_factory=lambda: ["accuracy"],  # type: ignore[arg-type]
        description="metrics shown and recorded per epoch; by default the loss's (accuracy for cross-entropies, "
        "binary_accuracy for binary_crossentropy, mae for regression losses, none for dice)",
    )
    validation_split: Rate = 0.1
    seed: NonNegativeInt = 0
    early_stopping: EarlyStopping | None = None
    reduce_lr_on_plateau: ReduceLROnPlateau | None = None
    keep_best: Monitor = Field(
        default="val_loss",
        description="the run keeps the weights of the epoch best by this (its training value without validation)",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto: bf16 only where this machine computes it natively and faster, else fp32"
    )

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_shorthand(cls, value: Any) -> Any:
        # `optimizer: adam` is how Keras users write it.
        if isinstance(value, str):
            value = {"type": value}
        return canonical_type(value, OPTIMIZER_ALIASES)

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_shorthand(cls, value: Any) -> Any:
        # `loss: categorical_crossentropy`, as Keras's compile() takes it.
        if isinstance(value, str):
            value = {"type": value}
        value = canonical_type(value, LOSS_ALIASES)
        kind = value.get("type") if isinstance(value, dict) else None
        if isinstance(kind, str) and kind not in LOSS_CLASSES:
            close = difflib.get_close_matches(kind, list(LOSS_CLASSES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown loss {kind!r}{hint}; known losses: {', '.join(LOSS_CLASSES)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _the_loss_metrics(cls, value: Any) -> Any:
        """Without ``metrics``, the loss's own (a regression loss has no accuracy to show)."""
        if not isinstance(value, dict) or "metrics" in value:
            return value
        loss = value.get("loss", "categorical_crossentropy")
        kind = loss.type if isinstance(loss, LossSpec) else loss.get("type") if isinstance(loss, dict) else loss
        if not isinstance(kind, str) or LOSS_ALIASES.get(kind, kind) not in LOSS_CLASSES:
            return value  # the loss's own validator names the problem
        kind = LOSS_ALIASES.get(kind, kind)
        return {**value, "metrics": list(LOSS_CLASSES[kind].default_metrics)}

    @field_validator("metrics")
    @classmethod
    def _each_metric_once(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"metrics {repeated} are listed more than once")
        return value

    @model_validator(mode="after")
    def _monitor_is_recorded(self) -> "TrainingSpec":
        monitors = [("keep_best", self.keep_best)] + [
            (f"{name}.monitor", rule.monitor)
            for name, rule in (
                ("early_stopping", self.early_stopping),
                ("reduce_lr_on_plateau", self.reduce_lr_on_plateau),
            )
            if rule is not None
        ]
        recorded = ["loss", *self.metrics]
        for name, monitor in monitors:
            if monitor.removeprefix("val_") not in recorded:
                raise ValueError(
                    f"{name} is {monitor!r}, which is not recorded; it can be "
                    + ", ".join(f"{prefix}{key}" for key in recorded for prefix in ("val_", ""))
                    + " (add a metric to training.metrics to watch it)"
                )
            # keep_best falls back to the training value, as the kept weights always did
            if name != "keep_best" and monitor.startswith("val_") and self.validation_split == 0:
                raise ValueError(f"{name.split('.')[0]} monitors {monitor!r} but validation_split is 0")
        return self

    @model_validator(mode="after")
    def _plateau_needs_a_settable_rate(self) -> "TrainingSpec":
        # Keras's ReduceLROnPlateau cannot set the rate of an optimizer built with a schedule (a TypeError there).
        schedule = self.optimizer.schedule
        if self.reduce_lr_on_plateau is not None and schedule is not None:
            raise ValueError(
                f"reduce_lr_on_plateau needs a constant learning_rate, but the optimizer's is a {schedule.type} "
                "schedule (Keras cannot set the rate of a schedule); use one or the other"
            )
        return self
