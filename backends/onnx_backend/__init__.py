"""The ONNX backend: spec + canonical weights -> ONNX graph, run with ONNX Runtime.

Inference only (``cnnspec export onnx`` and ``Predictor``); it implements the
same ``build`` / ``predict`` / ``layer_outputs`` as the other backends so the
parity suite treats all three alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnspec.spec import ModelSpec
from cnnspec.weights import Weights, check_weights, initial_weights

from .export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, check_model, to_onnx
from .graph import BUILDERS
from .quantize import quantize_int8, to_float16
from .runtime import Predictor, choose_providers, cuda_works, evaluate_file

NAME = "onnx"


@dataclass
class OnnxModel:
    """A spec's ONNX graph with every layer exposed, in an ONNX Runtime session."""

    spec: ModelSpec
    weights: Weights
    predictor: Predictor


def build(
    spec: ModelSpec,
    weights: Weights | None = None,
    seed: int | None = None,
    precision: str = "fp32",
    provider: str | None = "cpu",
) -> OnnxModel:
    weights = check_weights(
        spec, weights if weights is not None else initial_weights(spec, spec.training.seed if seed is None else seed)
    )
    model = to_onnx(spec, weights, all_layer_outputs=True)
    return OnnxModel(spec, weights, Predictor(model, provider))


def get_weights(model: OnnxModel) -> Weights:
    return dict(model.weights)


def predict(model: OnnxModel, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    return model.predictor.predict(x, batch_size)


def layer_outputs(model: OnnxModel, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output, channels-last like Keras."""
    names = [layer.name for layer in model.spec.layers]
    outputs = model.predictor.run(x, names)
    return [o.transpose(0, 2, 3, 1) if o.ndim == 4 else o for o in outputs]


__all__ = [
    "BUILDERS",
    "DEFAULT_OPSET",
    "MAX_OPSET",
    "MIN_OPSET",
    "NAME",
    "OnnxModel",
    "Predictor",
    "build",
    "check_model",
    "choose_providers",
    "cuda_works",
    "evaluate_file",
    "get_weights",
    "layer_outputs",
    "predict",
    "quantize_int8",
    "to_float16",
    "to_onnx",
]
