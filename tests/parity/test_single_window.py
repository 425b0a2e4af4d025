"""A convolution one output column wide with a column stride above 1, in every backend, against numpy.

oneDNN's AVX-512 kernels (torch, TensorFlow with oneDNN, OpenVINO) compute this geometry wrongly
(values up to 1e33 for one channel in and out); every backend computes it at stride 1 on the cells
the single window reads (cnnspec.shapes.single_window_plan). On other CPUs these pass either way.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.numerics import layer_tolerances, max_difference
from cnnspec.shapes import single_window_plan, window
from cnnspec.weights import random_weights
from tests.backends.test_other_runtimes import (
    SINGLE_COLUMN,
    SINGLE_COLUMN_WINDOWS,
    _single_column_reference,
    _single_column_spec,
)

BACKENDS = ["torch", "keras", "onnx"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,window_size,padding", SINGLE_COLUMN_WINDOWS, ids=lambda v: str(v))
@pytest.mark.parametrize("kind", list(SINGLE_COLUMN))
def test_a_single_output_column_with_a_stride_equals_numpy(backend, kind, shape, window_size, padding):
    pytest.importorskip(f"cnnspec.backends.{backend}_backend")
    import cnnspec

    spec = _single_column_spec(kind, shape, window_size, padding)
    weights = random_weights(spec, 0)
    x = np.random.default_rng(0).normal(0, 1, (3, *spec.input_shape)).astype(np.float32)
    got = cnnspec.build(spec, backend, weights).layer_outputs(x)[0]
    expected = _single_column_reference(spec, weights, x.astype(np.float64))
    assert max_difference(got, expected) <= layer_tolerances(x, [expected])[0]


@pytest.mark.parametrize("size", range(1, 9))
@pytest.mark.parametrize("kernel,stride,dilation", [(1, 2, 1), (2, 3, 1), (3, 2, 1), (3, 4, 1), (2, 1, 2), (4, 5, 1)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_the_plan_reads_the_same_cells_as_keras_window(size, kernel, stride, dilation, padding):
    """Cropped and padded as planned, at the planned stride, the window covers the same input cells."""
    span = (kernel - 1) * dilation + 1
    if padding == "valid" and span > size:
        return
    keras_window = window(size, kernel, stride, dilation, padding)
    (before, after, *_), (kept, _), (planned, _) = single_window_plan(
        (size, 1), (kernel, 1), (stride, 1), (dilation, 1), padding
    )
    planned_window = window(kept + before + after, kernel, planned, dilation, "valid")
    assert planned_window.size == keras_window.size
    start = -keras_window.pad_before
    assert before == keras_window.pad_before and (planned == stride or keras_window.size == 1)
    if keras_window.size == 1:  # the one window starts at the same cell and fits the kept cells
        assert start + span <= kept + after
