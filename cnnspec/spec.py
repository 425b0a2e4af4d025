"""The spec language: one pydantic model per layer type, discriminated on ``type``.

The vocabulary, argument names and defaults are those of Keras 3, so a spec reads
like the Keras model it means. A ``ModelSpec`` that exists is valid: building one
checks the schema, fills default names and runs the shape checker, and raises
``SpecError`` (never a bare pydantic error) when anything is wrong.

>>> spec = ModelSpec(input_shape=(8, 8, 1), layers=[Flatten(), Dense(units=10, activation="softmax")])
>>> spec.layers[1].name
'dense_1'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from pydantic._internal._model_construction import ModelMetaclass

if TYPE_CHECKING:
    from .shapes import ShapeReport

# -- value types ---------------------------------------------------------------
# Strict: a spec that says `filters: "32"` or `use_bias: 1` is a mistake to report,
# not something to coerce silently.
PositiveInt = Annotated[int, Strict(), Field(ge=1)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]


def _as_pair(value: Any) -> Any:
    """Keras accepts `3` for `(3, 3)`; store the pair so every reader sees one form."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, list):
        return tuple(value)
    return value


_PAIR_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
    ]
}
Pair = Annotated[tuple[PositiveInt, PositiveInt], BeforeValidator(_as_pair), WithJsonSchema(_PAIR_SCHEMA)]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Padding = Annotated[Literal["valid", "same"], BeforeValidator(_lower)]

ACTIVATIONS = (
    "linear", "relu", "elu", "selu", "sigmoid", "tanh", "softmax",
    "softplus", "swish", "gelu", "leaky_relu",
)  # fmt: skip
ActivationName = Literal[
    "linear", "relu", "elu", "selu", "sigmoid", "tanh", "softmax",
    "softplus", "swish", "gelu", "leaky_relu",
]  # fmt: skip

# Layer names become weight keys ("<name>/kernel") and ONNX node names.
LayerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$", max_length=128)]


# -- layers --------------------------------------------------------------------
class _SpecErrorOnCall(ModelMetaclass):
    """``Dense(units=0)`` raises ``SpecError``, the same way a file does.

    A metaclass, not ``__init__``: pydantic calls a custom ``__init__`` for nested
    models too, which would cut the error's location short.
    """

    def __call__(cls, *args: Any, **data: Any) -> Any:
        try:
            return super().__call__(*args, **data)
        except ValidationError as err:
            from .errors import SpecError
            from .load import issues_from_validation_error

            raise SpecError(issues_from_validation_error(err, data)) from None


class _SpecModel(BaseModel, metaclass=_SpecErrorOnCall):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerSpec(_SpecModel):
    """Fields every layer has. ``name`` defaults to ``<type>_<index>``."""

    name: LayerName | None = None


class Conv2D(LayerSpec):
    """Keras ``Conv2D``: channels-last, glorot_uniform kernel, zero bias."""

    type: Literal["conv2d"] = "conv2d"
    filters: PositiveInt
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "valid"
    dilation_rate: Pair = (1, 1)
    activation: ActivationName = "linear"
    use_bias: Bool = True

    @model_validator(mode="after")
    def _strides_or_dilation(self) -> Conv2D:
        # Keras refuses the combination; every backend would disagree on it anyway.
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"strides {list(self.strides)} > 1 cannot be combined with "
                f"dilation_rate {list(self.dilation_rate)} > 1 (Keras refuses it)"
            )
        return self


class _Pool2D(LayerSpec):
    pool_size: Pair = (2, 2)
    strides: Pair | None = Field(default=None, description="default: pool_size")
    padding: Padding = "valid"

    @model_validator(mode="after")
    def _strides_default_to_pool_size(self) -> _Pool2D:
        if self.strides is None:
            object.__setattr__(self, "strides", self.pool_size)
        return self


class MaxPool2D(_Pool2D):
    """Keras ``MaxPooling2D``; ``same`` padding never wins a window."""

    type: Literal["max_pool2d"] = "max_pool2d"


class AvgPool2D(_Pool2D):
    """Keras ``AveragePooling2D``; ``same`` padding averages only real cells."""

    type: Literal["avg_pool2d"] = "avg_pool2d"


class MinPool2D(_Pool2D):
    """Minimum of each window, ``-max(-x)``; padding never wins."""

    type: Literal["min_pool2d"] = "min_pool2d"


class SumPool2D(_Pool2D):
    """Sum of each window's real cells."""

    type: Literal["sum_pool2d"] = "sum_pool2d"


