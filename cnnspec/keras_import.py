"""Keras models -> a spec and canonical weights (``cnnspec import keras``).

The model's *configuration* is read as JSON (``config.json`` inside a ``.keras``
zip, the ``model_config`` attribute of an ``.h5`` file, or a ``model.to_json()``
file) and translated layer by layer with the table below, before Keras is asked
to load anything. A layer class or argument the spec cannot express is refused
then, naming the layer, its class and the argument, so Keras never deserialises
a ``Lambda`` or a custom layer: only files whose every layer passed are loaded,
in Keras's safe mode, to read their weights.

>>> spec, weights = import_keras("model.keras")                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import CnnspecError, ModelFileError
from .fields import ACTIVATIONS

if TYPE_CHECKING:
    from .spec import ModelSpec
    from .weights import Weights

SUFFIXES = (".keras", ".h5", ".hdf5", ".json")


class UnsupportedKerasModel(CnnspecError):
    """A Keras model with a layer, argument or graph the spec cannot express."""


@dataclass(frozen=True)
class KerasDocument:
    """What a Keras file says: the model config, the compile config (if any), and where the weights are."""

    model: dict[str, Any]
    compile: dict[str, Any] | None
    path: Path | None  # a file Keras can load the weights from (None: a config without weights)


# -- reading files -------------------------------------------------------------------------
def read_keras_file(path: str | Path) -> KerasDocument:
    """The configs of a ``.keras``, ``.h5`` or ``to_json()`` file; nothing is deserialised."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[Path], KerasDocument]] = {
        ".keras": _read_zip,
        ".h5": _read_h5,
        ".hdf5": _read_h5,
        ".json": _read_json,
    }
    if suffix not in readers:
        raise ModelFileError(f"{path}: not a Keras model file (expected one of {', '.join(SUFFIXES)})")
    try:
        return readers[suffix](path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"{path}: not a readable Keras {suffix} file: {err}") from None


def _read_zip(path: Path) -> KerasDocument:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    return KerasDocument(config, config.get("compile_config"), path)


def _read_h5(path: Path) -> KerasDocument:
    import h5py  # installed with TensorFlow/Keras

    with h5py.File(path, "r") as handle:
        model = _json_attr(handle.attrs.get("model_config"))
        training = _json_attr(handle.attrs.get("training_config"))
    if model is None:
        raise ValueError("it holds weights only (no model_config); save the whole model")
    return KerasDocument(model, _legacy_compile(training), path)


def _json_attr(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value.decode() if isinstance(value, bytes) else value)


def _legacy_compile(training: dict[str, Any] | None) -> dict[str, Any] | None:
    """tf.keras/Keras 2 ``training_config`` -> Keras 3's ``compile_config`` shape."""
    if not training:
        return None
    return {"optimizer": training.get("optimizer_config"), "loss": training.get("loss")}


def _read_json(path: Path) -> KerasDocument:
    return KerasDocument(json.loads(path.read_text()), None, None)


