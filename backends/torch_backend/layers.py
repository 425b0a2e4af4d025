"""One builder per spec class: ``builder(layer, site)`` returns a ``TorchLayer``, the layer's modules
(``modules.py``) and where each canonical variable lives in them, with the layout conversion to and from
Keras's (``cnnspec.layouts``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from cnnspec import layers as spec_layers
from cnnspec.layouts import (
    conv_to_oihw,
    conv_transpose_to_iohw,
    dense_to_out_in,
    depthwise_to_grouped,
    grouped_to_depthwise,
    iohw_to_conv_transpose,
    oihw_to_conv,
    out_in_to_dense,
)
from cnnspec.registry import BuilderTable, Site

from .modules import (
    ACTIVATIONS,
    AvgPool2d,
    ConcatenateChannels,
    Conv2d,
    ConvTranspose2d,
    Elementwise,
    Flatten,
    GlobalAvgPool,
    GlobalMaxPool,
    KerasReLU,
    Lambda,
    MaxPool2d,
    MinPool2d,
    NoiseShapeDropout,
    PReLU,
    Rescale,
    ReshapeChannelsLast,
    Softmax,
    SoftmaxOver,
    SumPool2d,
    UpSample,
    ZeroPad,
)
from .normalization import BatchNorm, ChannelScale, KerasLayerNorm, KerasNormalization


# -- builders: spec class -> modules + where the canonical variables live ------------------------
def _same(array: np.ndarray) -> np.ndarray:
    return array


@dataclass(frozen=True)
class Param:
    """A canonical variable inside a built layer: ``modules[module].attr``, and its layout conversions."""

    module: int
    attr: str
    to_torch: Callable[[np.ndarray], np.ndarray] = _same
    to_keras: Callable[[np.ndarray], np.ndarray] = _same


@dataclass
class TorchLayer:
    """What a builder returns: the layer's modules (run in order) and its variable map."""

    modules: list[nn.Module]
    params: dict[str, Param] = field(default_factory=dict)


BUILDERS = BuilderTable("torch")  # @BUILDERS.builds("conv2d"): builder(layer, site) -> TorchLayer


def _with_activation(core: nn.Module, activation: str) -> list[nn.Module]:
    return [core] if activation == "linear" else [core, ACTIVATIONS[activation]()]


# Conv kernels: Keras (kh, kw, in, out) = torch (out, in, kh, kw).transpose(2, 3, 1, 0).
# Dense kernels: Keras (in, out) = torch (out, in).T; its rows need no permutation because
# ``Flatten`` already yields Keras's (H, W, C) order.
_CONV_PARAMS = {"kernel": Param(0, "weight", conv_to_oihw, oihw_to_conv), "bias": Param(0, "bias")}
_DENSE_PARAMS = {"kernel": Param(0, "weight", dense_to_out_in, out_in_to_dense), "bias": Param(0, "bias")}
_BATCH_NORM_PARAMS = {
    "gamma": Param(0, "weight"),
    "beta": Param(0, "bias"),
    "moving_mean": Param(0, "running_mean"),
    "moving_variance": Param(0, "running_var"),
}


@BUILDERS.builds("conv2d")
def _conv(layer: spec_layers.Conv2D, site: Site) -> TorchLayer:
    conv = Conv2d(layer, site.input_shape, layer.filters, groups=layer.groups, bias=layer.use_bias)
    return TorchLayer(_with_activation(conv, layer.activation), _CONV_PARAMS)


def _depthwise_param(module: int, channels: int) -> Param:
    """Keras (kh, kw, in, mult) <-> torch grouped (in * mult, 1, kh, kw)."""
    return Param(module, "weight", depthwise_to_grouped, lambda t: grouped_to_depthwise(t, channels))


@BUILDERS.builds("depthwise_conv2d")
def _depthwise_conv(layer: spec_layers.DepthwiseConv2D, site: Site) -> TorchLayer:
    channels = site.input_shape[-1] * layer.depth_multiplier
    conv = Conv2d(layer, site.input_shape, channels, groups=site.input_shape[-1], bias=layer.use_bias)
    params = {"depthwise_kernel": _depthwise_param(0, site.input_shape[-1]), "bias": Param(0, "bias")}
    return TorchLayer(_with_activation(conv, layer.activation), params)


