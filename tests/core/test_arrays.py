"""Arrays in memory as data: every accepted form gives the same checked Dataset, and bad arrays one clear error."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.data import Dataset, dataset_from_arrays, fit_to_spec
from cnnspec.errors import DataError


def _arrays(n=12, shape=(8, 8), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape)).astype(np.uint8), rng.integers(0, 3, n)


def test_every_form_gives_the_same_dataset():
    x, y = _arrays()
    xt, yt = _arrays(5, seed=1)
    forms = [
        (x, y, xt, yt),
        [x, y, xt, yt],
        {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt},
        Dataset(x, y, xt, yt, "arrays"),
    ]
    results = [dataset_from_arrays(form) for form in forms]
    for data in results:
        assert data.x_train.shape == (12, 8, 8, 1) and data.x_train.dtype == np.float32
        assert data.x_train.max() <= 1.0  # uint8 scaled as every file source does
        np.testing.assert_array_equal(data.x_train, results[0].x_train)
        np.testing.assert_array_equal(data.y_test, yt)


def test_one_hot_labels_and_no_test_split():
    x, y = _arrays()
    data = dataset_from_arrays((x, np.eye(3)[y]))
    # kept as given until a spec says what they are: one-hot rows of a 3-class output become indices
    np.testing.assert_array_equal(fit_to_spec(data, (8, 8, 1), 3).y_train, y)
    assert len(data.x_test) == 0 and data.x_test.shape[1:] == (8, 8, 1)


def test_validation_data_is_kept_and_checked_against_the_spec():
    x, y = _arrays()
    data = dataset_from_arrays((x, y), validation_data=_arrays(4, seed=2))
    assert data.validation[0].shape == (4, 8, 8, 1)
    bad = dataset_from_arrays((x, y), validation_data=(x[:2], np.array([0, 7])))
    with pytest.raises(DataError, match="validation labels must be 0..2"):
        fit_to_spec(bad, (8, 8, 1), 3)


@pytest.mark.parametrize(
    "data,message",
    [
        ((np.zeros((4, 8)), np.zeros(4)), "images must be \\(N, H, W\\) or \\(N, H, W, C\\)"),
        ((np.zeros((4, 8, 8, 1)), np.zeros(3)), "4 images but 3 labels"),
        ((np.full((2, 8, 8), np.nan), np.zeros(2)), "NaN"),
        ((np.array([["a"]] * 2), np.zeros(2)), "images must be numbers"),
        ((np.zeros((0, 8, 8)), np.zeros(0)), "training split is empty"),
        (({"x_train": np.zeros((2, 8, 8))}), "keys"),
        ((np.zeros((2, 8, 8)), np.zeros(2), np.zeros((2, 7, 8)), np.zeros(2)), "x_test images are"),
        ((42), "data is a source name"),
    ],
)
def test_bad_arrays_give_one_clear_error(data, message):
    with pytest.raises(DataError, match=message):
        dataset_from_arrays(data)


def test_labels_out_of_range_and_wrong_image_size_are_caught_by_the_spec_check():
    x, y = _arrays()
    with pytest.raises(DataError, match="whole class indices"):  # fractions are values, not classes
        fit_to_spec(dataset_from_arrays((x[:2], np.array([0.5, 1.0]))), (8, 8, 1), 2)
    with pytest.raises(DataError, match="labels must be 0..1"):
        fit_to_spec(dataset_from_arrays((x, y)), (8, 8, 1), 2)
    with pytest.raises(DataError, match="images are 8x8x1 .* input_shape is \\[28, 28, 1\\]"):
        fit_to_spec(dataset_from_arrays((x, y)), (28, 28, 1), 3)
