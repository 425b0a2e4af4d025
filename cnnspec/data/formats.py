"""File formats the data sources read: ``.npz`` archives, MNIST's idx files, image files.

Readers give the arrays as stored (idx: its dtype and shape; images: uint8 (H, W, C)) and
raise ``DataError`` naming the file; ``sources`` turns them into a ``Dataset``.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _existing(path: str, directory: bool = False) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such {'folder' if directory else 'file'}")
    if directory and not p.is_dir():
        raise DataError(f"{p}: not a folder")
    if not directory and p.is_dir():
        raise DataError(f"{p}: is a folder, not a file")
    return p


# -- npz ----------------------------------------------------------------------------------
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(file: Path) -> list[np.ndarray]:
    """The four arrays of an ``npz:`` archive, in ``NPZ_ARRAYS`` order (no pickled objects)."""
    try:
        with np.load(file, allow_pickle=False) as arrays:
            missing = [k for k in NPZ_ARRAYS if k not in arrays.files]
            if missing:
                raise DataError(f"{file}: missing arrays {', '.join(missing)} (has: {', '.join(arrays.files)})")
            parts = [arrays[k] for k in NPZ_ARRAYS]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{file}: not a readable .npz archive of arrays: {err}") from None
    return parts


# -- idx ----------------------------------------------------------------------------------
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx_header(head: bytes, path: Path) -> tuple[np.dtype, list[int], int]:
    """(dtype, dims, header bytes) from the start of an idx file."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES:
        raise DataError(f"{path}: not an idx file (bad magic number)")
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path}: idx header is cut short")
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.dtype(IDX_DTYPES[head[2]]), dims, 4 + 4 * ndim  # type: ignore[call-overload]


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


# -- image files ----------------------------------------------------------------------------
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
