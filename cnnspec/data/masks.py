"""``folder:`` data for segmentation: images paired with per-pixel class masks.

Layout (``sources._folder`` reads it when ``PATH/train/images`` and ``PATH/train/masks`` are
both folders, and class folders otherwise)::

    PATH/train/images/NAME.png   PATH/train/masks/NAME.png
    PATH/test/images/NAME.png    PATH/test/masks/NAME.png
    PATH/classes.txt             optional: one class name per line, line 1 is class 0

An image and its mask share the file stem (``NAME``); images may be any format in
``IMAGE_SUFFIXES``, masks must be PNG, because a lossy format would change class indices at
shape edges. A mask holds one class index per pixel: a grey (``L``) or palette (``P``) PNG,
whose palette indices are the classes, so a coloured palette still reads as 0, 1, 2...
Every image of a split has one size, and each mask has its image's height and width;
resizing comes later (``resize_masks``, when data is fitted to a spec).

Images are read like class-folder images (in memory, or streamed as ``FileStore`` rows); the
masks are always in memory, int64 (N, H, W): they are small, and the losses need them whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .formats import IMAGE_SUFFIXES

MASK_SUFFIX = ".png"
# PIL modes of single-channel PNGs (bilevel, grey 8/16/32-bit, palette): their values are the class indices
MASK_MODES = {"1", "L", "P", "I", "I;16", "I;16B", "I;16L"}
CLASSES_FILE = "classes.txt"


def is_pairs_layout(root: Path) -> bool:
    """True when ``root/train`` holds ``images/`` and ``masks/`` folders (not class folders)."""
    return all((root / "train" / part).is_dir() for part in ("images", "masks"))


def _listed(folder: Path, root: Path, follow_symlinks: bool) -> dict[str, Path]:
    """Image files of ``folder`` by stem, in name order; symlinks out of ``root`` refused as class folders do."""
    real_root = root.resolve()
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not follow_symlinks and real_root not in file.resolve().parents:
            raise DataError(f"{file}: points outside {root} (a symlink); refusing to follow it")
        if file.stem in found:
            raise DataError(f"{file}: same name as {found[file.stem].name}; each image and mask needs its own NAME")
        found[file.stem] = file
    return found


def _pairs(root: Path, split: str, follow_symlinks: bool) -> list[tuple[Path, Path]]:
    """(image, mask) files of a split, in image-name order; every image has a mask and every mask an image."""
    folders = [root / split / part for part in ("images", "masks")]
    for folder in folders:
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (expected {split}/images/ and {split}/masks/, as in train/)")
    images, masks = (_listed(folder, root, follow_symlinks) for folder in folders)
    if not images:
        raise DataError(f"{folders[0]}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for stem, mask in masks.items():
        if mask.suffix.lower() != MASK_SUFFIX:
            raise DataError(f"{mask}: masks must be PNG files (lossless: other formats change class indices)")
        if stem not in images:
            raise DataError(f"{mask}: a mask without an image (no {stem}.* in {folders[0]})")
    for stem, image in images.items():
        if stem not in masks:
            raise DataError(f"{image}: no mask (expected {folders[1] / (stem + MASK_SUFFIX)})")
    return [(image, masks[stem]) for stem, image in images.items()]


def _image_size(file: Path) -> tuple[int, int]:
    """(height, width) from the file's header, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{file}: not a readable image: {err}") from None
    return height, width


def read_mask(file: Path) -> np.ndarray:
    """One mask PNG -> int64 (H, W) class indices (a palette PNG's indices, not its colours)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            if img.format != "PNG":
                raise DataError(f"{file}: masks must be PNG files (lossless), this one is {img.format}")
            if img.mode not in MASK_MODES:
                raise DataError(
                    f"{file}: mask is a {img.mode} image with {len(img.getbands())} channels; masks hold one "
                    "class index per pixel (a grey L or palette P PNG)"
                )
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{file}: not a readable mask: {err}") from None
    return array.astype(np.int64)


def list_pairs(root: Path, split: str, follow_symlinks: bool = False) -> tuple[list[Path], np.ndarray, list[Path]]:
    """(image files, their masks as int64 (N, H, W), the mask files) of ``root/split``: the class layout's
    (files, labels), and where each mask came from (errors found later, against a spec, name the file).

    Reads the masks and only the images' headers, so the images can still be streamed;
    refuses, naming the file, a missing partner, a size unlike the split's first image's,
    and a mask not the size of its image.
    """
    pairs = _pairs(root, split, follow_symlinks)
    first = _image_size(pairs[0][0])
    masks = []
    for image, mask_file in pairs:
        size = _image_size(image)
        if size != first:
            raise DataError(
                f"{image}: image is {size[0]}x{size[1]} (H x W) but {pairs[0][0].name} is {first[0]}x{first[1]}; "
                "every image of a split must have the same size"
            )
        mask = read_mask(mask_file)
        if mask.shape != size:
            raise DataError(
                f"{mask_file}: mask is {mask.shape[0]}x{mask.shape[1]} (H x W) but its image {image.name} is "
                f"{size[0]}x{size[1]}; a mask must have its image's size"
            )
        masks.append(mask)
    return [image for image, _ in pairs], np.stack(masks), [mask for _, mask in pairs]


def class_names(root: Path) -> list[str] | None:
    """``root/classes.txt``'s names, one a line (line 1 is class 0); None when there is no such file."""
    file = root / CLASSES_FILE
    if not file.is_file():
        return None
    try:
        names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{file}: cannot read: {err}") from None
    while names and not names[-1]:
        names.pop()
    if not names or "" in names:
        where = f"line {names.index('') + 1} is empty" if names else "it is empty"
        raise DataError(f"{file}: {where}; write one class name per line, class 0 first")
    return names


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of int class masks (N, H, W) -> int64 (N, height, width).

    Nearest, never interpolating: every value out is a value in, so no class index appears
    at a boundary that is not there. 8-bit when the indices fit (fast), else 32-bit ``I``.
    """
    from PIL import Image

    masks = np.asarray(masks)
    if masks.shape[1:] == (height, width):
        return masks.astype(np.int64)
    low, high = (int(masks.min()), int(masks.max())) if masks.size else (0, 0)
    if low < -(2**31) or high >= 2**31:
        raise DataError(f"mask values {low}..{high} do not fit 32 bits; masks hold class indices")
    dtype = np.uint8 if low >= 0 and high < 256 else np.int32
    out = np.empty((len(masks), height, width), np.int64)
    for i, mask in enumerate(masks.astype(dtype)):
        out[i] = np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))
    return out
