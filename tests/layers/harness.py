"""What the layer harness builds around a layer case: the spec, a spec that trains through it, a fuzzing
strategy. Nothing here knows any layer type: every fact comes from the registered class or its cases.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

import cnnspec
from cnnspec.registry import LAYER_CLASSES
from tests.layers.cases import LAYER_CASES, case_index, case_spec

__all__ = ["LAYER_CASES", "case_index", "case_spec", "case_params", "layer_documents", "training_spec", "type_params"]


def case_params() -> list[Any]:
    """``pytest.param(type, layer, shape)`` per case of every registered type, ids ``conv2d-0`` ..."""
    import pytest

    return [
        pytest.param(kind, layer, shape, id=f"{kind}-{index}")
        for kind in LAYER_CLASSES
        for index, (layer, shape) in enumerate(LAYER_CASES.get(kind, [({}, ())]))
    ]


def type_params() -> list[Any]:
    import pytest

    return [pytest.param(kind, id=kind) for kind in LAYER_CLASSES]


def _reading(layer: dict[str, Any], source: str) -> dict[str, Any]:
    """``layer`` reading ``source`` for its first input; a merge's other inputs stay the model input (or the
    flattened input), so that x - x, say, is not what gradients pass through."""
    if "inputs" not in layer:
        return dict(layer)
    return {**layer, "inputs": [source, *layer["inputs"][1:]]}


def training_spec(layer: dict[str, Any], shape: tuple[int, ...], **training: Any) -> cnnspec.ModelSpec:
    """A spec whose gradients pass *through* the layer: a trainable layer before it (a 1x1 convolution on an
    image, a dense layer on a flat input) whose update depends on the layer's backward pass, the layer, then
    a flatten and a softmax head."""
    flat = len(shape) == 1
    before = (
        [{"type": "flatten"}, {"type": "dense", "name": "before", "units": shape[0]}]
        if flat
        else [{"type": "conv2d", "name": "before", "filters": shape[-1], "kernel_size": 1}]
    )
    layers = [
        *before,
        _reading(layer, "before"),
        {"type": "flatten", "name": "tail"},
        {"type": "dense", "name": "head", "units": 3, "activation": "softmax"},
    ]
    document = {"name": "training_case", "input_shape": [1, 1, *shape] if flat else list(shape), "layers": layers}
    return cnnspec.load_spec({**document, "training": training} if training else document)


@st.composite
def layer_documents(draw: Any, kind: str) -> tuple[dict[str, Any], tuple[int, ...]]:
    """A random layer of type ``kind`` and an input shape, made from its cases: one case, some of its fields
    swapped for those of another case, integers nudged, the input resized. Often not valid: what the spec
    then says (a SpecError naming the layer) is checked too."""
    cases = LAYER_CASES[kind]
    layer, shape = draw(st.sampled_from(cases))
    layer = dict(layer)
    values: dict[str, list[Any]] = {}
    for other, _ in cases:
        for key, value in other.items():
            values.setdefault(key, []).append(value)
    for key in sorted(values):
        if key not in ("type", "inputs") and draw(st.booleans()):
            layer[key] = draw(st.sampled_from(values[key]))
    for key, value in sorted(layer.items()):
        if isinstance(value, int) and not isinstance(value, bool) and draw(st.booleans()):
            layer[key] = max(0, value + draw(st.integers(-1, 2)))
    shape = tuple(max(1, size + draw(st.integers(-2, 2))) for size in shape)
    return layer, shape
