"""`cnnspec validate`, `summary`, `schema` and `--help`: output, exit codes, no heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli.helpers import ROOT, assert_clean_failure, cnnspec

HEAVY = ("torch", "tensorflow", "keras", "onnx", "onnxruntime")


def test_validate_valid_spec_exits_0():
    result = cnnspec("validate", "specs/mnist_cnn.yaml")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "220,234 params" in result.stdout


def test_validate_json_matches_the_contract():
    result = cnnspec("validate", "specs/mnist_cnn.yaml", "--json")
    data = json.loads(result.stdout)
    assert data["valid"] is True
    assert (data["input_shape"], data["output_shape"]) == ([28, 28, 1], [10])
    assert data["layers"][0] == {
        "index": 0,
        "name": "conv2d_0",
        "type": "conv2d",
        "output_shape": [28, 28, 32],
        "params": 320,
        "trainable_params": 320,
    }
    assert (data["total_params"], data["trainable_params"], data["non_trainable_params"]) == (220234, 220234, 0)


def test_validate_invalid_spec_exits_1_with_every_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "input_shape: [8, 8, 1]\nlayers:\n  - {type: conv2d, filters: 0, kernel_size: 3}\n  - {type: dense}\n"
    )
    result = cnnspec("validate", bad)
    assert_clean_failure(result)
    assert "layer 0 'conv2d_0' (filters)" in result.stderr
    assert "layer 1 'dense_1' (units)" in result.stderr

    result = cnnspec("validate", bad, "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["valid"] is False
    assert [(e["layer"], e["name"], e["field"]) for e in data["errors"]] == [
        (0, "conv2d_0", "filters"),
        (1, "dense_1", "units"),
    ]


def test_shape_error_names_layer_and_sizes(tmp_path):
    bad = tmp_path / "small.yaml"
    bad.write_text(
        "input_shape: [2, 2, 1]\nlayers: [{type: conv2d, filters: 1, kernel_size: 3}, {type: flatten},"
        " {type: dense, units: 2}]\n"
    )
    result = cnnspec("validate", bad)
    assert_clean_failure(result)
    assert "layer 0 'conv2d_0' (kernel_size): kernel 3x3 is larger than its 2x2 input (padding=valid)" in result.stderr


@pytest.mark.parametrize(
    "args,code",
    [
        (["validate", "missing.yaml"], 1),
        (["validate"], 2),
        (["nonsense"], 2),
        (["validate", "specs/mnist_cnn.yaml", "--bogus"], 2),
    ],
)
def test_exit_codes_for_bad_input_and_usage(args, code):
    assert_clean_failure(cnnspec(*args), code)


def test_summary_prints_the_table():
    result = cnnspec("summary", "specs/digits_cnn.yaml")
    assert result.returncode == 0
    assert "Total params: 43,050" in result.stdout


def test_schema_is_json_schema():
    schema = json.loads(cnnspec("schema").stdout)
    assert schema["title"] == "ModelSpec" and "layers" in schema["properties"]


@pytest.mark.parametrize(
    "args", [["validate", "specs/mnist_cnn.yaml"], ["--help"], ["summary", "specs/every_layer.yaml"]]
)
def test_light_commands_import_no_framework(args):
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['cnnspec', *{args!r}]\n"
        "try:\n    runpy.run_module('cnnspec', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print('HEAVY:', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY: []" in result.stdout, result.stdout + result.stderr


def test_spec_classes_are_defined_with_evaluated_annotations():
    """Start-up: under ``from __future__ import annotations`` pydantic compiles and evaluates every field's
    annotation string when the class is made, about a thousand of them for the spec language, on every
    `cnnspec validate`. The modules that define spec classes keep annotations as objects."""
    import cnnspec.spec  # every spec class, registered

    spec_modules = {
        cls.__module__
        for cls in _subclasses(cnnspec.spec.SpecModel)
        if cls.__module__.startswith("cnnspec.") and not cls.__module__.startswith("cnnspec.backends")
    }
    deferred = sorted(name for name in spec_modules if sys.modules[name].__dict__.get("annotations") is not None
                      and getattr(sys.modules[name].annotations, "compiler_flag", None))  # fmt: skip
    assert len(spec_modules) >= 10 and deferred == []


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)
