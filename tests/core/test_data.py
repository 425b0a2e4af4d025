"""Every data source on tiny files the tests write, and the checks against a spec."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec import DataError
from cnnspec.data import fit_to_spec, load_data, read_idx, resize_images, validation_split
from tests.data_files import write_folder, write_idx, write_npz


def test_digits_is_a_fixed_stratified_80_20_split_in_unit_range():
    data = load_data("digits")
    assert data.x_train.shape == (1437, 8, 8, 1) and data.x_test.shape == (360, 8, 8, 1)
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0 and data.x_train.max() == 1.0
    assert np.bincount(data.y_test).min() >= 35  # stratified: every class ~36 times
    again = load_data("digits")
    np.testing.assert_array_equal(again.y_test, data.y_test)


def test_npz_in_keras_mnist_layout(tmp_path):
    data = load_data(f"npz:{write_npz(tmp_path / 'd.npz')}")
    assert data.x_train.shape == (30, 8, 8, 1) and data.x_train.max() == 1.0  # uint8 scaled, channel added
    assert data.y_train.dtype == np.int64 and set(data.y_train) == {0, 1, 2}


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_gzipped_or_not(tmp_path, gz):
    data = load_data(f"idx:{write_idx(tmp_path / 'mnist', gz=gz)}")
    assert data.x_train.shape == (30, 8, 8, 1) and data.x_test.shape == (9, 8, 8, 1)
    np.testing.assert_array_equal(data.y_test, np.arange(9) % 3)


def test_folder_of_pngs_uses_folder_names_as_classes(tmp_path):
    data = load_data(f"folder:{write_folder(tmp_path / 'imgs')}")
    assert data.class_names == ["class_0", "class_1", "class_2"]
    assert data.x_train.shape == (12, 8, 8, 1) and data.x_test.shape == (6, 8, 8, 1)


def test_folder_symlink_out_of_root_is_refused(tmp_path):
    root = write_folder(tmp_path / "imgs")
    outside = tmp_path / "secret.png"
    (root / "train" / "class_0" / "0.png").rename(outside)
    (root / "train" / "class_0" / "0.png").symlink_to(outside)
    with pytest.raises(DataError, match="outside"):
        load_data(f"folder:{root}")
    assert len(load_data(f"folder:{root}", follow_symlinks=True).x_train) == 12  # when asked


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p.write_bytes(b"not a zip"), "not a readable .npz"),
        (lambda p: np.savez(p, x_train=np.zeros((2, 4, 4))), "missing arrays y_train, x_test, y_test"),
        (
            lambda p: np.savez(
                p, x_train=np.zeros((2, 4, 4)), y_train=np.zeros(3), x_test=np.zeros((1, 4, 4)), y_test=np.zeros(1)
            ),
            "2 train images but 3 labels",
        ),
        (
            lambda p: np.savez(
                p,
                x_train=np.full((2, 4, 4), np.nan),
                y_train=np.zeros(2),
                x_test=np.zeros((1, 4, 4)),
                y_test=np.zeros(1),
            ),
            "NaN",
        ),
        (
            lambda p: np.savez(
                p, x_train=np.zeros((0, 4, 4)), y_train=np.zeros(0), x_test=np.zeros((1, 4, 4)), y_test=np.zeros(1)
            ),
            "empty",
        ),
        (
            lambda p: np.savez(
                p, x_train=np.zeros((2, 4)), y_train=np.zeros(2), x_test=np.zeros((1, 4)), y_test=np.zeros(1)
            ),
            "images must be",
        ),
        (
            lambda p: np.savez(
                p, x_train=np.array([["a"]] * 2), y_train=np.zeros(2), x_test=np.zeros((1, 4, 4)), y_test=np.zeros(1)
            ),
            "must be numbers",
        ),
    ],
)
def test_bad_npz_files_give_clear_errors(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(DataError, match=message):
        load_data(f"npz:{path}")


def test_truncated_idx_file_is_named(tmp_path):
    folder = write_idx(tmp_path / "m", gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_image_that_is_not_an_image(tmp_path):
    root = write_folder(tmp_path / "imgs")
    (root / "train" / "class_1" / "broken.png").write_bytes(b"no png here")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_data(f"folder:{root}")


@pytest.mark.parametrize(
    "source,message",
    [("nope", "unknown data source"), ("npz", "needs a path"), ("npz:/does/not/exist.npz", "no such file")],
)
def test_bad_source_strings(source, message):
    with pytest.raises(DataError, match=message):
        load_data(source)


def test_shape_mismatch_suggests_resize_and_resize_fixes_it(tmp_path):
    data = load_data(f"npz:{write_npz(tmp_path / 'd.npz', size=10)}")
    with pytest.raises(DataError, match="images are 10x10x1.*input_shape is \\[8, 8, 3\\].*--resize"):
        fit_to_spec(data, (8, 8, 3), 3)
    fitted = fit_to_spec(data, (8, 8, 3), 3, resize=True)
    assert fitted.x_train.shape == (30, 8, 8, 3)


def test_labels_out_of_range_for_the_spec():
    data = load_data("digits")
    with pytest.raises(DataError, match=r"labels must be 0..4 .* found \[5, 6, 7, 8, 9\]"):
        fit_to_spec(data, (8, 8, 1), 5)


def test_resize_keeps_constant_images_constant():
    x = np.full((2, 5, 5, 1), 0.5, np.float32)
    np.testing.assert_allclose(resize_images(x, (9, 7, 1)), 0.5, atol=1e-6)


def test_validation_split_takes_the_last_fraction_like_keras():
    x, y = np.arange(10)[:, None], np.arange(10)
    (xt, yt), (xv, yv) = validation_split(x, y, 0.2)
    assert list(yt) == list(range(8)) and list(yv) == [8, 9]
