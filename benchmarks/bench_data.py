"""Training on data streamed from disk vs the same data in memory.

12,800 MNIST-shaped training images written once to a temporary folder as raw
idx files and as a folder of PNGs; one epoch of mnist_cnn (torch, fp32, batch
128) per measure, timed in turns, median of several epochs after the first.
Target (issue 6): streamed throughput at least 80% of in-memory. The first
epoch of a folder decodes every PNG (into a memory-mapped cache that later
epochs read), so it is shown on its own; the load column is what each way
costs before the first batch.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_torch import cnnspec_epoch  # noqa: E402
from common import ROOT, interleaved, paired_ratio, write_idx_file  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import torch_backend  # noqa: E402
from cnnspec.data import load_data  # noqa: E402

N_TRAIN, N_TEST, BATCH, REPEATS = 12_800, 256, 128, 5
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def digit_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs on a black background: PNGs about as compressible as MNIST's."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        top, left = rng.integers(4, 14, 2)
        x[i, top : top + 12, left : left + 10] = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    return x, rng.integers(0, 10, n).astype(np.uint8)


def write_sources(root: Path) -> dict[str, str]:
    from PIL import Image

    splits = {"train": digit_like(N_TRAIN, 0), "test": digit_like(N_TEST, 1)}
    arrays = {
        "x_train": splits["train"][0],
        "y_train": splits["train"][1],
        "x_test": splits["test"][0],
        "y_test": splits["test"][1],
    }
    (root / "idx").mkdir()
    for key, array in arrays.items():
        write_idx_file(root / "idx" / IDX_NAMES[key], array)
    for split, (x, y) in splits.items():
        for i, (image, label) in enumerate(zip(x, y)):
            folder = root / "png" / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:05d}.png")
    return {"idx": f"idx:{root / 'idx'}", "folder": f"folder:{root / 'png'}"}


def streamed_epoch(spec, source: str):
    """One epoch of a store read from disk, through the trainer's worker pool."""
    data = load_data(source, stream=True)
    model = torch_backend.build(spec)
    trainer = torch_backend.Trainer(model, spec.training)
    prepared = trainer.prepare(data.x_train, data.y_train)
    epoch = [0]

    def run() -> None:
        epoch[0] += 1
        trainer.fit_epoch(prepared, np.random.default_rng(epoch[0]).permutation(N_TRAIN), BATCH, seed=epoch[0])

    return run


def load_seconds(source: str, stream: bool) -> float:
    start = time.perf_counter()
    load_data(source, stream=stream)
    return time.perf_counter() - start


def main() -> None:
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        sources = write_sources(Path(tmp))
        memory = load_data(sources["idx"])
        epochs = {
            "in memory": cnnspec_epoch(spec, memory.x_train, memory.y_train, BATCH),
            "idx streamed": streamed_epoch(spec, sources["idx"]),
            "folder streamed": streamed_epoch(spec, sources["folder"]),
        }
        first = {}
        for name, run in epochs.items():
            start = time.perf_counter()
            run()
            first[name] = time.perf_counter() - start
        times = interleaved(epochs, REPEATS, warmup=0)
        loads = {
            "in memory": load_seconds(sources["folder"], stream=False),
            "idx streamed": load_seconds(sources["idx"], stream=True),
            "folder streamed": load_seconds(sources["folder"], stream=True),
        }
    print(
        f"One epoch of {N_TRAIN:,} MNIST-shaped images, mnist_cnn, torch fp32, batch {BATCH}; median of {REPEATS} "
        "epochs after the first, timed in turns; the ratio is the median of per-round ratios.\n"
    )
    print(
        "| data | images/s | ratio to in memory | first epoch, images/s | load before training |\n|---|---|---|---|---|"
    )
    labels = {
        "in memory": "in memory (numpy)",
        "idx streamed": "`idx:` streamed (memory-mapped)",
        "folder streamed": "`folder:` streamed (PNGs decoded on worker threads)",
    }
    load_labels = {"in memory": "decode all PNGs"}
    for name, seconds in times.items():
        ratio = paired_ratio(times, name, "in memory")
        load = f"{loads[name]:.2f} s" + (f" ({load_labels[name]})" if name in load_labels else "")
        print(
            f"| {labels[name]} | {N_TRAIN / statistics.median(seconds):,.0f} | {ratio:.2f} | "
            f"{N_TRAIN / first[name]:,.0f} | {load} |"
        )


if __name__ == "__main__":
    main()
