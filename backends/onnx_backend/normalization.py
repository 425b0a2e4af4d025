"""ONNX builders of the normalizations: inference batch norm (as Mul and Add, which no runtime fuses across
an activation), layer normalization, the Normalization preprocessing layer and LayerScale's scale."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnspec import layers as spec_layers
from cnnspec.registry import Site

from .graph import BUILDERS, Graph


@BUILDERS.builds("batch_norm")
def _batch_norm(layer: Any, site: Site) -> str:
    """Inference batch norm as TensorFlow computes it (``tf.nn.batch_normalization``, which Keras calls):
    ``x * inv + (beta - mean * inv)`` with ``inv = gamma / sqrt(moving_variance + epsilon)``, folded into
    two constants here and written as Mul and Add.

    Not a BatchNormalization node: OpenCV's DNN (5.0) fuses one that follows a convolution and its
    activation into the convolution as if it came before the activation, which is wrong for every
    activation but ReLU-like ones (tests/backends/test_other_runtimes.py keeps the reproducer). ONNX
    Runtime and OpenVINO fold the Mul and Add into a preceding convolution as they would the node.
    """
    g, x, shape = site.graph, site.x, site.input_shape
    channels, w = shape[-1], g.weights
    gamma = w[f"{layer.name}/gamma"] if layer.scale else np.ones(channels, np.float32)
    beta = w[f"{layer.name}/beta"] if layer.center else np.zeros(channels, np.float32)
    # float32 arithmetic, as TensorFlow's; ONNX's default epsilon (1e-5) never applies: the spec's is used
    inv = gamma * (np.float32(1.0) / np.sqrt(w[f"{layer.name}/moving_variance"] + np.float32(layer.epsilon)))
    shift = beta - w[f"{layer.name}/moving_mean"] * inv
    per_channel = (channels, 1, 1) if len(shape) == 3 else (channels,)  # NCHW channels, or a flat input's features
    scaled = g.node("Mul", [x, g.constant(f"{layer.name}/scale", inv.reshape(per_channel))], f"{layer.name}/scaled")
    return g.node("Add", [scaled, g.constant(f"{layer.name}/shift", shift.reshape(per_channel))], layer.name)


def _per_channel(shape: tuple, values: np.ndarray) -> np.ndarray:
    """A per-channel vector shaped to broadcast beside NCHW activations (or a flat input's features)."""
    return np.asarray(values, np.float32).reshape((-1, 1, 1) if len(shape) == 3 else (-1,))


def _channel_mean(g: Graph, x: str, out: str) -> str:
    """ReduceMean over the channels (NCHW axis 1), kept: an attribute before opset 18, an input since."""
    if g.opset >= 18:
        return g.node("ReduceMean", [x, g.constant(f"{out}/axes", np.array([1]), np.int64)], out, keepdims=1)
    return g.node("ReduceMean", [x], out, axes=[1], keepdims=1)


@BUILDERS.builds("layer_normalization")
def _layer_normalization(layer: spec_layers.LayerNormalization, site: Site) -> str:
    """Keras's arithmetic: ``x * inv + (beta - mean * inv)``, ``inv = gamma / sqrt(variance + epsilon)``; not
    ONNX's LayerNormalization, which normalises every axis from the one given (NCHW: channels and space)."""
    g, x, name, shape = site.graph, site.x, layer.name, site.input_shape
    mean = _channel_mean(g, x, f"{name}/mean")
    centred = g.node("Sub", [x, mean], f"{name}/centred")
    variance = _channel_mean(g, g.node("Mul", [centred, centred], f"{name}/squares"), f"{name}/variance")
    eps = g.constant(f"{name}/epsilon", np.float32(layer.epsilon))
    inv = g.node("Reciprocal", [g.node("Sqrt", [g.node("Add", [variance, eps], f"{name}/var_eps")], f"{name}/std")],
                 f"{name}/inv")  # fmt: skip
    if layer.scale:
        gamma = g.constant(f"{name}/gamma", _per_channel(shape, g.weights[f"{name}/gamma"]))
        inv = g.node("Mul", [inv, gamma], f"{name}/inv_gamma")
    shift = g.node("Neg", [g.node("Mul", [mean, inv], f"{name}/mean_inv")], f"{name}/shift")
    if layer.center:
        beta = g.constant(f"{name}/beta", _per_channel(shape, g.weights[f"{name}/beta"]))
        shift = g.node("Add", [shift, beta], f"{name}/shift_beta")
    return g.node("Add", [g.node("Mul", [x, inv], f"{name}/scaled"), shift], name)


@BUILDERS.builds("normalization")
def _normalization(layer: spec_layers.Normalization, site: Site) -> str:
    g, name, channels = site.graph, layer.name, site.input_shape[-1]
    given = layer.mean is not None
    mean = np.broadcast_to(np.asarray(layer.mean if given else g.weights[f"{name}/mean"], np.float32), (channels,))
    variance = np.broadcast_to(
        np.asarray(layer.variance if given else g.weights[f"{name}/variance"], np.float32), (channels,)
    )
    denominator = np.maximum(np.sqrt(variance), np.float32(1e-7))  # float32, as Keras computes it
    centred = g.node("Sub", [site.x, g.constant(f"{name}/mean", _per_channel(site.input_shape, mean))],
                     f"{name}/centred")  # fmt: skip
    return g.node("Div", [centred, g.constant(f"{name}/scale", _per_channel(site.input_shape, denominator))], name)


@BUILDERS.builds("scale")
def _scale(layer: spec_layers.Scale, site: Site) -> str:
    gamma = site.graph.constant(
        f"{layer.name}/gamma", _per_channel(site.input_shape, site.graph.weights[f"{layer.name}/gamma"])
    )
    return site.graph.node("Mul", [site.x, gamma], layer.name)
