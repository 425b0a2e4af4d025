"""Data sources -> numpy arrays, backend-neutral.

``load_data("digits")`` gives scikit-learn's 8x8 digits with a fixed stratified
80/20 split; ``npz:PATH``, ``idx:DIR``, ``folder:PATH`` read the user's files;
``mnist``, ``fashion_mnist`` and ``cifar10`` come from Keras's dataset cache.
Images are float32, channels-last (N, H, W, C), scaled to [0, 1] when stored as
bytes; labels are int64 class indices. ``fit_to_spec`` checks (or, asked to,
resizes) them against a spec's input shape and class count.

>>> data = load_data("digits")                       # doctest: +SKIP
>>> data.x_train.shape, data.y_train.shape           # doctest: +SKIP
((1437, 8, 8, 1), (1437,))
"""

from __future__ import annotations

import gzip
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import DataError
from .streams import ArrayStore, FileStore, ImageStore

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class Dataset:
    """Train and test arrays of one source."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    class_names: list[str] | None = field(default=None)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


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
    try:
        with np.load(file, allow_pickle=False) as arrays:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays.files]
            if missing:
                raise DataError(f"{file}: missing arrays {', '.join(missing)} (has: {', '.join(arrays.files)})")
            parts = [arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{file}: not a readable .npz archive of arrays: {err}") from None
    return Dataset(
        _images(parts[0], file), _labels(parts[1], file),
        _images(parts[2], file), _labels(parts[3], file), f"npz:{path}",
    )  # fmt: skip


IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx_header(head: bytes, path: Path) -> tuple[np.dtype, list[int], int]:
    """(dtype, dims, header bytes) from the start of an idx file."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES:
        raise DataError(f"{path}: not an idx file (bad magic number)")
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path}: idx header is cut short")
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.dtype(IDX_DTYPES[head[2]]), dims, 4 + 4 * ndim


def _check_idx_size(path: Path, dims: list[int], dtype: np.dtype, data_bytes: int) -> None:
    if data_bytes != int(np.prod(dims)) * dtype.itemsize:
        raise DataError(f"{path}: idx header says {dims} but the file holds {data_bytes} data bytes (truncated?)")


def read_idx(path: Path) -> np.ndarray:
    """One file in MNIST's idx format, gzipped or not."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot read: {err}") from None
    dtype, dims, header = _idx_header(raw[:64], path)
    _check_idx_size(path, dims, dtype, len(raw) - header)
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def map_idx(path: Path) -> np.ndarray:
    """An uncompressed idx file as a read-only memory map (read from disk as it is indexed); gzipped files are read."""
    if path.suffix == ".gz":
        return read_idx(path)
    try:
        with path.open("rb") as file:
            head = file.read(64)
        dtype, dims, header = _idx_header(head, path)
        _check_idx_size(path, dims, dtype, path.stat().st_size - header)
        return np.memmap(path, dtype=dtype, mode="r", offset=header, shape=tuple(dims))
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err}") from None


IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _idx_arrays(folder: Path, mapped: bool = False) -> dict[str, np.ndarray]:
    """The four arrays; with ``mapped``, the images are memory maps (labels are always read)."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise DataError(f"{folder}: no {stem}[.gz] (expected MNIST's four idx files)")
        arrays[key] = map_idx(found) if mapped and key.startswith("x") else read_idx(found)
    return arrays


def _idx(path: str, stream: bool | None = False) -> Dataset:
    folder = _existing(path, directory=True)
    if stream is not False:  # images memory-mapped, labels read
        a = _idx_arrays(folder, mapped=True)
        stores = [_image_store(a[key], folder) for key in ("x_train", "x_test")]
        if stream or _too_big(stores):
            return Dataset(stores[0], _labels(a["y_train"], folder), stores[1], _labels(a["y_test"], folder),
                           f"idx:{path}")  # fmt: skip
    a = _idx_arrays(folder)
    return Dataset(
        _images(a["x_train"], folder), _labels(a["y_train"], folder),
        _images(a["x_test"], folder), _labels(a["y_test"], folder), f"idx:{path}",
    )  # fmt: skip


def _folder(path: str, follow_symlinks: bool = False, stream: bool | None = False) -> Dataset:
    root = _existing(path, directory=True)
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DataError(f"{root}: no {split}/ folder (expected train/<class>/*.png and test/<class>/*.png)")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root / 'train'}: no class folders")
    listed = [_list_image_split(root, split, classes, follow_symlinks) for split in ("train", "test")]
    if stream is not False:  # decoded a batch at a time, as training asks for them
        stores = [FileStore(files, str(root / split), decode_image) for (files, _), split in zip(listed, ("train", "test"))]
        if stream or _too_big(stores):
            return Dataset(stores[0], listed[0][1], stores[1], listed[1][1], f"folder:{path}", classes)
    parts = [_read_images(files, root / split) for (files, _), split in zip(listed, ("train", "test"))]
    return Dataset(parts[0], listed[0][1], parts[1], listed[1][1], f"folder:{path}", classes)


