"""Arrays already in memory as a ``Dataset``: what ``train(spec, data=(x, y))`` accepts in a notebook.

The forms Keras users have at hand: ``(x_train, y_train)``, ``(x_train, y_train,
x_test, y_test)``, a dict with those keys, or a ``Dataset``. Images are
channels-last (N, H, W) or (N, H, W, C) numbers (uint8 scaled to [0, 1], as
every file source does), labels class indices or one-hot. Each array goes through
the same checks as a file's, so a bad array gets the same one-line error.

>>> data = dataset_from_arrays((np.zeros((4, 8, 8)), np.arange(4)))   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from .dataset import Dataset
from .prepare import _images, _targets

KEYS = ("x_train", "y_train", "x_test", "y_test")


def dataset_from_arrays(data: Any, validation_data: Any = None) -> Dataset:
    """A checked ``Dataset`` from arrays; without test arrays its test split is empty (no test metrics)."""
    if isinstance(data, Dataset):
        parts: dict[str, Any] = {key: getattr(data, key) for key in KEYS}
        source, names = data.source, data.class_names
    elif isinstance(data, dict):
        unknown = sorted(set(data) - set(KEYS) - {"class_names"})
        if unknown or not {"x_train", "y_train"} <= set(data):
            raise DataError(f"a data dict has the keys {', '.join(KEYS)} (the test pair optional), got {sorted(data)}")
        parts, source, names = dict(data), "arrays", data.get("class_names")
    elif isinstance(data, (tuple, list)) and len(data) in (2, 4):
        parts, source, names = dict(zip(KEYS, data)), "arrays", None
    else:
        raise DataError(
            "data is a source name (digits, npz:PATH ...), (x_train, y_train), (x_train, y_train, x_test, y_test), "
            f"a dict of those or a cnnspec.Dataset; got {type(data).__name__}"
        )
    train = _split(parts["x_train"], parts["y_train"], "x_train/y_train")
    if len(train[0]) == 0:
        raise DataError("x_train/y_train: the training split is empty")
    if parts.get("x_test") is None:
        test = (train[0][:0], train[1][:0])
    else:
        test = _split(parts["x_test"], parts.get("y_test"), "x_test/y_test")
    if test[0].shape[1:] != train[0].shape[1:]:
        raise DataError(f"x_test images are {test[0].shape[1:]} but x_train images are {train[0].shape[1:]}")
    dataset = Dataset(train[0], train[1], test[0], test[1], source, names)
    if validation_data is not None:
        x_val, y_val = _pair(validation_data)
        validation = _split(x_val, y_val, "validation_data")
        if validation[0].shape[1:] != train[0].shape[1:]:
            raise DataError(
                f"validation_data images are {validation[0].shape[1:]} but x_train images are {train[0].shape[1:]}"
            )
        dataset.validation = validation
    return dataset


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    raise DataError(f"validation_data is (x_val, y_val), as in Keras's fit; got {type(value).__name__}")


def _split(x: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if y is None:
        raise DataError(f"{where}: images without labels")
    images, labels = _images(np.asarray(x), where), _targets(np.asarray(y), where)
    if len(images) != len(labels):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    if not np.all(np.isfinite(images)):
        raise DataError(f"{where}: the images hold NaN or infinite values")
    return images, labels
