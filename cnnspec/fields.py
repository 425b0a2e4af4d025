"""Value types of the spec language and the base class of every spec model.

Strict types: a spec that says ``filters: "32"`` or ``use_bias: 1`` is a mistake to
report, not something to coerce silently. Argument names and defaults follow Keras 3.
"""

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from .errors import SpecError
from .issues import issues_from_validation_error

PositiveInt = Annotated[int, Strict(), Field(ge=1)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Rate = Annotated[Float, Field(ge=0.0, lt=1.0)]
PositiveFloat = Annotated[Float, Field(gt=0.0)]


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
_NON_NEGATIVE_PAIR_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2},
    ]
}
NonNegativePair = Annotated[
    tuple[NonNegativeInt, NonNegativeInt], BeforeValidator(_as_pair), WithJsonSchema(_NON_NEGATIVE_PAIR_SCHEMA)
]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Padding = Annotated[Literal["valid", "same"], BeforeValidator(_lower)]

# Keras 3's activation names; every backend implements each (their constants: cnnspec.numerics).
ACTIVATIONS = (
    "linear",
    "relu",
    "elu",
    "selu",
    "sigmoid",
    "tanh",
    "softmax",
    "softplus",
    "swish",
    "gelu",
    "leaky_relu",
    "relu6",
    "hard_sigmoid",
    "hard_silu",
    "mish",
)
# Other spellings of those activations: what Keras 3 writes in a saved model (keras.activations.swish is
# keras.activations.silu, so `activation="swish"` is saved as "silu"). A spec may use either; it is always
# written back with the name on the left of ACTIVATIONS.
ACTIVATION_ALIASES = {"silu": "swish", "hard_swish": "hard_silu"}


def canonical_activation(value: Any) -> Any:
    return ACTIVATION_ALIASES.get(value, value) if isinstance(value, str) else value


ActivationName = Annotated[
    Literal[ACTIVATIONS],  # type: ignore[valid-type]
    BeforeValidator(canonical_activation),
    WithJsonSchema({"enum": [*ACTIVATIONS, *ACTIVATION_ALIASES]}),
]

# Layer names become weight keys ("<name>/kernel") and ONNX node names.
LayerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$", max_length=128)]


class _SpecErrorOnCall(type(BaseModel)):  # type: ignore[misc]  # pydantic's metaclass, reached without its private module
    """``Dense(units=0)`` raises ``SpecError``, the same way a file does.

    A metaclass, not ``__init__``: pydantic calls a custom ``__init__`` for nested
    models too, which would cut the error's location short.
    """

    def __call__(cls, *args: Any, **data: Any) -> Any:
        try:
            return super().__call__(*args, **data)
        except ValidationError as err:
            raise SpecError(issues_from_validation_error(err, data, cls)) from None


if TYPE_CHECKING:  # type checkers do not follow a metaclass derived from type(BaseModel); it changes no types

    class SpecModel(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

else:

    class SpecModel(BaseModel, metaclass=_SpecErrorOnCall):
        """A frozen, strict piece of a spec: unknown fields are errors, values never change."""

        model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Regularizer(SpecModel):
    """Keras ``L1L2``: ``l1 * sum(|w|) + l2 * sum(w**2)`` added to the loss (no factor 1/2, as Keras)."""

    l1: Annotated[Float, Field(ge=0.0)] = 0.0
    l2: Annotated[Float, Field(ge=0.0)] = 0.0
