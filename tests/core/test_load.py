"""Reading YAML and JSON, reporting syntax errors by line, and the canonical round trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

import cnnspec
from cnnspec import SpecError, dump_spec, load_spec
from cnnspec.load import parse_text
from tests.strategies import valid_spec_dicts


def test_yaml_and_json_files_load_the_same(tmp_path, example_spec_path):
    spec = load_spec(example_spec_path)
    as_json = tmp_path / "model.json"
    as_json.write_text(dump_spec(spec, "json"))
    assert load_spec(as_json) == spec


def test_canonical_round_trip_for_every_example(example_spec_path, tmp_path):
    spec = load_spec(example_spec_path)
    text = dump_spec(spec)
    again = tmp_path / "again.yaml"
    again.write_text(text)
    assert load_spec(again) == spec
    assert dump_spec(load_spec(again)) == text  # the canonical form is a fixed point


@given(valid_spec_dicts())
def test_round_trip_of_random_specs(doc):
    spec = load_spec(doc)
    assert load_spec(json.loads(dump_spec(spec, "json"))) == spec
    assert load_spec(parse_text(dump_spec(spec), "yaml")) == spec


def test_file_stem_names_the_model_unless_the_spec_does(tmp_path):
    path = tmp_path / "my_net.yaml"
    path.write_text("input_shape: [4, 4, 1]\nlayers: [{type: flatten}, {type: dense, units: 2}]\n")
    assert load_spec(path).name == "my_net"


def test_yaml_syntax_error_reports_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("input_shape: [4, 4, 1]\nlayers:\n  - {type: flatten\n  - {type: dense}\n")
    with pytest.raises(SpecError, match=r"bad.yaml: line \d+, column \d+: invalid YAML"):
        load_spec(path)


def test_json_syntax_error_reports_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "input_shape": [4, 4, 1],\n  "layers": [,]\n}\n')
    with pytest.raises(SpecError, match=r"line 3, column 14: invalid JSON"):
        load_spec(path)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "got an empty file"),
        (b"- 1\n- 2\n", "got list"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text|binary data"),
        (b"input_shape: [4, 4, 1]\nlayers: [\xff]\n", "line 2: not UTF-8"),
        (b"!!python/object/apply:os.system ['echo pwned']\n", "invalid YAML"),  # safe_load refuses objects
    ],
)
def test_files_that_are_not_specs_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_canonical_dump_uses_canonical_type_names():
    spec = load_spec({"input_shape": [4, 4, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]})
    assert [layer["type"] for layer in spec.to_dict()["layers"]] == ["flatten", "dense"]


def test_schema_lists_every_layer_type():
    schema = json.dumps(cnnspec.ModelSpec.model_json_schema())
    for type_name in cnnspec.spec.LAYER_TYPES:
        assert f'"{type_name}"' in schema