@BUILDERS.builds("separable_conv2d")
def _separable_conv(layer: spec_layers.SeparableConv2D, site: Site) -> TorchLayer:
    """Keras SeparableConv2D: the depthwise convolution (no bias), a 1x1 convolution to ``filters``, its bias."""
    middle = site.input_shape[-1] * layer.depth_multiplier
    depthwise = Conv2d(layer, site.input_shape, middle, groups=site.input_shape[-1], bias=False)
    pointwise = nn.Conv2d(middle, layer.filters, 1, bias=layer.use_bias)
    params = {
        "depthwise_kernel": _depthwise_param(0, site.input_shape[-1]),
        "pointwise_kernel": Param(1, "weight", conv_to_oihw, oihw_to_conv),
        "bias": Param(1, "bias"),
    }
    return TorchLayer([depthwise, *_with_activation(pointwise, layer.activation)], params)


@BUILDERS.builds("rescaling")
def _rescaling(layer: spec_layers.Rescaling, site: Site) -> TorchLayer:
    return TorchLayer([Rescale(layer.scale, layer.offset)])


@BUILDERS.builds("zero_padding2d")
def _zero_padding(layer: spec_layers.ZeroPadding2D, site: Site) -> TorchLayer:
    (top, bottom), (left, right) = layer.padding
    return TorchLayer([ZeroPad((left, right, top, bottom))])


@BUILDERS.builds("dense")
def _dense(layer: spec_layers.Dense, site: Site) -> TorchLayer:
    linear = nn.Linear(site.input_shape[0], layer.units, bias=layer.use_bias)
    return TorchLayer(_with_activation(linear, layer.activation), _DENSE_PARAMS)


@BUILDERS.builds("batch_norm")
def _batch_norm(layer: spec_layers.BatchNorm, site: Site) -> TorchLayer:
    return TorchLayer([BatchNorm(layer, site.input_shape)], _BATCH_NORM_PARAMS)


_WINDOW_POOLS: dict[str, type[nn.Module]] = {
    "max_pool2d": MaxPool2d,
    "avg_pool2d": AvgPool2d,
    "min_pool2d": MinPool2d,
    "sum_pool2d": SumPool2d,
}


@BUILDERS.builds(*_WINDOW_POOLS)
def _pool(layer: Any, site: Site) -> TorchLayer:
    return TorchLayer([_WINDOW_POOLS[layer.type](layer, site.input_shape)])


# Keras's element-wise merges: how two inputs combine, and whether the sum is then averaged
_ELEMENTWISE: dict[str, tuple[Callable[[Any, Any], Any], bool]] = {
    "add": (operator.add, False),
    "multiply": (operator.mul, False),
    "subtract": (operator.sub, False),
    "average": (operator.add, True),
    "maximum": (torch.maximum, False),
    "minimum": (torch.minimum, False),
}


@BUILDERS.builds(*_ELEMENTWISE)
def _elementwise(layer: Any, site: Site) -> TorchLayer:
    combine, mean = _ELEMENTWISE[layer.type]
    return TorchLayer([Elementwise(combine, layer.type, mean)])


@BUILDERS.builds("concatenate")
def _concatenate(layer: spec_layers.Concatenate, site: Site) -> TorchLayer:
    return TorchLayer([ConcatenateChannels()])


@BUILDERS.builds("global_avg_pool2d")
def _global_avg_pool(layer: spec_layers.GlobalAvgPool2D, site: Site) -> TorchLayer:
    return TorchLayer([GlobalAvgPool(layer.keepdims)])


@BUILDERS.builds("global_max_pool2d")
def _global_max_pool(layer: spec_layers.GlobalMaxPool2D, site: Site) -> TorchLayer:
    return TorchLayer([GlobalMaxPool(layer.keepdims)])


@BUILDERS.builds("dropout")
def _dropout(layer: spec_layers.Dropout, site: Site) -> TorchLayer:
    if layer.noise_shape is not None:
        return TorchLayer([NoiseShapeDropout(layer.rate, layer.noise_shape)])
    return TorchLayer([nn.Dropout(layer.rate)])


@BUILDERS.builds("spatial_dropout2d")
def _spatial_dropout(layer: spec_layers.SpatialDropout2D, site: Site) -> TorchLayer:
    return TorchLayer([nn.Dropout2d(layer.rate)])  # whole channels of each example


@BUILDERS.builds("flatten")
def _flatten(layer: spec_layers.Flatten, site: Site) -> TorchLayer:
    return TorchLayer([Flatten()])