def _list_image_split(root: Path, split: str, classes: list[str], follow_symlinks: bool):
    """(image files, their class indices) of ``root/split/<class>/``, in a fixed order."""
    files, labels = [], []
    real_root = root.resolve()
    for label, name in enumerate(classes):
        folder = root / split / name
        if not folder.is_dir():
            continue
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if not follow_symlinks and real_root not in file.resolve().parents:
                raise DataError(f"{file}: points outside {root} (a symlink); refusing to follow it")
            files.append(file)
            labels.append(label)
    if not files:
        raise DataError(f"{root / split}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files, np.asarray(labels, np.int64)


# PIL modes kept as they are (grey, RGB); every other mode is converted to one of them
KEPT_MODES = {"L", "RGB"}
GREY_MODES = {"1", "L", "P", "I;16"}


def decode_image(file: Path) -> np.ndarray:
    """One image file -> uint8 (H, W, C): grey stays one channel, everything else becomes RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            if img.mode not in KEPT_MODES:
                img = img.convert("L" if img.mode in GREY_MODES else "RGB")
            array = np.asarray(img)  # decodes; no copy when the mode is kept
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{file}: not a readable image: {err}") from None
    return array[..., None] if array.ndim == 2 else array


def _read_images(files: list[Path], where: Path) -> np.ndarray:
    images = [decode_image(file) for file in files]
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        images = _common_size(images, shapes, where)
    return np.stack(images).astype(np.float32) / 255.0


def _common_size(images: list[np.ndarray], shapes: set, where: Path) -> list[np.ndarray]:
    """Mixed sizes or channel counts: bring all images to the most common shape's channels."""
    channels = max(s[2] for s in shapes)
    images = [np.repeat(img, channels, axis=2) if img.shape[2] != channels else img for img in images]
    sizes = {img.shape for img in images}
    if len(sizes) > 1:
        raise DataError(f"{where}: images have different sizes {sorted(sizes)[:4]}; pass --resize to resize them")
    return images


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
        return Dataset(_images(a["x_train"], folder), _labels(a["y_train"], folder), _images(a["x_test"], folder),
                       _labels(a["y_test"], folder), "fashion_mnist", FASHION_MNIST_CLASSES)  # fmt: skip
    return _from_keras("fashion_mnist", folder)


def _cifar10(_: str) -> Dataset:
    folder = keras_cache() / "cifar-10-batches-py"
    if folder.is_dir():
        from ._cifar import read_cifar10

        x_train, y_train, x_test, y_test = read_cifar10(folder)
        return Dataset(_images(x_train, folder), _labels(y_train, folder), _images(x_test, folder),
                       _labels(y_test, folder), "cifar10", CIFAR10_CLASSES)  # fmt: skip
    return _from_keras("cifar10", folder)


def _from_keras(name: str, cache_path: Path) -> Dataset:
    """Not cached: let Keras download it, and turn any failure into one clear message."""
    try:
        from .backends import quiet_tensorflow

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
    return Dataset(_images(x_train, cache_path), _labels(y_train, cache_path), _images(x_test, cache_path),
                   _labels(y_test, cache_path), name, names)  # fmt: skip


# every loader: (path argument, follow_symlinks, stream) -> Dataset; only idx: and folder: use the options
Loader = Callable[[str, bool, "bool | None"], Dataset]


def _in_memory(read: Callable[[str], Dataset]) -> Loader:
    return lambda arg, follow_symlinks, stream: read(arg)


SOURCES: dict[str, Loader] = {
    "digits": _in_memory(_digits),
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
        raise DataError(f"unknown data source {source!r}; use one of: digits, mnist, fashion_mnist, cifar10, "
                        "npz:PATH, idx:DIR, folder:PATH")  # fmt: skip
    if (kind in NEEDS_PATH) != bool(arg):
        raise DataError(f"data source {kind!r} {'needs a path: ' + kind + ':PATH' if kind in NEEDS_PATH else 'takes no path'}")
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
    from .resources import memory_limit

    return sum(store.nbytes for store in stores) > STREAM_SHARE_OF_MEMORY * memory_limit()


def is_streamed(x: object) -> bool:
    """True for images read from disk per batch (an ``ImageStore``), False for arrays and tensors."""
    return isinstance(x, ImageStore)


# -- checks and conversions ---------------------------------------------------------------
def _existing(path: str, directory: bool = False) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such {'folder' if directory else 'file'}")
    if directory and not p.is_dir():
        raise DataError(f"{p}: not a folder")
    if not directory and p.is_dir():
        raise DataError(f"{p}: is a folder, not a file")
    return p


def _images(x: np.ndarray, where: Path | str) -> np.ndarray:
    """(N, H, W[, C]) numbers -> float32 (N, H, W, C); bytes are scaled to [0, 1]."""
    if x.dtype.kind not in "uif":
        raise DataError(f"{where}: images must be numbers, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{where}: images must be (N, H, W) or (N, H, W, C), got shape {x.shape}")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    return (x.astype(np.float32) / scale) if scale != 1.0 else x.astype(np.float32, copy=False)


def _labels(y: np.ndarray, where: Path | str) -> np.ndarray:
    """Class indices (N,) or (N, 1), or one-hot (N, K) -> int64 (N,)."""
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)
    y = y.reshape(len(y)) if y.ndim == 2 else y
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be (N,) class indices or (N, K) one-hot, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{where}: labels must be whole class indices, found {y[~(y == np.round(y))][:3]}")
    elif y.dtype.kind not in "ui":
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


def fit_to_spec(data: Dataset, input_shape: tuple[int, int, int], num_classes: int, resize: bool = False) -> Dataset:
    """Check images and labels fit the spec; with ``resize``, resize images and convert channels."""
    want = tuple(input_shape)
    if data.image_shape != want:
        if not resize:
            got = "x".join(map(str, data.image_shape))
            raise DataError(
                f"{data.source}: images are {got} (H x W x C) but the spec's input_shape is {list(want)}; "
                "pass --resize to resize them, or change input_shape"
            )
        data = replace(data, x_train=_resized(data.x_train, want), x_test=_resized(data.x_test, want))
    for split in ("train", "test"):
        y = getattr(data, f"y_{split}")
        bad = y[(y < 0) | (y >= num_classes)]
        if bad.size:
            raise DataError(
                f"{data.source}: {split} labels must be 0..{num_classes - 1} (the spec's output has "
                f"{num_classes} classes), found {sorted(set(bad.tolist()))[:5]}"
            )
    return data


def _resized(x, shape: tuple[int, int, int]):
    return x.resized(shape, resize_images) if is_streamed(x) else resize_images(x, shape)


def resize_images(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Bilinear resize to (H, W) and convert channels (gray <-> RGB) to ``shape``."""
    from PIL import Image

    height, width, channels = shape
    if x.shape[3] != channels:
        if x.shape[3] == 1:
            x = np.repeat(x, channels, axis=3)
        elif channels == 1 and x.shape[3] == 3:
            x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]  # ITU-R 601 luma, as PIL's "L"
        else:
            raise DataError(f"cannot convert {x.shape[3]}-channel images to {channels} channels")
    if x.shape[1:3] == (height, width):
        return np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty((len(x), height, width, channels), np.float32)
    for i, image in enumerate(x):
        for c in range(channels):
            out[i, :, :, c] = np.asarray(Image.fromarray(image[:, :, c], mode="F").resize((width, height), Image.BILINEAR))
    return out


def validation_split(x: np.ndarray, y: np.ndarray, fraction: float):
    """Keras's rule: the last ``fraction`` of the samples (before any shuffling) validate."""
    n_val = int(len(x) * fraction)
    if fraction > 0 and n_val == 0:
        n_val = 1
    if n_val >= len(x):
        raise DataError(f"validation_split {fraction} leaves no training samples out of {len(x)}")
    cut = len(x) - n_val
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def read_inputs(paths: list[str | Path], input_shape: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
    """Images (PNG/JPG/...) or .npy arrays -> (N, H, W, C) float32 fitted to ``input_shape``, with a label per row.

    Images are converted to the spec's channel count and resized; bytes are scaled to [0, 1].
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = input_shape
    batches, labels = [], []
    for raw in paths:
        path = _existing(str(raw))
        if path.suffix.lower() == ".npy":
            try:
                array = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as err:
                raise DataError(f"{path}: not a readable .npy array: {err}") from None
            if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4) and array.shape[-1] != height):
                array = array[None]
            x = _images(array, path)
            labels += [str(path)] if len(x) == 1 else [f"{path}[{i}]" for i in range(len(x))]
        else:
            if channels not in (1, 3):
                raise DataError(f"{path}: images can feed 1- or 3-channel specs, this one takes {channels}")
            try:
                with Image.open(path) as img:
                    img = img.convert("L" if channels == 1 else "RGB")
                    if img.size != (width, height):
                        img = img.resize((width, height), Image.BILINEAR)
                    array = np.asarray(img)
            except (UnidentifiedImageError, OSError) as err:
                raise DataError(f"{path}: not a readable image: {err}") from None
            x = _images(array[None], path)
            labels.append(str(path))
        if not np.all(np.isfinite(x)):
            raise DataError(f"{path}: holds NaN or infinite values")
        batches.append(resize_images(x, input_shape) if x.shape[1:] != tuple(input_shape) else x)
    return np.concatenate(batches), labels


def preview(source: str, output: str | Path, samples: int = 32, seed: int = 0) -> dict:
    """A labelled grid of training images (PNG) and the facts worth checking before training."""
    from .figures import data_grid
    from .files import atomic_write_bytes

    data = load_data(source)
    classes = int(max(data.y_train.max(), data.y_test.max())) + 1
    names = data.class_names if data.class_names and len(data.class_names) >= classes else [str(i) for i in range(classes)]
    picked = np.sort(np.random.default_rng(seed).choice(len(data.x_train), min(samples, len(data.x_train)), replace=False))
    atomic_write_bytes(Path(output), data_grid(data.x_train[picked], data.y_train[picked], names,
                                               f"{data.source}: {len(picked)} training images"))  # fmt: skip
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
