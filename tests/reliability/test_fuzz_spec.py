"""Fuzzing the spec language: random documents, random valid specs, mutated valid specs.

The validator only ever answers valid (exit 0) or SpecError (exit 1) naming a
layer or field; never another exception. `HYPOTHESIS_PROFILE=long` runs more.
"""

from __future__ import annotations

import json
import os

from hypothesis import given, settings, strategies as st
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
        st.dictionaries(
            st.sampled_from(["input_shape", "layers", "training", "name", "type", "units", "x"]), inner, max_size=4
        ),
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

    doc = {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "conv2d", "filters": 1_000_000_000, "kernel_size": 3},
            {"type": "flatten"},
            {"type": "dense", "units": 10},
        ],
    }
    spec = cnnspec.load_spec(doc)  # loading is not training: the spec itself is valid
    with pytest.raises(cnnspec.SpecError) as info:
        cnnspec.check_resources(spec)
    issue = info.value.issues[0]
    assert (issue.layer, issue.rule) == (0, "resource_limit")
    assert "TB" in issue.message and "CNNSPEC_MAX_MEMORY" in issue.message


def test_resource_limit_is_configurable_and_scales_with_the_batch(monkeypatch):
    import pytest

    spec = cnnspec.load_spec("specs/mnist_mlp.yaml")
    monkeypatch.setenv("CNNSPEC_MAX_MEMORY", "1MB")  # mnist_mlp's 669,706 params alone need ~10 MB to train
    with pytest.raises(cnnspec.SpecError, match="more than the 1.00 MB limit"):
        cnnspec.check_resources(spec)
    monkeypatch.setenv("CNNSPEC_MAX_MEMORY", "20MB")
    cnnspec.check_resources(spec, batch_size=1)
    with pytest.raises(cnnspec.SpecError, match="a batch of 100000 activations"):
        cnnspec.check_resources(spec, batch_size=100_000)
    monkeypatch.setenv("CNNSPEC_MAX_MEMORY", "not a size")
    with pytest.raises(cnnspec.SpecError, match="CNNSPEC_MAX_MEMORY"):
        cnnspec.check_resources(spec)


def test_validate_and_train_check_the_training_memory_but_loading_does_not(tmp_path):
    from tests.cli.helpers import cnnspec as run_cli

    env = {"CNNSPEC_MAX_MEMORY": "1MB"}
    result = run_cli("validate", "specs/mnist_mlp.yaml", "--json", env=env)
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"][0]["rule"] == "resource_limit"
    result = run_cli("train", "specs/mnist_mlp.yaml", "--out", tmp_path / "run", env=env)
    assert result.returncode == 1 and "more than the 1.00 MB limit" in result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written
    assert run_cli("summary", "specs/mnist_mlp.yaml", env=env).returncode == 0
