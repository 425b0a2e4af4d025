"""Data-parallel torch training (torch.distributed, gloo on the CPU) and device choice.

What is proven, each through the real ``cnnspec`` command as a user runs it:
- ``--nproc 2`` computes what one process computes (global batch split across ranks,
  DDP-averaged gradients, synchronised batch norm): history and weights within 1e-4;
- with dropout it is repeatable run to run; ``torchrun -m cnnspec train`` is the same program;
- README.md's several-machines command, run as two launchers (two nodes, c10d), equals one process;
- a run resumes with a different number of processes;
- a killed rank ends the others with exit 1 and one message, fast, and the run resumes;
- streamed data works per rank; ``--device cuda`` without CUDA is a one-line error.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cnnspec.backends.torch_backend.placement import cuda_missing  # noqa: E402
from cnnspec.backends.torch_backend.trainer import split_batches  # noqa: E402
from cnnspec.weights import load_weights  # noqa: E402
from tests.cli.helpers import ROOT, assert_clean_failure, cnnspec  # noqa: E402
from tests.data_files import write_idx  # noqa: E402

BN_SPEC = """
name: bn_digits
input_shape: [8, 8, 1]
layers:
  - {type: conv2d, filters: 8, kernel_size: 3, padding: same, activation: relu}
  - {type: batch_norm}
  - {type: max_pool2d, pool_size: 2}
  - {type: flatten}
  - {type: dense, units: 10, activation: softmax}