@BUILDERS.builds("activation")
def _activation(layer: spec_layers.Activation, site: Site) -> TorchLayer:
    return TorchLayer([ACTIVATIONS[layer.activation]()])


@BUILDERS.builds("cropping2d")
def _cropping(layer: spec_layers.Cropping2D, site: Site) -> TorchLayer:
    (top, bottom), (left, right) = layer.cropping
    height, width = site.input_shape[0] - bottom, site.input_shape[1] - right
    return TorchLayer([Lambda(lambda x: x[:, :, top:height, left:width], f"cropping={layer.cropping}")])


@BUILDERS.builds("relu")
def _relu(layer: spec_layers.ReLU, site: Site) -> TorchLayer:
    return TorchLayer([KerasReLU(layer.max_value, layer.negative_slope, layer.threshold)])


@BUILDERS.builds("leaky_relu")
def _leaky_relu(layer: spec_layers.LeakyReLU, site: Site) -> TorchLayer:
    return TorchLayer([nn.LeakyReLU(layer.negative_slope)])


@BUILDERS.builds("elu")
def _elu(layer: spec_layers.ELU, site: Site) -> TorchLayer:
    return TorchLayer([nn.ELU(alpha=layer.alpha)])


@BUILDERS.builds("prelu")
def _prelu(layer: spec_layers.PReLU, site: Site) -> TorchLayer:
    shape = layer.variables(site.input_shape)["alpha"]
    image = len(shape) == 3  # (H, W, C) in Keras, (C, H, W) beside NCHW activations
    module = PReLU((shape[2], shape[0], shape[1]) if image else shape)
    to_torch, to_keras = (_chw, _hwc) if image else (_same, _same)
    return TorchLayer([module], {"alpha": Param(0, "alpha", to_torch, to_keras)})


def _chw(array: np.ndarray) -> np.ndarray:
    return array.transpose(2, 0, 1)


def _hwc(array: np.ndarray) -> np.ndarray:
    return array.transpose(1, 2, 0)


# a spec axis, 0-based in (H, W, C), as an NCHW dimension; a flat input's features are dimension 1
NCHW_DIMS = {3: {0: 2, 1: 3, 2: 1}, 1: {0: 1}}


@BUILDERS.builds("softmax")
def _softmax(layer: spec_layers.Softmax, site: Site) -> TorchLayer:
    dim = NCHW_DIMS[len(site.input_shape)][layer.spatial_axis(site.input_shape)]
    return TorchLayer([Softmax() if dim == 1 else SoftmaxOver(dim)])


@BUILDERS.builds("conv2d_transpose")
def _conv_transpose(layer: spec_layers.Conv2DTranspose, site: Site) -> TorchLayer:
    params = {"kernel": Param(0, "weight", conv_transpose_to_iohw, iohw_to_conv_transpose), "bias": Param(0, "bias")}
    return TorchLayer(_with_activation(ConvTranspose2d(layer, site.input_shape), layer.activation), params)


@BUILDERS.builds("up_sampling2d")
def _up_sampling(layer: spec_layers.UpSampling2D, site: Site) -> TorchLayer:
    return TorchLayer([UpSample(layer.size, layer.interpolation)])


@BUILDERS.builds("reshape")
def _reshape(layer: spec_layers.Reshape, site: Site) -> TorchLayer:
    return TorchLayer([ReshapeChannelsLast(layer.output_shape(site.input_shape))])


@BUILDERS.builds("layer_normalization")
def _layer_normalization(layer: spec_layers.LayerNormalization, site: Site) -> TorchLayer:
    module = KerasLayerNorm(site.input_shape[-1], layer.epsilon, layer.center, layer.scale)
    return TorchLayer([module], {"gamma": Param(0, "gamma"), "beta": Param(0, "beta")})


@BUILDERS.builds("normalization")
def _normalization(layer: spec_layers.Normalization, site: Site) -> TorchLayer:
    module = KerasNormalization(site.input_shape[-1], layer.mean, layer.variance)
    return TorchLayer([module], {name: Param(0, name) for name in ("mean", "variance")})


@BUILDERS.builds("scale")
def _scale(layer: spec_layers.Scale, site: Site) -> TorchLayer:
    return TorchLayer([ChannelScale(site.input_shape[-1], layer.init_values)], {"gamma": Param(0, "gamma")})
