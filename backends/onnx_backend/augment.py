"""Training-only layers (random augmentation) in ONNX: nothing at all.

An ONNX file is an inference graph, where each of them is the identity, so its
builder adds no node and hands on its input tensor; ``to_onnx`` records which
tensor holds each spec layer's output, so per-layer outputs still line up.
"""

from __future__ import annotations

from typing import Any

import cnnspec.layers  # noqa: F401  (registers every built-in layer type before the registry is read)
from cnnspec.registry import LAYER_CLASSES

from .graph import Graph, builds

LEFT_OUT = tuple(cls for cls in LAYER_CLASSES.values() if cls.training_only)


@builds(*LEFT_OUT)
def _left_out(g: Graph, layer: Any, x: str, shape: tuple) -> str:
    return x
