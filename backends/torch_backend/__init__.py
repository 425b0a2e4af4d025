"""The PyTorch backend: spec -> ``nn.Module`` with Keras's meaning.

>>> model = build(load_spec("specs/digits_cnn.yaml"))        # doctest: +SKIP
>>> predict(model, images_nhwc).shape                        # doctest: +SKIP
(n, 10)
"""

from __future__ import annotations

import numpy as np
import torch

from cnnspec.placement import Placement
from cnnspec.spec import ModelSpec
from cnnspec.weights import Weights, initial_weights

from .augment import seed_augmentations
from .launch import launch
from .layers import BUILDERS
from .model import CompiledModel, to_nchw, to_nhwc
from .placement import place
from .trainer import Trainer
from .weights import get_weights, set_weights

NAME = "torch"


def build(
    spec: ModelSpec,
    weights: Weights | None = None,
    seed: int | None = None,
    precision: str = "fp32",
    *,
    placement: Placement | None = None,
) -> CompiledModel:
    """The compiled module in inference mode, with ``weights`` or seeded Keras-style initial weights,
    on ``placement``'s device (default the CPU).

    Parameters stay float32 whatever ``precision``: bf16 training is autocast in the Trainer.
    """
    seed = spec.training.seed if seed is None else seed
    model = CompiledModel(spec)
    set_weights(model, weights if weights is not None else initial_weights(spec, seed))
    seed_augmentations(model.blocks, seed)  # a run's augmentations repeat exactly
    if placement is not None:
        model.to(torch.device(placement.device))
    return model.eval()


def _device(model: CompiledModel) -> torch.device:
    return next(iter(model.buffers()), next(iter(model.parameters()), torch.zeros(()))).device


@torch.no_grad()
def predict(model: CompiledModel, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The spec's output for channels-last images (N, H, W, C), as float32 numpy on the host, laid out as
    Keras's (a map channels-last)."""
    model.eval()
    x_all, device = to_nchw(x), _device(model)
    return np.concatenate(
        [to_nhwc(model(x_all[i : i + batch_size].to(device))) for i in range(0, len(x_all), batch_size)]
    )


@torch.no_grad()
def layer_outputs(model: CompiledModel, x: np.ndarray) -> list[np.ndarray]:
    """Every spec layer's output for ``x``, channels-last like Keras."""
    model.eval()
    return [to_nhwc(t) for t in model.layer_outputs(to_nchw(x).to(_device(model)))]


__all__ = [
    "BUILDERS",
    "NAME",
    "CompiledModel",
    "Trainer",
    "build",
    "launch",
    "place",
    "get_weights",
    "layer_outputs",
    "predict",
    "set_weights",
]
