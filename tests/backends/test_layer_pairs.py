"""Every pair of adjacent layers in the exported file, in every runtime and at every optimisation level.

Runtimes' optimisers rewrite patterns of two nodes: a zero Pad folded into a MaxPool (ONNX Runtime),
a BatchNormalization fused across the activation before it (OpenCV DNN). Layer types checked one at a
time never show those, and random specs rarely hit a given pair; so here every layer type is put
before every other (with each case of ``tests/layers/cases.py`` that fits), and every activation before
every layer type. Each spec is exported, its bytes run in every installed runner
(``cnnspec.backends.onnx_backend.runners``: ONNX Runtime at each level, OpenVINO, OpenCV), and the
output compared with torch's, which tests/parity proves equal to Keras's, under the tolerance rule.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import cnnspec
from cnnspec.errors import SpecError
from cnnspec.fields import ACTIVATIONS
from cnnspec.numerics import layer_tolerances, max_difference
from cnnspec.weights import random_weights
from tests.layers.cases import LAYER_CASES

onnx_backend = pytest.importorskip("cnnspec.backends.onnx_backend")
torch_backend = pytest.importorskip("cnnspec.backends.torch_backend")
from cnnspec.backends.onnx_backend import runners  # noqa: E402

IMAGE = (7, 6, 3)  # odd, non-square, three channels
ACTIVATED = ("conv2d", "depthwise_conv2d", "separable_conv2d", "dense", "activation")


def _placed(layer: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    """A case's layer renamed, reading ``source`` (a merge reads it twice)."""
    placed = {key: value for key, value in layer.items() if key != "inputs"}
    return {**placed, "name": name, **({"inputs": [source, source]} if "inputs" in layer else {})}


def _spec(first: dict[str, Any], second: dict[str, Any]) -> cnnspec.ModelSpec | None:
    """``first`` then ``second`` on an image (after a flatten if ``first`` needs a flat input), then a flatten
    and a softmax head; None when the pair cannot be adjacent (``second`` does not fit ``first``'s output)."""
    head = [{"type": "flatten", "name": "tail"}, {"type": "dense", "name": "head", "units": 3, "activation": "softmax"}]
    for prefix in ([], [{"type": "flatten", "name": "flat"}]):
        source = prefix[0]["name"] if prefix else "input"
        layers = [*prefix, _placed(first, "a", source), _placed(second, "b", "a"), *head]
        try:
            return cnnspec.load_spec({"name": "pair", "input_shape": list(IMAGE), "layers": layers})
        except SpecError as err:
            if err.issues[0].layer != len(prefix):  # ``second`` does not fit what ``first`` gives
                return None
    return None  # ``first`` fits neither an image nor a flat input


@functools.cache
def _pairs() -> list[Any]:
    """(id, spec) for every adjacent pair that fits: each type (its first case that fits an image or a flat
    input) before each case of every type, and each activation on each activated type before each type."""
    firsts = {kind: cases[0][0] for kind, cases in LAYER_CASES.items()}
    for kind in ACTIVATED:
        layer = next(case for case, shape in LAYER_CASES[kind] if "activation" not in case or kind == "activation")
        for activation in ACTIVATIONS:
            firsts[f"{kind}({activation})"] = {**layer, "activation": activation}
    pairs = []
    for first_id, first in firsts.items():
        for second_kind, cases in LAYER_CASES.items():
            spec = next((s for s in (_spec(first, case) for case, _ in cases) if s is not None), None)
            if spec is not None:
                pairs.append(pytest.param(spec, id=f"{first_id}->{second_kind}"))
    return pairs


def test_the_matrix_has_every_type_on_both_sides_and_the_pairs_that_broke():
    ids = {param.id for param in _pairs()}
    firsts, seconds = {pair.split("->")[0] for pair in ids}, {pair.split("->")[1] for pair in ids}
    assert set(LAYER_CASES) <= firsts and set(LAYER_CASES) == seconds
    assert len(ids) > 1000  # an image type can be followed by any of about twenty types, a flat one by about ten
    assert {"zero_padding2d->max_pool2d", "zero_padding2d->avg_pool2d", "global_avg_pool2d->dense"} <= ids
    assert {f"{kind}({activation})->batch_norm" for kind in ACTIVATED for activation in ACTIVATIONS} <= ids


@pytest.mark.parametrize("spec", _pairs())
def test_adjacent_layers_run_right_in_every_runtime(spec):
    weights = random_weights(spec, 0)
    x = np.random.default_rng(0).normal(0.0, 1.0, (3, *IMAGE)).astype(np.float32)
    layers = torch_backend.layer_outputs(torch_backend.build(spec, weights), x)
    tolerance = layer_tolerances(x, layers)[-1]
    model = onnx_backend.to_onnx(spec, weights).SerializeToString()
    for name in (name for name in runners.RUNNERS if runners.missing(name) is None):
        diff = max_difference(runners.run(name, model, x)["output"], layers[-1])
        assert diff <= tolerance, f"{name}: {diff:.2e} > {tolerance:.1e}"