training: {epochs: 3, batch_size: 32, seed: 3, optimizer: {type: sgd, learning_rate: 0.05, momentum: 0.9}}
"""
# SGD, not Adam: Adam divides each gradient by its own running size, so a weight whose gradient is only
# rounding noise (a channel that never fires) moves by the learning rate in a direction the noise picks,
# and two correct runs that merely sum in another order (1 thread against 2) part by 3e-4. SGD moves such
# a weight by noise times the rate, so what is compared is the data-parallel arithmetic; it also shows
# a wrong gradient that Adam's scaling hides (a synchronised batch norm 5e-4 off once parted runs by 0.06).
DROPOUT_SPEC = BN_SPEC.replace("  - {type: flatten}\n", "  - {type: flatten}\n  - {type: dropout, rate: 0.3}\n")
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("specs")
    paths = {"bn": folder / "bn.yaml", "dropout": folder / "dropout.yaml"}
    paths["bn"].write_text(BN_SPEC)
    paths["dropout"].write_text(DROPOUT_SPEC)
    return paths


def _train(spec: Path | None, out: Path, *extra: str) -> Path:
    args = (["train", str(spec)] if spec is not None else ["train"]) + ["--backend", "torch", "--precision", "fp32"]
    result = cnnspec(*args, *(["--out", str(out)] if spec is not None else []), "--quiet", *extra)
    assert result.returncode == 0, result.stderr
    return out


def _assert_same_run(a: Path, b: Path, tolerance: float = TOLERANCE) -> None:
    history_a, history_b = (json.loads((run / "history.json").read_text()) for run in (a, b))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(history_a[key], history_b[key], rtol=0, atol=tolerance, err_msg=key)
    weights_a, weights_b = (load_weights(run / "weights.safetensors") for run in (a, b))
    for key in weights_a:
        np.testing.assert_allclose(weights_a[key], weights_b[key], rtol=0, atol=tolerance, err_msg=key)


@pytest.fixture(scope="module")
def one_process(specs, tmp_path_factory) -> Path:
    return _train(specs["bn"], tmp_path_factory.mktemp("runs") / "one")


def test_two_processes_compute_what_one_computes(specs, one_process, tmp_path):
    two = _train(specs["bn"], tmp_path / "two", "--nproc", "2")
    _assert_same_run(one_process, two)
    settings = json.loads((two / "run.json").read_text())["settings"]
    assert settings["replicas"] == 2 and settings["device"] == "cpu"


def test_an_empty_share_of_a_last_batch_still_steps(specs, tmp_path):
    """1,294 training images in batches of 3 leave a last batch of 1: rank 1's share is empty. (Batches
    of 431 would leave one too, in fewer steps, but there torch's own one-process batch norm kernel is
    4e-4 off a float64 gradient on 27,000 values a channel, and the comparison would test that.)"""
    small = ("--batch-size", "3", "--epochs", "1", "--lr", "0.002")  # a rate that suits batches of 3
    one = _train(specs["bn"], tmp_path / "one", *small)
    two = _train(specs["bn"], tmp_path / "two", *small, "--nproc", "2")
    _assert_same_run(one, two)


def test_with_dropout_two_processes_repeat_run_to_run(specs, tmp_path):
    first = _train(specs["dropout"], tmp_path / "first", "--nproc", "2", "--epochs", "2")
    second = _train(specs["dropout"], tmp_path / "second", "--nproc", "2", "--epochs", "2")
    _assert_same_run(first, second, tolerance=0.0)


def test_torchrun_runs_the_same_program(specs, one_process, tmp_path):
    out = tmp_path / "torchrun"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "cnnspec",
         "train", str(specs["bn"]), "--backend", "torch", "--precision", "fp32", "--out", str(out), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _assert_same_run(one_process, out)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _documented_torchrun(text: str, where: str) -> list[str]:
    """The ``torchrun`` command of ``text``'s sh/console blocks (continuation lines joined, ``$ `` dropped)."""
    commands = []
    for block in re.findall(r"```(?:sh|console)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("torchrun "):
                commands.append(shlex.split(line, comments=True))
    assert len(commands) == 1, f"{where} should show one torchrun command (the same on every machine): {commands}"
    return commands[0]


def _value(argv: list[str], flag: str) -> str:
    """``flag``'s value in README.md's ``argv`` (``--flag VALUE``; ``--flag=VALUE`` is split first)."""
    assert flag in argv and argv.index(flag) + 1 < len(argv), f"README.md's torchrun command lost {flag}: {argv}"
    return argv[argv.index(flag) + 1]


def _readme_torchrun() -> list[str]:
    """README's several-machines command, checked for the shape this test can run on one machine."""
    argv = [part for item in _documented_torchrun((ROOT / "README.md").read_text(), "README.md")
            for part in (item.split("=", 1) if item.startswith("--") else [item])]  # fmt: skip
    for flag, wanted in (("--nnodes", "2"), ("--rdzv-backend", "c10d"), ("--backend", "torch")):
        assert _value(argv, flag) == wanted, f"README.md's torchrun needs {flag} {wanted}: {argv}"
    _value(argv, "--rdzv-endpoint")
    _value(argv, "--out")
    assert "--device" not in argv or _value(argv, "--device") == "cpu", (
        f"README.md's torchrun is the CPU (gloo) form, which the tests run: {argv}"
    )
    module = argv.index("-m") if "-m" in argv else -1
    assert argv[module + 1 : module + 3] == ["cnnspec", "train"] and len(argv) > module + 3, (
        f"README.md's torchrun should run -m cnnspec train SPEC: {argv}"
    )
    return argv


def test_docs_training_shows_the_readme_multi_node_command():
    assert _documented_torchrun((ROOT / "docs" / "training.md").read_text(), "docs/training.md") == (
        _documented_torchrun((ROOT / "README.md").read_text(), "README.md")
    ), "docs/training.md's several-machines command should be README.md's"


def test_two_torchrun_launchers_as_two_nodes_compute_what_one_process_computes(specs, one_process, tmp_path):
    """README.md's several-machines command, run as it is on each machine but with both "machines" here:
    two launchers meeting at a c10d rendezvous on 127.0.0.1. Only what must differ on a test machine is
    replaced (torchrun by this Python's ``-m torch.distributed.run``, the endpoint, the spec, ``--out``),
    and ``--precision fp32 --quiet`` are added. The rendezvous's node 0 holds rank 0, which writes the run."""
    argv = _readme_torchrun()
    out = tmp_path / "two-nodes"
    argv[argv.index("--rdzv-endpoint") + 1] = f"127.0.0.1:{_free_port()}"
    argv[argv.index("--out") + 1] = str(out)
    argv[argv.index("-m") + 3] = str(specs["bn"])
    command = [sys.executable, "-m", "torch.distributed.run", *argv[1:], "--precision", "fp32", "--quiet"]
    launchers = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        for _ in range(2)
    ]
    try:
        for launcher in launchers:
            _, stderr = launcher.communicate(timeout=600)
            assert launcher.returncode == 0, stderr
    finally:
        for launcher in launchers:
            if launcher.poll() is None:
                launcher.kill()
    processes = 2 * int(_value(argv, "--nproc-per-node"))
    assert json.loads((out / "run.json").read_text())["settings"]["replicas"] == processes
    _assert_same_run(one_process, out)


