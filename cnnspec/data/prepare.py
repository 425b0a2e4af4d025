"""Checks and conversions: arrays into the common form, and data fitted to a spec.

``_images`` and ``_labels`` bring every source's arrays to float32 channels-last images
and int64 class indices (``_targets`` keeps targets of any shape). ``fit_to_spec`` checks (or, asked
to, resizes) them against a spec's input shape and output; ``validation_split`` holds out Keras's share, and
``read_inputs`` reads the files given to ``predict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..streams import ImageStore
from .dataset import Dataset
from .formats import _existing


def is_streamed(x: object) -> bool:
    """True for images read from disk per batch (an ``ImageStore``), False for arrays and tensors."""
    return isinstance(x, ImageStore)


# -- checks and conversions ---------------------------------------------------------------
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
    return _whole(y, f"{where}: labels")


def _targets(y: np.ndarray, where: Path | str) -> np.ndarray:
    """Targets of any shape (N, ...) as stored, checked: numbers and finite; integers become int64, the rest
    float32. What they mean (class indices, one-hot rows, values) is read against a spec by ``fit_to_spec``."""
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if y.dtype.kind not in "uif":
        raise DataError(f"{where}: targets must be numbers, got dtype {y.dtype}")
    if y.ndim == 0:
        raise DataError(f"{where}: targets must have one row per image, got a single number")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise DataError(f"{where}: targets hold NaN or infinite values")
        return y.astype(np.float32, copy=False)
    return y.astype(np.int64, copy=False)


def fit_to_spec(data: Dataset, spec: Any, num_classes: int | None = None, resize: bool = False) -> Dataset:
    """Check images and targets fit ``spec`` (a ``ModelSpec``; or, the older form, an input shape and
    ``num_classes``: one class per image); with ``resize``, resize images (bilinear) and class masks (nearest).

    Targets become what the spec's loss reads (``ModelSpec.target_kind``): class indices (int64, of the
    output's shape without its class axis; one-hot rows and a trailing axis of 1 are converted), or values
    (float32, of the output's shape; a missing trailing axis of 1 is added).
    """
    if isinstance(spec, (tuple, list)):
        want, output, kind, loss = tuple(spec), (int(num_classes or 0),), "classes", None
    else:
        want, output, kind = tuple(spec.input_shape), tuple(spec.summary().output_shape), spec.target_kind
        loss = spec.training.loss
    if data.image_shape != want:
        if not resize:
            got = "x".join(map(str, data.image_shape))
            raise DataError(
                f"{data.source}: images are {got} (H x W x C) but the spec's input_shape is {list(want)}; "
                "pass --resize to resize them, or change input_shape"
            )
        validation = (_resized(data.validation[0], want), data.validation[1]) if data.validation else None
        data = replace(
            data, x_train=_resized(data.x_train, want), x_test=_resized(data.x_test, want), validation=validation
        )
    fit, noun = TARGET_FITS[kind], "labels" if kind == "classes" else "targets"
    probabilities = kind == "values" and loss is not None and loss.probabilities
    validation, files = data.validation, data.target_files or {}

    def fitted(y: np.ndarray, where: str, split_files: list[Any] | None) -> np.ndarray:
        y = fit(y, output, where, resize, split_files)
        if probabilities:
            _zero_to_one(y, where, split_files, loss)
        return y

    return replace(
        data,
        y_train=fitted(data.y_train, f"{data.source}: train {noun}", files.get("train")),
        y_test=fitted(data.y_test, f"{data.source}: test {noun}", files.get("test")),
        validation=(validation[0], fitted(validation[1], f"validation {noun}", None)) if validation else None,
    )


def _zero_to_one(y: np.ndarray, where: str, files: list[Any] | None, loss: Any) -> None:
    """Targets of a loss that reads probabilities (binary cross-entropy, Dice) must lie in [0, 1]: masks saved
    as 0/255 would otherwise train on nonsense."""
    outside = (y < 0) | (y > 1)
    if not outside.any():
        return
    row = int(np.flatnonzero(outside.reshape(len(y), -1).any(axis=1))[0])
    hint = "; masks saved as 0/255 need dividing by 255" if y.max() == 255 else ""
    name = f"{files[row]}: the target" if files is not None else f"{where} (row {row})"
    raise DataError(f"{name} holds {float(y[row][outside[row]].flat[0]):g}, but {loss} needs targets in [0, 1]{hint}")


def _class_targets(
    y: np.ndarray, output: tuple[int, ...], where: str, resize: bool, files: list[Any] | None = None
) -> np.ndarray:
    """Class indices of shape (N, *output[:-1]), from indices, indices with an axis of 1, or one-hot rows."""
    shape, classes = output[:-1], output[-1]
    if y.shape[1:] == (*shape, 1) or (y.ndim == len(shape) + 2 and y.shape[-1] == 1):
        y = y[..., 0]
    elif y.shape[1:] == (*shape, classes) and classes > 1:
        if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=-1) == 1)):
            raise DataError(
                f"{where} hold {classes} numbers per position that are not one-hot rows (a single 1, the rest 0): "
                "this loss trains on one class per position; for probabilities or several labels per position use "
                "binary_crossentropy"
            )
        y = y.argmax(axis=-1)
    if y.ndim == len(shape) + 1 and len(shape) >= 2 and y.shape[1:] != shape and resize:
        from .masks import resize_masks

        y = resize_masks(_whole(y, where), shape[0], shape[1]) if len(shape) == 2 else y
    if y.shape[1:] != shape:
        per_image = "one class index per image" if not shape else f"class indices of shape {list(shape)}"
        hint = "; pass --resize to resize masks (nearest)" if len(shape) >= 2 and y.ndim == len(shape) + 1 else ""
        raise DataError(
            f"{where} are {list(y.shape[1:]) or 'one number'} per image, but the spec's output "
            f"{list(output)} trains on {per_image} (or one-hot rows){hint}"
        )
    y = _whole(y, where)
    bad = y[(y < 0) | (y >= classes)]
    if bad.size and files is not None:  # masks read from files: name the first one
        row = int(np.flatnonzero(((y < 0) | (y >= classes)).reshape(len(y), -1).any(axis=1))[0])
        found = sorted(set(y[row][(y[row] < 0) | (y[row] >= classes)].tolist()))[:5]
        raise DataError(
            f"{files[row]}: the mask holds class {found}, but the spec's output has {classes} classes (0..{classes - 1})"
        )
    if bad.size:
        raise DataError(
            f"{where} must be 0..{classes - 1} (class indices: the spec's output has {classes} classes), "
            f"found {sorted(set(bad.tolist()))[:5]}"
        )
    return y


def _whole(y: np.ndarray, where: str) -> np.ndarray:
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{where} must be whole class indices, found {y[~(y == np.round(y))][:3]}")
    elif y.dtype.kind not in "ui":
        raise DataError(f"{where} must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


def _value_targets(
    y: np.ndarray, output: tuple[int, ...], where: str, resize: bool, files: list[Any] | None = None
) -> np.ndarray:
    """Numbers of the output's shape (N, *output); an output whose last axis is 1 also takes them without it.
    With ``resize``, maps are resized to the output: integer masks by nearest neighbour, values bilinearly."""
    if output[-1] == 1 and y.ndim == len(output):  # (N, H, W) masks for an (H, W, 1) output, (N,) for (1,)
        y = y[..., None]
    if len(output) == 3 and y.ndim == 4 and y.shape[1:] != output and y.shape[3] == output[2] and resize:
        if y.dtype.kind in "uib":
            from .masks import resize_masks

            channels = [resize_masks(y[..., c], output[0], output[1]) for c in range(y.shape[3])]
            y = np.stack(channels, axis=-1)
        else:
            y = resize_images(y.astype(np.float32), output)
    if y.shape[1:] != output:
        raise DataError(
            f"{where} are {list(y.shape[1:]) or 'one number'} per image, but the spec's output is {list(output)}: "
            "targets for this loss are numbers of the output's shape"
        )
    if y.dtype.kind not in "uifb" or not np.all(np.isfinite(y)):
        raise DataError(f"{where} must be finite numbers")
    return y.astype(np.float32)


TARGET_FITS = {"classes": _class_targets, "values": _value_targets}


def _resized(x, shape: tuple[int, ...]):
    return x.resized(shape, resize_images) if is_streamed(x) else resize_images(x, shape)


def resize_images(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
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
            out[i, :, :, c] = np.asarray(
                Image.fromarray(image[:, :, c], mode="F").resize((width, height), Image.BILINEAR)
            )
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


def read_inputs(paths: Sequence[str | Path], input_shape: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
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
