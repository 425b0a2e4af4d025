"""Tiny data files in every supported format, written by the tests themselves."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def tiny_images(n: int, size: int = 8, channels: int = 1, classes: int = 3, seed: int = 0):
    """Images whose class is visible (a bright row at the class index), as uint8."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 40, (n, size, size, channels), dtype=np.uint8)
    for i, label in enumerate(y):
        x[i, label, :, :] = 255
    return x, y.astype(np.uint8)


def write_npz(path: Path, n_train: int = 30, n_test: int = 9, **kw) -> Path:
    x_train, y_train = tiny_images(n_train, **kw)
    x_test, y_test = tiny_images(n_test, seed=1, **kw)
    squeeze = x_train.shape[-1] == 1
    np.savez(
        path,
        x_train=x_train[..., 0] if squeeze else x_train,
        y_train=y_train,
        x_test=x_test[..., 0] if squeeze else x_test,
        y_test=y_test,
    )
    return path


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(folder: Path, gz: bool = True, n_train: int = 30, n_test: int = 9) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = tiny_images(n_train)
    x_test, y_test = tiny_images(n_test, seed=1)
    for stem, array in (
        ("train-images-idx3-ubyte", x_train[..., 0]),
        ("train-labels-idx1-ubyte", y_train),
        ("t10k-images-idx3-ubyte", x_test[..., 0]),
        ("t10k-labels-idx1-ubyte", y_test),
    ):
        data = _idx_bytes(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return folder


def write_folder(root: Path, n_train: int = 12, n_test: int = 6, channels: int = 1, size: int = 8) -> Path:
    from PIL import Image

    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        x, y = tiny_images(n, size=size, channels=channels, seed=seed)
        for i, (image, label) in enumerate(zip(x, y)):
            folder = root / split / f"class_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[..., 0] if channels == 1 else image).save(folder / f"{i}.png")
    return root
