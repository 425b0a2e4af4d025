"""A layer type's Keras configuration, both ways, derived from its fields (as Keras pairs ``get_config``
with ``from_config``).

``keras_config(layer)``: the spec layer as the config its Keras class is made from (the Keras backend builds
from it). ``spec_fields(cls, kind, config)``: a Keras layer's config as the spec's fields (``cnnspec import
keras`` reads every layer this way). Field names are Keras's argument names, so most of a mapping is the
identity; what a field's *type* changes (an activation, a regularizer) is one codec for every class, and a
class states only what is really its own: ``keras_fixed``, Keras arguments it has no field for and the
values a spec can express (the first is Keras's default), and ``keras_ignored``, arguments whose value does
not matter once the weights are imported. Anything else in a config is refused by name, so no argument
goes unexamined. Framework-free: nothing here imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, get_args

from ..errors import CnnspecError, SpecError
from ..fields import ACTIVATION_ALIASES, Regularizer, canonical_activation

if TYPE_CHECKING:
    from .base import LayerSpec


class UnsupportedKerasModel(CnnspecError):
    """A Keras model with a layer, argument or graph the spec cannot express."""


# Arguments of every Keras layer that a spec does not need: how variables start (the weights are imported
# or cnnspec initialises them as Keras does) and Keras's own bookkeeping.
IGNORED = frozenset(
    {"name", "trainable", "dtype", "seed", "registered_name", "build_config", "quantization_config"}
    | {f"{prefix}_initializer" for prefix in ("kernel", "bias", "depthwise", "pointwise", "beta", "gamma")}
    | {"moving_mean_initializer", "moving_variance_initializer"}
)
SPEC_ONLY = ("type", "name", "inputs")  # the spec's own fields: what the layer is and what it reads
EMPTY: tuple[Any, ...] = (None, False, {}, [], ())  # a Keras argument left at one of these says nothing


@dataclass(frozen=True)
class Codec:
    """How a field's value reads from a Keras config (``read``; None: refused, see ``why``) and is written to one."""

    read: Callable[[Any], Any]
    write: Callable[[Any], Any]


def _activation(value: Any) -> Any:
    """Keras writes a built-in activation as its name, or as ``{"class_name": "function", "config": name}``."""
    name = value.get("config") if isinstance(value, dict) else value
    return ACTIVATION_ALIASES.get(name, name) if isinstance(name, str) else value


def _read_regularizer(value: Any) -> Any:
    kind = value.get("class_name") if isinstance(value, dict) else value
    if kind not in ("L1", "L2", "L1L2"):
        raise ValueError(f"only L1, L2 and L1L2 regularizers can be expressed, not {kind}")
    config = value.get("config", {})
    return {"l1": float(config.get("l1", 0.0)), "l2": float(config.get("l2", 0.0))}


def _write_regularizer(value: Any) -> Any:
    return {"class_name": "L1L2", "config": value.model_dump()}


def _plain(value: Any) -> Any:
    return [_plain(item) for item in value] if isinstance(value, (list, tuple)) else value


def _as_given(value: Any) -> Any:
    return value


# A pair stays a tuple on its way to Keras, as Keras's own get_config gives it: Keras 3.15 cannot save a
# random layer whose factor is a list to .h5 (tests/backends/test_keras_backend.py keeps the reproducer).
ACTIVATION = Codec(_activation, _as_given)
REGULARIZER = Codec(_read_regularizer, _write_regularizer)
PLAIN = Codec(_plain, _as_given)


def codec(cls: type[LayerSpec], field: str) -> Codec:
    """The codec of a field, from its type."""
    info = cls.model_fields[field]
    if Regularizer in (info.annotation, *get_args(info.annotation)):
        return REGULARIZER
    if any(getattr(item, "func", None) is canonical_activation for item in info.metadata):  # ActivationName
        return ACTIVATION
    return PLAIN


def keras_config(layer: LayerSpec) -> dict[str, Any]:
    """``layer`` as the config of its Keras class: its fields (not the spec-only ones) and its name."""
    cls = type(layer)
    config = {
        field: codec(cls, field).write(value) for field, value in layer if field not in SPEC_ONLY and value is not None
    }
    return {"name": layer.name, **config}


def spec_fields(cls: type[LayerSpec], kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """A Keras layer's ``config`` (class ``kind``) as a spec layer of type ``cls``: ``{"type", **fields}``,
    checked against the spec's rules; ``UnsupportedKerasModel`` names the layer and the first argument a
    spec cannot express."""
    name = config.get("name", "?")

    def refuse(argument: str, why: str) -> UnsupportedKerasModel:
        return UnsupportedKerasModel(f"layer {name!r} ({kind}): {argument}: {why}")

    if config.get("trainable", True) is False:
        raise refuse("trainable=False", "frozen layers cannot be expressed in a spec")
    fields: dict[str, Any] = {}
    for field in cls.model_fields:
        if field in SPEC_ONLY or config.get(field) is None:
            continue  # left out, or None: the spec's default
        try:
            fields[field] = codec(cls, field).read(config[field])
        except ValueError as err:
            raise refuse(f"{field}={config[field]!r}", str(err)) from None
    for argument, allowed in cls.keras_fixed.items():
        value = _plain(config.get(argument, allowed[0]))
        if value not in [_plain(a) for a in allowed]:
            raise refuse(f"{argument}={value!r}", f"cannot be expressed in a spec (only {allowed[0]!r} can)")
    known = {*cls.model_fields, *cls.keras_fixed, *cls.keras_ignored, *IGNORED}
    for argument, value in config.items():
        if argument not in known and value not in EMPTY:
            raise refuse(f"{argument}={value!r}", "this argument is not supported")
    document = {"type": cls.model_fields["type"].default, **fields}
    try:
        cls(name="layer", **fields)  # the spec's own rules (ranges, types), before the model is assembled
    except SpecError as err:
        issue = err.issues[0]
        shown = f"{issue.field}={fields.get(issue.field or '', issue.value)!r}" if issue.field else "arguments"
        raise refuse(shown, issue.message) from None
    return document