class GlobalAvgPool2D(LayerSpec):
    """Keras ``GlobalAveragePooling2D``: (H, W, C) -> (C,)."""

    type: Literal["global_avg_pool2d"] = "global_avg_pool2d"


class GlobalMaxPool2D(LayerSpec):
    """Keras ``GlobalMaxPooling2D``: (H, W, C) -> (C,)."""

    type: Literal["global_max_pool2d"] = "global_max_pool2d"


class BatchNorm(LayerSpec):
    """Keras ``BatchNormalization`` over the last (channel) axis."""

    type: Literal["batch_norm"] = "batch_norm"
    momentum: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.99
    epsilon: Annotated[Float, Field(gt=0.0)] = 0.001
    center: Bool = True
    scale: Bool = True


class Dropout(LayerSpec):
    """Keras ``Dropout``; identity at inference."""

    type: Literal["dropout"] = "dropout"
    rate: Annotated[Float, Field(ge=0.0, lt=1.0)]


class Flatten(LayerSpec):
    """Keras ``Flatten``: channels-last order (H, W, C)."""

    type: Literal["flatten"] = "flatten"


class Dense(LayerSpec):
    """Keras ``Dense`` on a flat input."""

    type: Literal["dense"] = "dense"
    units: PositiveInt
    activation: ActivationName = "linear"
    use_bias: Bool = True


class Activation(LayerSpec):
    """Keras ``Activation``."""

    type: Literal["activation"] = "activation"
    activation: ActivationName


LAYER_CLASSES: dict[str, type[LayerSpec]] = {
    "conv2d": Conv2D,
    "max_pool2d": MaxPool2D,
    "avg_pool2d": AvgPool2D,
    "min_pool2d": MinPool2D,
    "sum_pool2d": SumPool2D,
    "global_avg_pool2d": GlobalAvgPool2D,
    "global_max_pool2d": GlobalMaxPool2D,
    "batch_norm": BatchNorm,
    "dropout": Dropout,
    "flatten": Flatten,
    "dense": Dense,
    "activation": Activation,
}
LAYER_TYPES = tuple(LAYER_CLASSES)

# Keras class names a spec may use for `type`; read back, a spec uses our names.
LAYER_ALIASES = {
    "Conv2D": "conv2d",
    "MaxPooling2D": "max_pool2d",
    "MaxPool2D": "max_pool2d",
    "AveragePooling2D": "avg_pool2d",
    "AvgPool2D": "avg_pool2d",
    "GlobalAveragePooling2D": "global_avg_pool2d",
    "GlobalAvgPool2D": "global_avg_pool2d",
    "GlobalMaxPooling2D": "global_max_pool2d",
    "GlobalMaxPool2D": "global_max_pool2d",
    "BatchNormalization": "batch_norm",
    "Dropout": "dropout",
    "Flatten": "flatten",
    "Dense": "dense",
    "Activation": "activation",
}

Layer = Annotated[
    Union[
        Conv2D, MaxPool2D, AvgPool2D, MinPool2D, SumPool2D, GlobalAvgPool2D,
        GlobalMaxPool2D, BatchNorm, Dropout, Flatten, Dense, Activation,
    ],  # fmt: skip
    Field(discriminator="type"),
]


def _canonical_type(raw: Any, aliases: dict[str, str]) -> Any:
    """Rewrite a Keras class name in ``raw['type']`` to the canonical type name."""
    if isinstance(raw, dict) and isinstance(raw.get("type"), str) and raw["type"] in aliases:
        return {**raw, "type": aliases[raw["type"]]}
    return raw


# -- training --------------------------------------------------------------------
Rate = Annotated[Float, Field(ge=0.0, lt=1.0)]
PositiveFloat = Annotated[Float, Field(gt=0.0)]


class _OptimizerSpec(_SpecModel):
    pass


class Adam(_OptimizerSpec):
    """Keras 3 ``Adam`` (epsilon added to the uncorrected sqrt(v))."""

    type: Literal["adam"] = "adam"
    learning_rate: PositiveFloat = 0.001
    beta_1: Rate = 0.9
    beta_2: Rate = 0.999
    epsilon: PositiveFloat = 1e-7


class SGD(_OptimizerSpec):
    """Keras 3 ``SGD`` (m = momentum*m - lr*g; w += m)."""

    type: Literal["sgd"] = "sgd"
    learning_rate: PositiveFloat = 0.01
    momentum: Rate = 0.0
    nesterov: Bool = False


