"""The registries (cnnspec/registry.py): layer and optimizer types, and each backend's builder table.

That every registered layer type is complete (cases, builders, its whole contract through every
framework) is tests/layers/'s job.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import cnnspec
from cnnspec.layers import LayerSpec
from cnnspec.registry import LAYER_CLASSES, OPTIMIZER_CLASSES

NEW_TYPE = """
from typing import Literal
from cnnspec.layers import LayerSpec
from cnnspec.registry import register_layer

@register_layer
class Doubling(LayerSpec):
    keras_class = "TestDoubling"
    type: Literal["test_doubling"] = "test_doubling"

    def output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * input_shape[-1])

    def variables(self, input_shape):
        return {"kernel": (input_shape[-1], 2 * input_shape[-1])}

import cnnspec
spec = cnnspec.load_spec({"input_shape": [1, 1, 6],
                          "layers": [{"type": "flatten"}, {"type": "TestDoubling"}, {"type": "dense", "units": 2}]})
print(spec.layers[1].name, [(li.output_shape, li.params) for li in spec.summary().layers[1:]],
      sorted(cnnspec.initial_weights(spec)))
"""


def test_a_new_layer_type_is_one_class_away():
    """A registered class (registered before the spec module is imported, as cnnspec.layers does) is
    loadable by type name and Keras name, and the summary and the weights use its rules."""
    out = subprocess.run([sys.executable, "-c", NEW_TYPE], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (
        "test_doubling_1 [((12,), 72), ((2,), 26)] ['dense_2/bias', 'dense_2/kernel', 'test_doubling_1/kernel']"
    )


def test_optimizers_are_registered_too():
    assert {"adam", "adamw", "sgd", "rmsprop"} <= set(OPTIMIZER_CLASSES)
    assert cnnspec.training.OPTIMIZER_CLASSES is OPTIMIZER_CLASSES  # the spec's union is built from this table


def test_registering_after_the_spec_is_built_is_an_error_not_silence():
    from typing import Literal

    from cnnspec.registry import register_layer

    with pytest.raises(RuntimeError, match="registered after cnnspec.spec built"):

        @register_layer
        class Late(LayerSpec):
            keras_class = "Late"
            type: Literal["late"] = "late"

    assert "late" not in LAYER_CLASSES


def test_a_second_builder_for_a_type_is_an_error_and_a_missing_one_names_the_type():
    from cnnspec.registry import BuilderTable

    table = BuilderTable("test")

    @table.builds("dense")
    def first(layer, site):
        return "first"

    with pytest.raises(ValueError, match="the test backend builds 'dense' twice: first and second"):

        @table.builds("dense")
        def second(layer, site):
            return "second"

    with pytest.raises(ValueError, match="'densy' is not a registered layer type"):
        table.builds("densy")(first)
    with pytest.raises(NotImplementedError, match="the test backend has no builder for layer type 'flatten'"):
        table[LAYER_CLASSES["flatten"]]
    assert "flatten" in table.missing_types() and "dense" not in table.missing_types()
