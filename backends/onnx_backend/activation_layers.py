"""ONNX builders of Keras's activation layers: ReLU (max_value, negative_slope, threshold), LeakyReLU, ELU,
PReLU and Softmax over an axis."""

from __future__ import annotations

import numpy as np

from cnnspec import layers as spec_layers
from cnnspec.registry import Site

from .graph import BUILDERS, FLOAT, _clip


@BUILDERS.builds("relu")
def _relu(layer: spec_layers.ReLU, site: Site) -> str:
    """Keras's ``activations.relu`` with its arguments, term for term (as the torch module)."""
    g, x, name = site.graph, site.x, layer.name
    slope, threshold, top = layer.negative_slope, layer.threshold, layer.max_value
    if slope and top is None and not threshold:
        return g.node("LeakyRelu", [x], name, alpha=slope)
    if threshold:
        above = g.node("Cast", [g.node("Greater", [x, g.constant(f"{name}/threshold", np.float32(threshold))],
                                       f"{name}/above")], f"{name}/mask", to=FLOAT)  # fmt: skip
        y = g.node("Mul", [x, above], f"{name}/kept")
    else:
        y = g.node("Relu", [x], f"{name}/relu")
    if top is not None:
        y = _clip(g, y, 0.0, top, f"{name}/clipped")
    if not slope:
        return g.node("Identity", [y], name)
    shifted = g.node("Sub", [g.constant(f"{name}/shift", np.float32(threshold)), x], f"{name}/below") if threshold \
        else g.node("Neg", [x], f"{name}/below")  # fmt: skip
    negative = g.node("Mul", [g.node("Relu", [shifted], f"{name}/negative"), g.constant(f"{name}/slope",
                                                                                          np.float32(slope))],
                      f"{name}/scaled")  # fmt: skip
    return g.node("Sub", [y, negative], name)


@BUILDERS.builds("leaky_relu")
def _leaky_relu(layer: spec_layers.LeakyReLU, site: Site) -> str:
    return site.graph.node("LeakyRelu", [site.x], layer.name, alpha=layer.negative_slope)


@BUILDERS.builds("elu")
def _elu(layer: spec_layers.ELU, site: Site) -> str:
    return site.graph.node("Elu", [site.x], layer.name, alpha=layer.alpha)


@BUILDERS.builds("prelu")
def _prelu(layer: spec_layers.PReLU, site: Site) -> str:
    """Keras's ``relu(x) - alpha * relu(-x)``, not ONNX's PRelu: OpenCV's DNN (5.0) fuses a PRelu into the
    convolution before it and then refuses a slope that is not one per channel (tests/backends/
    test_other_runtimes.py keeps the reproducer)."""
    g, x, name, alpha = site.graph, site.x, layer.name, site.graph.weights[f"{layer.name}/alpha"]
    slope = g.constant(f"{name}/alpha", alpha.transpose(2, 0, 1) if alpha.ndim == 3 else alpha)  # beside NCHW
    negative = g.node("Mul", [slope, g.node("Relu", [g.node("Neg", [x], f"{name}/neg")], f"{name}/below")],
                      f"{name}/negative")  # fmt: skip
    return g.node("Sub", [g.node("Relu", [x], f"{name}/positive"), negative], name)


@BUILDERS.builds("softmax")
def _softmax(layer: spec_layers.Softmax, site: Site) -> str:
    nchw = {3: {0: 2, 1: 3, 2: 1}, 1: {0: 1}}[len(site.input_shape)]  # a spec axis as an NCHW axis
    return site.graph.node("Softmax", [site.x], layer.name, axis=nchw[layer.spatial_axis(site.input_shape)])
