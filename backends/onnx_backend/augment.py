"""Training-only layers (random augmentation) in ONNX: nothing at all.

An ONNX file is an inference graph, where each of them is the identity, so its
builder adds no node and hands on its input tensor; ``to_onnx`` records which
tensor holds each spec layer's output, so per-layer outputs still line up.
"""

from __future__ import annotations

from typing import Any

import cnnspec.layers  # noqa: F401  (registers every built-in layer type before the registry is read)
from cnnspec.registry import LAYER_CLASSES, Site

from .graph import BUILDERS

LEFT_OUT = tuple(name for name, cls in LAYER_CLASSES.items() if cls.training_only)


@BUILDERS.builds(*LEFT_OUT)
def _left_out(layer: Any, site: Site) -> str:
    return site.x
