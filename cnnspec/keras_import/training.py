"""A compiled Keras model's training setup: ``training.optimizer`` and ``training.loss`` of the spec."""

from __future__ import annotations

from typing import Any

from ..layers.keras_config import UnsupportedKerasModel

_OPTIMIZER_FIELDS = {
    "Adam": ("adam", ("learning_rate", "beta_1", "beta_2", "epsilon")),
    "AdamW": ("adamw", ("learning_rate", "beta_1", "beta_2", "epsilon")),
    "SGD": ("sgd", ("learning_rate", "momentum", "nesterov")),
    "RMSprop": ("rmsprop", ("learning_rate", "rho", "momentum", "epsilon", "centered")),
}
# Keras optimizer arguments with no spec field: importable only at their defaults
_OPTIMIZER_DEFAULTS = {
    "amsgrad": False,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
    "use_ema": False,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}
# Keras schedule class -> (spec type, its fields)
_SCHEDULES = {
    "ExponentialDecay": ("exponential_decay", ("initial_learning_rate", "decay_steps", "decay_rate", "staircase")),
    "CosineDecay": ("cosine_decay", ("initial_learning_rate", "decay_steps", "alpha")),
    "PiecewiseConstantDecay": ("piecewise_constant_decay", ("boundaries", "values")),
}
_LOSSES = {
    "categorical_crossentropy": "categorical_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
}


def _training(compile_config: dict[str, Any] | None) -> dict[str, Any]:
    """``training.optimizer`` and ``training.loss`` from a compiled model; the rest keeps the spec's defaults."""
    if not compile_config:
        return {}
    training: dict[str, Any] = {}
    optimizer = compile_config.get("optimizer")
    if optimizer is not None:
        training["optimizer"] = _optimizer(optimizer)
    loss = compile_config.get("loss")
    if loss is not None:
        training["loss"] = _loss(loss)
    return training


def _optimizer(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"class_name": value, "config": {}}
    kind = value.get("class_name")
    kind = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}.get(kind, kind)
    if kind not in _OPTIMIZER_FIELDS:
        raise UnsupportedKerasModel(f"optimizer {kind}: not supported ({', '.join(_OPTIMIZER_FIELDS)} are)")
    spec_type, fields = _OPTIMIZER_FIELDS[kind]
    config = value.get("config", {})
    for key, default in _OPTIMIZER_DEFAULTS.items():
        # 0 and 1 accumulation steps both mean "every batch"
        harmless = (default, 0, 0.0, 1) if key == "gradient_accumulation_steps" else (default, 0, 0.0)
        if config.get(key, default) not in harmless or (key == "amsgrad" and config.get(key)):
            raise UnsupportedKerasModel(f"optimizer {kind}: {key}={config[key]!r} cannot be expressed in a spec")
    fields_out = {"type": spec_type, **{key: _plain(config[key]) for key in fields if key in config}}
    if config.get("weight_decay") is not None:
        fields_out["weight_decay"] = _plain(config["weight_decay"])
    rate = config.get("learning_rate")
    if isinstance(rate, dict):
        fields_out["learning_rate"] = _schedule(kind, rate)
    return fields_out


def _schedule(optimizer: str, value: dict[str, Any]) -> dict[str, Any]:
    kind, config = value.get("class_name"), value.get("config", {})
    if kind not in _SCHEDULES:
        raise UnsupportedKerasModel(f"optimizer {optimizer}: learning-rate schedule {kind} is not supported")
    if kind == "CosineDecay" and (config.get("warmup_steps") or config.get("warmup_target") is not None):
        raise UnsupportedKerasModel(f"optimizer {optimizer}: CosineDecay warm-up cannot be expressed in a spec")
    spec_type, fields = _SCHEDULES[kind]
    return {"type": spec_type, **{key: _plain_all(config[key]) for key in fields if key in config}}


def _plain_all(value: Any) -> Any:
    return [_plain(item) for item in value] if isinstance(value, list) else _plain(value)


def _plain(value: Any) -> Any:
    """Keras writes float32 hyper-parameters (0.0010000000474974513): keep the float32 value's shortest spelling."""
    if isinstance(value, float):
        import numpy as np

        return float(str(np.float32(value)))
    return value


def _loss(value: Any) -> Any:
    kind = value if isinstance(value, str) else value.get("class_name")
    config = {} if isinstance(value, str) else value.get("config", {})
    if kind not in _LOSSES:
        raise UnsupportedKerasModel(f"loss {kind!r}: not supported (categorical or sparse categorical cross-entropy)")
    for key, default in (("axis", -1), ("reduction", "sum_over_batch_size"), ("ignore_class", None)):
        if config.get(key, default) != default:
            raise UnsupportedKerasModel(f"loss {kind}: {key}={config[key]!r} cannot be expressed in a spec")
    options = {
        "from_logits": bool(config.get("from_logits", False)),
        "label_smoothing": _plain(config.get("label_smoothing", 0.0)),
    }
    if options == {"from_logits": False, "label_smoothing": 0.0}:
        return _LOSSES[kind]
    return {"type": _LOSSES[kind], **options}
