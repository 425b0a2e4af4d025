"""The layer registry is complete: every registered type has what each part of cnnspec needs.

A new layer class that lacks a builder in some backend, a torch weight mapping for
one of its variables, or test cases (Keras shapes and three-backend parity) fails
here by name, instead of failing later, or silently, for a user.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cnnspec
from cnnspec.layers import LayerSpec
from cnnspec.registry import LAYER_ALIASES, LAYER_CLASSES, OPTIMIZER_CLASSES, Site
from tests.layer_cases import LAYER_CASES, case_index, case_spec

REGISTERED = sorted(LAYER_CLASSES.items())
BACKEND_MODULES = ["torch_backend", "keras_backend", "onnx_backend"]


@pytest.mark.parametrize("type_name,cls", REGISTERED)
def test_every_registered_type_has_test_cases(type_name, cls):
    assert LAYER_CASES.get(type_name), f"add cases for {type_name!r} to tests/layer_cases.py"
    for layer, shape in LAYER_CASES[type_name]:
        spec = case_spec(layer, shape)  # each case is a valid spec, with the layer on the input it names
        assert type(spec.layers[case_index(shape)]) is cls
        assert spec.summary().layers[case_index(shape)].input_shape == shape


@pytest.mark.parametrize("backend", BACKEND_MODULES)
@pytest.mark.parametrize("type_name,cls", REGISTERED)
def test_every_registered_type_has_a_builder_in_every_backend(type_name, cls, backend):
    module = pytest.importorskip(f"cnnspec.backends.{backend}")
    assert cls in module.BUILDERS, f"{backend} has no builder for {cls.__name__}"


@pytest.mark.parametrize("type_name,cls", REGISTERED)
def test_torch_builder_maps_every_canonical_variable(type_name, cls):
    tb = pytest.importorskip("cnnspec.backends.torch_backend")
    for layer_doc, shape in LAYER_CASES[type_name]:
        layer = cls(**layer_doc)
        built = tb.BUILDERS[cls](layer, Site(0, (shape,)))
        variables = layer.variables(shape)
        assert set(built.params) >= set(variables), (
            f"{cls.__name__}: no torch tensor for {set(variables) - set(built.params)}"
        )
        for variable, size in variables.items():
            param = built.params[variable]
            tensor = getattr(built.modules[param.module], param.attr)
            assert tuple(param.to_keras(tensor.detach().numpy()).shape) == size, (cls.__name__, variable)


@pytest.mark.parametrize("type_name,cls", REGISTERED)
def test_a_registered_class_carries_its_backend_neutral_facts(type_name, cls):
    assert issubclass(cls, LayerSpec) and cls.model_fields["type"].default == type_name
    assert isinstance(cls.keras_class, str) and cls.keras_class
    assert LAYER_ALIASES[cls.keras_class] == type_name
    assert getattr(cnnspec, cls.__name__) is cls  # public export, derived from the registry
    assert cls.__name__ in cnnspec.__all__
    assert f'"{type_name}"' in json.dumps(cnnspec.ModelSpec.model_json_schema())


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
    assert cnnspec.spec.OPTIMIZER_CLASSES is OPTIMIZER_CLASSES  # the spec's union is built from this table


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
