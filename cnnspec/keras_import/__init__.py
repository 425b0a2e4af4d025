"""Keras models -> a spec and canonical weights (``cnnspec import keras``).

The model's *configuration* is read as JSON (``config.json`` inside a ``.keras``
zip, the ``model_config`` attribute of an ``.h5`` file, or a ``model.to_json()``
file) and translated layer by layer by the layer types themselves (each spec class
reads its Keras class's config: ``LayerSpec.from_keras``), before Keras is asked
to load anything. A layer class or argument the spec cannot express is refused
then, naming the layer, its class and the argument, so Keras never deserialises
a ``Lambda`` or a custom layer: only files whose every layer passed are loaded,
in Keras's safe mode, to read their weights.

>>> spec, weights = import_keras("model.keras")                  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import CnnspecError, ModelFileError
from ..layers.keras_config import UnsupportedKerasModel
from ..registry import LAYER_CLASSES
from .files import SUFFIXES, KerasDocument, read_keras_file
from .graph import Node, evaluation_order, flatten
from .training import _training

if TYPE_CHECKING:
    from ..spec import ModelSpec
    from ..weights import Weights

__all__ = ["SUFFIXES", "KerasDocument", "UnsupportedKerasModel", "import_keras", "read_keras_file", "spec_document"]


def keras_types() -> dict[str, type[Any]]:
    """Keras class name -> the spec class that reads its configs (``keras_class`` and ``keras_classes``)."""
    from ..spec import ModelSpec  # noqa: F401  (importing the spec registers every layer type)

    return {kind: cls for cls in LAYER_CLASSES.values() for kind in (cls.keras_class, *cls.keras_classes)}


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
    input_shape, name, nodes = flatten(model)
    converted = {node.name: (_layer_fields(node), node.sources) for node in nodes}
    layers = []
    previous = "input"
    for layer_name in evaluation_order(converted, nodes[-1].name) if nodes else []:
        fields, sources = converted[layer_name]
        layers.append({**fields, "name": layer_name, **({"inputs": sources} if sources != [previous] else {})})
        previous = layer_name
    document: dict[str, Any] = {"name": name, "input_shape": input_shape, "layers": layers}
    training = _training(compile_config)
    if training:
        document["training"] = training
    return document


def _layer_fields(node: Node) -> dict[str, Any]:
    """A node's spec layer (without name and inputs), read by the class that claims its Keras class."""
    if node.op:
        return _op_fields(node)
    layer_type = keras_types().get(node.kind)
    if layer_type is None:
        why = (
            "runs arbitrary code, which cnnspec never loads" if node.kind == "Lambda" else "no spec layer type means it"
        )
        raise UnsupportedKerasModel(f"layer {node.name!r} ({node.kind}): class: {node.kind} is not supported: {why}")
    shape = node.input_shapes[0] if node.input_shapes else None
    return layer_type.from_keras(node.kind, node.config, input_shape=shape)


# keras.ops calls Keras 3 writes into functional graphs: of two tensors, a merge; of a tensor and a number, a
# rescaling (x * scale + offset) whose (scale, offset) each op gives, for the number after or before the tensor
_OP_MERGES = {"Add": "add", "Multiply": "multiply", "Subtract": "subtract", "Maximum": "maximum", "Minimum": "minimum"}
_OP_RESCALINGS: dict[str, Callable[[float, bool], tuple[float, float] | None]] = {
    "Add": lambda c, after: (1.0, c),
    "Multiply": lambda c, after: (c, 0.0),
    "Subtract": lambda c, after: (1.0, -c) if after else (-1.0, c),
    "TrueDivide": lambda c, after: (1.0 / c, 0.0) if after else None,
    "Divide": lambda c, after: (1.0 / c, 0.0) if after else None,
}


