"""Keras's own random augmentation layers for the spec's ``random_*`` types, seeded per layer.

Keras calls them with ``training=True`` inside ``fit`` and ``training=False`` in
``predict``, where each is the identity. The spec keeps a factor as written (a
number or a pair), which is what Keras's constructors take.
"""

from __future__ import annotations

from typing import Any, Callable

from keras import layers

from cnnspec.layers import RandomContrast, RandomFlip, RandomRotation, RandomTranslation, RandomZoom

from .layers import builds


def _resampling(layer: Any) -> dict[str, Any]:
    """The arguments every affine layer shares (interpolation stays Keras's default, bilinear)."""
    return {"fill_mode": layer.fill_mode, "fill_value": layer.fill_value}


LAYERS: dict[type, Callable[[Any], tuple[type[layers.Layer], dict[str, Any]]]] = {
    RandomFlip: lambda layer: (layers.RandomFlip, {"mode": layer.mode}),
    RandomTranslation: lambda layer: (
        layers.RandomTranslation,
        {"height_factor": layer.height_factor, "width_factor": layer.width_factor, **_resampling(layer)},
    ),
    RandomRotation: lambda layer: (layers.RandomRotation, {"factor": layer.factor, **_resampling(layer)}),
    RandomZoom: lambda layer: (
        layers.RandomZoom,
        {"height_factor": layer.height_factor, "width_factor": layer.width_factor, **_resampling(layer)},
    ),
    RandomContrast: lambda layer: (layers.RandomContrast, {"factor": layer.factor}),
}


@builds(*LAYERS)
def _augmentation(layer: Any, shape: tuple, seed: int) -> layers.Layer:
    keras_class, arguments = LAYERS[type(layer)](layer)
    return keras_class(**arguments, seed=seed, name=layer.name)
