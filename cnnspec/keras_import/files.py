"""Reading a Keras file's configuration: ``.keras`` (config.json in a zip), ``.h5`` (``model_config``) or
``model.to_json()``. Nothing is deserialised: the configs are JSON, read as such."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ModelFileError

SUFFIXES = (".keras", ".h5", ".hdf5", ".json")


@dataclass(frozen=True)
class KerasDocument:
    """What a Keras file says: the model config, the compile config (if any), and where the weights are."""

    model: dict[str, Any]
    compile: dict[str, Any] | None
    path: Path | None  # a file Keras can load the weights from (None: a config without weights)


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