def test_a_run_of_two_processes_resumes_in_one(specs, one_process, tmp_path):
    out = _train(specs["bn"], tmp_path / "resumed", "--nproc", "2", "--epochs", "2")
    result = cnnspec("train", "--resume", str(out), "--epochs", "3", "--quiet")
    assert result.returncode == 0, result.stderr
    _assert_same_run(one_process, out)


def test_streamed_data_is_read_per_rank(tmp_path):
    data = f"idx:{write_idx(tmp_path / 'idx', n_train=45, n_test=9)}"
    spec = tmp_path / "small.yaml"
    spec.write_text(BN_SPEC.replace("units: 10", "units: 3").replace("batch_size: 32", "batch_size: 8"))
    in_memory = _train(spec, tmp_path / "memory", "--data", data, "--no-stream")
    streamed = _train(spec, tmp_path / "streamed", "--data", data, "--stream", "--nproc", "2")
    _assert_same_run(in_memory, streamed)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc (Linux)")
def test_a_killed_rank_stops_the_others_and_the_run_resumes(specs, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "cnnspec", "train", str(specs["bn"]), "--backend", "torch", "--precision",
               "fp32", "--nproc", "2", "--epochs", "500", "--out", str(out), "--quiet"]  # fmt: skip
    launcher = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        state = out / "checkpoint" / "state.json"
        deadline = time.monotonic() + 300
        while not state.exists() and time.monotonic() < deadline and launcher.poll() is None:
            time.sleep(0.05)
        assert state.exists(), "no epoch finished"
        workers = [pid for pid in _children(launcher.pid) if b"cnnspec" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2, workers
        killed_at = time.monotonic()
        os.kill(max(workers), signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=60)
        took = time.monotonic() - killed_at
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 1 and took < 60, (launcher.returncode, took, stderr)
    assert "was killed by SIGKILL; the others were stopped" in stderr and f"--resume {out}" in stderr, stderr
    assert not any(pid in _children(launcher.pid) for pid in workers)
    result = cnnspec("train", "--resume", str(out), "--epochs", "2", "--quiet")  # epochs 1-2 are, or come, back
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] >= 2


def test_shares_partition_every_global_batch():
    """Rank r takes rows r, r + N, ... of each batch: together the shares are the batch, for any N."""
    order = np.random.default_rng(0).permutation(23)
    for processes in (1, 2, 3, 5):
        splits = [split_batches(order, 4, rank, processes) for rank in range(processes)]
        for batch, start in enumerate(range(0, 23, 4)):
            together = np.concatenate([split[batch][0] for split in splits])
            assert sorted(together) == sorted(order[start : start + 4])
            assert {split[batch][1] for split in splits} == {len(together)}
            assert max(len(s[batch][0]) for s in splits) - min(len(s[batch][0]) for s in splits) <= 1


@pytest.mark.skipif(cuda_missing() is None, reason="this machine has CUDA: the error is for machines without")
def test_device_cuda_without_cuda_is_one_line(specs, tmp_path):
    result = cnnspec("train", str(specs["bn"]), "--backend", "torch", "--device", "cuda", "--out", str(tmp_path / "r"))
    assert_clean_failure(result)
    assert result.stderr.strip().count("\n") == 0 and "--device cuda:" in result.stderr, result.stderr
    assert not (tmp_path / "r").exists()


