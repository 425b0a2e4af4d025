"""Keras layers for each spec class, one registered builder each.

Most types are Keras's own classes. Min and sum pooling have no Keras class; they
are small layers built from ``keras.ops`` with the same ``valid``/``same`` rules.
A builder takes ``(layer spec, site)`` (``cnnspec.registry.Site``: input shapes, the layer's seed) and
returns a Keras layer named like the spec's layer, whose variables carry the canonical names (or the
names the spec class's ``keras_attributes`` gives).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops
from keras.src.applications.convnext import LayerScale as _ConvNeXtLayerScale

from cnnspec import layers as spec_layers
from cnnspec.registry import BuilderTable, Site
from cnnspec.shapes import single_window_plan, window


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


class _ExplicitWindow:
    """Keras's window computed by hand: crop and zero-pad by Keras's rule, then a ``valid`` operation at one
    stride shared by both axes, then subsampling to the spec's strides.

    Two TensorFlow limits make this necessary, each for a narrow geometry only (the builders use these
    classes there, Keras's own everywhere else): its stock depthwise kernel (CPUs where oneDNN is off, and
    CUDA) refuses unequal strides, and oneDNN's AVX-512 kernels compute a narrow convolution one output
    column wide with a column stride above 1 wrongly (``cnnspec.shapes.single_window_plan``).
    """

    def _plan_window(self, input_shape):
        (top, bottom, left, right), self.kept, strides = single_window_plan(
            input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        self.pads = ((0, 0), (top, bottom), (left, right), (0, 0))
        shared = math.gcd(*strides)
        self.op_strides, self.subsample = (shared, shared), (strides[0] // shared, strides[1] // shared)

    def _windowed(self, inputs):
        return ops.pad(inputs[:, : self.kept[0], : self.kept[1], :], self.pads)

    def _subsampled(self, outputs):
        if self.subsample == (1, 1):
            return outputs
        return outputs[:, :: self.subsample[0], :: self.subsample[1], :]

    def _finish(self, outputs, bias):
        outputs = self._subsampled(outputs)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(bias, (1, 1, 1, -1)))
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="cnnspec")
class SingleWindowConv2D(_ExplicitWindow, layers.Conv2D):
    """Keras Conv2D with its window computed by hand (see ``_ExplicitWindow``); the same result."""

    def build(self, input_shape):
        super().build(input_shape)
        self._plan_window(input_shape)

    def convolution_op(self, inputs, kernel):
        y = ops.conv(self._windowed(inputs), kernel, self.op_strides, "valid", dilation_rate=self.dilation_rate)
        return self._subsampled(y)


@keras.saving.register_keras_serializable(package="cnnspec")
class ExplicitWindowDepthwiseConv2D(_ExplicitWindow, layers.DepthwiseConv2D):
    """Keras DepthwiseConv2D with its window computed by hand (see ``_ExplicitWindow``); the same result."""

    def build(self, input_shape):
        super().build(input_shape)
        self._plan_window(input_shape)

    def call(self, inputs):
        y = ops.depthwise_conv(
            self._windowed(inputs), self.kernel, self.op_strides, "valid", dilation_rate=self.dilation_rate
        )
        return self._finish(y, self.bias if self.use_bias else None)


@keras.saving.register_keras_serializable(package="cnnspec")
class ExplicitWindowSeparableConv2D(_ExplicitWindow, layers.SeparableConv2D):
    """Keras SeparableConv2D with its window computed by hand (see ``_ExplicitWindow``); the same result."""

    def build(self, input_shape):
        super().build(input_shape)
        self._plan_window(input_shape)

    def call(self, inputs):
        y = ops.depthwise_conv(
            self._windowed(inputs), self.depthwise_kernel, self.op_strides, "valid", dilation_rate=self.dilation_rate
        )
        y = ops.conv(self._subsampled(y), self.pointwise_kernel, 1, "valid")
        outputs = ops.add(y, ops.reshape(self.bias, (1, 1, 1, -1))) if self.use_bias else y
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="cnnspec")
class DilatedKernelConv2DTranspose(layers.Conv2DTranspose):
    """Keras Conv2DTranspose with ``dilation_rate`` > 1 computed as the same layer with its kernel dilated by hand
    (zeros between the taps) and a dilation of 1: the same sums, and the same output size and padding (both depend
    on the dilated span). TensorFlow's stock CPU kernels refuse a dilated transposed convolution ("do not yet
    support dilation rates larger than 1"), and they run wherever oneDNN is off."""

    def call(self, inputs):
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation_rate
        out, channels = self.filters, inputs.shape[-1]
        spread = ops.pad(ops.reshape(self.kernel, (kh, 1, kw, 1, out, channels)),
                         [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]])  # fmt: skip
        kernel = ops.reshape(spread, (kh * dh, kw * dw, out, channels))[: (kh - 1) * dh + 1, : (kw - 1) * dw + 1]
        y = ops.conv_transpose(inputs, kernel, list(self.strides), self.padding, self.output_padding, "channels_last")
        if self.use_bias:
            y = ops.add(y, ops.reshape(self.bias, (1, 1, 1, -1)))
        return self.activation(y) if self.activation is not None else y


