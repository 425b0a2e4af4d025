"""Targets of any shape are read against the spec they train: classes or values, of the output's shape.

``fit_to_spec`` decides what a data set's ``y`` means for a spec's loss and output, converts the forms
people have (one-hot rows, a trailing axis of 1, boolean masks), resizes masks by nearest neighbour when
asked, and refuses the rest in one sentence (naming the mask file when the targets came from files).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cnnspec
from cnnspec import DataError
from cnnspec.data import dataset_from_arrays, fit_to_spec, load_data
from tests.core.test_segmentation_data import write_pairs

SEGMENTER = {
    "input_shape": [6, 5, 1],
    "layers": [{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "softmax"}],
    "training": {"loss": "sparse_categorical_crossentropy"},
}
REGRESSOR = {
    "input_shape": [6, 5, 1],
    "layers": [{"type": "flatten"}, {"type": "dense", "units": 1}],
    "training": {"loss": "mse"},
}


def _spec(document, **training):
    return cnnspec.load_spec({**document, "training": {**document["training"], **training}})


def _arrays(y, n=4, shape=(6, 5)):
    return dataset_from_arrays((np.zeros((n, *shape)), y))


def test_masks_as_indices_with_an_axis_of_one_or_one_hot_become_the_same_indices():
    masks = np.random.default_rng(0).integers(0, 3, (4, 6, 5))
    spec = _spec(SEGMENTER)
    for given in (masks, masks[..., None], np.eye(3)[masks], masks.astype(np.float32)):
        fitted = fit_to_spec(_arrays(given), spec)
        assert fitted.y_train.dtype == np.int64
        np.testing.assert_array_equal(fitted.y_train, masks)


def test_categorical_and_dice_train_on_indices_that_each_backend_one_hot_encodes():
    masks = np.random.default_rng(1).integers(0, 3, (4, 6, 5))
    for loss in ("categorical_crossentropy", "dice"):
        assert fit_to_spec(_arrays(masks), _spec(SEGMENTER, loss=loss)).y_train.shape == (4, 6, 5)


def test_a_binary_mask_trains_a_one_channel_sigmoid_map_as_values():
    spec = cnnspec.load_spec(
        {**SEGMENTER, "layers": [{**SEGMENTER["layers"][0], "filters": 1, "activation": "sigmoid"}],
         "training": {"loss": "binary_crossentropy"}}
    )  # fmt: skip
    masks = np.random.default_rng(2).random((4, 6, 5)) > 0.5
    fitted = fit_to_spec(_arrays(masks), spec)
    assert fitted.y_train.dtype == np.float32 and fitted.y_train.shape == (4, 6, 5, 1)
    np.testing.assert_array_equal(fitted.y_train[..., 0], masks)


def test_regression_values_take_the_output_shape():
    y = np.arange(4, dtype=np.float64) / 3
    fitted = fit_to_spec(_arrays(y), _spec(REGRESSOR))
    assert fitted.y_train.dtype == np.float32 and fitted.y_train.shape == (4, 1)
    np.testing.assert_allclose(fitted.y_train[:, 0], y, rtol=1e-7)


@pytest.mark.parametrize(
    "document,y,message",
    [
        (
            SEGMENTER,
            np.zeros(4, np.int64),
            r"are one number per image, but the spec's output \[6, 5, 3\] trains on class",
        ),
        (
            SEGMENTER,
            np.full((4, 6, 5), 3),
            r"must be 0..2 \(class indices: the spec's output has 3 classes\), found \[3\]",
        ),
        (SEGMENTER, np.full((4, 6, 5), 0.5), "whole class indices"),
        (SEGMENTER, np.zeros((4, 3, 5), np.int64), r"are \[3, 5\] per image"),
        (REGRESSOR, np.zeros((4, 2)), r"are \[2\] per image, but the spec's output is \[1\]"),
        (REGRESSOR, np.full(4, np.nan), "NaN or infinite"),
    ],
    ids=["one-label-for-a-map", "class-out-of-range", "fractional-classes", "mask-size", "values-shape", "nan"],
)
def test_targets_that_do_not_fit_get_one_sentence(document, y, message):
    with pytest.raises(DataError, match=message):
        fit_to_spec(_arrays(y), _spec(document))


def test_resize_resizes_masks_by_nearest_neighbour_to_the_output():
    spec = cnnspec.load_spec({**SEGMENTER, "input_shape": [12, 10, 1]})
    masks = np.random.default_rng(3).integers(0, 3, (4, 6, 5))
    with pytest.raises(DataError, match="--resize"):
        fit_to_spec(_arrays(masks), spec)
    fitted = fit_to_spec(_arrays(masks), spec, resize=True)
    assert fitted.x_train.shape == (4, 12, 10, 1)
    np.testing.assert_array_equal(fitted.y_train, masks.repeat(2, axis=1).repeat(2, axis=2))


def test_a_mask_file_with_a_class_the_spec_lacks_is_named(tmp_path):
    write_pairs(tmp_path / "seg")
    bad = tmp_path / "seg" / "test" / "masks" / "img1.png"
    mask = np.zeros((6, 5), np.uint8)
    mask[2, 3] = 7
    Image.fromarray(mask).save(bad)
    with pytest.raises(DataError, match=rf"^{bad}: the mask holds class \[7\], but the spec's output has 3 classes"):
        fit_to_spec(load_data(f"folder:{tmp_path / 'seg'}"), _spec(SEGMENTER))


def test_the_shapes_sets_fit_the_example_specs():
    for spec, source, shape in (("unet_shapes", "shapes", (32, 32)), ("regression_counts", "shape_counts", (3,))):
        fitted = fit_to_spec(load_data(source), cnnspec.load_spec(f"specs/{spec}.yaml"))
        assert fitted.y_train.shape[1:] == shape


BINARY = {
    "input_shape": [6, 5, 1],
    "layers": [{"type": "conv2d", "filters": 1, "kernel_size": 3, "padding": "same", "activation": "sigmoid"}],
    "training": {"loss": "dice"},
}


def test_binary_masks_saved_as_0_and_255_are_refused_with_the_fix():
    masks = (np.random.default_rng(4).random((4, 6, 5)) > 0.5).astype(np.uint8) * 255
    with pytest.raises(DataError, match=r"dice needs targets in \[0, 1\]; masks saved as 0/255 need dividing by 255"):
        fit_to_spec(_arrays(masks), _spec(BINARY))


def test_resize_resizes_binary_masks_by_nearest_neighbour_too():
    spec = cnnspec.load_spec({**BINARY, "input_shape": [12, 10, 1]})
    masks = (np.random.default_rng(5).random((4, 6, 5)) > 0.5).astype(np.int64)
    fitted = fit_to_spec(_arrays(masks), spec, resize=True)
    assert fitted.y_train.shape == (4, 12, 10, 1)
    np.testing.assert_array_equal(fitted.y_train[..., 0], masks.repeat(2, axis=1).repeat(2, axis=2))


def test_rows_that_are_not_one_hot_are_not_silently_made_classes():
    soft = np.full((4, 6, 5, 3), 1 / 3)
    with pytest.raises(DataError, match="not one-hot rows.*use binary_crossentropy"):
        fit_to_spec(_arrays(soft), _spec(SEGMENTER))
