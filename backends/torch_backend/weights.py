"""Canonical (Keras-layout) weights <-> the compiled module's tensors.

Each layer's builder said where its canonical variables live (``TorchLayer.params``)
and how their layout converts; this module only walks the spec's variables.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from cnnspec.weights import Weights, check_weights

from .layers import Param
from .model import CompiledModel


def variables(model: CompiledModel) -> Iterator[tuple[str, torch.Tensor, Param]]:
    """(canonical key, the tensor holding it, its mapping) for every variable of the spec."""
    for index, (layer, info) in enumerate(zip(model.spec.layers, model.spec.summary().layers)):
        for variable in layer.variables(info.input_shape):
            param = model.params[index].get(variable)
            if param is None:  # a builder that forgot a variable: never load or save around it silently
                raise TypeError(f"the torch builder of {type(layer).__name__} maps no tensor to {variable!r}")
            yield f"{layer.name}/{variable}", getattr(model.blocks[index][param.module], param.attr), param


def get_weights(model: CompiledModel) -> Weights:
    """The model's weights as canonical float32 numpy arrays: copies, which later training leaves alone
    (``.numpy()`` of a CPU tensor is a view, and a layout that needs no transpose would pass it through)."""
    return {
        key: np.array(param.to_keras(tensor.detach().float().cpu().numpy()), order="C", copy=True)
        for key, tensor, param in variables(model)
    }


def set_weights(model: CompiledModel, weights: Weights) -> CompiledModel:
    """Load canonical weights (checked against the spec first) into the model, in place."""
    weights = check_weights(model.spec, weights)
    with torch.no_grad():
        for key, tensor, param in variables(model):
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(param.to_torch(weights[key]))))
    return model