class RMSprop(_OptimizerSpec):
    """Keras 3 ``RMSprop`` (epsilon inside the square root)."""

    type: Literal["rmsprop"] = "rmsprop"
    learning_rate: PositiveFloat = 0.001
    rho: Rate = 0.9
    momentum: Rate = 0.0
    epsilon: PositiveFloat = 1e-7
    centered: Bool = False


OPTIMIZER_CLASSES: dict[str, type[_OptimizerSpec]] = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop}
OPTIMIZER_ALIASES = {"Adam": "adam", "SGD": "sgd", "RMSprop": "rmsprop", "RMSProp": "rmsprop"}
Optimizer = Annotated[Union[Adam, SGD, RMSprop], Field(discriminator="type")]


class EarlyStopping(_SpecModel):
    """Keras ``EarlyStopping``: stop after ``patience`` epochs without improvement."""

    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    patience: NonNegativeInt = 0
    min_delta: Annotated[Float, Field(ge=0.0)] = 0.0


class TrainingSpec(_SpecModel):
    """How to train; every field has a default."""

    loss: Literal["categorical_crossentropy", "sparse_categorical_crossentropy"] = "categorical_crossentropy"
    optimizer: Optimizer = Field(default_factory=Adam)
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 10
    metrics: list[Literal["accuracy"]] = Field(default_factory=lambda: ["accuracy"])
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
        return _canonical_type(value, OPTIMIZER_ALIASES)

    @model_validator(mode="after")
    def _monitor_needs_validation(self) -> TrainingSpec:
        monitor = self.early_stopping.monitor if self.early_stopping else ""
        if monitor.startswith("val_") and self.validation_split == 0:
            raise ValueError(f"early_stopping monitors {monitor!r} but validation_split is 0")
        return self


# -- the model -------------------------------------------------------------------
class ModelSpec(_SpecModel):
    """A whole network: input shape (H, W, C), layers, training setup.

    >>> ModelSpec(input_shape=(8, 8, 1), layers=[Flatten(), Dense(units=10)]).summary().total_params
    650
    """

    model_config = ConfigDict(extra="forbid", frozen=False)
    name: LayerName = "model"
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt]
    layers: Annotated[list[Layer], Field(min_length=1)]
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    class_names: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, description="optional: one name per output class, used by reports and predict"
    )

    @field_validator("input_shape", mode="before")
    @classmethod
    def _three_dimensions(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) != 3:
            raise ValueError(f"input_shape is [height, width, channels], got {list(value)}")
        return tuple(value) if isinstance(value, list) else value

    @field_validator("layers", mode="before")
    @classmethod
    def _layer_aliases(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_canonical_type(item, LAYER_ALIASES) for item in value]
        return value

    @model_validator(mode="after")
    def _names_and_shapes(self) -> ModelSpec:
        from .errors import SpecError, SpecIssue
        from .shapes import infer_shapes

        named = [
            layer if layer.name else layer.model_copy(update={"name": f"{layer.type}_{index}"})
            for index, layer in enumerate(self.layers)
        ]
        seen: dict[str, int] = {}
        duplicates = []
        for index, layer in enumerate(named):
            if layer.name in seen:
                duplicates.append(
                    SpecIssue(
                        f"name {layer.name!r} is already used by layer {seen[layer.name]}",
                        layer=index, name=layer.name, field="name", rule="unique_name", value=layer.name,
                    )  # fmt: skip
                )
            seen.setdefault(layer.name, index)
        if duplicates:
            raise SpecError(duplicates)
        self.layers = named
        report = infer_shapes(self)  # raises SpecError naming the first layer that does not fit
        if self.class_names is not None and len(self.class_names) != report.output_shape[0]:
            raise SpecError(SpecIssue(
                f"{len(self.class_names)} class names for an output of {report.output_shape[0]} classes",
                field="class_names", rule="class_names_match_output", value=self.class_names,
            ))  # fmt: skip
        return self

    def summary(self) -> ShapeReport:
        """Shapes and parameter counts per layer; ``str()`` of it is the Keras-style table."""
        from .shapes import infer_shapes

        return infer_shapes(self)

    def to_dict(self) -> dict[str, Any]:
        """The canonical form: every field, canonical type names, JSON-ready."""
        from .load import spec_to_dict

        return spec_to_dict(self)

    @property
    def num_classes(self) -> int:
        return self.summary().output_shape[0]
