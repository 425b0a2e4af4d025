"""A compiled Keras model's training setup: ``training.optimizer`` and ``training.loss`` of the spec.

Read through the registries, as layers are: an optimizer, a learning-rate schedule or a loss is the
registered class whose Keras class (or Keras's short name) the config names, and its fields are read by
their names; a Keras argument the class has no field for is importable only at a value that means nothing
(Keras's default).
"""

from __future__ import annotations

from typing import Any

from ..layers.keras_config import UnsupportedKerasModel
from ..registry import LOSS_ALIASES, LOSS_CLASSES, OPTIMIZER_ALIASES, OPTIMIZER_CLASSES

# Keras optimizer arguments with no spec field, and the values that mean "not used"
# (0 and 1 gradient accumulation steps both mean every batch)
OPTIMIZER_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "amsgrad": (False, None),
    "clipnorm": (None, 0, 0.0),
    "clipvalue": (None, 0, 0.0),
    "global_clipnorm": (None, 0, 0.0),
    "use_ema": (False, None),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None, 0, 1),
}
# Keras loss arguments with no spec field, at the values every spec loss means (``axis``: the loss
# class's own default, ``keras_axis``: -1, or None for Dice, which sums over everything)
LOSS_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "reduction": ("sum_over_batch_size",),
    "ignore_class": (None,),
}


def _training(compile_config: dict[str, Any] | None) -> dict[str, Any]:
    """``training.optimizer`` and ``training.loss`` from a compiled model; the rest keeps the spec's defaults."""
    if not compile_config:
        return {}
    training: dict[str, Any] = {}
    if compile_config.get("optimizer") is not None:
        training["optimizer"] = _optimizer(compile_config["optimizer"])
    if compile_config.get("loss") is not None:
        training["loss"] = _loss(compile_config["loss"])
    return training


def _fields(cls: type[Any], config: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The values of ``cls``'s fields that ``config`` sets, Keras's float32 spellings made short."""
    return {
        key: _plain(config[key])
        for key in cls.model_fields
        if key not in ("type", *skip) and config.get(key) is not None
    }


def _neutral(what: str, config: dict[str, Any], neutral: dict[str, tuple[Any, ...]]) -> None:
    for key, allowed in neutral.items():
        if key in config and config[key] not in allowed:
            raise UnsupportedKerasModel(f"{what}: {key}={config[key]!r} cannot be expressed in a spec")


def _optimizer(value: Any) -> dict[str, Any]:
    from ..training import SCHEDULE_ALIASES, SCHEDULE_TYPES

    if isinstance(value, str):
        value = {"class_name": value, "config": {}}
    kind = value.get("class_name")
    spec_type = OPTIMIZER_ALIASES.get(kind, kind if kind in OPTIMIZER_CLASSES else None)
    if spec_type is None:
        known = ", ".join(cls.aliases[0] for cls in OPTIMIZER_CLASSES.values())
        raise UnsupportedKerasModel(f"optimizer {kind}: not supported ({known} are)")
    config = value.get("config", {})
    _neutral(f"optimizer {kind}", config, OPTIMIZER_NEUTRAL)
    document = {"type": spec_type, **_fields(OPTIMIZER_CLASSES[spec_type], config, skip=("learning_rate",))}
    rate = config.get("learning_rate")
    if isinstance(rate, dict):  # a schedule
        schedule_kind, schedule = rate.get("class_name"), rate.get("config", {})
        if schedule_kind not in SCHEDULE_ALIASES:
            raise UnsupportedKerasModel(f"optimizer {kind}: learning-rate schedule {schedule_kind} is not supported")
        if schedule_kind == "CosineDecay" and (
            schedule.get("warmup_steps") or schedule.get("warmup_target") is not None
        ):
            raise UnsupportedKerasModel(f"optimizer {kind}: CosineDecay warm-up cannot be expressed in a spec")
        schedule_type = SCHEDULE_ALIASES[schedule_kind]
        document["learning_rate"] = {"type": schedule_type, **_fields(SCHEDULE_TYPES[schedule_type], schedule)}
    elif rate is not None:
        document["learning_rate"] = _plain(rate)
    return document


def _loss(value: Any) -> Any:
    kind = value if isinstance(value, str) else value.get("class_name")
    config = {} if isinstance(value, str) else value.get("config", {})
    spec_type = LOSS_ALIASES.get(kind, kind if kind in LOSS_CLASSES else None)
    if spec_type is None:
        raise UnsupportedKerasModel(f"loss {kind!r}: not supported ({', '.join(LOSS_CLASSES)} are)")
    _neutral(f"loss {kind}", config, {**LOSS_NEUTRAL, "axis": (LOSS_CLASSES[spec_type].keras_axis,)})
    options = _fields(LOSS_CLASSES[spec_type], config)
    defaults = {key: info.default for key, info in LOSS_CLASSES[spec_type].model_fields.items()}
    options = {key: value for key, value in options.items() if value != defaults.get(key)}
    return {"type": spec_type, **options} if options else spec_type


def _plain(value: Any) -> Any:
    """Keras writes float32 hyper-parameters (0.0010000000474974513): keep the float32 value's shortest spelling."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float):
        import numpy as np

        return float(str(np.float32(value)))
    return value
