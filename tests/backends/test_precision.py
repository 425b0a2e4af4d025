"""bf16 mixed precision: float32 master weights and outputs, canonical float32 weights on disk, accuracy kept."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import cnnspec
from cnnspec.weights import load_weights, random_weights
from tests.backends.test_torch_training import TINY

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


@pytest.mark.slow
def test_bf16_accuracy_on_digits_is_within_half_a_point_of_fp32(tmp_path):
    fp32 = cnnspec.train("specs/digits_cnn.yaml", "torch", out=tmp_path / "fp32", verbose=False)
    bf16 = cnnspec.train("specs/digits_cnn.yaml", "torch", out=tmp_path / "bf16", precision="bf16", verbose=False)
    assert abs(fp32.metrics["accuracy"] - bf16.metrics["accuracy"]) <= 0.005, (fp32.metrics, bf16.metrics)
