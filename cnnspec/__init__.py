"""cnnspec: define a convolutional network once, run it in PyTorch, Keras and ONNX Runtime.

>>> import cnnspec
>>> spec = cnnspec.load_spec("specs/mnist_cnn.yaml")          # doctest: +SKIP
>>> print(spec.summary())                                    # doctest: +SKIP

Every name is imported on first use (PEP 562), so ``import cnnspec`` costs almost
nothing and a framework loads only when a backend is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

# public name -> module that defines it
_EXPORTS = {
    **dict.fromkeys(
        [
            "BackendUnavailable",
            "CnnspecError",
            "DataError",
            "ModelError",
            "ModelFileError",
            "RunError",
            "SpecError",
            "SpecIssue",
            "WeightsError",
        ],
        ".errors",
    ),
    **dict.fromkeys(["load_spec", "dump_spec"], ".load"),
    **dict.fromkeys(["build", "evaluate", "predict"], ".api"),
    **dict.fromkeys(["load_run", "Run", "RunSettings"], ".runs"),
    "Model": ".model",
    "train": ".driver",
    **dict.fromkeys(["TrainResult", "TrainingInterrupted"], ".epoch_loop"),
    **dict.fromkeys(["load_data", "Dataset"], ".data"),
    **dict.fromkeys(["export_onnx", "ExportReport"], ".export"),
    **dict.fromkeys(["export_keras", "export_torch", "NativeExportReport"], ".native_export"),
    **dict.fromkeys(["import_keras", "UnsupportedKerasModel"], ".keras_import"),
    **dict.fromkeys(["run_parity", "ParityReport"], ".parity"),
    "Predictor": ".predictor",
    "Picture": ".display",
    **dict.fromkeys(["load_weights", "save_weights", "initial_weights"], ".weights"),
    **dict.fromkeys(["ShapeReport", "infer_shapes"], ".shapes"),
    "check_resources": ".resources",
    **dict.fromkeys(
        [
            "Adam",
            "AdamW",
            "CategoricalCrossentropy",
            "CosineDecay",
            "EarlyStopping",
            "ExponentialDecay",
            "ModelSpec",
            "PiecewiseConstantDecay",
            "ReduceLROnPlateau",
            "RMSprop",
            "SGD",
            "SparseCategoricalCrossentropy",
            "TrainingSpec",
        ],
        ".spec",
    ),
    "LayerSpec": ".layers",
    "register_layer": ".registry",
}

if TYPE_CHECKING:
    from .api import build, evaluate, predict
    from .data import Dataset, load_data
    from .display import Picture
    from .driver import train
    from .epoch_loop import TrainingInterrupted, TrainResult
    from .errors import (
        BackendUnavailable,
        CnnspecError,
        DataError,
        ModelError,
        ModelFileError,
        RunError,
        SpecError,
        SpecIssue,
        WeightsError,
    )
    from .export import ExportReport, export_onnx
    from .keras_import import UnsupportedKerasModel, import_keras
    from .layers import *  # noqa: F403  (every registered layer class)
    from .load import dump_spec, load_spec
    from .model import Model
    from .native_export import NativeExportReport, export_keras, export_torch
    from .parity import ParityReport, run_parity
    from .predictor import Predictor
    from .registry import register_layer
    from .resources import check_resources
    from .runs import Run, RunSettings, load_run
    from .shapes import ShapeReport, infer_shapes
    from .spec import (
        SGD,
        Adam,
        AdamW,
        CategoricalCrossentropy,
        CosineDecay,
        EarlyStopping,
        ExponentialDecay,
        ModelSpec,
        PiecewiseConstantDecay,
        ReduceLROnPlateau,
        RMSprop,
        SparseCategoricalCrossentropy,
        TrainingSpec,
    )
    from .weights import initial_weights, load_weights, save_weights


def _layer_classes() -> dict[str, Any]:
    """The registered layer classes by class name (importing the spec registers them)."""
    from .registry import LAYER_CLASSES
    from .spec import ModelSpec  # noqa: F401

    return {cls.__name__: cls for cls in LAYER_CLASSES.values()}


def __getattr__(name: str) -> Any:
    if name == "__all__":  # asked for by `from cnnspec import *`: the layer classes come from the registry
        value: Any = sorted([*_EXPORTS, *_layer_classes()])
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    elif not name.startswith("_") and name[:1].isupper() and name in _layer_classes():
        value = _layer_classes()[name]
    elif name.isidentifier() and name.islower() and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a submodule: cnnspec.data, cnnspec.pictures ...
    else:
        raise AttributeError(f"module 'cnnspec' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_layer_classes()})
