"""Sum pooling against a numpy reference, for every stride pair, padding and pool size up to 3.

The Keras layer once called TensorFlow's depthwise convolution with the spec's
strides; the stock kernel (CPUs where oneDNN is off, and CUDA) refuses unequal
strides. The Keras check runs in fresh interpreters with oneDNN forced off and
on, because TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, at import.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cnnspec
from cnnspec.numerics import tolerance_for
from tests.cli.helpers import ROOT

SIZES = (1, 2, 3)
CASES = [
    (pool, strides, padding)
    for pool in itertools.product(SIZES, SIZES)
    for strides in itertools.product(SIZES, SIZES)
    for padding in ("valid", "same")
]
INPUT = (7, 8, 3)  # odd and even sides: `same` padding is uneven on one axis and even on the other


def reference_sum_pool(x: np.ndarray, pool, strides, padding) -> np.ndarray:
    """Written from Keras's documented rule, not from cnnspec.shapes: `same` gives ceil(n/s) outputs,
    the padding cells (total // 2 before, the rest after) count as zero."""
    n, height, width, channels = x.shape
    pads = []
    for size, k, s in zip((height, width), pool, strides):
        if padding == "valid":
            pads.append((0, 0, (size - k) // s + 1))
        else:
            out = -(-size // s)
            total = max((out - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2, out))
    (top, bottom, out_h), (left, right, out_w) = pads
    padded = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    y = np.zeros((n, out_h, out_w, channels))
    for i in range(out_h):
        for j in range(out_w):
            rows, cols = (
                slice(i * strides[0], i * strides[0] + pool[0]),
                slice(j * strides[1], j * strides[1] + pool[1]),
            )
            y[:, i, j, :] = padded[:, rows, cols, :].sum(axis=(1, 2))
    return y


def _inputs() -> np.ndarray:
    return np.random.default_rng(5).normal(0, 10, (2, *INPUT)).astype(np.float32)


def _layer(pool, strides, padding) -> cnnspec.SumPool2D:
    return cnnspec.SumPool2D(pool_size=list(pool), strides=list(strides), padding=padding)


def test_reference_agrees_with_the_shape_checker():
    for pool, strides, padding in CASES:
        spec = cnnspec.ModelSpec(
            input_shape=INPUT, layers=[_layer(pool, strides, padding), cnnspec.Flatten(), cnnspec.Dense(units=2)]
        )
        expected = reference_sum_pool(_inputs(), pool, strides, padding).shape[1:]
        assert spec.summary().layers[0].output_shape == expected, (pool, strides, padding)


def _compare(name: str, outputs) -> None:
    x = _inputs()
    for (pool, strides, padding), got in zip(CASES, outputs):
        want = reference_sum_pool(x, pool, strides, padding)
        diff = np.abs(np.asarray(got, np.float64) - want).max()
        assert diff <= tolerance_for(want), f"{name}: pool {pool} strides {strides} {padding}: off by {diff:.2e}"


def test_torch_matches_the_reference():
    pytest.importorskip("cnnspec.backends.torch_backend")
    import torch

    from cnnspec.backends.torch_backend.model import to_nchw, to_nhwc
    from cnnspec.backends.torch_backend.modules import SumPool2d

    x = to_nchw(_inputs())
    with torch.no_grad():
        _compare("torch", [to_nhwc(SumPool2d(_layer(*case), INPUT)(x)) for case in CASES])


def test_onnx_runtime_matches_the_reference():
    ob = pytest.importorskip("cnnspec.backends.onnx_backend")
    from cnnspec.weights import random_weights

    outputs = []
    for case in CASES:
        spec = cnnspec.ModelSpec(input_shape=INPUT, layers=[_layer(*case), cnnspec.Flatten(), cnnspec.Dense(units=2)])
        outputs.append(ob.layer_outputs(ob.build(spec, random_weights(spec)), _inputs())[0])
    _compare("onnx", outputs)


KERAS_SCRIPT = """
import json, sys
import numpy as np
from cnnspec.backends import load_backend
load_backend("keras")
from cnnspec.backends.keras_backend.layers import SumPooling2D
cases, x = json.loads(sys.argv[1]), np.load(sys.argv[2])
out = {str(i): np.asarray(SumPooling2D(pool, strides, padding)(x)) for i, (pool, strides, padding) in enumerate(cases)}
np.savez(sys.argv[3], **out)
"""


@pytest.mark.parametrize("onednn", ["0", "1"], ids=["onednn-off", "onednn-on"])
def test_keras_matches_the_reference_with_onednn_off_and_on(onednn, tmp_path):
    pytest.importorskip("cnnspec.backends.keras_backend")
    np.save(tmp_path / "x.npy", _inputs())
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", KERAS_SCRIPT, json.dumps(CASES), tmp_path / "x.npy", tmp_path / "out.npz"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as out:
        _compare(f"keras (oneDNN {onednn})", [out[str(i)] for i in range(len(CASES))])
