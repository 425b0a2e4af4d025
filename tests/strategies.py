"""Hypothesis strategies: random valid specs, and random mutations of them.

The valid-spec strategy tracks shapes with its own formulas (written from the
Keras documentation, not imported from cnnspec.shapes) so that it only ever
produces specs Keras would accept.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from cnnspec.fields import ACTIVATIONS

IMAGE_TYPES = [
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "min_pool2d",
    "sum_pool2d",
    "batch_norm",
    "dropout",
    "activation",
]
FLAT_TYPES = ["dense", "batch_norm", "dropout", "activation"]


def _out(size: int, k: int, s: int, d: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / s)
    return (size - ((k - 1) * d + 1)) // s + 1


@st.composite
def windowed(draw: Any, kind: str, shape: tuple[int, int, int]) -> tuple[dict[str, Any], tuple[int, int, int]]:
    padding = draw(st.sampled_from(["valid", "same"]))
    h, w, c = shape
    dilation = [1, 1]
    if kind == "conv2d":
        strides = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
        if strides == [1, 1] and draw(st.booleans()):
            dilation = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    else:
        strides = None
    limit_h = h if padding == "valid" else 5
    limit_w = w if padding == "valid" else 5
    k = [
        draw(st.integers(1, max(1, min(5, (limit_h - 1) // dilation[0] + 1)))),
        draw(st.integers(1, max(1, min(5, (limit_w - 1) // dilation[1] + 1)))),
    ]
    if kind != "conv2d":
        strides = [draw(st.integers(1, 3)), draw(st.integers(1, 3))] if draw(st.booleans()) else list(k)
    layer: dict[str, Any] = {"type": kind, "padding": padding}
    if kind == "conv2d":
        layer.update(
            filters=draw(st.integers(1, 6)),
            kernel_size=k,
            strides=strides,
            dilation_rate=dilation,
            activation=draw(st.sampled_from(ACTIVATIONS)),
            use_bias=draw(st.booleans()),
        )
        c = layer["filters"]
    else:
        layer.update(pool_size=k, strides=strides)
    oh = _out(h, k[0], strides[0], dilation[0], padding)
    ow = _out(w, k[1], strides[1], dilation[1], padding)
    return layer, (oh, ow, c)


@st.composite
def valid_spec_dicts(draw: Any, max_layers: int = 6, max_size: int = 16) -> dict[str, Any]:
    """A random spec dict that Keras accepts, ending in a dense softmax classifier."""
    shape: tuple[int, ...] = (
        draw(st.integers(1, max_size)),
        draw(st.integers(1, max_size)),
        draw(st.integers(1, 3)),
    )
    input_shape = list(shape)
    layers: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, max_layers))):
        kind = draw(st.sampled_from(IMAGE_TYPES if len(shape) == 3 else FLAT_TYPES))
        if kind in ("conv2d", "max_pool2d", "avg_pool2d", "min_pool2d", "sum_pool2d"):
            layer, shape = draw(windowed(kind, shape))
        elif kind == "batch_norm":
            layer = {
                "type": kind,
                "momentum": draw(st.sampled_from([0.99, 0.9, 0.5])),
                "epsilon": draw(st.sampled_from([1e-3, 1e-5, 0.1])),
                "center": draw(st.booleans()),
                "scale": draw(st.booleans()),
            }
        elif kind == "dropout":
            layer = {"type": kind, "rate": draw(st.sampled_from([0.0, 0.1, 0.5]))}
        elif kind == "activation":
            layer = {"type": kind, "activation": draw(st.sampled_from(ACTIVATIONS))}
        else:  # dense
            layer = {
                "type": kind,
                "units": draw(st.integers(1, 12)),
                "activation": draw(st.sampled_from(ACTIVATIONS)),
                "use_bias": draw(st.booleans()),
            }
            shape = (layer["units"],)
        layers.append(layer)
    if len(shape) == 3:
        layers.append({"type": draw(st.sampled_from(["flatten", "global_avg_pool2d", "global_max_pool2d"]))})
    layers.append({"type": "dense", "units": draw(st.integers(2, 6)), "activation": "softmax"})
    document = {"name": "random", "input_shape": input_shape, "layers": draw(named(layers))}
    return draw(with_any_registered_type(document)) if draw(st.booleans()) else document


@st.composite
def with_any_registered_type(draw: Any, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with one more layer of any registered type (drawn from its cases by its fuzzing strategy)
    just before the classifier block, where cnnspec accepts it; else ``document`` unchanged. This reaches
    every type, not only those this module has shape formulas for: Keras, torch and the runtimes then judge
    the result independently."""
    import cnnspec
    from cnnspec.errors import SpecError
    from tests.layers.harness import LAYER_CASES, layer_documents

    layer, _ = draw(layer_documents(draw(st.sampled_from(sorted(LAYER_CASES)))))
    layers = document["layers"]
    position = len(layers) - 1 - (layers[-2]["type"] in ("flatten", "global_avg_pool2d", "global_max_pool2d"))
    before = layers[position - 1] if position else None
    source = "input" if before is None else before.get("name", f"{before['type']}_{position - 1}")
    if "inputs" in layer:
        layer = {**layer, "inputs": [source for _ in layer["inputs"]]}
    candidate = {**document, "layers": [*layers[:position], layer, *layers[position:]]}
    try:
        cnnspec.load_spec(candidate)
    except SpecError:
        return document
    return candidate


# Names that once collided with something downstream ("output" and "logits" are the exported graph's outputs),
# names frameworks give their own parts, and the characters a name may hold besides letters and digits.
TRICKY_NAMES = [
    "output",
    "logits",
    "OUTPUT",
    "Input",
    "input_layer",
    "input_1",
    "model",
    "functional",
    "dense",
    "a.b-c",
]
LAYER_NAMES = st.one_of(st.sampled_from(TRICKY_NAMES), st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,12}", fullmatch=True))


@st.composite
def named(draw: Any, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``layers`` with some given names (the rest keep the spec's default ``<type>_<index>``), all distinct."""
    taken = {f"{layer['type']}_{index}" for index, layer in enumerate(layers)}
    out = []
    for layer in layers:
        name = draw(LAYER_NAMES) if draw(st.booleans()) else None
        if name is not None and name not in taken and name != "input":
            taken.add(name)
            layer = {**layer, "name": name}
        out.append(layer)
    return out


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 50),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.lists(st.integers(-2, 5), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
FIELDS = [
    "type",
    "name",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "dilation_rate",
    "activation",
    "use_bias",
    "pool_size",
    "units",
    "rate",
    "momentum",
    "epsilon",
    "center",
    "scale",
    "bogus",
]


@st.composite
def mutated_spec_dicts(draw: Any) -> dict[str, Any]:
    """A valid spec with one to three random edits: junk values, missing or unknown fields."""
    spec = draw(valid_spec_dicts(max_layers=4))
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(spec["layers"]) - 1))
        layer = dict(spec["layers"][index])
        action = draw(st.sampled_from(["set", "delete", "swap_type"]))
        if action == "set":
            layer[draw(st.sampled_from(FIELDS))] = draw(JUNK)
        elif action == "delete" and len(layer) > 1:
            layer.pop(draw(st.sampled_from(sorted(layer))))
        else:
            layer["type"] = draw(st.sampled_from(IMAGE_TYPES + FLAT_TYPES + ["flatten", "conv3d"]))
        spec["layers"][index] = layer
    return spec
