"""CIFAR-10's python batches from Keras's cache, read without unpickling arbitrary objects.

The batches are pickles (that is how CIFAR-10 ships). A restricted unpickler
accepts only the few numpy and builtin constructors those files use, so a
tampered cache file cannot run code.
"""

from __future__ import annotations

import io
import pickle  # noqa: S403 - restricted below: find_class allows numpy array reconstruction only
from pathlib import Path

import numpy as np

from .errors import DataError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = _ArraysOnly(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        x = np.asarray(data[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = np.asarray(data[b"labels"], np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as err:
        raise DataError(f"{path}: not a CIFAR-10 batch: {err}") from None
    return x, y


def read_cifar10(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train = [_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _batch(folder / "test_batch")
    return np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]), x_test, y_test
