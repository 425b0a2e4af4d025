"""The Keras backend: spec -> ``keras.Model`` (Keras 3 on TensorFlow).

>>> model = build(load_spec("specs/digits_cnn.yaml"))          # doctest: +SKIP
>>> model.summary()                                            # doctest: +SKIP
"""

from __future__ import annotations

import keras
import numpy as np

from cnnspec.placement import Placement
from cnnspec.spec import ModelSpec
from cnnspec.weights import Weights, initial_weights

from . import augment  # noqa: F401  (registers the random layers' builders)
from .layers import BUILDERS, CUSTOM_OBJECTS, MinPooling2D, SumPooling2D
from .model import compile_model, get_weights, set_weights
from .placement import KerasPlacement, as_keras, place
from .trainer import Trainer

NAME = "keras"


def build(
    spec: ModelSpec,
    weights: Weights | None = None,
    seed: int | None = None,
    precision: str = "fp32",
    *,
    placement: Placement | None = None,
) -> keras.Model:
    """The Keras model with ``weights`` or the seeded Keras-style initial weights cnnspec uses everywhere.

    ``placement`` (from ``place``): with several replicas, the variables are made under its
    ``MirroredStrategy`` (one copy per device), which is where Keras then trains them.
    """
    seed = spec.training.seed if seed is None else seed
    keras.utils.set_random_seed(seed)  # dropout seed generators
    placement = as_keras(placement)
    with placement.scope():
        model = compile_model(spec, seed, precision, placement.replicas)
    model._cnnspec_spec = spec
    return set_weights(model, weights if weights is not None else initial_weights(spec, seed))


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The spec's output for channels-last images (N, H, W, C)."""
    x = np.asarray(x, dtype=np.float32)
    outputs = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(outputs)


def layer_outputs(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    """Every spec layer's output for ``x`` (channels-last)."""
    probe = keras.Model(model.input, [model.get_layer(layer.name).output for layer in model._cnnspec_spec.layers])
    outputs = probe(np.asarray(x, dtype=np.float32), training=False)
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


__all__ = [
    "BUILDERS",
    "CUSTOM_OBJECTS",
    "NAME",
    "KerasPlacement",
    "MinPooling2D",
    "SumPooling2D",
    "Trainer",
    "build",
    "get_weights",
    "layer_outputs",
    "place",
    "predict",
    "set_weights",
]
