"""Shared by the parity tests: build every backend from one set of canonical weights."""

from __future__ import annotations

import numpy as np

import cnnspec
from cnnspec.numerics import ATOL, layer_tolerances, max_difference
from cnnspec.parity import INPUTS
from cnnspec.weights import random_weights

__all__ = ["ATOL", "assert_same_per_layer", "batch", "per_layer", "spec_of"]


def spec_of(layers, input_shape, classes=3, head=True, **training):
    """A spec around ``layers``: flatten (when needed) and a softmax dense on top."""
    layers = list(layers)
    if head:
        layers += [{"type": "flatten"}, {"type": "dense", "units": classes, "activation": "softmax"}]
    doc = {"name": "parity", "input_shape": list(input_shape), "layers": layers}
    if training:
        doc["training"] = training
    return cnnspec.load_spec(doc)


def batch(spec, n=4, seed=0, inputs="normal"):
    """A random batch for ``spec``: "normal" N(0, 1) (signs and magnitudes above 1) or "uniform" [0, 1)
    (images scaled to 0-1, where the tolerance rule's bound is 1e-5 itself until a layer exceeds 1)."""
    return INPUTS[inputs](np.random.default_rng(seed), (n, *spec.input_shape))


def per_layer(backend, spec, weights, x):
    return backend.layer_outputs(backend.build(spec, weights), x)


def assert_same_per_layer(spec, backends, seed=0, x=None, inputs="normal", weights=None):
    """Every backend's per-layer outputs agree with the first's within the tolerance rule; names the first layer that differs.
    ``weights``: canonical weights to use (default: random ones drawn with ``seed``)."""
    weights = random_weights(spec, seed) if weights is None else weights
    x = batch(spec, seed=seed, inputs=inputs) if x is None else x
    reference_name, reference = backends[0]
    expected = per_layer(reference, spec, weights, x)
    tolerances = layer_tolerances(x, expected)
    for name, backend in backends[1:]:
        got = per_layer(backend, spec, weights, x)
        assert len(got) == len(expected)
        for layer, a, b, allowed in zip(spec.layers, expected, got, tolerances):
            assert a.shape == b.shape, f"{layer.name}: {reference_name} {a.shape} vs {name} {b.shape}"
            diff = max_difference(b, a)
            assert diff <= allowed, (
                f"{layer.name} ({layer.type}): {reference_name} vs {name} differ by {diff:.2e} > {allowed:.1e}"
            )
