"""The layer types of the spec language, one registered class each.

To add a type: a ``LayerSpec`` subclass decorated with ``@register_layer`` in the
module of its family (or a new module imported here), one builder per backend, and
its cases in ``tests/layers/cases.py``; CONTRIBUTING.md has the list.
"""

from __future__ import annotations

from . import activations, augmentation, conv, core, merge, normalization, pooling, preprocessing, reshaping
from .activations import *  # noqa: F403
from .augmentation import *  # noqa: F403
from .base import LayerSpec, WindowedLayer
from .conv import *  # noqa: F403
from .core import *  # noqa: F403
from .merge import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pooling import *  # noqa: F403
from .preprocessing import *  # noqa: F403
from .reshaping import *  # noqa: F403

__all__ = [
    "LayerSpec",
    "WindowedLayer",
    *activations.__all__,
    *augmentation.__all__,
    *conv.__all__,
    *core.__all__,
    *merge.__all__,
    *normalization.__all__,
    *pooling.__all__,
    *preprocessing.__all__,
    *reshaping.__all__,
]
