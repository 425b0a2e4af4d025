"""The spec language: a model is an input shape, registered layers and a training setup.

The vocabulary, argument names and defaults are those of Keras 3, so a spec reads
like the Keras model it means. A ``ModelSpec`` that exists is valid: building one
checks the schema, fills default names and runs the shape checker, and raises
``SpecError`` (never a bare pydantic error) when anything is wrong. It is frozen, and
its summary is computed once, when it is built.

The layer types live in ``cnnspec.layers`` (one registered class each); the union
below is derived from the registry.

>>> spec = ModelSpec(input_shape=(8, 8, 1), layers=[Flatten(), Dense(units=10, activation="softmax")])
>>> spec.layers[1].name
'dense_1'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, PrivateAttr, StringConstraints, field_validator, model_validator

from .errors import SpecError, SpecIssue
from .fields import Bool, Float, LayerName, NonNegativeInt, PositiveFloat, PositiveInt, Rate, SpecModel
from .layers import *  # noqa: F403  (the layer classes are part of this module's public face)
from .layers import LayerSpec
from .registry import (
    LAYER_ALIASES,
    LAYER_CLASSES,
    OPTIMIZER_ALIASES,
    OPTIMIZER_CLASSES,
    canonical_type,
    register_optimizer,
)
from .shapes import ShapeReport, infer_shapes

LAYER_TYPES = tuple(LAYER_CLASSES)
if TYPE_CHECKING:  # what a type checker can know: some registered LayerSpec
    Layer = LayerSpec
else:  # what pydantic validates: the union of the registered classes, chosen by `type`
    Layer = Annotated[Union[tuple(LAYER_CLASSES.values())], Field(discriminator="type")]


# -- training --------------------------------------------------------------------
class OptimizerSpec(SpecModel):
    """An optimizer and its Keras 3 arguments; register a subclass with ``@register_optimizer``."""

    aliases: ClassVar[tuple[str, ...]] = ()  # Keras class names accepted for `type`

    type: str
    learning_rate: PositiveFloat  # each optimizer sets Keras's default


@register_optimizer
class Adam(OptimizerSpec):
    """Keras 3 ``Adam`` (epsilon added to the uncorrected sqrt(v))."""

    aliases = ("Adam",)
    type: Literal["adam"] = "adam"
    learning_rate: PositiveFloat = 0.001
    beta_1: Rate = 0.9
    beta_2: Rate = 0.999
    epsilon: PositiveFloat = 1e-7


@register_optimizer
class SGD(OptimizerSpec):
    """Keras 3 ``SGD`` (m = momentum*m - lr*g; w += m)."""

    aliases = ("SGD",)
    type: Literal["sgd"] = "sgd"
    learning_rate: PositiveFloat = 0.01
    momentum: Rate = 0.0
    nesterov: Bool = False


@register_optimizer
class RMSprop(OptimizerSpec):
    """Keras 3 ``RMSprop`` (epsilon inside the square root)."""

    aliases = ("RMSprop", "RMSProp")
    type: Literal["rmsprop"] = "rmsprop"
    learning_rate: PositiveFloat = 0.001
    rho: Rate = 0.9
    momentum: Rate = 0.0
    epsilon: PositiveFloat = 1e-7
    centered: Bool = False


if TYPE_CHECKING:
    Optimizer = OptimizerSpec
else:
    Optimizer = Annotated[Union[tuple(OPTIMIZER_CLASSES.values())], Field(discriminator="type")]


class EarlyStopping(SpecModel):
    """Keras ``EarlyStopping``: stop after ``patience`` epochs without improvement."""

    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    patience: NonNegativeInt = 0
    min_delta: Annotated[Float, Field(ge=0.0)] = 0.0


class TrainingSpec(SpecModel):
    """How to train; every field has a default."""

    loss: Literal["categorical_crossentropy", "sparse_categorical_crossentropy"] = "categorical_crossentropy"
    optimizer: Optimizer = Field(default_factory=Adam)
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 10
    metrics: list[Literal["accuracy"]] = Field(default_factory=lambda: ["accuracy"])  # type: ignore[arg-type]
    validation_split: Rate = 0.1
    seed: NonNegativeInt = 0
    early_stopping: EarlyStopping | None = None
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

    @model_validator(mode="after")
    def _monitor_needs_validation(self) -> TrainingSpec:
        monitor = self.early_stopping.monitor if self.early_stopping else ""
        if monitor.startswith("val_") and self.validation_split == 0:
            raise ValueError(f"early_stopping monitors {monitor!r} but validation_split is 0")
        return self


# -- the model -------------------------------------------------------------------
class ModelSpec(SpecModel):
    """A whole network: input shape (H, W, C), layers, training setup.

    >>> ModelSpec(input_shape=(8, 8, 1), layers=[Flatten(), Dense(units=10)]).summary().total_params
    650
    """

    name: LayerName = "model"
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt]
    layers: Annotated[list[Layer], Field(min_length=1)]
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    class_names: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, description="optional: one name per output class, used by reports and predict"
    )
    _report: ShapeReport = PrivateAttr()

    @field_validator("input_shape", mode="before")
    @classmethod
    def _three_dimensions(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) != 3:
            raise ValueError(f"input_shape is [height, width, channels], got {list(value)}")
        return tuple(value) if isinstance(value, list) else value

    @field_validator("layers", mode="before")
    @classmethod
    def _default_names(cls, value: Any) -> Any:
        """Keras class names -> type names; a layer without a name gets ``<type>_<index>``."""
        if not isinstance(value, list):
            return value
        return [_named(canonical_type(item, LAYER_ALIASES), index) for index, item in enumerate(value)]

    @model_validator(mode="after")
    def _unique_names_and_shapes(self) -> ModelSpec:
        first_use: dict[str | None, int] = {}
        duplicates = []
        for index, layer in enumerate(self.layers):
            if layer.name in first_use:
                duplicates.append(
                    SpecIssue(
                        f"name {layer.name!r} is already used by layer {first_use[layer.name]}",
                        layer=index,
                        name=layer.name,
                        field="name",
                        rule="unique_name",
                        value=layer.name,
                    )
                )
            first_use.setdefault(layer.name, index)
        if duplicates:
            raise SpecError(duplicates)
        report = infer_shapes(self)  # raises SpecError naming the first layer that does not fit
        if self.class_names is not None and len(self.class_names) != report.output_shape[0]:
            raise SpecError(
                SpecIssue(
                    f"{len(self.class_names)} class names for an output of {report.output_shape[0]} classes",
                    field="class_names",
                    rule="class_names_match_output",
                    value=self.class_names,
                )
            )
        self._report = report
        return self

    def summary(self) -> ShapeReport:
        """Shapes and parameter counts per layer; ``str()`` of it is the Keras-style table."""
        return self._report

    def to_dict(self) -> dict[str, Any]:
        """The canonical form: every field, canonical type names, JSON-ready."""
        data = self.model_dump(mode="json")
        data["layers"] = [
            {
                "type": layer["type"],
                "name": layer["name"],
                **{k: v for k, v in layer.items() if k not in ("type", "name")},
            }
            for layer in data["layers"]
        ]
        return data

    @property
    def num_classes(self) -> int:
        return self.summary().output_shape[0]


def _named(item: Any, index: int) -> Any:
    """A layer (a mapping or a ``LayerSpec``) with its default name filled in when it has none."""
    if isinstance(item, LayerSpec):
        return item if item.name else item.model_copy(update={"name": f"{item.type}_{index}"})
    kind = item.get("type") if isinstance(item, dict) else None
    if isinstance(kind, str) and kind in LAYER_CLASSES and item.get("name") is None:
        return {**item, "name": f"{kind}_{index}"}
    return item
