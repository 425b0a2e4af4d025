"""Peak memory of training, each configuration in a fresh process (and Keras bf16, which needs one).

The parent writes 60,000 MNIST-shaped images as raw idx files (MNIST's size);
each child loads them, builds mnist_cnn, trains 10 warm-up steps and then 50
timed steps of batch 128 with Adam, and reports its peak resident memory
(ru_maxrss) and images/s. Every configuration runs twice, in turns; the figures are
medians. Ratios compare processes of the same `make bench` run, not one process:
Keras's mixed_bfloat16 changes how TensorFlow runs later fp32 models in the same
process, so its bf16 row can only be measured this way.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, write_idx_file  # noqa: E402

N, BATCH, STEPS, WARMUP, ROUNDS = 60_000, 128, 50, 10, 3
CONFIGS = {
    "torch-fp32": ("cnnspec torch fp32, data in memory", "torch"),
    "torch-bf16": ("cnnspec torch --precision bf16", "torch"),
    "torch-stream": ("cnnspec torch fp32, `idx:` streamed", "torch"),
    "torch-hand": ("hand-written torch fp32", "torch"),
    "keras-fp32": ("cnnspec keras fp32", "keras"),
    "keras-bf16": ("cnnspec keras --precision bf16", "keras"),
    "keras-hand": ("hand-written keras fp32", "keras"),
}
BASELINES = {"torch": "torch-hand", "keras": "keras-hand"}


def write_idx(folder: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, N).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 100).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx_file(folder / name, array)


def _timed(train_rows, x_len: int) -> float:
    """images/s of one call training STEPS batches of random rows, after one call of WARMUP batches."""
    rng = np.random.default_rng(0)
    train_rows(rng.integers(0, x_len, WARMUP * BATCH))
    start = time.perf_counter()
    train_rows(rng.integers(0, x_len, STEPS * BATCH))
    return STEPS * BATCH / (time.perf_counter() - start)


def child(config: str, source: str) -> dict:
    import cnnspec
    from cnnspec.backends import load_backend
    from cnnspec.data import load_data

    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    data = load_data(source, stream=config == "torch-stream")
    x, y = data.x_train, data.y_train
    if config.endswith("hand"):
        rate = _hand_written(config.split("-")[0], x, y)
    else:
        framework = load_backend(config.split("-")[0])
        precision = "bf16" if config.endswith("bf16") else "fp32"
        trainer = framework.Trainer(framework.build(spec, precision=precision), spec.training, precision=precision)
        prepared = trainer.prepare(x, y)
        rate = _timed(lambda rows: trainer.fit_epoch(prepared, rows, BATCH, seed=0), len(y))
    return {"images_per_s": rate, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _hand_written(framework: str, x: np.ndarray, y: np.ndarray) -> float:
    if framework == "torch":
        import torch
        import torch.nn.functional as F
        from bench_train_torch import hand_written

        net = hand_written()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)  # a view: each batch is gathered from it, no second copy
        yt = torch.from_numpy(y)

        def steps(rows):
            rows = torch.from_numpy(rows)
            for i in range(0, len(rows), BATCH):
                batch = rows[i : i + BATCH]
                loss = F.cross_entropy(net(xt[batch]), yt[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        return _timed(steps, len(y))
    from bench_train_keras import hand_written as keras_hand_written

    from cnnspec.backends import quiet_tensorflow

    quiet_tensorflow()
    net = keras_hand_written("sparse_categorical_crossentropy")
    return _timed(lambda rows: net.fit(x[rows], y[rows], batch_size=BATCH, epochs=1, verbose=0), len(y))


def main() -> None:
    results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        write_idx(Path(tmp))
        for _ in range(ROUNDS):
            for name in CONFIGS:
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", name, f"idx:{tmp}"],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    check=True,
                )
                results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    rates = {name: statistics.median(r["images_per_s"] for r in runs) for name, runs in results.items()}
    print(
        f"mnist_cnn, {N:,} MNIST-shaped training images (188 MB as float32), batch {BATCH}, Adam; each row a fresh "
        f"process, median of {ROUNDS}; images/s over {STEPS} steps after {WARMUP} warm-up steps.\n"
    )
    print("| configuration | peak memory | images/s | ratio to its hand-written fp32 |\n|---|---|---|---|")
    for name, (label, framework) in CONFIGS.items():
        peak = statistics.median(r["peak_mb"] for r in results[name])
        ratio = rates[name] / rates[BASELINES[framework]]
        print(f"| {label} | {peak:,.0f} MB | {rates[name]:,.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
    else:
        main()
