"""Keras layers for each spec type, and the builder table spec type -> keras layer.

Most types are Keras's own classes. Min and sum pooling have no Keras class; they
are small layers built from ``keras.ops`` with the same ``valid``/``same`` rules.
Builders share one signature: ``(layer spec, input shape (H, W, C) or (F,), seed) -> keras layer``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import keras
from keras import layers, ops

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
        rows, cols = (window(size, k, s, 1, self.padding)
                      for size, k, s in zip(input_shape[1:3], self.pool_size, self.strides))  # fmt: skip
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


def _pool_args(layer: Any) -> dict[str, Any]:
    return {"pool_size": tuple(layer.pool_size), "strides": tuple(layer.strides), "padding": layer.padding}


Builder = Callable[[Any, tuple, int], layers.Layer]
BUILDERS: dict[str, Builder] = {
    "conv2d": lambda layer, shape, seed: layers.Conv2D(
        layer.filters, tuple(layer.kernel_size), strides=tuple(layer.strides), padding=layer.padding,
        dilation_rate=tuple(layer.dilation_rate), activation=layer.activation, use_bias=layer.use_bias,
        name=layer.name,
    ),  # fmt: skip
    "max_pool2d": lambda layer, shape, seed: layers.MaxPooling2D(**_pool_args(layer), name=layer.name),
    "avg_pool2d": lambda layer, shape, seed: layers.AveragePooling2D(**_pool_args(layer), name=layer.name),
    "min_pool2d": lambda layer, shape, seed: MinPooling2D(**_pool_args(layer), name=layer.name),
    "sum_pool2d": lambda layer, shape, seed: SumPooling2D(**_pool_args(layer), name=layer.name),
    "global_avg_pool2d": lambda layer, shape, seed: layers.GlobalAveragePooling2D(name=layer.name),
    "global_max_pool2d": lambda layer, shape, seed: layers.GlobalMaxPooling2D(name=layer.name),
    "batch_norm": lambda layer, shape, seed: layers.BatchNormalization(
        momentum=layer.momentum, epsilon=layer.epsilon, center=layer.center, scale=layer.scale, name=layer.name
    ),
    "dropout": lambda layer, shape, seed: layers.Dropout(layer.rate, seed=seed, name=layer.name),
    "flatten": lambda layer, shape, seed: layers.Flatten(name=layer.name),
    "dense": lambda layer, shape, seed: layers.Dense(
        layer.units, activation=layer.activation, use_bias=layer.use_bias, name=layer.name
    ),
    "activation": lambda layer, shape, seed: layers.Activation(layer.activation, name=layer.name),
}

__all__ = ["BUILDERS", "MinPooling2D", "SumPooling2D"]
