"""Fuzzing the spec language: random documents, random valid specs, mutated valid specs.

The validator only ever answers valid (exit 0) or SpecError (exit 1) naming a
layer or field; never another exception. `HYPOTHESIS_PROFILE=long` runs more.
"""

from __future__ import annotations

import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cnnspec
from cnnspec.cli import app
from tests.strategies import JUNK, mutated_spec_dicts, valid_spec_dicts

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
MANY = 20_000 if LONG else 1_500

documents = st.recursive(
    JUNK,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["input_shape", "layers", "training", "name", "type", "units", "x"]),
                        inner, max_size=4),  # fmt: skip
    ),
    max_leaves=12,
)


def _only_spec_errors(doc):
    try:
        cnnspec.load_spec(doc)
    except cnnspec.SpecError as err:
        assert err.issues and all(str(issue) for issue in err.issues)
        for issue in err.issues:
            json.dumps(issue.to_dict())  # the --json output can always be written


@settings(max_examples=MANY)
@given(st.dictionaries(st.sampled_from(["input_shape", "layers", "training", "name", "bogus"]), documents, max_size=4))
def test_random_documents_raise_only_spec_errors(doc):
    _only_spec_errors(doc)


@settings(max_examples=MANY)
@given(mutated_spec_dicts())
def test_mutated_specs_raise_only_spec_errors_naming_a_layer_or_field(doc):
    try:
        cnnspec.load_spec(doc)
    except cnnspec.SpecError as err:
        assert all(issue.layer is not None or issue.field for issue in err.issues), err


@settings(max_examples=MANY // 3)
@given(valid_spec_dicts(max_layers=8, max_size=40))
def test_valid_specs_always_validate(doc):
    spec = cnnspec.load_spec(doc)
    assert spec.summary().total_params >= 0


runner = CliRunner()


@settings(max_examples=200 if not LONG else 3000, deadline=None)
@given(st.one_of(mutated_spec_dicts(), valid_spec_dicts(), documents))
def test_validate_command_exits_only_0_or_1(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("fuzz") / "spec.json"
    path.write_text(json.dumps(doc, default=str))
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert json.loads(result.stdout)["valid"] is (result.exit_code == 0)


def test_resource_limits_refuse_impossible_specs_with_an_estimate():
    import pytest

    doc = {"input_shape": [28, 28, 1], "layers": [{"type": "conv2d", "filters": 1_000_000_000, "kernel_size": 3},
                                                  {"type": "flatten"}, {"type": "dense", "units": 10}]}  # fmt: skip
    with pytest.raises(cnnspec.SpecError) as info:
        cnnspec.load_spec(doc)
    issue = info.value.issues[0]
    assert (issue.layer, issue.rule) == (0, "resource_limit")
    assert "TB" in issue.message and "CNNSPEC_MAX_MEMORY" in issue.message


def test_resource_limit_is_configurable(monkeypatch):
    import pytest

    spec_doc = json.loads(cnnspec.dump_spec(cnnspec.load_spec("specs/mnist_mlp.yaml"), "json"))
    monkeypatch.setenv("CNNSPEC_MAX_MEMORY", "1MB")  # mnist_mlp's 669,706 params alone need ~10 MB to train
    with pytest.raises(cnnspec.SpecError, match="more than the 1.00 MB limit"):
        cnnspec.load_spec(spec_doc)
    monkeypatch.setenv("CNNSPEC_MAX_MEMORY", "not a size")
    with pytest.raises(cnnspec.SpecError, match="CNNSPEC_MAX_MEMORY"):
        cnnspec.load_spec(spec_doc)
