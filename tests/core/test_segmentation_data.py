"""Data for segmentation and regression: the synthetic ``shapes`` set and ``folder:`` image/mask pairs.

``shapes`` must be the same arrays on every machine (pinned digests), look like what its
docstring says (classes, brightness, shape geometry) and agree with ``shape_counts``.
``folder:`` pairs must read back exactly what was written, in memory and streamed, and
refuse each bad layout with one ``DataError`` naming the file.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from PIL import Image

from cnnspec import DataError
from cnnspec.data import is_streamed, load_data
from cnnspec.data.masks import resize_masks
from cnnspec.data.synthetic import SHAPES_CLASSES, shapes_arrays


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def shapes():
    return load_data("shapes")


@pytest.fixture(scope="module")
def counts():
    return load_data("shape_counts")


# -- shapes --------------------------------------------------------------------------------
def test_shapes_are_the_same_arrays_on_every_call_and_machine():
    first, again = shapes_arrays(16, 25), shapes_arrays(16, 25)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # pinned: integer rasterising and Generator.random() only, so these must not move with numpy or the CPU
    assert [_digest(a) for a in first] == ["0199a0f3f534b779", "1e30aff481b92942", "5e4d63922a687d3e"]
    assert _digest(shapes_arrays(16, 26)[1]) != _digest(first[1])  # and the seed matters


def test_shapes_splits_shapes_dtypes_and_ranges(shapes):
    assert shapes.source == "shapes" and shapes.class_names == ["background", "circle", "square", "triangle"]
    for x, y, n in ((shapes.x_train, shapes.y_train, 2000), (shapes.x_test, shapes.y_test, 400)):
        assert x.shape == (n, 32, 32, 1) and x.dtype == np.float32
        assert y.shape == (n, 32, 32) and y.dtype == np.int64
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert set(np.unique(y)) == {0, 1, 2, 3}
        # a dark noisy background, shapes well above it
        assert x[..., 0][y == 0].max() <= 0.1 and x[..., 0][y > 0].min() >= 0.5
        assert x[..., 0][y == 0].std() > 0.02  # noisy, not flat


def test_every_class_occurs_in_sensible_proportions(shapes):
    for y in (shapes.y_train, shapes.y_test):
        share = np.bincount(y.ravel(), minlength=4) / y.size
        assert 0.8 < share[0] < 0.95  # mostly background
        assert all(0.02 < s < 0.07 for s in share[1:])  # each shape a few percent of the pixels
        in_images = [(y == k).any(axis=(1, 2)).mean() for k in (1, 2, 3)]
        assert all(0.4 < s < 0.65 for s in in_images)  # each shape in about half the images
        assert ((y > 0).any(axis=(1, 2))).all()  # every image shows at least one shape


def test_each_shape_has_its_geometry():
    """Images with one shape: a square fills its bounding box, a circle is symmetric and not a box, a triangle
    widens row by row to a full bottom row."""
    _, masks, counts = shapes_arrays(300, 3)
    seen = set()
    for mask, count in zip(masks, counts):
        if count.sum() != 1:
            continue
        label = int(np.argmax(count)) + 1
        rows, cols = np.nonzero(mask)
        box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] == label
        assert set(np.unique(mask)) == {0, label}
        assert 5 <= box.shape[0] <= 12 and box.shape[0] == box.shape[1]  # 5..12 px across, as wide as high
        widths = box.sum(axis=1)
        if SHAPES_CLASSES[label] == "square":
            assert box.all()
        elif SHAPES_CLASSES[label] == "circle":
            assert not box.all() and (box == box.T).all() and (box == box[::-1]).all() and (box == box[:, ::-1]).all()
        else:
            assert (np.diff(widths) >= 0).all() and widths[-1] == box.shape[1] and widths[0] <= 2
        seen.add(label)
    assert seen == {1, 2, 3}


def test_counts_agree_with_the_masks(shapes, counts):
    assert counts.source == "shape_counts" and counts.class_names is None
    np.testing.assert_array_equal(counts.x_train, shapes.x_train)  # the same images
    for y, masks in ((counts.y_train, shapes.y_train), (counts.y_test, shapes.y_test)):
        assert y.shape == (len(masks), 3) and y.dtype == np.float32
        assert (y == np.round(y)).all() and set(y.sum(axis=1)) <= {1.0, 2.0, 3.0}
        # a shape may be painted over entirely, so only this direction always holds: in the mask => counted
        present = np.stack([(masks == k).any(axis=(1, 2)) for k in (1, 2, 3)], axis=1)
        assert (y[present] >= 1).all()
        assert (present.sum(axis=1) <= y.sum(axis=1)).all()


def test_train_and_test_images_differ(shapes):
    train = {_digest(image) for image in shapes.x_train}
    assert len(train) == len(shapes.x_train)  # no repeats within train either
    assert not train & {_digest(image) for image in shapes.x_test}


def test_shapes_takes_no_path():
    with pytest.raises(DataError, match="'shapes' takes no path"):
        load_data("shapes:somewhere")


# -- folder: image/mask pairs ----------------------------------------------------------------
H, W = 6, 5  # not square: a swapped height and width shows


def _palette_png(mask: np.ndarray, path) -> None:
    """A P-mode PNG whose palette indices are the classes (coloured as a painting program would)."""
    img = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.astype(np.uint8).tobytes())
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    img.save(path)


def write_pairs(root, n_train: int = 4, n_test: int = 2):
    """images/NAME.png (grey) and masks/NAME.png (even rows L-mode, odd rows P-mode) -> what was written."""
    rng = np.random.default_rng(0)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir()
        images = rng.integers(0, 256, (n, H, W), dtype=np.uint8)
        masks = rng.integers(0, 3, (n, H, W), dtype=np.uint8)
        for i, (image, mask) in enumerate(zip(images, masks)):
            Image.fromarray(image).save(root / split / "images" / f"img{i}.png")
            path = root / split / "masks" / f"img{i}.png"
            if i % 2:
                _palette_png(mask, path)
            else:
                Image.fromarray(mask).save(path)
        written[split] = (images, masks)
    return written


def test_pairs_read_back_exactly_what_was_written(tmp_path):
    written = write_pairs(tmp_path / "seg")
    (tmp_path / "seg" / "classes.txt").write_text("sky\nroad\ncar\n\n")
    data = load_data(f"folder:{tmp_path / 'seg'}")
    assert data.class_names == ["sky", "road", "car"] and data.source == f"folder:{tmp_path / 'seg'}"
    for x, y, (images, masks) in (
        (data.x_train, data.y_train, written["train"]),
        (data.x_test, data.y_test, written["test"]),
    ):
        assert x.shape == (len(images), H, W, 1) and x.dtype == np.float32
        np.testing.assert_allclose(x[..., 0], images / 255.0, atol=1e-7)
        assert y.dtype == np.int64 and y.shape == (len(images), H, W)
        np.testing.assert_array_equal(y, masks)  # P-mode masks give their palette indices, not colours


def test_pairs_streamed_give_the_same_values(tmp_path):
    root = tmp_path / "seg"
    write_pairs(root)
    memory, streamed = load_data(f"folder:{root}"), load_data(f"folder:{root}", stream=True)
    assert streamed.class_names is None  # no classes.txt
    for split in ("train", "test"):
        x = getattr(streamed, f"x_{split}")
        assert is_streamed(x) and x.shape == getattr(memory, f"x_{split}").shape
        np.testing.assert_array_equal(x.materialize(), getattr(memory, f"x_{split}"))
        np.testing.assert_array_equal(getattr(streamed, f"y_{split}"), getattr(memory, f"y_{split}"))


def test_pairs_with_rgb_images_and_jpeg_images(tmp_path):
    root = tmp_path / "seg"
    write_pairs(root)
    for split in ("train", "test"):
        for file in sorted((root / split / "images").iterdir()):
            Image.open(file).convert("RGB").save(file.with_suffix(".jpg"), quality=95)
            file.unlink()
    data = load_data(f"folder:{root}")
    assert data.x_train.shape == (4, H, W, 3) and data.y_train.shape == (4, H, W)


def _save_rgb_mask(path):
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)


# each case: (what to do to a good pairs folder, the file the message must name, what it must say)
BAD_PAIRS = {
    "image without mask": (lambda r: (r / "train/masks/img1.png").unlink(), "train/images/img1.png", "no mask"),
    "mask without image": (lambda r: (r / "test/images/img0.png").unlink(), "test/masks/img0.png", "without an image"),
    "mask of another size": (
        lambda r: Image.fromarray(np.zeros((H, W + 1), np.uint8)).save(r / "train/masks/img2.png"),
        "train/masks/img2.png",
        "mask is 6x6 .* its image img2.png is 6x5",
    ),
    "image of another size": (
        lambda r: Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(r / "train/images/img3.png"),
        "train/images/img3.png",
        "image is 7x5 .* every image of a split must have the same size",
    ),
    "rgb mask": (lambda r: _save_rgb_mask(r / "train/masks/img0.png"), "train/masks/img0.png", "one class index"),
    "jpeg mask": (
        lambda r: (r / "train/masks/img0.png").rename(r / "train/masks/img0.jpg"),
        "train/masks/img0.jpg",
        "must be PNG",
    ),
    "unreadable image": (
        lambda r: (r / "train/images/img1.png").write_bytes(b"no png"),
        "train/images/img1.png",
        "not a readable image",
    ),
    "unreadable mask": (
        lambda r: (r / "test/masks/img1.png").write_bytes(b"no png"),
        "test/masks/img1.png",
        "not a readable mask",
    ),
    "empty split": (
        lambda r: [f.unlink() for part in ("images", "masks") for f in (r / "test" / part).iterdir()],
        "test/images",
        "no images",
    ),
    "no test folders": (
        lambda r: [f.rename(r / f.name) for f in (r / "test").iterdir()],
        "test/images",
        "no such folder",
    ),
    "empty class name": (lambda r: (r / "classes.txt").write_text("a\n\nb\n"), "classes.txt", "line 2 is empty"),
}


@pytest.mark.parametrize("case", BAD_PAIRS, ids=lambda case: case.replace(" ", "-"))
def test_bad_pairs_give_one_line_errors_naming_the_file(tmp_path, case):
    root = tmp_path / "seg"
    write_pairs(root)
    spoil, file, message = BAD_PAIRS[case]
    spoil(root)
    with pytest.raises(DataError) as err:
        load_data(f"folder:{root}")
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(root / file)), text
    assert re.search(message, text), text


def test_pairs_symlink_out_of_root_is_refused_unless_asked(tmp_path):
    root = tmp_path / "seg"
    write_pairs(root)
    outside = tmp_path / "elsewhere.png"
    (root / "train/masks/img0.png").rename(outside)
    (root / "train/masks/img0.png").symlink_to(outside)
    with pytest.raises(DataError, match="img0.png: points outside"):
        load_data(f"folder:{root}")
    assert load_data(f"folder:{root}", follow_symlinks=True).y_train.shape == (4, H, W)


def test_class_folders_still_read_as_classes(tmp_path):
    from tests.data_files import write_folder

    data = load_data(f"folder:{write_folder(tmp_path / 'imgs')}")
    assert data.y_train.shape == (12,) and data.class_names == ["class_0", "class_1", "class_2"]


# -- resize_masks ----------------------------------------------------------------------------
@pytest.mark.parametrize("high", [3, 300])  # 8-bit and 32-bit paths
def test_resize_masks_is_nearest_neighbour(high):
    masks = np.random.default_rng(1).integers(0, high, (3, H, W))
    up = resize_masks(masks, 2 * H, 2 * W)
    assert up.dtype == np.int64
    np.testing.assert_array_equal(up, masks.repeat(2, axis=1).repeat(2, axis=2))  # 2x: every pixel repeated
    down = resize_masks(masks, 3, 2)
    assert down.shape == (3, 3, 2) and down.dtype == np.int64
    for before, after in zip(masks, down):
        assert set(np.unique(after)) <= set(np.unique(before))  # no value made up between classes
    np.testing.assert_array_equal(resize_masks(masks, H, W), masks)
