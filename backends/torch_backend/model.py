"""spec -> ``nn.Module``: the generic compile loop over the builder table."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from cnnspec.shapes import infer_shapes
from cnnspec.spec import ModelSpec

from .layers import BUILDERS, Softmax


class CompiledModel(nn.Module):
    """The spec's layers as one module; NCHW in, the spec's output out.

    ``blocks[i]`` holds the modules of spec layer ``i`` (a conv or dense and its
    activation), so per-layer outputs and prefix models line up with the spec.
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        report = infer_shapes(spec)
        self.blocks = nn.ModuleList(
            nn.Sequential(*BUILDERS[layer.type](layer, info.input_shape))
            for layer, info in zip(spec.layers, report.layers)
        )
        # Keras's cross-entropy reaches behind a final softmax *or sigmoid* for its
        # input (keras/src/backend/tensorflow/nn.py, `_keras_logits`) and treats it as logits.
        self.loss_from_logits = isinstance(self.blocks[-1][-1], (Softmax, nn.Sigmoid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, H, W)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The output before a final softmax or sigmoid (the output itself when there is none)."""
        if not self.loss_from_logits:
            return self(x)
        for block in self.blocks[:-1]:
            x = block(x)
        for module in self.blocks[-1][:-1]:
            x = module(x)
        return x

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every spec layer's output, in order (NCHW for images)."""
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs


def to_nchw(x: Any) -> torch.Tensor:
    """Channels-last numpy (N, H, W, C) -> contiguous float32 NCHW tensor."""
    array = np.asarray(x, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def to_nhwc(t: torch.Tensor) -> np.ndarray:
    """Back to Keras layout for comparison: 4-D NCHW -> NHWC numpy."""
    array = t.detach().float().cpu().numpy()
    return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array
