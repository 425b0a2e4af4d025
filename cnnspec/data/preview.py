"""The data preview: a labelled grid of training images and the facts worth checking before training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .arrays import dataset_from_arrays
from .sources import load_data

if TYPE_CHECKING:
    from ..display import Picture


def preview_picture(data: Any = "digits", samples: int = 32, seed: int = 0) -> Picture:
    """A labelled grid of training images that Jupyter shows inline: a source name, arrays or a ``Dataset``."""
    from ..display import Picture
    from ..figures import data_grid

    dataset = load_data(data) if isinstance(data, str) else dataset_from_arrays(data)
    names, picked = _names(dataset), _picked(dataset, samples, seed)
    title = f"{dataset.source}: {len(picked)} training images"
    return Picture(data_grid(dataset.x_train[picked], dataset.y_train[picked], names, title), title)


def _names(data: Any) -> list[str]:
    classes = int(max(data.y_train.max(), data.y_test.max() if len(data.y_test) else 0)) + 1
    if data.class_names and len(data.class_names) >= classes:
        return list(data.class_names)
    return [str(i) for i in range(classes)]


def _picked(data: Any, samples: int, seed: int) -> np.ndarray:
    return np.sort(
        np.random.default_rng(seed).choice(len(data.x_train), min(samples, len(data.x_train)), replace=False)
    )


def preview(source: str, output: str | Path, samples: int = 32, seed: int = 0) -> dict:
    """A labelled grid of training images (PNG) and the facts worth checking before training."""
    from ..figures import data_grid
    from ..files import atomic_write_bytes

    data = load_data(source)
    classes = int(max(data.y_train.max(), data.y_test.max())) + 1
    names = (
        data.class_names if data.class_names and len(data.class_names) >= classes else [str(i) for i in range(classes)]
    )
    picked = np.sort(
        np.random.default_rng(seed).choice(len(data.x_train), min(samples, len(data.x_train)), replace=False)
    )
    atomic_write_bytes(
        Path(output),
        data_grid(data.x_train[picked], data.y_train[picked], names, f"{data.source}: {len(picked)} training images"),
    )
    counts = np.bincount(data.y_train, minlength=classes)
    return {
        "source": data.source,
        "train_shape": list(data.x_train.shape),
        "test_shape": list(data.x_test.shape),
        "value_range": [float(data.x_train.min()), float(data.x_train.max())],
        "class_counts": {names[i]: int(c) for i, c in enumerate(counts)},
        "test_count": int(len(data.x_test)),
        "output": str(output),
    }
