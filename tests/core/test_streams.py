"""Streamed images (read from disk per batch) hold exactly what the in-memory sources hold."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec import DataError
from cnnspec.data import fit_to_spec, is_streamed, load_data, validation_split
from cnnspec.streams import ArrayStore, stream_batches
from tests.data_files import write_folder, write_idx


@pytest.fixture(params=["idx-raw", "idx-gz", "folder"])
def source(request, tmp_path):
    if request.param == "folder":
        return f"folder:{write_folder(tmp_path / 'imgs', n_train=14, n_test=5)}"
    return f"idx:{write_idx(tmp_path / 'mnist', gz=request.param == 'idx-gz')}"


def test_streamed_rows_equal_the_in_memory_images_in_any_order(source):
    memory, streamed = load_data(source), load_data(source, stream=True)
    assert is_streamed(streamed.x_train) and not is_streamed(memory.x_train)
    assert streamed.x_train.shape == memory.x_train.shape and streamed.x_test.shape == memory.x_test.shape
    np.testing.assert_array_equal(streamed.y_train, memory.y_train)
    rows = np.random.default_rng(0).permutation(len(memory.x_train))[:7]
    np.testing.assert_array_equal(streamed.x_train[rows], memory.x_train[rows])
    np.testing.assert_array_equal(streamed.x_test.materialize(batch_size=2), memory.x_test)
    assert streamed.x_train[rows].dtype == np.float32


def test_raw_idx_images_are_memory_mapped_not_read(tmp_path):
    data = load_data(f"idx:{write_idx(tmp_path / 'm', gz=False)}", stream=True)
    assert isinstance(data.x_train.images, np.memmap)


def test_validation_split_of_a_store_is_a_narrower_store(source):
    memory, streamed = load_data(source), load_data(source, stream=True)
    (x_fit, _), (x_val, y_val) = validation_split(streamed.x_train, streamed.y_train, 0.25)
    (m_fit, _), (m_val, _) = validation_split(memory.x_train, memory.y_train, 0.25)
    assert is_streamed(x_val) and len(x_val) == len(y_val) == len(m_val)
    np.testing.assert_array_equal(x_val[np.arange(len(x_val))], m_val)
    np.testing.assert_array_equal(x_fit[np.array([len(x_fit) - 1, 0])], m_fit[[len(m_fit) - 1, 0]])


def test_resize_applies_as_images_are_read(source):
    want = (12, 10, 3)
    memory = fit_to_spec(load_data(source), want, 3, resize=True)
    streamed = fit_to_spec(load_data(source, stream=True), want, 3, resize=True)
    assert streamed.x_train.shape == memory.x_train.shape == (len(memory.x_train), *want)
    np.testing.assert_allclose(streamed.x_train[np.arange(4)], memory.x_train[:4], atol=1e-6)


def test_shape_mismatch_without_resize_is_the_same_clear_error(source):
    with pytest.raises(DataError, match="pass --resize"):
        fit_to_spec(load_data(source, stream=True), (9, 9, 1), 3)


def test_streamed_folder_with_an_odd_sized_image_names_it_when_read(tmp_path):
    from PIL import Image

    root = write_folder(tmp_path / "imgs")
    Image.new("L", (5, 5)).save(root / "train" / "class_2" / "odd.png")
    data = load_data(f"folder:{root}", stream=True)
    with pytest.raises(DataError, match="odd.png: image is 5x5x1"):
        data.x_train.materialize()
    resized = fit_to_spec(data, (10, 10, 1), 3, resize=True)  # with --resize it is resized like the rest
    assert resized.x_train.materialize().shape == (13, 10, 10, 1)


def test_float_images_with_nan_are_refused_when_read():
    store = ArrayStore(np.full((3, 4, 4), np.nan, np.float32), "x.idx", 1.0)
    with pytest.raises(DataError, match="NaN"):
        store[np.array([1])]


def test_truncated_raw_idx_is_named_before_streaming(tmp_path):
    folder = write_idx(tmp_path / "m", gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        load_data(f"idx:{folder}", stream=True)


def test_auto_streams_only_what_would_not_fit(tmp_path, monkeypatch):
    source = f"idx:{write_idx(tmp_path / 'm', gz=False)}"
    assert not is_streamed(load_data(source, stream=None).x_train)  # 39 tiny images: in memory
    monkeypatch.setenv("CNNSPEC_MAX_MEMORY", "8KB")  # a quarter of it is less than 39 x 8 x 8 x 4 bytes
    assert is_streamed(load_data(source, stream=None).x_train)
    assert not is_streamed(load_data(source, stream=False).x_train)  # --no-stream wins


@pytest.mark.parametrize("workers", [1, 3])
def test_stream_batches_yields_every_batch_in_order(workers):
    images = np.random.default_rng(0).integers(0, 255, (50, 4, 4, 1), dtype=np.uint8)
    store = ArrayStore(images, "mem", 255.0)
    order = np.random.default_rng(1).permutation(50)
    got = list(stream_batches(store, order, 16, workers=workers, ahead=2))
    assert [len(rows) for _, rows in got] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.concatenate([rows for _, rows in got]), order)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in got]), images[order] / np.float32(255.0))


def test_a_read_error_reaches_the_training_loop_and_stopping_early_does_not_hang():
    store = ArrayStore(np.zeros((40, 2, 2), np.float32), "mem", 1.0)
    store.images[33] = np.nan
    batches = stream_batches(store, np.arange(40), 8, workers=2)
    assert next(batches)[0].shape == (8, 2, 2, 1)
    batches.close()  # a loop that breaks early
    with pytest.raises(DataError, match="NaN"):
        list(stream_batches(store, np.arange(40), 8, workers=2))


def _counting_store(root, **kw):
    from cnnspec.data import decode_image
    from cnnspec.streams import FileStore

    calls = []

    def decode(path):
        calls.append(path)
        return decode_image(path)

    files = sorted((root / "train").rglob("*.png"))
    return FileStore(files, str(root), decode, **kw), calls


def test_folder_images_are_decoded_once_then_read_from_the_cache(tmp_path):
    root = write_folder(tmp_path / "imgs")
    store, calls = _counting_store(root)
    first = store[np.arange(12)]
    calls.clear()
    again = store[:6][np.arange(6)]  # a narrowed store (a validation split) shares the cache
    np.testing.assert_array_equal(again, first[:6])
    np.testing.assert_array_equal(store[np.arange(12)[::-1]], first[::-1])
    assert calls == []


def test_no_room_for_the_cache_means_decoding_every_time(tmp_path, monkeypatch):
    import cnnspec.streams as streams

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(streams.os, "posix_fallocate", full_disk, raising=False)
    root = write_folder(tmp_path / "imgs")
    store, calls = _counting_store(root)
    first = store[np.arange(12)]
    np.testing.assert_array_equal(store[np.arange(12)], first)
    assert len(calls) == 1 + 24  # the first image (for the shape), then every read decodes
