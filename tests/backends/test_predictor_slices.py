"""`Predictor.predict` on the CPU may run a large batch as one slice per core, concurrently, on a single-threaded
session (backends/onnx_backend/sessions.py, ``SlicedBatches``), where the first large batch measured that
faster: either way the outputs are those of the one whole-batch call, in the same order, for every batch size
around the slicing threshold and with ``batch_size`` chunks."""

from __future__ import annotations

import numpy as np
import pytest

import cnnspec
from cnnspec.numerics import max_difference, tolerance_for
from cnnspec.weights import random_weights

ob = pytest.importorskip("cnnspec.backends.onnx_backend")
from cnnspec.backends.onnx_backend.sessions import SLICE_MIN  # noqa: E402


@pytest.fixture(scope="module", params=["digits_cnn", "resnet20_cifar"])
def proto(request):
    spec = cnnspec.load_spec(f"specs/{request.param}.yaml")
    return ob.to_onnx(spec, random_weights(spec, 3))


def whole(proto, x: np.ndarray) -> np.ndarray:
    """The batch in one call of the predictor's own (multi-threaded) session, never sliced."""
    return ob.Predictor(proto, provider="cpu", threads=2).session.run(["output"], {"input": x})[0]


@pytest.mark.parametrize("threads", [2, 3])
def test_a_large_batch_is_sliced_or_whole_as_measured_and_predicts_what_one_call_does(proto, threads):
    predictor = ob.Predictor(proto, provider="cpu", threads=threads)
    images = threads * SLICE_MIN + 5  # slices of unequal sizes
    x = np.random.default_rng(threads).random((images, *predictor.image_shape), dtype=np.float32)
    assert predictor._sliced is not None and predictor._sliced.slices(images) == threads
    assert predictor.slicing.startswith("not measured yet")
    expected = whole(proto, x)
    got = predictor.predict(x)  # the first large batch: run both ways, timed, the faster kept
    assert max_difference(got, expected) <= tolerance_for(x, expected)
    assert predictor._sliced.faster in (True, False)
    assert (
        predictor.slicing.startswith(("sliced: a batch of", "whole: a batch of")) and " ms whole " in predictor.slicing
    )
    for faster in (True, False):  # each way serves later batches, in chunks of batch_size too
        predictor._sliced.faster = faster
        assert max_difference(predictor.predict(x), expected) <= tolerance_for(x, expected)
        chunked = predictor.predict(x, batch_size=SLICE_MIN * 2 + 1)
        assert max_difference(chunked, expected) <= tolerance_for(x, expected)


def test_small_batches_one_thread_and_other_runtimes_are_not_sliced(proto):
    predictor = ob.Predictor(proto, provider="cpu", threads=2)
    x = np.random.default_rng(0).random((2 * SLICE_MIN - 1, *predictor.image_shape), dtype=np.float32)
    assert predictor._sliced.slices(len(x)) == 1
    got = predictor.predict(x)
    assert predictor._sliced._session is None  # no second session for batches that are not sliced
    assert max_difference(got, whole(proto, x)) <= tolerance_for(x, got)
    assert ob.Predictor(proto, provider="cpu", threads=1)._sliced is None
    assert ob.Predictor(proto, provider="cpu", threads=1).slicing.startswith("whole: one call")
    pytest.importorskip("openvino")
    assert ob.Predictor(proto, runtime="openvino")._sliced is None