def _op_fields(node: Node) -> dict[str, Any]:
    numbers = [c for c in node.constants if c is not None]
    if len(node.sources) >= 2 and not numbers and node.kind in _OP_MERGES:
        return {"type": _OP_MERGES[node.kind]}
    if len(node.sources) == 1 and len(numbers) == 1 and isinstance(numbers[0], (int, float)):
        after = node.constants.index(numbers[0]) > node.constants.index(None)
        rule = _OP_RESCALINGS.get(node.kind)
        factors = rule(float(numbers[0]), after) if rule else None
        if factors is not None:
            return {"type": "rescaling", "scale": factors[0], "offset": factors[1]}
    shown = ", ".join("tensor" if c is None else repr(c) for c in node.constants)
    raise UnsupportedKerasModel(
        f"layer {node.name!r} (keras.ops.{node.kind}({shown})): only add, multiply, subtract, maximum and minimum of "
        "two tensors, or adding, multiplying, subtracting or dividing by one number, can be expressed in a spec"
    )


# -- the public entry points ------------------------------------------------------------------
def import_keras(
    model: Any, name: str | None = None, run: str | Path | None = None, data: str = "digits"
) -> tuple[ModelSpec, Weights | None]:
    """(spec, canonical weights) of a Keras model: a ``keras.Model`` or a ``.keras``/``.h5``/``.json`` path.

    Weights are ``None`` for a ``to_json()`` file (a config has none). Nothing is loaded
    by Keras unless every layer translates. ``run``: also write a run directory there holding the weights
    (``evaluate``, ``export_onnx``, ``report`` and ``train(resume=...)`` work on it), evaluated on ``data``.
    """
    from ..load import load_spec

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
        weights = _weights_from_file(weights_path, spec, config) if weights_path is not None else None
    else:
        weights = _weights_of(model, spec, config)
    if run is not None:
        if weights is None:
            raise CnnspecError(f"{model}: a model config without weights cannot make a run; save the whole model")
        write_imported_run(spec, weights, run, data)
    return spec, weights


def _weights_from_file(path: Path, spec: ModelSpec, config: dict[str, Any]) -> Weights:
    from ..backends import load_backend

    keras_backend = load_backend("keras")  # imports TensorFlow quietly; registers cnnspec's own Keras layers
    import keras

    try:
        model = keras.models.load_model(
            path, compile=False, safe_mode=True, custom_objects=keras_backend.CUSTOM_OBJECTS
        )
    except Exception as err:  # Keras raises many kinds for a damaged file; all mean the same to the user
        raise ModelFileError(f"{path}: Keras could not load its weights: {err}") from None
    return _weights_of(model, spec, config)


def _weights_of(model: Any, spec: ModelSpec, config: dict[str, Any]) -> Weights:
    """The canonical weights of ``spec`` read from the Keras model it was made from: each layer's variables
    from the Keras layer at its path (through nested models), by the attribute its class names, reshaped to the
    spec's layout where only the shape differs (a Dense on an image read as a 1x1 convolution)."""
    import numpy as np

    paths = {node.name: node.path for node in flatten(config)[2]}
    weights: Weights = {}
    for layer, info in zip(spec.layers, spec.summary().layers):
        variables = layer.variables(info.input_shape)
        if not variables:
            continue
        keras_layer = model
        for name in paths[layer.name]:
            keras_layer = keras_layer.get_layer(name)
        for variable, shape in variables.items():
            value = getattr(keras_layer, layer.keras_attributes.get(variable, variable))
            weights[f"{layer.name}/{variable}"] = np.asarray(value.numpy(), np.float32).reshape(shape)
    return weights


def write_imported_run(spec: ModelSpec, weights: Weights, run_dir: str | Path, data: str = "digits") -> Path:
    """A run directory holding the imported weights: evaluate, export, report and parity work on it, and
    ``cnnspec train --resume DIR`` fine-tunes it (its checkpoint is "epoch 0": these weights, a fresh optimizer)."""
    from ..runs import RunPaths, RunSettings, start_run, write_checkpoint

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
    start_run(paths, spec, settings, spec.class_names, imported=True)
    state: dict[str, Any] = {"best_epoch": 0, "best_value": None, "monitor_best": None, "wait": 0, "history": {}}
    write_checkpoint(paths, spec, 0, weights, {}, state, improved=True)
    return paths.root
