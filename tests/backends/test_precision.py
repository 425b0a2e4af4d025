"""bf16 mixed precision: float32 master weights and outputs, canonical float32 weights on disk, accuracy kept."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest

import cnnspec
from cnnspec import hardware
from cnnspec.hardware import CpuInfo, PrecisionWarning, choose_precision
from cnnspec.weights import load_weights, random_weights
from tests.backends.test_torch_training import TINY
from tests.cli.helpers import cnnspec as run_cli

tb = pytest.importorskip("cnnspec.backends.torch_backend")


def test_conv_specs_run_channels_last_and_mlps_do_not():
    import torch

    assert tb.build(cnnspec.load_spec("specs/mnist_cnn.yaml")).memory_format == torch.channels_last
    assert tb.build(cnnspec.load_spec("specs/mnist_mlp.yaml")).memory_format == torch.contiguous_format


@pytest.mark.parametrize("name", ["every_layer", "mnist_deep", "digits_cnn"])
def test_channels_last_memory_gives_the_same_outputs_as_contiguous(name):
    import torch

    spec = cnnspec.load_spec(f"specs/{name}.yaml")
    fast = tb.build(spec, random_weights(spec, 2))
    plain = copy.deepcopy(fast).use_memory_format(torch.contiguous_format)
    assert fast.blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    x = np.random.default_rng(0).normal(size=(4, *spec.input_shape)).astype(np.float32)
    xt = tb.model.to_nchw(x).contiguous()
    with torch.no_grad():
        for got, want in zip(fast.layer_outputs(xt), plain.layer_outputs(xt)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["every_layer", "mnist_deep"])
def test_channels_last_training_steps_match_contiguous(name):
    """Gradients, optimizer slots and batch-norm statistics too: five Adam steps end at the same weights.

    Dropout is switched off: its random mask is drawn in memory order, so the two layouts draw different masks.
    """
    import torch

    document = cnnspec.load_spec(f"specs/{name}.yaml").to_dict()
    for layer in document["layers"]:
        if layer["type"] == "dropout":
            layer["rate"] = 0.0
    spec = cnnspec.load_spec(document)
    fast = tb.build(spec, random_weights(spec, 3))
    plain = copy.deepcopy(fast).use_memory_format(torch.contiguous_format)
    rng = np.random.default_rng(1)
    x = rng.random((16, *spec.input_shape), dtype=np.float32)
    y = rng.integers(0, spec.num_classes, 16)
    for model in (fast, plain):
        trainer = tb.Trainer(model, spec.training)
        data = trainer.prepare(x, y)
        for _ in range(5):
            trainer.train_step(*data)
    got, want = tb.get_weights(fast), tb.get_weights(plain)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, err_msg=key)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_bf16_runs_store_float32_weights_that_every_backend_loads(tmp_path, backend):
    pytest.importorskip(f"cnnspec.backends.{backend}_backend")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)  # emulated bf16 is slow, not wrong
        result = cnnspec.train(TINY, backend, out=tmp_path / "run", epochs=2, precision="bf16", verbose=False)
    spec = cnnspec.load_spec(TINY)
    weights = load_weights(tmp_path / "run" / "weights.safetensors", spec)
    assert all(value.dtype == np.float32 and np.isfinite(value).all() for value in weights.values())
    assert all(np.isfinite(result.history["loss"]))
    for other in ("torch", "keras"):
        assert 0 <= cnnspec.evaluate(tmp_path / "run", backend=other)["accuracy"] <= 1
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_keras_bf16_keeps_the_output_layer_in_float32():
    kb = pytest.importorskip("cnnspec.backends.keras_backend")
    spec = cnnspec.load_spec("specs/digits_cnn.yaml")
    model = kb.build(spec, precision="bf16")
    assert model.get_layer("conv2d_0").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("dense_7").dtype_policy.name == "float32"
    assert kb.predict(model, np.zeros((2, 8, 8, 1), np.float32)).dtype == np.float32


# -- choosing the precision ------------------------------------------------------------------
AVX2 = CpuInfo("AMD EPYC (AVX2 only)", frozenset({"avx2", "fma"}), "x86_64")
ZEN5 = CpuInfo("AMD Zen 5", frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}), "x86_64")
SAPPHIRE_RAPIDS = CpuInfo("Intel Xeon", frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}), "x86_64")
GRAVITON3 = CpuInfo("Neoverse-V1", frozenset({"asimd", "bf16", "sve"}), "aarch64")


@pytest.mark.parametrize(
    ("cpu", "backend", "onednn", "expected"),
    [
        (AVX2, "torch", None, "fp32"),
        (AVX2, "keras", None, "fp32"),
        (ZEN5, "torch", None, "fp32"),  # bf16 dot products alone measured no faster than fp32
        (SAPPHIRE_RAPIDS, "torch", None, "bf16"),  # AMX: measured faster on mnist_cnn (benchmarks/results.md)
        (SAPPHIRE_RAPIDS, "keras", None, "bf16"),
        (SAPPHIRE_RAPIDS, "keras", "0", "fp32"),  # TensorFlow without oneDNN emulates bf16
        (SAPPHIRE_RAPIDS, "torch", "0", "bf16"),  # ...but the flag is TensorFlow's alone
        (GRAVITON3, "torch", None, "fp32"),
    ],
)
def test_auto_picks_bf16_only_where_it_is_native_and_faster(monkeypatch, cpu, backend, onednn, expected):
    if onednn is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
    choice = choose_precision("auto", backend, cpu=cpu)
    assert choice.precision == expected
    assert choice.reason.startswith(f"auto: {expected}")
    assert choose_precision("fp32", backend, cpu=cpu).precision == "fp32"
    assert choose_precision("bf16", backend, cpu=cpu).precision == "bf16"  # explicit wins, with a warning if emulated


def test_native_bf16_is_read_from_the_cpu_flags():
    assert not AVX2.native_bf16 and ZEN5.native_bf16 and GRAVITON3.native_bf16
    assert SAPPHIRE_RAPIDS.bf16_matrix_units and not ZEN5.bf16_matrix_units
    info = hardware.cpu_info()  # this machine: whatever it is, the facts are readable
    assert info.model and info.machine and isinstance(info.native_bf16, bool)


def test_explicit_bf16_without_native_support_warns_once_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(hardware, "cpu_info", lambda: AVX2)
    with pytest.warns(PrecisionWarning) as record:
        cnnspec.train(TINY, "torch", out=tmp_path / "run", epochs=1, precision="bf16", verbose=False)
    assert len(record) == 1
    assert str(record[0].message) == (
        "--precision bf16: this CPU has no native bf16 (no avx512_bf16, amx_bf16 or Arm BF16): it is emulated "
        "in software, slower than fp32; training will be much slower than fp32 (use --precision auto or fp32)"
    )
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert settings["precision"] == "bf16" and "no native bf16" in settings["precision_reason"]


def test_auto_records_its_choice_and_reason_in_the_run_settings(monkeypatch, tmp_path):
    monkeypatch.setattr(hardware, "cpu_info", lambda: AVX2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)  # auto never warns
        cnnspec.train(TINY, "torch", out=tmp_path / "run", epochs=1, verbose=False)
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert settings["precision"] == "fp32"
    assert settings["precision_reason"].startswith("auto: fp32, because this CPU has no native bf16")


def test_cli_prints_the_emulation_warning_as_one_line(tmp_path):
    """TensorFlow without oneDNN emulates bf16 on any CPU, so this holds on every machine."""
    pytest.importorskip("cnnspec.backends.keras_backend")
    result = run_cli(
        "train",
        "specs/digits_cnn.yaml",
        "-b",
        "keras",
        "--epochs",
        "1",
        "--precision",
        "bf16",
        "--out",
        tmp_path / "run",
        "--quiet",
        env={"TF_ENABLE_ONEDNN_OPTS": "0"},
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "bf16" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: --precision bf16: "), result.stderr
    assert "slower than fp32" in lines[0]
