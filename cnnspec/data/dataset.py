"""The ``Dataset`` container: train and test arrays of one source, as ``load_data`` returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# (N, H, W, C) float32 in memory, or, when streamed (load_data(stream=...)), a cnnspec.streams.ImageStore
# that reads batches from disk; both index and slice like an array, which is all the trainers use.
Images = Any


@dataclass
class Dataset:
    """Train and test arrays of one source."""

    x_train: Images
    y_train: np.ndarray
    x_test: Images
    y_test: np.ndarray
    source: str
    class_names: list[str] | None = field(default=None)
    # held-out (x, y) given as such (Keras's validation_data); None: training takes validation_split
    validation: tuple[Images, np.ndarray] | None = field(default=None)
    # per split ("train", "test"), the file each row's target was read from (mask PNGs), so that a bad
    # target found later, against a spec, is reported by its file
    target_files: dict[str, list[Any]] | None = field(default=None)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])
