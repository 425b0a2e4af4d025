"""Shared by the parity tests: build every backend from one set of canonical weights."""

from __future__ import annotations

import numpy as np

import cnnspec
from cnnspec.weights import random_weights

ATOL = 1e-5  # design.md: float32, CPU


def tolerance(reference: np.ndarray) -> float:
    """1e-5 absolute for values up to 1; beyond, 1e-5 of the largest value.

    A float32 near 100 is only resolved to 7.6e-6, so a sum of nine such cells in a
    different order (as each framework's kernels do) can differ by more than 1e-5
    absolute with every backend exactly right; hypothesis found such a spec.
    """
    return ATOL * max(1.0, float(np.abs(reference).max()) if reference.size else 1.0)


def spec_of(layers, input_shape, classes=3, head=True, **training):
    """A spec around ``layers``: flatten (when needed) and a softmax dense on top."""
    layers = list(layers)
    if head:
        layers += [{"type": "flatten"}, {"type": "dense", "units": classes, "activation": "softmax"}]
    doc = {"name": "parity", "input_shape": list(input_shape), "layers": layers}
    if training:
        doc["training"] = training
    return cnnspec.load_spec(doc)


def batch(spec, n=4, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n, *spec.input_shape)).astype(np.float32)


def per_layer(backend, spec, weights, x):
    return backend.layer_outputs(backend.build(spec, weights), x)


def max_differences(outputs_a, outputs_b):
    return [float(np.abs(a - b).max()) for a, b in zip(outputs_a, outputs_b)]


def assert_same_per_layer(spec, backends, seed=0, x=None):
    """Every backend's per-layer outputs agree with the first's within ATOL; names the first layer that differs."""
    weights = random_weights(spec, seed)
    x = batch(spec, seed=seed) if x is None else x
    reference_name, reference = backends[0]
    expected = per_layer(reference, spec, weights, x)
    for name, backend in backends[1:]:
        got = per_layer(backend, spec, weights, x)
        assert len(got) == len(expected)
        for layer, a, b in zip(spec.layers, expected, got):
            assert a.shape == b.shape, f"{layer.name}: {reference_name} {a.shape} vs {name} {b.shape}"
            diff = float(np.abs(a - b).max()) if a.size else 0.0
            assert diff <= tolerance(a), f"{layer.name} ({layer.type}): {reference_name} vs {name} differ by {diff:.2e}"
