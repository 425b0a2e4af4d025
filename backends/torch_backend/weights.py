"""Canonical (Keras-layout) weights <-> the compiled module's tensors.

Conv kernels: Keras (kh, kw, in, out) = torch (out, in, kh, kw).transpose(2, 3, 1, 0).
Dense kernels: Keras (in, out) = torch (out, in).T. The flatten rows need no
permutation because ``Flatten`` already yields Keras's (H, W, C) order.
"""

from __future__ import annotations

import numpy as np
import torch

from cnnspec.weights import Weights, check_weights

from .layers import BatchNorm, Conv2d
from .model import CompiledModel

# (module type, canonical variable) -> (module attribute, keras -> torch, torch -> keras)
_CONV = {
    "kernel": ("weight", lambda k: k.transpose(3, 2, 0, 1), lambda t: t.transpose(2, 3, 1, 0)),
    "bias": ("bias", lambda b: b, lambda b: b),
}
_DENSE = {
    "kernel": ("weight", lambda k: k.T, lambda t: t.T),
    "bias": ("bias", lambda b: b, lambda b: b),
}
_BATCH_NORM = {
    "gamma": ("weight", lambda v: v, lambda v: v),
    "beta": ("bias", lambda v: v, lambda v: v),
    "moving_mean": ("running_mean", lambda v: v, lambda v: v),
    "moving_variance": ("running_var", lambda v: v, lambda v: v),
}


def _tables(model: CompiledModel):
    """(spec layer, weighted module, its variable table) for every layer that has weights."""
    for layer, block in zip(model.spec.layers, model.blocks):
        core = block[0]
        if isinstance(core, Conv2d):
            yield layer, core, _CONV
        elif isinstance(core, torch.nn.Linear):
            yield layer, core, _DENSE
        elif isinstance(core, BatchNorm):
            yield layer, core, _BATCH_NORM


def get_weights(model: CompiledModel) -> Weights:
    """The model's weights as canonical float32 numpy arrays."""
    out: Weights = {}
    for layer, module, table in _tables(model):
        for variable, (attr, _, to_keras) in table.items():
            tensor = getattr(module, attr)
            if tensor is not None:
                out[f"{layer.name}/{variable}"] = np.ascontiguousarray(to_keras(tensor.detach().float().cpu().numpy()))
    return out


def set_weights(model: CompiledModel, weights: Weights) -> CompiledModel:
    """Load canonical weights (checked against the spec first) into the model, in place."""
    weights = check_weights(model.spec, weights)
    with torch.no_grad():
        for layer, module, table in _tables(model):
            for variable, (attr, to_torch, _) in table.items():
                key = f"{layer.name}/{variable}"
                if key in weights:
                    target = getattr(module, attr)
                    target.copy_(torch.from_numpy(np.ascontiguousarray(to_torch(weights[key]))))
    return model
