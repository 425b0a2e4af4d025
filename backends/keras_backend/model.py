"""spec -> ``keras.Model`` (TensorFlow backend), and canonical weights in and out.

Keras layout *is* the canonical layout, so weights move by variable name
(``layer.kernel``, ``layer.moving_variance`` ...) with no transposes.
"""

from __future__ import annotations

import keras
import numpy as np

from cnnspec.layers import LayerSpec
from cnnspec.registry import Site
from cnnspec.shapes import INPUT
from cnnspec.spec import ModelSpec
from cnnspec.weights import Weights, check_weights, expected_weights

from .layers import BUILDERS

POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}


def compile_model(spec: ModelSpec, seed: int = 0, precision: str = "fp32", replicas: int = 1) -> keras.Model:
    """The spec as a functional Keras model with the spec's layer names.

    bf16: Keras's ``mixed_bfloat16`` policy (float32 variables), except the last
    layer, which stays float32 so the output and the loss are float32.
    ``replicas`` > 1 (call it under the strategy's scope): batch normalization takes its
    batch statistics over the global batch, all replicas together, so N replicas compute
    what one device computes (Keras's ``synchronized``; not set for one device, where it
    would only trade ``tf.nn.moments`` for the less exact E[x^2] - E[x]^2).
    """
    report = spec.summary()
    previous = keras.config.dtype_policy()
    try:
        inputs = keras.Input(shape=tuple(spec.input_shape))
        tensors = {INPUT: inputs}  # each layer's output by name: later layers read them (``inputs``)
        last = len(spec.layers) - 1
        for index, (layer, info) in enumerate(zip(spec.layers, report.layers)):
            keras.config.set_dtype_policy(POLICIES[precision] if index < last else "float32")
            ins = [tensors[source] for source in info.inputs]
            built = BUILDERS[type(layer)](layer, Site(index, info.input_shapes, seed=seed * 1000 + index))
            if replicas > 1 and isinstance(built, keras.layers.BatchNormalization):
                built.synchronized = True  # read when called; the layer is not built yet
            tensors[layer.name] = x = built(ins if layer.merges else ins[0])
    finally:
        keras.config.set_dtype_policy(previous)
    model = keras.Model(inputs, x, name=spec.name)
    model._cnnspec_spec = spec
    return regularize(model)


def regularize(model: keras.Model) -> keras.Model:
    """Give each regularized canonical variable Keras's ``L1L2``, as the layer's own argument would.

    Keras 3 collects ``variable.regularizer(variable)`` over the trainable variables into
    ``model.losses`` (``Layer._get_regularization_losses``), which ``fit`` and ``evaluate`` add to
    every batch's loss. The layer's argument (``kernel_regularizer``, ``bias_regularizer``,
    ``depthwise_regularizer``, ``pointwise_regularizer``: the variable's name without ``_kernel``)
    is set too, so ``get_config`` and a saved model carry it.
    """
    for layer in model._cnnspec_spec.layers:
        for name, rule in layer.regularizers().items():
            regularizer = keras.regularizers.L1L2(l1=rule.l1, l2=rule.l2)
            _variable(model, f"{layer.name}/{name}").regularizer = regularizer
            setattr(model.get_layer(layer.name), f"{name.removesuffix('_kernel')}_regularizer", regularizer)
    return model


def _variable(model: keras.Model, key: str):
    """The Keras variable holding canonical ``key`` ("<layer>/<variable>"); most are attributes of that name."""
    layer_name, variable = key.rsplit("/", 1)
    layer = model.get_layer(layer_name)
    return getattr(layer, _spec_layer(model, layer_name).keras_attributes.get(variable, variable))


def _spec_layer(model: keras.Model, name: str) -> LayerSpec:
    return next(layer for layer in model._cnnspec_spec.layers if layer.name == name)


def get_weights(model: keras.Model) -> Weights:
    spec = model._cnnspec_spec  # set by build()
    return {key: np.asarray(_variable(model, key).numpy(), dtype=np.float32) for key in expected_weights(spec)}


def set_weights(model: keras.Model, weights: Weights) -> keras.Model:
    spec = model._cnnspec_spec
    for key, value in check_weights(spec, weights).items():
        variable = _variable(model, key)
        variable.assign(value.astype(variable.dtype))  # Keras counts some things in integers (Normalization's)
    for layer in spec.layers:  # Keras's Normalization reads its mean and variance from its variables only here
        if isinstance(model.get_layer(layer.name), keras.layers.Normalization) and layer.variables((1,)):
            model.get_layer(layer.name).finalize_state()
    return model