# -- the graph: a straight chain of layers ----------------------------------------------------
def _layer_list(model: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The model's layers in order; a functional model's must have one input and end in its one output."""
    kind, config = model.get("class_name"), model.get("config", {})
    if kind not in ("Sequential", "Functional", "Model"):
        raise UnsupportedKerasModel(f"model class {kind!r} is not supported (a Sequential or Functional model is)")
    layers = list(config.get("layers", []))
    if kind != "Sequential":
        inputs, outputs = _flat_names(config.get("input_layers")), _flat_names(config.get("output_layers"))
        last = layers[-1]["config"].get("name") if layers else None
        if len(inputs) > 1 or len(outputs) > 1:
            raise UnsupportedKerasModel(f"the model has inputs {inputs} and outputs {outputs}: a spec has one of each")
        if outputs and outputs != [last]:
            raise UnsupportedKerasModel(f"the model's output is {outputs}, not its last layer {last!r}")
        for layer in layers:
            if len(layer.get("inbound_nodes", [])) > 1:
                name = layer["config"].get("name")
                raise UnsupportedKerasModel(
                    f"layer {name!r} ({layer['class_name']}) is called more than once (a shared layer)"
                )
    return layers, config.get("name") or "model"


def _inbound(layer: dict[str, Any]) -> list[str]:
    """Names of the layers feeding ``layer``, in Keras 3's and in tf.keras's config formats."""
    names: list[str] = []
    for node in layer.get("inbound_nodes", []):
        if isinstance(node, dict):  # Keras 3: {"args": [keras tensor(s)], "kwargs": {}}
            names += _history_names(node.get("args", []))
        else:  # tf.keras: [[name, node, tensor, kwargs], ...]
            names += [entry[0] for entry in node]
    return names


def _history_names(value: Any) -> list[str]:
    if isinstance(value, dict):
        history = value.get("config", {}).get("keras_history")
        return [history[0]] if history else []
    if isinstance(value, list):
        return [name for item in value for name in _history_names(item)]
    return []


def _flat_names(value: Any) -> list[str]:
    """``output_layers``: [[name, 0, 0], ...] or [name, 0, 0]."""
    if not value:
        return []
    entries = value if isinstance(value[0], list) else [value]
    return [entry[0] for entry in entries]


# -- layers ----------------------------------------------------------------------------------
class _Layer:
    """One Keras layer's config, read argument by argument so that nothing goes unexamined."""

    def __init__(self, entry: dict[str, Any]):
        # cnnspec's own Keras layers are registered as "cnnspec>MinPooling2D" (how .h5 files name them)
        self.kind = str(entry.get("class_name", "?")).removeprefix("cnnspec>")
        self.config = dict(entry.get("config", {}))
        self.name = self.config.get("name", "?")
        self.used = {"name", "trainable", "dtype", "seed"} | _IGNORED

    def take(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.config.get(key, default)

    def refuse(self, argument: str, why: str) -> UnsupportedKerasModel:
        return UnsupportedKerasModel(f"layer {self.name!r} ({self.kind}): {argument}: {why}")

    def require(self, key: str, *allowed: Any) -> None:
        """An argument the spec has no field for: only Keras's default (or an equivalent) can be imported."""
        value = self.take(key, allowed[0])
        if value not in allowed:
            raise self.refuse(f"{key}={value!r}", f"cannot be expressed in a spec (only {allowed[0]!r} can)")

    def finish(self) -> None:
        if self.config.get("trainable", True) is False:
            raise self.refuse("trainable=False", "frozen layers cannot be expressed in a spec")
        for key, value in self.config.items():
            if key not in self.used and value not in (None, False, {}, []):
                raise self.refuse(f"{key}={value!r}", "this argument is not supported")


# Initial values do not matter once weights are imported (and cnnspec initialises as Keras's defaults).
_IGNORED = {
    "kernel_initializer",
    "bias_initializer",
    "depthwise_initializer",
    "pointwise_initializer",
    "beta_initializer",
    "gamma_initializer",
    "moving_mean_initializer",
    "moving_variance_initializer",
    "registered_name",
    "build_config",
    "quantization_config",
}


def _activation(layer: _Layer, key: str = "activation") -> str:
    value = layer.take(key, "linear")
    if isinstance(value, dict):  # a serialised function: {"class_name": "function", "config": "relu", ...}
        value = value.get("config")
    if value is None:
        value = "linear"
    if value not in ACTIVATIONS:
        raise layer.refuse(f"{key}={value!r}", f"not one of the spec's activations ({', '.join(ACTIVATIONS)})")
    return str(value)


def _regularizer(layer: _Layer, key: str) -> dict[str, float] | None:
    value = layer.take(key)
    if value is None:
        return None
    kind, config = value.get("class_name"), value.get("config", {})
    if kind not in ("L1", "L2", "L1L2"):
        raise layer.refuse(f"{key}={kind}", "only L1, L2 and L1L2 regularizers can be expressed")
    return {"l1": float(config.get("l1", 0.0)), "l2": float(config.get("l2", 0.0))}


def _channels_last(layer: _Layer) -> None:
    layer.require("data_format", "channels_last", None)


def _window(layer: _Layer, size_key: str) -> dict[str, Any]:
    _channels_last(layer)
    strides = layer.take("strides")
    window = {size_key: list(layer.take(size_key)), "padding": layer.take("padding", "valid")}
    return {**window, "strides": list(strides)} if strides is not None else window


def _convolution(layer: _Layer, *regularizers: str) -> dict[str, Any]:
    layer.require("groups", 1)
    for key in (
        "kernel_constraint",
        "bias_constraint",
        "depthwise_constraint",
        "pointwise_constraint",
        "activity_regularizer",
        "lora_rank",
    ):
        layer.require(key, None)
    fields = {
        **_window(layer, "kernel_size"),
        "dilation_rate": list(layer.take("dilation_rate", [1, 1])),
        "activation": _activation(layer),
        "use_bias": layer.take("use_bias", True),
    }
    for key in ("bias_regularizer", *regularizers):
        rule = _regularizer(layer, key)
        if rule is not None:
            fields[key] = rule
    if "lora_alpha" in layer.config:
        layer.take("lora_alpha")
    return fields


def _conv2d(layer: _Layer) -> dict[str, Any]:
    return {"type": "conv2d", "filters": layer.take("filters"), **_convolution(layer, "kernel_regularizer")}


def _depthwise_conv2d(layer: _Layer) -> dict[str, Any]:
    layer.take("filters")  # Keras 3 writes filters=None for DepthwiseConv2D
    fields = _convolution(layer, "depthwise_regularizer")
    return {"type": "depthwise_conv2d", "depth_multiplier": layer.take("depth_multiplier", 1), **fields}


def _separable_conv2d(layer: _Layer) -> dict[str, Any]:
    fields = _convolution(layer, "depthwise_regularizer", "pointwise_regularizer")
    return {
        "type": "separable_conv2d",
        "filters": layer.take("filters"),
        "depth_multiplier": layer.take("depth_multiplier", 1),
        **fields,
    }


def _pool(kind: str) -> Callable[[_Layer], dict[str, Any]]:
    def convert(layer: _Layer) -> dict[str, Any]:
        return {"type": kind, **_window(layer, "pool_size")}

    return convert


def _global_pool(kind: str) -> Callable[[_Layer], dict[str, Any]]:
    def convert(layer: _Layer) -> dict[str, Any]:
        _channels_last(layer)
        layer.require("keepdims", False)
        return {"type": kind}

    return convert


def _batch_norm(layer: _Layer) -> dict[str, Any]:
    layer.require("axis", -1, 3, [-1], [3])
    for key in ("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"):
        layer.require(key, None)
    layer.require("synchronized", False)
    layer.require("renorm", False)
    for key in ("renorm_clipping", "renorm_momentum"):
        layer.take(key)
    return {
        "type": "batch_norm",
        "momentum": float(layer.take("momentum", 0.99)),
        "epsilon": float(layer.take("epsilon", 0.001)),
        "center": layer.take("center", True),
        "scale": layer.take("scale", True),
    }


def _dropout(layer: _Layer) -> dict[str, Any]:
    layer.require("noise_shape", None)
    return {"type": "dropout", "rate": float(layer.take("rate"))}


def _flatten(layer: _Layer) -> dict[str, Any]:
    _channels_last(layer)
    return {"type": "flatten"}


def _dense(layer: _Layer) -> dict[str, Any]:
    for key in ("kernel_constraint", "bias_constraint", "activity_regularizer", "lora_rank"):
        layer.require(key, None)
    fields: dict[str, Any] = {
        "type": "dense",
        "units": layer.take("units"),
        "activation": _activation(layer),
        "use_bias": layer.take("use_bias", True),
    }
    for key in ("kernel_regularizer", "bias_regularizer"):
        rule = _regularizer(layer, key)
        if rule is not None:
            fields[key] = rule
    if "lora_alpha" in layer.config:
        layer.take("lora_alpha")
    return fields


def _activation_layer(layer: _Layer) -> dict[str, Any]:
    return {"type": "activation", "activation": _activation(layer)}


def _rescaling(layer: _Layer) -> dict[str, Any]:
    scale, offset = layer.take("scale"), layer.take("offset", 0.0)
    if not isinstance(scale, (int, float)) or not isinstance(offset, (int, float)):
        raise layer.refuse("scale/offset", "only one number each (not per channel) can be expressed")
    return {"type": "rescaling", "scale": float(scale), "offset": float(offset)}


def _zero_padding(layer: _Layer) -> dict[str, Any]:
    _channels_last(layer)
    return {"type": "zero_padding2d", "padding": layer.take("padding", 1)}


def _augmentation(kind: str, *fields: str) -> Callable[[_Layer], dict[str, Any]]:
    """Keras's Random* layers: their factors and fill mode; bilinear interpolation and the 0-255 range only."""

    def convert(layer: _Layer) -> dict[str, Any]:
        _channels_last(layer)
        layer.require("interpolation", "bilinear")
        layer.require("value_range", [0, 255], (0, 255))
        values = {key: layer.take(key) for key in fields if layer.config.get(key) is not None}
        return {"type": kind, **{key: list(v) if isinstance(v, tuple) else v for key, v in values.items()}}

    return convert


_RESAMPLING = ("fill_mode", "fill_value")


def _concatenate(layer: _Layer) -> dict[str, Any]:
    layer.require("axis", -1, 3)
    return {"type": "concatenate"}


# Keras class -> spec layer. The cnnspec pools (and cnnspec's explicit-window convolutions, which TensorFlow
# needs for a few geometries) are cnnspec's own registered Keras layers with Keras's configs.
CONVERTERS: dict[str, Callable[[_Layer], dict[str, Any]]] = {
    "Conv2D": _conv2d,
    "SingleWindowConv2D": _conv2d,
    "DepthwiseConv2D": _depthwise_conv2d,
    "ExplicitWindowDepthwiseConv2D": _depthwise_conv2d,
    "SeparableConv2D": _separable_conv2d,
    "ExplicitWindowSeparableConv2D": _separable_conv2d,
    "RandomFlip": _augmentation("random_flip", "mode"),
    "RandomTranslation": _augmentation("random_translation", "height_factor", "width_factor", *_RESAMPLING),
    "RandomRotation": _augmentation("random_rotation", "factor", *_RESAMPLING),
    "RandomZoom": _augmentation("random_zoom", "height_factor", "width_factor", *_RESAMPLING),
    "RandomContrast": _augmentation("random_contrast", "factor"),
    "MaxPooling2D": _pool("max_pool2d"),
    "AveragePooling2D": _pool("avg_pool2d"),
    "MinPooling2D": _pool("min_pool2d"),
    "SumPooling2D": _pool("sum_pool2d"),
    "GlobalAveragePooling2D": _global_pool("global_avg_pool2d"),
    "GlobalMaxPooling2D": _global_pool("global_max_pool2d"),
    "BatchNormalization": _batch_norm,
    "Dropout": _dropout,
    "Flatten": _flatten,
    "Dense": _dense,
    "Activation": _activation_layer,
    "Rescaling": _rescaling,
    "ZeroPadding2D": _zero_padding,
    "Add": lambda layer: {"type": "add"},
    "Concatenate": _concatenate,
}


def _input_shape(entries: list[dict[str, Any]]) -> tuple[list[int], list[dict[str, Any]]]:
    """(H, W, C) from the InputLayer (or the first layer's ``batch_input_shape``), and the other layers."""
    first = entries[0] if entries else {}
    config = first.get("config", {})
    rest = entries[1:] if first.get("class_name") == "InputLayer" else entries
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if shape is None and "input_shape" in config:
        shape = [None, *config["input_shape"]]
    if not shape:
        raise UnsupportedKerasModel("the model has no input shape (build it, or give the first layer input_shape)")
    if len(shape) != 4 or any(not isinstance(d, int) for d in shape[1:]):
        raise UnsupportedKerasModel(
            f"input shape {shape[1:]}: a spec's input is (height, width, channels) with fixed sizes"
        )
    return list(shape[1:]), rest


def spec_document(model: dict[str, Any], compile_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec (a plain dict) equivalent to a Keras model config; ``UnsupportedKerasModel`` names what cannot be.

    A functional model's connections become ``inputs`` where a layer reads anything but the layer before it.
    """
    if not isinstance(model, dict) or not isinstance(model.get("config", {}), dict):
        raise UnsupportedKerasModel("not a Keras model configuration (expected a mapping with class_name and config)")
    try:
        return _spec_document(model, compile_config)
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as err:  # a damaged or hand-edited config
        raise UnsupportedKerasModel(f"the model configuration is malformed ({type(err).__name__}: {err})") from None


def _spec_document(model: dict[str, Any], compile_config: dict[str, Any] | None) -> dict[str, Any]:
    entries, name = _layer_list(model)
    input_name = (
        entries[0].get("config", {}).get("name") if entries and entries[0].get("class_name") == "InputLayer" else None
    )
    input_shape, entries = _input_shape(entries)
    functional = model.get("class_name") != "Sequential"
    converted: dict[str, tuple[dict[str, Any], list[str]]] = {}  # name -> (fields, the layers it reads)
    previous = "input"
    for entry in entries:
        layer = _Layer(entry)
        convert = CONVERTERS.get(layer.kind)
        if convert is None:
            why = (
                "runs arbitrary code, which cnnspec never loads"
                if layer.kind == "Lambda"
                else "no spec layer type means it"
            )
            raise layer.refuse("class", f"{layer.kind} is not supported: {why}")
        fields = convert(layer)
        layer.finish()
        sources = ["input" if s == input_name else s for s in _inbound(entry)] if functional else [previous]
        converted[layer.name] = (fields, sources or [previous])
        previous = layer.name
    layers = []
    previous = "input"
    for layer_name in _evaluation_order(converted, previous_name=previous):
        fields, sources = converted[layer_name]
        layers.append({**fields, "name": layer_name, **({"inputs": sources} if sources != [previous] else {})})
        previous = layer_name
    document: dict[str, Any] = {"name": name, "input_shape": input_shape, "layers": layers}
    training = _training(compile_config)
    if training:
        document["training"] = training
    return document


def _evaluation_order(layers: dict[str, tuple[dict[str, Any], list[str]]], previous_name: str) -> list[str]:
    """The layers in the order a spec writes them: each after its inputs, a branch's inputs in order.

    Keras saves a functional model's layers in an order of its own (by depth); this one is what a
    person writes (a block's main path, then its shortcut, then the merge), so a spec round-trips.
    """
    order: list[str] = []
    placed = {"input"}
    last = next(reversed(layers)) if layers else previous_name
    stack: list[tuple[str, bool]] = [(last, False)]
    while stack:  # depth-first, emitting a layer once all its inputs are out (no recursion limit on deep nets)
        name, expanded = stack.pop()
        if name in placed:
            continue
        if expanded:
            placed.add(name)
            order.append(name)
            continue
        stack.append((name, True))
        stack.extend((source, False) for source in reversed(layers[name][1]) if source not in placed)
    return order


# -- training --------------------------------------------------------------------------------
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


# -- the public entry points ------------------------------------------------------------------
def import_keras(model: Any, name: str | None = None) -> tuple[ModelSpec, Weights | None]:
    """(spec, canonical weights) of a Keras model: a ``keras.Model`` or a ``.keras``/``.h5``/``.json`` path.

    Weights are ``None`` for a ``to_json()`` file (a config has none). Nothing is loaded
    by Keras unless every layer translates.
    """
    from .load import load_spec

    if isinstance(model, (str, Path)):
        document = read_keras_file(model)
        config, compile_config, weights_path = document.model, document.compile, document.path
    else:  # an in-memory keras.Model
        config = {"class_name": type(model).__name__, "config": model.get_config()}
        compile_config = model.get_compile_config() if getattr(model, "compiled", False) else None
        weights_path = None
    spec_doc = spec_document(config, compile_config)
    if name is not None:
        spec_doc["name"] = name
    spec = load_spec(spec_doc)
    if isinstance(model, (str, Path)):
        weights = _weights_from_file(weights_path, spec) if weights_path is not None else None
    else:
        weights = _weights_of(model, spec)
    return spec, weights


def _weights_from_file(path: Path, spec: ModelSpec) -> Weights:
    from .backends import load_backend

    load_backend("keras")  # imports TensorFlow quietly and registers cnnspec's own Keras layers (min/sum pooling)
    import keras

    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many kinds for a damaged file; all mean the same to the user
        raise ModelFileError(f"{path}: Keras could not load its weights: {err}") from None
    return _weights_of(model, spec)


def _weights_of(model: Any, spec: ModelSpec) -> Weights:
    from .backends import load_backend

    keras_backend = load_backend("keras")
    model._cnnspec_spec = spec  # how the Keras backend finds canonical names in a model
    return keras_backend.get_weights(model)


def write_imported_run(spec: ModelSpec, weights: Weights, run_dir: str | Path, data: str = "digits") -> Path:
    """A run directory holding the imported weights: evaluate, export, report and parity work on it, and
    ``cnnspec train --resume DIR`` fine-tunes it (its checkpoint is "epoch 0": these weights, a fresh optimizer)."""
    import platform

    from . import __version__
    from .runs import RunPaths, RunSettings, write_json
    from .weights import save_arrays, save_weights, spec_hash

    paths = RunPaths(Path(run_dir))
    if paths.root.exists() and any(paths.root.iterdir()):
        raise CnnspecError(f"{paths.root} is not empty; pick a new --run directory")
    training = spec.training
    settings = RunSettings(
        backend="keras",
        data=data,
        epochs=training.epochs,
        batch_size=training.batch_size,
        learning_rate=training.optimizer.initial_learning_rate,
        seed=training.seed,
        validation_split=training.validation_split,
        precision="fp32",
        precision_reason="imported from Keras",
    )
    # spec and settings first (what makes it a run directory), the checkpoint state last (its commit point)
    write_json(paths.spec, spec.to_dict())
    write_json(
        paths.run,
        {
            "settings": settings.to_json(),
            "spec_hash": spec_hash(spec),
            "cnnspec": __version__,
            "python": platform.python_version(),
            "imported": True,
            "class_names": spec.class_names,
        },
    )
    save_weights(paths.weights, weights, spec)
    save_weights(paths.epoch_file(0, "model"), weights, spec)
    save_arrays(paths.epoch_file(0, "optimizer"), {})
    write_json(
        paths.state, {"epoch": 0, "best_epoch": 0, "best_value": None, "monitor_best": None, "wait": 0, "history": {}}
    )
    return paths.root
