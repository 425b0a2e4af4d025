"""The data preview: a labelled grid of training images and the facts worth checking before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .sources import load_data


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
