"""The ONNX backend: spec + canonical weights -> ONNX graph, run with ONNX Runtime.

Inference only (``cnnspec export onnx`` and ``Predictor``); it implements the
same ``build`` / ``predict`` / ``layer_outputs`` as the other backends so the
parity suite treats all three alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnspec.placement import Placement
from cnnspec.spec import ModelSpec
from cnnspec.weights import Weights, check_weights, initial_weights

from . import activation_layers, augment, normalization  # noqa: F401  (register their builders)
from .export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, check_model, to_onnx, to_onnx_with_layers
from .graph import BUILDERS
from .quantize import quantize_int8, to_float16
from .runners import ONNXRUNTIME_RUNNERS, RUNNERS, RuntimeFailed, missing as runner_missing, run as run_file
from .runtime import OPTIMIZATION_LEVELS, Predictor, choose_providers, cuda_works, evaluate_file

NAME = "onnx"


@dataclass
class OnnxModel:
    """A spec's ONNX graph with every layer exposed, in an ONNX Runtime session."""

    spec: ModelSpec
    weights: Weights
    predictor: Predictor
    layer_tensors: list[str]  # per spec layer, the graph tensor holding its output


def build(
    spec: ModelSpec,
    weights: Weights | None = None,
    seed: int | None = None,
    precision: str = "fp32",
    provider: str | None = "cpu",
    *,
    placement: Placement | None = None,
) -> OnnxModel:
    """The spec as an ONNX graph in an ONNX Runtime session on ``provider``; a ``placement`` on a GPU
    (cuda:N, gpu:N) picks the CUDA provider instead, one on the CPU the CPU provider."""
    if placement is not None:
        provider = "cpu" if placement.device == "cpu" else "cuda"
    weights = check_weights(
        spec, weights if weights is not None else initial_weights(spec, spec.training.seed if seed is None else seed)
    )
    model, tensors = to_onnx_with_layers(spec, weights, all_layer_outputs=True)
    return OnnxModel(spec, weights, Predictor(model, provider), tensors)


def get_weights(model: OnnxModel) -> Weights:
    return dict(model.weights)


def predict(model: OnnxModel, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    return model.predictor.predict(x, batch_size)


def layer_outputs(model: OnnxModel, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output, channels-last like Keras; a layer left out of the graph gives its input's."""
    names = list(dict.fromkeys(model.layer_tensors))
    outputs = dict(zip(names, model.predictor.run(x, names)))
    return [_channels_last(outputs[tensor]) for tensor in model.layer_tensors]


def _channels_last(output: np.ndarray) -> np.ndarray:
    return output.transpose(0, 2, 3, 1) if output.ndim == 4 else output


__all__ = [
    "BUILDERS",
    "DEFAULT_OPSET",
    "MAX_OPSET",
    "MIN_OPSET",
    "NAME",
    "ONNXRUNTIME_RUNNERS",
    "OPTIMIZATION_LEVELS",
    "RUNNERS",
    "RuntimeFailed",
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
    "run_file",
    "runner_missing",
    "to_float16",
    "to_onnx",
    "to_onnx_with_layers",
]