def _needs_explicit_window(layer: Any, shape: tuple, depthwise: bool) -> bool:
    """Whether TensorFlow needs the window by hand: a single-column stride (every conv) or unequal strides
    left after that (depthwise kernels only)."""
    strides = layer.single_window_plan(shape)[2]
    return strides != tuple(layer.strides) or (depthwise and strides[0] != strides[1])


BUILDERS = BuilderTable("keras")  # @BUILDERS.builds("conv2d"): builder(layer, site) -> a Keras layer


def from_spec(layer: Any, keras_class: Any = None, **extra: Any) -> layers.Layer:
    """A Keras layer made from the config the spec class writes (``LayerSpec.keras_config``): Keras's own class
    named by ``layer.keras_class``, or ``keras_class``; ``extra`` adds what is not the spec's (a seed)."""
    cls = keras_class if keras_class is not None else getattr(layers, layer.keras_class)
    return cls.from_config({**layer.keras_config(), **extra})


# Keras's own class, from the spec's config and nothing else
@BUILDERS.builds(
    "add", "concatenate", "global_avg_pool2d", "global_max_pool2d", "batch_norm", "flatten", "rescaling",
    "zero_padding2d", "dense", "activation", "max_pool2d", "avg_pool2d", "cropping2d", "relu", "leaky_relu", "elu",
    "softmax", "prelu", "up_sampling2d", "reshape", "multiply", "subtract", "average", "maximum", "minimum",
    "layer_normalization", "normalization",
)  # fmt: skip
def _keras_own(layer: Any, site: Site) -> layers.Layer:
    return from_spec(layer)


# cnnspec's Keras classes for what Keras has none of
@BUILDERS.builds("min_pool2d", "sum_pool2d")
def _cnnspec_pool(layer: Any, site: Site) -> layers.Layer:
    return from_spec(layer, {"min_pool2d": MinPooling2D, "sum_pool2d": SumPooling2D}[layer.type])


@BUILDERS.builds("dropout", "spatial_dropout2d")
def _dropout(layer: Any, site: Site) -> layers.Layer:
    return from_spec(layer, seed=site.seed)


@keras.saving.register_keras_serializable(package="cnnspec", name="LayerScale")
class LayerScale(_ConvNeXtLayerScale):
    """Keras's own ConvNeXt LayerScale (``x * gamma``), registered: Keras leaves it unregistered, so neither a
    model of cnnspec's nor Keras's own ConvNeXt would load from a file without it."""


# Keras classes a Keras file may hold that Keras itself cannot find when loading it (the importer passes these)
CUSTOM_OBJECTS = {"LayerScale": LayerScale}


@BUILDERS.builds("scale")
def _scale(layer: spec_layers.Scale, site: Site) -> layers.Layer:
    return LayerScale(layer.init_values, site.input_shape[-1], name=layer.name)


# the convolutions: Keras's class, or for the geometries TensorFlow mishandles the same layer computed by hand
@BUILDERS.builds("conv2d")
def _conv(layer: spec_layers.Conv2D, site: Site) -> layers.Layer:
    explicit = _needs_explicit_window(layer, site.input_shape, depthwise=False)
    return from_spec(layer, SingleWindowConv2D if explicit else None)


@BUILDERS.builds("conv2d_transpose")
def _conv_transpose(layer: spec_layers.Conv2DTranspose, site: Site) -> layers.Layer:
    return from_spec(layer, DilatedKernelConv2DTranspose if max(layer.dilation_rate) > 1 else None)


@BUILDERS.builds("depthwise_conv2d")
def _depthwise_conv(layer: spec_layers.DepthwiseConv2D, site: Site) -> layers.Layer:
    explicit = _needs_explicit_window(layer, site.input_shape, depthwise=True)
    return from_spec(layer, ExplicitWindowDepthwiseConv2D if explicit else None)


@BUILDERS.builds("separable_conv2d")
def _separable_conv(layer: spec_layers.SeparableConv2D, site: Site) -> layers.Layer:
    explicit = _needs_explicit_window(layer, site.input_shape, depthwise=True)
    return from_spec(layer, ExplicitWindowSeparableConv2D if explicit else None)


__all__ = [
    "BUILDERS",
    "CUSTOM_OBJECTS",
    "DilatedKernelConv2DTranspose",
    "ExplicitWindowDepthwiseConv2D",
    "ExplicitWindowSeparableConv2D",
    "LayerScale",
    "MinPooling2D",
    "SingleWindowConv2D",
    "SumPooling2D",
    "from_spec",
]
