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
from typing import TYPE_CHECKING, Any

from ..errors import CnnspecError, ModelFileError
from ..layers.keras_config import UnsupportedKerasModel
from ..registry import LAYER_CLASSES
from .files import SUFFIXES, KerasDocument, read_keras_file
from .graph import _evaluation_order, _inbound, _input_shape, _layer_list
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
    entries, name = _layer_list(model)
    input_name = (
        entries[0].get("config", {}).get("name") if entries and entries[0].get("class_name") == "InputLayer" else None
    )
    input_shape, entries = _input_shape(entries)
    functional = model.get("class_name") != "Sequential"
    converted: dict[str, tuple[dict[str, Any], list[str]]] = {}  # name -> (fields, the layers it reads)
    previous = "input"
    for entry in entries:
        # cnnspec's own Keras layers are registered as "cnnspec>MinPooling2D" (how .h5 files name them)
        kind = str(entry.get("class_name", "?")).removeprefix("cnnspec>")
        config = dict(entry.get("config", {}))
        layer_name = config.get("name", "?")
        layer_type = keras_types().get(kind)
        if layer_type is None:
            why = (
                "runs arbitrary code, which cnnspec never loads" if kind == "Lambda" else "no spec layer type means it"
            )
            raise UnsupportedKerasModel(f"layer {layer_name!r} ({kind}): class: {kind} is not supported: {why}")
        fields = layer_type.from_keras(kind, config)
        sources = ["input" if s == input_name else s for s in _inbound(entry)] if functional else [previous]
        converted[layer_name] = (fields, sources or [previous])
        previous = layer_name
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
        weights = _weights_from_file(weights_path, spec) if weights_path is not None else None
    else:
        weights = _weights_of(model, spec)
    if run is not None:
        if weights is None:
            raise CnnspecError(f"{model}: a model config without weights cannot make a run; save the whole model")
        write_imported_run(spec, weights, run, data)
    return spec, weights


def _weights_from_file(path: Path, spec: ModelSpec) -> Weights:
    from ..backends import load_backend

    keras_backend = load_backend("keras")  # imports TensorFlow quietly; registers cnnspec's own Keras layers
    import keras

    try:
        model = keras.models.load_model(
            path, compile=False, safe_mode=True, custom_objects=keras_backend.CUSTOM_OBJECTS
        )
    except Exception as err:  # Keras raises many kinds for a damaged file; all mean the same to the user
        raise ModelFileError(f"{path}: Keras could not load its weights: {err}") from None
    return _weights_of(model, spec)


def _weights_of(model: Any, spec: ModelSpec) -> Weights:
    from ..backends import load_backend

    keras_backend = load_backend("keras")
    model._cnnspec_spec = spec  # how the Keras backend finds canonical names in a model
    return keras_backend.get_weights(model)


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
