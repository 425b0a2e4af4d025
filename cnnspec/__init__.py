"""cnnspec: define a convolutional network once, run it in PyTorch, Keras and ONNX Runtime.

>>> import cnnspec
>>> spec = cnnspec.load_spec("specs/mnist_cnn.yaml")          # doctest: +SKIP
>>> print(spec.summary())                                    # doctest: +SKIP

Every name is imported on first use (PEP 562), so ``import cnnspec`` costs almost
nothing and a framework loads only when a backend is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    **dict.fromkeys(
        ["BackendUnavailable", "CnnspecError", "DataError", "ModelFileError", "RunError", "SpecError", "SpecIssue",
         "WeightsError"],
        ".errors",
    ),
    **dict.fromkeys(["load_spec", "dump_spec"], ".load"),
    **dict.fromkeys(["build", "evaluate", "predict", "load_run"], ".api"),
    **dict.fromkeys(["train", "TrainResult", "TrainingInterrupted"], ".train"),
    **dict.fromkeys(["load_data", "Dataset"], ".data"),
    **dict.fromkeys(["export_onnx", "ExportReport"], ".export"),
    **dict.fromkeys(["run_parity", "ParityReport"], ".parity"),
    "Predictor": ".predictor",
    **dict.fromkeys(["load_weights", "save_weights", "initial_weights"], ".weights"),
    **dict.fromkeys(["ShapeReport", "infer_shapes"], ".shapes"),
    "check_resources": ".resources",
    **dict.fromkeys(
        [
            "Activation", "Adam", "AvgPool2D", "BatchNorm", "Conv2D", "Dense", "Dropout", "EarlyStopping",
            "Flatten", "GlobalAvgPool2D", "GlobalMaxPool2D", "MaxPool2D", "MinPool2D", "ModelSpec", "RMSprop",
            "SGD", "SumPool2D", "TrainingSpec",
        ],  # fmt: skip
        ".spec",
    ),
}

if TYPE_CHECKING:
    from .errors import (
        BackendUnavailable, CnnspecError, DataError, ModelFileError, RunError, SpecError, SpecIssue, WeightsError,
    )  # fmt: skip
    from .api import build, evaluate, load_run, predict
    from .data import Dataset, load_data
    from .export import ExportReport, export_onnx
    from .load import dump_spec, load_spec
    from .parity import ParityReport, run_parity
    from .predictor import Predictor
    from .train import TrainingInterrupted, TrainResult, train
    from .weights import initial_weights, load_weights, save_weights
    from .resources import check_resources
    from .shapes import ShapeReport, infer_shapes
    from .spec import (
        SGD, Activation, Adam, AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, EarlyStopping, Flatten,
        GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D, MinPool2D, ModelSpec, RMSprop, SumPool2D, TrainingSpec,
    )  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cnnspec' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
