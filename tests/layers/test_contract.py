"""Every registered layer type meets its contract in full; the parts that need no framework.

A type is its spec class, one builder per backend and its cases (tests/layers/cases.py). A type missing
any part fails here by its name. Without any framework: each case loads, dumps and loads back the same
(YAML and JSON), validates against the JSON Schema, and its Keras config reads back into the same layer.
tests/layers/test_harness.py runs every case through the frameworks.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

import cnnspec
from cnnspec.errors import SpecError
from cnnspec.layers import LayerSpec
from cnnspec.load import parse_text
from cnnspec.registry import LAYER_ALIASES, LAYER_CLASSES
from tests.layers.harness import LAYER_CASES, case_index, case_params, case_spec, layer_documents, type_params

BACKENDS = ["torch_backend", "keras_backend", "onnx_backend"]


@pytest.mark.parametrize("kind", type_params())
def test_the_type_has_cases(kind):
    assert LAYER_CASES.get(kind), f"add cases for {kind!r} to tests/layers/cases.py"
    for layer, shape in LAYER_CASES[kind]:
        spec = case_spec(layer, shape)  # each case is a valid spec, with the layer on the input it names
        assert type(spec.layers[case_index(shape)]) is LAYER_CLASSES[kind]
        assert spec.summary().layers[case_index(shape)].input_shape == shape


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", type_params())
def test_the_type_has_a_builder_in_every_backend(kind, backend):
    module = pytest.importorskip(f"cnnspec.backends.{backend}")
    assert kind not in module.BUILDERS.missing_types(), f"the {backend} has no builder for {kind!r}"


@pytest.mark.parametrize("kind", type_params())
def test_the_class_carries_its_backend_neutral_facts(kind):
    cls = LAYER_CLASSES[kind]
    assert issubclass(cls, LayerSpec) and cls.model_fields["type"].default == kind
    assert isinstance(cls.keras_class, str) and cls.keras_class and LAYER_ALIASES[cls.keras_class] == kind
    assert cls.__doc__, f"{cls.__name__} needs a docstring: the layer reference is made from it"
    assert getattr(cnnspec, cls.__name__) is cls and cls.__name__ in cnnspec.__all__
    assert f'"{kind}"' in json.dumps(cnnspec.ModelSpec.model_json_schema())


@pytest.mark.parametrize("kind,layer,shape", case_params())
def test_a_case_dumps_and_loads_back_and_meets_the_json_schema(kind, layer, shape):
    spec = case_spec(layer, shape)
    for form in ("yaml", "json"):
        assert cnnspec.load_spec(parse_text(cnnspec.dump_spec(spec, form), form)) == spec
    jsonschema.validate(spec.to_dict(), cnnspec.ModelSpec.model_json_schema())


@pytest.mark.parametrize("kind,layer,shape", case_params())
def test_the_keras_config_reads_back_into_the_same_layer(kind, layer, shape):
    """keras_config() and from_keras() are inverse on every case (no Keras involved: the config as written);
    tests/layers/test_harness.py does it through real Keras files."""
    built = case_spec(layer, shape).layers[case_index(shape)]
    cls = type(built)
    read = cls.from_keras(cls.keras_class, built.keras_config())
    assert cls(name=built.name, inputs=built.inputs, **{k: v for k, v in read.items() if k != "type"}) == built


@pytest.mark.parametrize("kind", type_params())
def test_a_random_layer_of_the_type_is_valid_or_a_spec_error_naming_it(kind):
    """The type's fuzzing strategy (made from its cases): anything it draws is a valid spec or a SpecError
    naming that layer, never another exception."""

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(drawn=layer_documents(kind))
    def check(drawn):
        layer, shape = drawn
        try:
            case_spec(layer, shape)
        except SpecError as err:
            assert err.issues and str(err)

    check()
