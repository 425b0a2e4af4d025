"""Keras layers for each spec class, one registered builder each.

Most types are Keras's own classes. Min and sum pooling have no Keras class; they
are small layers built from ``keras.ops`` with the same ``valid``/``same`` rules.
A builder takes ``(layer spec, input shape (H, W, C) or (F,), seed)`` and returns a
Keras layer named like the spec's layer, whose variables carry the canonical names.
"""

from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

import keras
from keras import layers, ops

from cnnspec.layers import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    LayerSpec,
    MaxPool2D,
    MinPool2D,
    Rescaling,
    SeparableConv2D,
    SumPool2D,
    ZeroPadding2D,
)
from cnnspec.shapes import window


@keras.saving.register_keras_serializable(package="cnnspec")
class MinPooling2D(layers.Layer):
    """Minimum of each window: -max(-x); ``same`` padding never wins."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides, self.padding = tuple(pool_size), tuple(strides or pool_size), padding

    def call(self, inputs):
        return -ops.max_pool(-inputs, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        return layers.MaxPooling2D(self.pool_size, self.strides, self.padding).compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


@keras.saving.register_keras_serializable(package="cnnspec")
class SumPooling2D(MinPooling2D):
    """Sum of each window's real cells: zero padding by Keras's rule, then a depthwise
    convolution with a kernel of ones (an exact sum: no mean times an area).

    TensorFlow's stock depthwise kernel (CPUs where oneDNN is off, and CUDA) accepts
    only equal strides, so the convolution runs at the largest stride both axes share
    and the output is then subsampled to the spec's strides.
    """

    def build(self, input_shape):
        self.ones = ops.ones((*self.pool_size, input_shape[-1], 1))
        rows, cols = (
            window(size, k, s, 1, self.padding) for size, k, s in zip(input_shape[1:3], self.pool_size, self.strides)
        )
        self.pads = ((0, 0), (rows.pad_before, rows.pad_after), (cols.pad_before, cols.pad_after), (0, 0))
        shared = math.gcd(*self.strides)
        self.conv_strides = (shared, shared)
        self.subsample = (self.strides[0] // shared, self.strides[1] // shared)

    def call(self, inputs):
        x = ops.pad(inputs, self.pads) if any(any(pair) for pair in self.pads) else inputs
        y = ops.depthwise_conv(x, ops.cast(self.ones, x.dtype), self.conv_strides, "valid")
        if self.subsample != (1, 1):
            y = y[:, :: self.subsample[0], :: self.subsample[1], :]
        return y


Builder = Callable[[Any, tuple, int], layers.Layer]
BUILDERS: dict[type[LayerSpec], Builder] = {}
B = TypeVar("B", bound=Builder)


# canonical variable -> Keras attribute, where Keras 3 names it differently
VARIABLE_ATTRIBUTES: dict[type[LayerSpec], dict[str, str]] = {}


def builds(*classes: type[LayerSpec], attributes: dict[str, str] | None = None) -> Callable[[B], B]:
    """Register the decorated function as the Keras builder of ``classes``.

    ``attributes``: canonical variable names whose Keras 3 attribute differs (Keras 3's
    DepthwiseConv2D calls its depthwise kernel ``kernel``; tf.keras and the canonical layout
    say ``depthwise_kernel``).
    """

    def register(builder: B) -> B:
        BUILDERS.update(dict.fromkeys(classes, builder))
        VARIABLE_ATTRIBUTES.update(dict.fromkeys(classes, attributes or {}))
        return builder

    return register


def _conv_args(layer: Any) -> dict[str, Any]:
    return {
        "kernel_size": tuple(layer.kernel_size),
        "strides": tuple(layer.strides),
        "padding": layer.padding,
        "dilation_rate": tuple(layer.dilation_rate),
        "activation": layer.activation,
        "use_bias": layer.use_bias,
        "name": layer.name,
    }


@builds(Conv2D)
def _conv(layer: Conv2D, shape: tuple, seed: int) -> layers.Layer:
    return layers.Conv2D(layer.filters, **_conv_args(layer))


_POOLS: dict[type[LayerSpec], Callable[..., layers.Layer]] = {
    MaxPool2D: layers.MaxPooling2D,
    AvgPool2D: layers.AveragePooling2D,
    MinPool2D: MinPooling2D,
    SumPool2D: SumPooling2D,
}


@builds(*_POOLS)
def _pool(layer: Any, shape: tuple, seed: int) -> layers.Layer:
    return _POOLS[type(layer)](tuple(layer.pool_size), tuple(layer.strides), layer.padding, name=layer.name)


@builds(GlobalAvgPool2D)
def _global_avg_pool(layer: GlobalAvgPool2D, shape: tuple, seed: int) -> layers.Layer:
    return layers.GlobalAveragePooling2D(name=layer.name)


@builds(GlobalMaxPool2D)
def _global_max_pool(layer: GlobalMaxPool2D, shape: tuple, seed: int) -> layers.Layer:
    return layers.GlobalMaxPooling2D(name=layer.name)


@builds(BatchNorm)
def _batch_norm(layer: BatchNorm, shape: tuple, seed: int) -> layers.Layer:
    return layers.BatchNormalization(
        momentum=layer.momentum, epsilon=layer.epsilon, center=layer.center, scale=layer.scale, name=layer.name
    )


@builds(Dropout)
def _dropout(layer: Dropout, shape: tuple, seed: int) -> layers.Layer:
    return layers.Dropout(layer.rate, seed=seed, name=layer.name)


@builds(Flatten)
def _flatten(layer: Flatten, shape: tuple, seed: int) -> layers.Layer:
    return layers.Flatten(name=layer.name)


@builds(DepthwiseConv2D, attributes={"depthwise_kernel": "kernel"})
def _depthwise_conv(layer: DepthwiseConv2D, shape: tuple, seed: int) -> layers.Layer:
    return layers.DepthwiseConv2D(depth_multiplier=layer.depth_multiplier, **_conv_args(layer))


@builds(SeparableConv2D)
def _separable_conv(layer: SeparableConv2D, shape: tuple, seed: int) -> layers.Layer:
    return layers.SeparableConv2D(layer.filters, depth_multiplier=layer.depth_multiplier, **_conv_args(layer))


@builds(Rescaling)
def _rescaling(layer: Rescaling, shape: tuple, seed: int) -> layers.Layer:
    return layers.Rescaling(layer.scale, layer.offset, name=layer.name)


@builds(ZeroPadding2D)
def _zero_padding(layer: ZeroPadding2D, shape: tuple, seed: int) -> layers.Layer:
    return layers.ZeroPadding2D(layer.padding, name=layer.name)


@builds(Dense)
def _dense(layer: Dense, shape: tuple, seed: int) -> layers.Layer:
    return layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias, name=layer.name)


@builds(Activation)
def _activation(layer: Activation, shape: tuple, seed: int) -> layers.Layer:
    return layers.Activation(layer.activation, name=layer.name)


__all__ = ["BUILDERS", "VARIABLE_ATTRIBUTES", "MinPooling2D", "SumPooling2D", "builds"]
