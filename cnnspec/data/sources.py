"""Data sources -> numpy arrays, backend-neutral.

``load_data("digits")`` gives scikit-learn's 8x8 digits with a fixed stratified
80/20 split; ``shapes`` and ``shape_counts`` a synthetic set for segmentation and
regression (``synthetic``); ``npz:PATH``, ``idx:DIR``, ``folder:PATH`` read the
user's files (``folder:`` class folders, or image/mask pairs: ``masks``);
``mnist``, ``fashion_mnist`` and ``cifar10`` come from Keras's dataset cache.
Images are float32, channels-last (N, H, W, C), scaled to [0, 1] when stored as
bytes; labels are int64 class indices, or the source's targets (``shapes``:
(N, H, W) int64 masks, ``shape_counts``: (N, 3) float32 counts). ``idx:`` and
``folder:`` images can stay on disk and be read per batch (streamed).

>>> data = load_data("digits")                       # doctest: +SKIP
>>> data.x_train.shape, data.y_train.shape           # doctest: +SKIP
((1437, 8, 8, 1), (1437,))
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from ..streams import ArrayStore, FileStore
from .dataset import Dataset
from .formats import _existing, _idx_arrays, _list_image_split, _read_images, _read_npz, decode_image
from .masks import class_names, is_pairs_layout, list_pairs
from .prepare import _images, _labels, _targets, is_streamed
from .synthetic import shapes_dataset

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# -- sources ------------------------------------------------------------------------
def _digits(_: str) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return Dataset(x_train, y_train, x_test, y_test, "digits", [str(i) for i in range(10)])


def _npz(path: str) -> Dataset:
    file = _existing(path)
    parts = _read_npz(file)
    return Dataset(
        _images(parts[0], file),
        _targets(parts[1], file),
        _images(parts[2], file),
        _targets(parts[3], file),
        f"npz:{path}",
    )


def _idx(path: str, stream: bool | None = False) -> Dataset:
    folder = _existing(path, directory=True)
    if stream is not False:  # images memory-mapped, labels read
        a = _idx_arrays(folder, mapped=True)
        stores = [_image_store(a[key], folder) for key in ("x_train", "x_test")]
        if stream or _too_big(stores):
            return Dataset(
                stores[0], _labels(a["y_train"], folder), stores[1], _labels(a["y_test"], folder), f"idx:{path}"
            )
    a = _idx_arrays(folder)
    return Dataset(
        _images(a["x_train"], folder),
        _labels(a["y_train"], folder),
        _images(a["x_test"], folder),
        _labels(a["y_test"], folder),
        f"idx:{path}",
    )


def _folder(path: str, follow_symlinks: bool = False, stream: bool | None = False) -> Dataset:
    """Class folders (train/<class>/*), or image/mask pairs (train/images/*, train/masks/*: see ``masks``)."""
    root = _existing(path, directory=True)
    listed: list[tuple[list[Path], np.ndarray]]
    target_files = None
    if is_pairs_layout(root):  # targets: int64 (N, H, W) masks
        pairs = {split: list_pairs(root, split, follow_symlinks) for split in ("train", "test")}
        listed = [(files, masks) for files, masks, _ in pairs.values()]
        classes = class_names(root)
        target_files = {split: mask_files for split, (_, _, mask_files) in pairs.items()}
    else:  # targets: int64 (N,) class indices
        for split in ("train", "test"):
            if not (root / split).is_dir():
                raise DataError(
                    f"{root}: no {split}/ folder (expected train/<class>/*.png and test/<class>/*.png, "
                    "or train/images/ and train/masks/)"
                )
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        if not classes:
            raise DataError(f"{root / 'train'}: no class folders")
        listed = [_list_image_split(root, split, classes, follow_symlinks) for split in ("train", "test")]
    if stream is not False:  # decoded a batch at a time, as training asks for them
        stores = [
            FileStore(files, str(root / split), decode_image) for (files, _), split in zip(listed, ("train", "test"))
        ]
        if stream or _too_big(stores):
            return Dataset(
                stores[0], listed[0][1], stores[1], listed[1][1], f"folder:{path}", classes, target_files=target_files
            )
    parts = [_read_images(files, root / split) for (files, _), split in zip(listed, ("train", "test"))]
    return Dataset(parts[0], listed[0][1], parts[1], listed[1][1], f"folder:{path}", classes, target_files=target_files)


# -- Keras's dataset cache -------------------------------------------------------------
def keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _mnist(_: str) -> Dataset:
    path = keras_cache() / "mnist.npz"
    if path.exists():
        return replace(_npz(str(path)), source="mnist", class_names=[str(i) for i in range(10)])
    return _from_keras("mnist", path)


def _fashion_mnist(_: str) -> Dataset:
    folder = keras_cache() / "fashion-mnist"
    if folder.is_dir():
        a = _idx_arrays(folder)
        return Dataset(
            _images(a["x_train"], folder),
            _labels(a["y_train"], folder),
            _images(a["x_test"], folder),
            _labels(a["y_test"], folder),
            "fashion_mnist",
            FASHION_MNIST_CLASSES,
        )
    return _from_keras("fashion_mnist", folder)


def _cifar10(_: str) -> Dataset:
    folder = keras_cache() / "cifar-10-batches-py"
    if folder.is_dir():
        from .._cifar import read_cifar10

        x_train, y_train, x_test, y_test = read_cifar10(folder)
        return Dataset(
            _images(x_train, folder),
            _labels(y_train, folder),
            _images(x_test, folder),
            _labels(y_test, folder),
            "cifar10",
            CIFAR10_CLASSES,
        )
    return _from_keras("cifar10", folder)


def _from_keras(name: str, cache_path: Path) -> Dataset:
    """Not cached: let Keras download it, and turn any failure into one clear message."""
    try:
        from ..backends import quiet_tensorflow

        quiet_tensorflow()
        import keras

        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except ImportError:
        raise DataError(
            f"{name} is not in Keras's dataset cache ({cache_path}) and Keras is not installed to download it "
            f"(pip install 'cnnspec[keras]'), or use npz:PATH / idx:DIR"
        ) from None
    except Exception as err:  # noqa: BLE001 - any download failure means the same thing to the user
        raise DataError(
            f"{name} is not in Keras's dataset cache ({cache_path}) and could not be downloaded "
            f"({type(err).__name__}: {str(err)[:120]}); download it once on a machine with internet, "
            f"or use npz:PATH / idx:DIR"
        ) from None
    names = {"fashion_mnist": FASHION_MNIST_CLASSES, "cifar10": CIFAR10_CLASSES}.get(name)
    return Dataset(
        _images(x_train, cache_path),
        _labels(y_train, cache_path),
        _images(x_test, cache_path),
        _labels(y_test, cache_path),
        name,
        names,
    )


# every loader: (path argument, follow_symlinks, stream) -> Dataset; only idx: and folder: use the options
Loader = Callable[[str, bool, "bool | None"], Dataset]


def _in_memory(read: Callable[[str], Dataset]) -> Loader:
    return lambda arg, follow_symlinks, stream: read(arg)


SOURCES: dict[str, Loader] = {
    "digits": _in_memory(_digits),
    "shapes": _in_memory(lambda _: shapes_dataset("shapes")),
    "shape_counts": _in_memory(lambda _: shapes_dataset("shape_counts")),
    "mnist": _in_memory(_mnist),
    "fashion_mnist": _in_memory(_fashion_mnist),
    "cifar10": _in_memory(_cifar10),
    "npz": _in_memory(_npz),
    "idx": lambda arg, follow_symlinks, stream: _idx(arg, stream),
    "folder": _folder,
}
NEEDS_PATH = {"npz", "idx", "folder"}


def load_data(source: str = "digits", follow_symlinks: bool = False, stream: bool | None = False) -> Dataset:
    """Read a data source (see module docstring); raises ``DataError`` with a clear message.

    ``folder:`` sources refuse symlinks that lead outside the folder unless ``follow_symlinks``.
    ``stream=True`` keeps ``idx:`` and ``folder:`` images on disk (an ``ImageStore`` read per
    batch); ``None`` streams only when the decoded images would not fit comfortably in memory.
    """
    kind, _, arg = source.partition(":")
    if kind not in SOURCES:
        raise DataError(
            f"unknown data source {source!r}; use one of: digits, shapes, shape_counts, mnist, fashion_mnist, cifar10, "
            "npz:PATH, idx:DIR, folder:PATH"
        )
    if (kind in NEEDS_PATH) != bool(arg):
        raise DataError(
            f"data source {kind!r} {'needs a path: ' + kind + ':PATH' if kind in NEEDS_PATH else 'takes no path'}"
        )
    data = SOURCES[kind](arg, follow_symlinks, stream)
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if len(x) == 0:
            raise DataError(f"{source}: the {split} split is empty")
        if len(x) != len(y):
            raise DataError(f"{source}: {len(x)} {split} images but {len(y)} labels")
        if not is_streamed(x) and not np.all(np.isfinite(x)):  # streamed float images are checked per batch
            raise DataError(f"{source}: the {split} images hold NaN or infinite values")
    return data


# -- streaming ----------------------------------------------------------------------------
# auto: stream when the decoded float32 images would take more than this share of memory
STREAM_SHARE_OF_MEMORY = 0.25


def _image_store(array: np.ndarray, where: Path) -> ArrayStore:
    if array.dtype.kind not in "uif" or array.ndim not in (3, 4):
        _images(array[:1], where)  # the same clear error as in memory
    return ArrayStore(array, str(where), 255.0 if array.dtype == np.uint8 else 1.0)


def _too_big(stores: list) -> bool:
    from ..resources import memory_limit

    return sum(store.nbytes for store in stores) > STREAM_SHARE_OF_MEMORY * memory_limit()
