"""Files made by earlier versions still load: spec digests and a run directory saved before the layer registry.

``tests/fixtures/run_v0_1`` is a one-epoch digits_cnn run written by cnnspec at
commit ac9435b (before layer types became registered classes and layers gained
optional fields). The digests below were computed there too.
"""

from __future__ import annotations

import json
import shutil

import pytest

import cnnspec
from cnnspec.weights import spec_hash
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "run_v0_1"
DIGESTS_AT_AC9435B = {
    "digits_cnn": "76cc92eb95755b37",
    "every_layer": "35a62be5268fa12d",
    "mnist_cnn": "2202676cd15f9e64",
    "mnist_deep": "fb376ca383067987",
    "mnist_dropout": "389c7faeceb8f45e",
    "mnist_mlp": "e7a39893c686b87c",
}


@pytest.mark.parametrize("name", sorted(DIGESTS_AT_AC9435B))
def test_spec_digests_are_unchanged(name):
    assert spec_hash(cnnspec.load_spec(ROOT / "specs" / f"{name}.yaml")) == DIGESTS_AT_AC9435B[name]


def test_a_run_directory_from_before_loads_and_evaluates_as_it_did(tmp_path):
    pytest.importorskip("torch")
    run_dir = shutil.copytree(FIXTURE, tmp_path / "run")
    run = cnnspec.load_run(run_dir)
    assert run.settings.backend == "torch" and run.spec.name == "digits_cnn"
    recorded = json.loads((FIXTURE / "metrics.json").read_text())
    metrics = cnnspec.evaluate(run_dir)
    assert metrics["n"] == recorded["n"]
    assert metrics["accuracy"] == pytest.approx(recorded["accuracy"], abs=1.5 / recorded["n"])


def test_a_run_directory_from_before_exports(tmp_path):
    pytest.importorskip("onnxruntime")
    run_dir = shutil.copytree(FIXTURE, tmp_path / "run")
    report = cnnspec.export_onnx(run_dir, tmp_path / "model.onnx")
    assert report.max_abs_diff <= report.tolerance
