"""Image sets read from disk a batch at a time, for data that does not fit in memory.

An ``ImageStore`` looks like the float32 (N, H, W, C) array the in-memory sources
give (``len``, ``shape``, slicing), but indexing it with rows reads and decodes
just those images. ``stream_batches`` reads the batches of an epoch ahead of the
training loop on a pool of worker threads: PNG/JPEG decoding and memory-mapped
reads release the GIL, so they overlap with the framework's own compute.

>>> store = load_data("idx:mnist/", stream=True).x_train     # doctest: +SKIP
>>> store.shape, store[np.array([5, 2])].dtype                # doctest: +SKIP
((60000, 28, 28, 1), dtype('float32'))
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import DataError

Resize = Callable[[np.ndarray, tuple[int, ...]], np.ndarray]  # (N, H, W, C) batch, shape -> resized batch


class ImageStore:
    """Lazy float32 (N, H, W, C) images: ``store[rows]`` reads those rows, ``store[a:b]`` narrows the store.

    Subclasses say how to ``read`` rows of the underlying source; ``rows`` maps
    this store's positions to them, so a validation split costs nothing.
    """

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, length: int, image_shape: tuple[int, ...], where: str):
        self.rows, self.image_shape, self.where = np.arange(length), tuple(image_shape), where
        self.target: tuple[int, ...] | None = None  # a --resize target shape
        self.resize: Resize | None = None

    def read(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *(self.target or self.image_shape))

    @property
    def nbytes(self) -> int:
        """What the images would take in memory as float32."""
        return int(np.prod(self.shape)) * 4

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            narrowed = copy.copy(self)
            narrowed.rows = self.rows[key]
            return narrowed
        rows = self.rows[np.asarray(key, dtype=np.int64)]
        return self.read(rows[None] if rows.ndim == 0 else rows)

    def resized(self, shape: tuple[int, ...], resize: Resize) -> ImageStore:
        """The same images brought to ``shape`` by ``resize`` as they are read."""
        store = copy.copy(self)
        store.target, store.resize = tuple(shape), resize
        return store

    def materialize(self, batch_size: int = 4096) -> np.ndarray:
        """Every image, in memory (for small test splits and tools that need them all)."""
        return np.concatenate(
            [self[np.arange(i, min(i + batch_size, len(self)))] for i in range(0, len(self), batch_size)]
        )


class ArrayStore(ImageStore):
    """Images kept in their stored dtype (a memory map, or compact bytes), converted to float32 per batch."""

    def __init__(self, array: np.ndarray, where: str, scale: float):
        images = array[..., None] if array.ndim == 3 else array
        super().__init__(len(images), images.shape[1:], where)
        self.images, self.scale = images, scale

    def read(self, rows: np.ndarray) -> np.ndarray:
        # ascending rows read a memory map front to back; then put them back in the asked order
        ascending = np.argsort(rows, kind="stable")
        batch = np.empty((len(rows), *self.image_shape), np.float32)
        batch[ascending] = self.images[rows[ascending]]
        if self.images.dtype.kind == "f" and not np.all(np.isfinite(batch)):
            raise DataError(f"{self.where}: images hold NaN or infinite values")
        if self.scale != 1.0:
            batch /= self.scale
        return batch if self.target is None or self.resize is None else self.resize(batch, self.target)


class DecodedCache:
    """A file store's decoded pixels in an unlinked temporary file, memory-mapped: each image is decoded once.

    Decoding a small PNG costs ~60 µs of Python-heavy work that competes with training
    for the CPU; reading its bytes back from the map costs next to nothing, and the
    kernel's page cache keeps them in memory only while there is room. The space is
    reserved up front, so a full disk means no cache rather than a crash later.
    """

    def __init__(self, length: int, image_shape: tuple[int, ...]):
        self.file = tempfile.TemporaryFile(prefix="cnnspec-decoded-")  # noqa: SIM115  (lives as long as the cache)
        size = max(1, length * int(np.prod(image_shape)))
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(self.file.fileno(), 0, size)  # OSError (ENOSPC) when it does not fit
        elif shutil.disk_usage(tempfile.gettempdir()).free < 2 * size:
            raise OSError("not enough free space for the decoded-image cache")
        self.pixels = np.memmap(self.file, dtype=np.uint8, mode="r+", shape=(length, *image_shape))
        self.ready = np.zeros(length, dtype=bool)


class FileStore(ImageStore):
    """One image file per row, decoded when first read (then cached); without --resize every image must have the
    first one's shape."""

    def __init__(self, files: list[Path], where: str, decode: Callable[[Path], np.ndarray], cache: bool = True):
        first = decode(files[0])
        super().__init__(len(files), first.shape, where)
        self.files, self.decode = files, decode
        self._cache: DecodedCache | None = None
        self._cache_wanted = cache and first.dtype == np.uint8
        self._cache_lock = threading.Lock()  # shared by narrowed copies: they read the same files

    def _decoded_cache(self) -> DecodedCache | None:
        with self._cache_lock:
            if self._cache is None and self._cache_wanted:
                try:
                    self._cache = DecodedCache(len(self.files), self.image_shape)
                except OSError:
                    self._cache_wanted = False  # no room: decode every time, as without a cache
            return self._cache

    def _pixels(self, row: int) -> np.ndarray:
        cache = self._decoded_cache()
        if cache is not None and cache.ready[row]:
            return cache.pixels[row]
        image = self.decode(self.files[row])
        if cache is not None and image.shape == self.image_shape:  # odd-sized images are not cached
            cache.pixels[row] = image
            cache.ready[row] = True
        return image

    def read(self, rows: np.ndarray) -> np.ndarray:
        batch = np.empty((len(rows), *self.shape[1:]), np.float32)
        for i, row in enumerate(rows):
            image = self._pixels(row).astype(np.float32) / 255.0
            if self.target is not None and self.resize is not None:
                image = self.resize(image[None], self.target)[0] if image.shape != self.target else image
            elif image.shape != self.image_shape:
                size = "x".join(map(str, image.shape))
                raise DataError(
                    f"{self.files[row]}: image is {size} (H x W x C) but {self.files[0].name} is "
                    f"{'x'.join(map(str, self.image_shape))}; pass --resize to resize them"
                )
            batch[i] = image
        return batch


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def stream_batches(
    x: ImageStore, order: np.ndarray, batch_size: int, workers: int | None = None, ahead: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images, rows) for each batch of ``order``, in order, read ``ahead`` batches early on ``workers`` threads."""
    workers = workers or default_workers()
    ahead = ahead or 2 * workers
    pool = ThreadPoolExecutor(workers, thread_name_prefix="cnnspec-read")
    pending: deque = deque()
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            pending.append((pool.submit(x.__getitem__, rows), rows))
            if len(pending) > ahead:
                future, done = pending.popleft()
                yield future.result(), done
        while pending:
            future, done = pending.popleft()
            yield future.result(), done
    finally:  # an error or an early stop: drop the reads not started yet
        pool.shutdown(wait=True, cancel_futures=True)
