"""Data for training and prediction: sources -> numpy arrays, backend-neutral.

Modules, each importing only the ones before it:

- ``dataset``: the ``Dataset`` container (train and test arrays of one source).
- ``formats``: the files read: ``.npz`` archives, MNIST's idx files, image files.
- ``prepare``: arrays into the common form (float32 channels-last images, int64 labels),
  ``fit_to_spec``, ``resize_images``, ``validation_split``, ``read_inputs``.
- ``sources``: ``load_data`` and its named sources (digits, ``npz:``, ``idx:``, ``folder:``,
  Keras's cache) and when ``idx:``/``folder:`` images are streamed from disk.
- ``arrays``: arrays already in memory (``train(spec, data=(x, y))``) as a checked ``Dataset``.
- ``preview``: the labelled grid of training images.

Import from ``cnnspec.data``; the names below are its API.
"""

from __future__ import annotations

from .arrays import dataset_from_arrays
from .dataset import Dataset
from .formats import decode_image, read_idx
from .prepare import fit_to_spec, is_streamed, read_inputs, resize_images, validation_split
from .preview import preview, preview_picture
from .sources import keras_cache, load_data

__all__ = [
    "Dataset",
    "dataset_from_arrays",
    "decode_image",
    "fit_to_spec",
    "is_streamed",
    "keras_cache",
    "load_data",
    "preview",
    "preview_picture",
    "read_idx",
    "read_inputs",
    "resize_images",
    "validation_split",
]
