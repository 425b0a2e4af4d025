"""Keras's own random augmentation layers for the spec's ``random_*`` types, seeded per layer.

Keras calls them with ``training=True`` inside ``fit`` and ``training=False`` in
``predict``, where each is the identity. The spec keeps a factor as written (a
number or a pair), which is what Keras's constructors take.
"""

from __future__ import annotations

from typing import Any, Callable

from keras import layers

from cnnspec.registry import Site

from .layers import BUILDERS


def _resampling(layer: Any) -> dict[str, Any]:
    """The arguments every affine layer shares (interpolation stays Keras's default, bilinear)."""
    return {"fill_mode": layer.fill_mode, "fill_value": layer.fill_value}


LAYERS: dict[str, Callable[[Any], tuple[type[layers.Layer], dict[str, Any]]]] = {
    "random_flip": lambda layer: (layers.RandomFlip, {"mode": layer.mode}),
    "random_translation": lambda layer: (
        layers.RandomTranslation,
        {"height_factor": layer.height_factor, "width_factor": layer.width_factor, **_resampling(layer)},
    ),
    "random_rotation": lambda layer: (layers.RandomRotation, {"factor": layer.factor, **_resampling(layer)}),
    "random_zoom": lambda layer: (
        layers.RandomZoom,
        {"height_factor": layer.height_factor, "width_factor": layer.width_factor, **_resampling(layer)},
    ),
    "random_contrast": lambda layer: (layers.RandomContrast, {"factor": layer.factor}),
}


@BUILDERS.builds(*LAYERS)
def _augmentation(layer: Any, site: Site) -> layers.Layer:
    keras_class, arguments = LAYERS[layer.type](layer)
    return keras_class(**arguments, seed=site.seed, name=layer.name)
