"""Reading a run directory back: ``load_run`` gives a typed ``Run``, old run.json files included."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

import cnnspec
from cnnspec.runs import Run, RunPaths, RunSettings, load_run, write_json
from cnnspec.weights import initial_weights

SPEC = {
    "name": "tiny_run",
    "input_shape": [8, 8, 1],
    "layers": [
        {"type": "conv2d", "filters": 2, "kernel_size": 3},
        {"type": "flatten"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ],
    "training": {"epochs": 7, "batch_size": 16, "seed": 3, "validation_split": 0.2},
}

# run.json as train writes it today
CURRENT = {
    "settings": {
        "backend": "keras",
        "data": "digits",
        "epochs": 2,
        "batch_size": 8,
        "learning_rate": 0.01,
        "seed": 5,
        "validation_split": 0.1,
        "precision": "bf16",
        "precision_reason": "asked for",
        "resize": True,
        "stream": False,
        "device": "gpu:0",
        "replicas": 2,
    },
    "spec_hash": "x",
    "cnnspec": "0.1.0",
    "python": "3.11",
    "started": "2026-11-20T10:00:00+0000",
    "class_names": [str(i) for i in range(10)],
}


def _run_dir(root, run_json):
    spec = cnnspec.load_spec(SPEC)
    paths = RunPaths(root)
    root.mkdir(parents=True)
    write_json(paths.spec, spec.to_dict())
    if run_json is not None:
        write_json(paths.run, run_json)
    cnnspec.save_weights(paths.weights, initial_weights(spec, 0), spec)
    return root


def test_load_run_gives_typed_settings_and_the_rest_of_the_run(tmp_path):
    run = load_run(_run_dir(tmp_path / "run", CURRENT))
    assert isinstance(run, Run) and isinstance(run.settings, RunSettings)
    assert run.settings == RunSettings(**CURRENT["settings"])
    assert run.settings.backend == "keras" and run.settings.resize is True
    assert run.spec == cnnspec.load_spec(SPEC)
    assert set(run.weights) == {"conv2d_0/kernel", "conv2d_0/bias", "dense_2/kernel", "dense_2/bias"}
    np.testing.assert_array_equal(run.weights["conv2d_0/kernel"], initial_weights(run.spec, 0)["conv2d_0/kernel"])
    assert run.class_names == CURRENT["class_names"] and run.started == CURRENT["started"]
    assert run.paths.root == tmp_path / "run" == run.root
    assert "keras" in repr(run)
    from cnnspec import api

    assert cnnspec.load_run is api.load_run is load_run  # the old import paths still work


def test_an_old_run_json_loads_with_defaults(tmp_path):
    """Runs from before precision_reason/stream, and hand-made ones with only backend and data."""
    old = {
        "settings": {
            key: value
            for key, value in CURRENT["settings"].items()
            if key not in ("precision", "precision_reason", "resize", "stream")
        }
    }
    run = load_run(_run_dir(tmp_path / "old", old))
    assert (run.settings.precision, run.settings.precision_reason, run.settings.resize, run.settings.stream) == (
        "fp32",
        "",
        False,
        None,
    )
    assert run.settings.epochs == 2 and run.class_names is None and run.started is None

    bare = load_run(_run_dir(tmp_path / "bare", {"settings": {"backend": "torch", "data": "npz:x.npz"}}))
    assert (bare.settings.backend, bare.settings.data) == ("torch", "npz:x.npz")
    # what the run's spec asked for stands in for what run.json does not say
    assert (bare.settings.epochs, bare.settings.batch_size, bare.settings.seed) == (7, 16, 3)
    assert bare.settings.validation_split == 0.2 and bare.settings.learning_rate == 0.001


def test_a_run_without_run_json_or_settings_uses_torch_and_digits(tmp_path):
    for name, run_json in (("none", None), ("empty", {}), ("no_settings", {"started": "then"})):
        s = load_run(_run_dir(tmp_path / name, run_json)).settings
        assert (s.backend, s.data, s.precision, s.resize) == ("torch", "digits", "fp32", False)


def test_settings_from_json_ignores_unknown_fields_and_round_trips():
    settings = RunSettings.from_json({**CURRENT["settings"], "from_a_newer_cnnspec": 1})
    assert settings.to_json() == CURRENT["settings"] == asdict(settings)
    assert RunSettings.from_json(settings.to_json()) == settings
    assert RunSettings.from_json({}).backend == "torch"  # spec defaults when no training section is given


def test_load_run_errors_are_clear(tmp_path):
    with pytest.raises(cnnspec.RunError, match="no such run directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(cnnspec.RunError, match="no spec.json"):
        load_run(tmp_path / "empty")
    root = _run_dir(tmp_path / "no_weights", CURRENT)
    (root / "weights.safetensors").unlink()
    with pytest.raises(cnnspec.RunError, match="no epoch has finished"):
        load_run(root)
    for name, bad in (("list", [1, 2]), ("settings_list", {"settings": [1]})):
        with pytest.raises(cnnspec.RunError, match="run.json"):
            load_run(_run_dir(tmp_path / name, bad))


def test_run_dataset_is_the_test_data_fitted_to_the_spec(tmp_path):
    run = load_run(_run_dir(tmp_path / "run", {"settings": {"backend": "torch", "data": "digits"}}))
    dataset = run.dataset()
    assert dataset.x_test.shape == (360, 8, 8, 1) and dataset.source.startswith("digits")
    assert run.dataset("digits", resize=True).x_test.shape == (360, 8, 8, 1)
