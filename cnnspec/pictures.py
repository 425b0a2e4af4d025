"""The course-notebook figures as ``Picture`` objects that Jupyter shows inline (and ``.save`` writes).

Each wraps a drawing in ``cnnspec.figures`` (the same ones ``cnnspec report``
draws) around a ``cnnspec.Model`` or a training result.

>>> cnnspec.pictures.predictions(model, x_test[:16], y_test[:16])     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import figures
from .display import Picture
from .errors import CnnspecError


def learning_curves(result: Any) -> Picture:
    """Loss and accuracy per epoch (and validation) of a ``TrainResult`` or a history dict."""
    history = result.history if hasattr(result, "history") else result
    title = f"{getattr(result, 'run_dir', '')}".rsplit("/", 1)[-1]
    return Picture(figures.learning_curves(history, title), "learning curves")


def predictions(model: Any, x: np.ndarray, y: np.ndarray, names: Sequence[str] | None = None) -> Picture:
    """Images titled "predicted (true)": blue when the model is right, red when wrong (classification;
    ``cnnspec report`` draws masks and regression plots)."""
    if not model.spec.classifies_images:
        raise CnnspecError(
            f"predictions() draws one class per image; {model.spec.name} is a {model.spec.task} spec: "
            "cnnspec report draws its masks or predicted values"
        )
    predicted = model.predict(x).argmax(axis=1)
    labels = list(names) if names is not None else [str(i) for i in range(model.spec.num_classes)]
    right = int((predicted == y).sum())
    png, _ = figures.prediction_grid(x, y, predicted, labels, f"{right} of {len(x)} right")
    return Picture(png, "predictions")


def _conv_layer(model: Any, layer: str | None) -> Any:
    convs = [item for item in model.spec.layers if item.convolutional]
    if not convs:
        raise CnnspecError(f"spec {model.spec.name!r} has no convolutional layer")
    if layer is None:
        return convs[0]
    for item in convs:
        if item.name == layer:
            return item
    raise CnnspecError(f"no convolutional layer named {layer!r} (there are: {', '.join(c.name for c in convs)})")


def filters(model: Any, layer: str | None = None) -> Picture:
    """A conv layer's learned kernels, one tile per filter (default: the first conv layer)."""
    chosen = _conv_layer(model, layer)
    kernel = model.get_weights()[f"{chosen.name}/{chosen.filter_variable()}"]
    return Picture(figures.filters_figure(kernel, chosen.name), f"filters of {chosen.name}")


def feature_maps(model: Any, image: np.ndarray, layer: str | None = None) -> Picture:
    """A conv layer's output channels for one image (H, W, C)."""
    chosen = _conv_layer(model, layer)
    index = [item.name for item in model.spec.layers].index(chosen.name)
    outputs = model.layer_outputs(np.asarray(image, dtype=np.float32)[None])
    png, _ = figures.feature_maps_figure(outputs[index][0], chosen.name)
    return Picture(png, f"feature maps of {chosen.name}")
