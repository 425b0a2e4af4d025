"""Keras's own random augmentation layers for the spec's ``random_*`` types, seeded per layer.

Keras calls them with ``training=True`` inside ``fit`` and ``training=False`` in
``predict``, where each is the identity. The spec keeps a factor as written (a
number or a pair), which is what Keras's constructors take.
"""

from __future__ import annotations

from typing import Any

from keras import layers

from cnnspec.registry import Site

from .layers import BUILDERS, from_spec


# Keras's own random layers, seeded per layer; interpolation stays Keras's default, bilinear
@BUILDERS.builds("random_flip", "random_translation", "random_rotation", "random_zoom", "random_contrast")
def _augmentation(layer: Any, site: Site) -> layers.Layer:
    return from_spec(layer, seed=site.seed)