def test_a_bad_device_or_nproc_is_a_usage_or_input_error(specs, tmp_path):
    assert_clean_failure(cnnspec("train", str(specs["bn"]), "--device", "tpu", "--out", str(tmp_path / "r")))
    assert cnnspec("train", str(specs["bn"]), "--nproc", "0").returncode == 2


@pytest.mark.cuda
def test_cuda_training_equals_cpu_training(specs, one_process, tmp_path):
    on_gpu = _train(specs["bn"], tmp_path / "gpu", "--device", "cuda")
    assert json.loads((on_gpu / "run.json").read_text())["settings"]["device"].startswith("cuda")
    _assert_same_run(one_process, on_gpu)
    cpu_again = cnnspec("evaluate", str(on_gpu), "--device", "cpu", "--json")  # float32 canonical weights on the host
    assert cpu_again.returncode == 0, cpu_again.stderr


@pytest.mark.cuda
def test_two_gpu_processes_compute_what_one_computes(specs, one_process, tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    two = _train(specs["bn"], tmp_path / "two", "--device", "cuda", "--nproc", "2")
    _assert_same_run(one_process, two)


def test_the_python_api_points_torch_processes_to_the_launcher(specs, tmp_path):
    import cnnspec
    from cnnspec.errors import RunError

    with pytest.raises(RunError, match="needs torch's launcher"):
        cnnspec.train(specs["bn"], "torch", nproc=2, out=tmp_path / "r", verbose=False)
    assert not (tmp_path / "r").exists()


def test_synchronized_batch_norm_gradient_is_as_exact_as_one_process_kernel(tmp_path):
    """The gradient a synchronised batch norm passes back, against float64: that of a conv bias before
    a ReLU and the batch norm, on channels whose ReLU rarely fires (small variances), where the
    gradient sums terms that nearly cancel. One process in a gloo group: the formula's arithmetic is
    what is tested (torch's own kernel alongside, for scale); the sums across processes are in the
    two-process runs above."""
    import torch.distributed as dist

    from cnnspec.backends.torch_backend.normalization import BatchNorm
    from cnnspec.layers.normalization import BatchNorm as BatchNormSpec

    generator = torch.Generator().manual_seed(0)
    pre_activation = torch.randn(32, 8, 8, 8, generator=generator) - torch.linspace(0, 2.5, 8).view(1, -1, 1, 1)
    upstream = torch.randn(pre_activation.shape, generator=generator)

    def bias_gradient(group: object, dtype: torch.dtype) -> torch.Tensor:
        layer = BatchNorm(BatchNormSpec(type="batch_norm"), (8, 8, 8)).train()
        layer.group = group
        with torch.no_grad():
            layer.weight.copy_(torch.linspace(0.5, 1.5, 8))
            layer.bias.copy_(torch.linspace(-0.2, 0.2, 8))
        conv_bias = torch.full((1, 8, 1, 1), 0.1, dtype=dtype, requires_grad=True)
        x = torch.relu(pre_activation.to(dtype) + conv_bias)
        if dtype == torch.float64:  # the reference: batch norm's definition, every step in float64
            mean = x.mean((0, 2, 3), keepdim=True)
            variance = (x - mean).square().mean((0, 2, 3), keepdim=True)
            weight, bias = (p.double().view(1, -1, 1, 1) for p in (layer.weight, layer.bias))
            out = (x - mean) / torch.sqrt(variance + layer.eps) * weight + bias
        else:
            out = layer(x)
        (out * upstream.to(dtype)).sum().backward()
        return conv_bias.grad.double().flatten()

    exact = bias_gradient(None, torch.float64)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        synchronized = bias_gradient(dist.group.WORLD, torch.float32)
    finally:
        dist.destroy_process_group()
    one_process = bias_gradient(None, torch.float32)
    np.testing.assert_allclose(one_process, exact, rtol=1e-5)  # torch's own kernel, for scale
    np.testing.assert_allclose(synchronized, exact, rtol=1e-5)
