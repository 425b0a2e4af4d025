"""``shapes``: a small synthetic data set for segmentation and regression, made on the spot.

Segmentation and regression need a data set that ships with cnnspec, as ``digits`` does for
classification: no download, a second to make, and the same arrays on every machine. Each
32x32 grey image is a dark, lightly noisy background with 1-3 filled shapes (a circle, an
axis-aligned square or an upright triangle, 5..12 px across, fully inside the image, grey
0.5..0.9 plus the noise); later shapes paint over earlier ones in the image and in the mask.

- ``shapes``: per-pixel class masks (N, 32, 32) int64: 0 background, 1 circle, 2 square, 3 triangle.
- ``shape_counts``: (N, 3) float32 counts of the circles, squares and triangles drawn (a shape
  painted over still counts, so a class in the mask implies a count >= 1, not the reverse).

Why it is the same everywhere: the only random numbers used are ``Generator.random()`` doubles
from PCG64 (numpy promises the bit stream; NEP 19 does not promise its other distributions
across versions), turned into integers with ``floor``, and the shapes are rasterised with
integer arithmetic on the pixel grid (no PIL, no anti-aliasing).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .dataset import Dataset

SHAPES_CLASSES = ["background", "circle", "square", "triangle"]
SHAPES_SEED = 25
# split -> (images, seed): different seeds give independent PCG64 streams, so no test image repeats a train one
SHAPES_SPLITS = {"train": (2000, SHAPES_SEED), "test": (400, SHAPES_SEED + 1)}
MAX_SHAPES = 3
SIDE = (5, 12)  # smallest and largest shape, pixels across
BRIGHTNESS = (0.5, 0.9)  # a shape's grey, before the noise
NOISE = 0.1  # every pixel gets uniform noise in [0, NOISE): background 0..0.1, shapes 0.5..1.0


# -- rasterisers: (rows, cols) relative to the shape's box, side -> inside; all integer, all broadcast ------------
def _square(dy: np.ndarray, dx: np.ndarray, side: np.ndarray) -> np.ndarray:
    return (dy >= 0) & (dy < side) & (dx >= 0) & (dx < side)


def _circle(dy: np.ndarray, dx: np.ndarray, side: np.ndarray) -> np.ndarray:
    # centre (side-1)/2, radius side/2, all doubled to stay in integers
    return (2 * dy - (side - 1)) ** 2 + (2 * dx - (side - 1)) ** 2 <= side**2


def _triangle(dy: np.ndarray, dx: np.ndarray, side: np.ndarray) -> np.ndarray:
    # apex at the top centre, widening by one pixel a row to the full side at the bottom row
    return _square(dy, dx, side) & (np.abs(2 * dx - (side - 1)) <= dy + 1)


RASTERS: dict[int, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    1: _circle,
    2: _square,
    3: _triangle,
}  # class index in SHAPES_CLASSES -> its rasteriser


def _floor(u: np.ndarray, low: int, count: np.ndarray | int) -> np.ndarray:
    """Uniform doubles in [0, 1) -> integers low..low+count-1 (exact: no distribution code involved)."""
    return low + np.floor(u * count).astype(np.int64)


def shapes_arrays(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images with 1-3 shapes each, from ``seed``: (images, masks, counts).

    images: float32 (n, size, size, 1) in [0, 1]; masks: int64 (n, size, size), the class
    index of ``SHAPES_CLASSES`` each pixel shows; counts: float32 (n, 3), how many circles,
    squares and triangles were drawn. The same ``n, seed, size`` give the same arrays.
    """
    rng = np.random.default_rng(seed)
    number = _floor(rng.random(n), 1, MAX_SHAPES)
    u = rng.random((MAX_SHAPES, 5, n))  # per shape slot: kind, side, top, left, brightness (drawn even when unused)
    noise = rng.random((n, size, size)) * NOISE
    rows = np.arange(size)[None, :, None]
    cols = np.arange(size)[None, None, :]
    masks = np.zeros((n, size, size), np.int64)
    grey = np.zeros((n, size, size))
    counts = np.zeros((n, len(RASTERS)), np.float32)
    for slot in range(MAX_SHAPES):
        kind = _floor(u[slot, 0], 1, len(RASTERS))
        side = _floor(u[slot, 1], SIDE[0], SIDE[1] - SIDE[0] + 1)
        top, left = _floor(u[slot, 2], 0, size - side + 1), _floor(u[slot, 3], 0, size - side + 1)
        brightness = BRIGHTNESS[0] + (BRIGHTNESS[1] - BRIGHTNESS[0]) * u[slot, 4]
        drawn = slot < number
        dy, dx, s = rows - top[:, None, None], cols - left[:, None, None], side[:, None, None]
        inside = np.zeros((n, size, size), bool)
        for label, raster in RASTERS.items():
            inside |= (kind == label)[:, None, None] & raster(dy, dx, s)
        paint = inside & drawn[:, None, None]
        masks = np.where(paint, kind[:, None, None], masks)
        grey = np.where(paint, brightness[:, None, None], grey)
        counts[np.flatnonzero(drawn), kind[drawn] - 1] += 1
    images = np.clip(grey + noise, 0.0, 1.0).astype(np.float32)[..., None]
    return images, masks, counts


# the targets a shapes source trains on: source name -> (which array of shapes_arrays, class names)
SHAPES_TARGETS: dict[str, tuple[int, list[str] | None]] = {
    "shapes": (1, SHAPES_CLASSES),
    "shape_counts": (2, None),
}


def shapes_dataset(source: str = "shapes") -> Dataset:
    """The fixed train (2000) and test (400) splits, with the target ``source`` names (``SHAPES_TARGETS``)."""
    which, names = SHAPES_TARGETS[source]
    train, test = (shapes_arrays(n, seed) for n, seed in SHAPES_SPLITS.values())
    return Dataset(train[0], train[which], test[0], test[which], source, list(names) if names else None)
