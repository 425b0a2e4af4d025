"""Training throughput: cnnspec's compiled torch model vs the same network written by hand.

One epoch of 12,800 MNIST-shaped images, batch 128, Adam, mnist_cnn; all in
this process, timed in turns, median of several epochs. The baseline is plain
eager PyTorch in fp32, as a user would write it (NCHW tensors in the standard
layout, as a DataLoader stacks them). Targets: fp32 >= 0.95x; bf16 >= 2x where
it is native; the default ``--precision auto`` never slower than fp32 (issue 12). The hand-written channels-last row is what an expert would write by
hand for the same speed cnnspec gets by default.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, interleaved, mnist_shaped, paired_ratio, training_table  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import torch_backend  # noqa: E402
from cnnspec.hardware import choose_precision  # noqa: E402

N, BATCH, REPEATS = 12_800, 128, 7
AUTO = choose_precision("auto", "torch")
LABELS = {
    "auto": f"cnnspec torch (--precision auto, the default: {AUTO.precision} here)",
    "fp32": "cnnspec torch (--precision fp32)",
    "bf16": "cnnspec torch (--precision bf16)",
    "hand-written channels-last": "hand-written torch (fp32, channels-last)",
    "hand-written": "hand-written torch (fp32)",
}


def hand_written() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def cnnspec_epoch(spec, x, y, batch: int, precision: str = "fp32") -> Callable[[], None]:
    """One training epoch of the compiled model through the same Trainer `cnnspec train` uses."""
    model = torch_backend.build(spec)
    trainer = torch_backend.Trainer(model, spec.training, precision=precision)
    data = trainer.prepare(x, y)
    epoch = [0]

    def run() -> None:
        epoch[0] += 1
        trainer.fit_epoch(data, np.random.default_rng(epoch[0]).permutation(len(y)), batch, seed=epoch[0])

    return run


def hand_written_epoch(
    x, y, batch: int, channels_last: bool = False, network: Callable[[], nn.Module] = hand_written
) -> Callable[[], None]:
    """One epoch of plain eager PyTorch (torch.optim.Adam, F.cross_entropy) on ``network()``."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net = network().to(memory_format=memory_format)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    # the standard NCHW strides a DataLoader's stack gives; a view of the numpy array would not have
    # them (with one channel its strides also read as channels-last, and oneDNN then takes that path)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)
    yt = torch.from_numpy(y)

    def run() -> None:
        net.train()
        order = torch.randperm(len(yt))
        for i in range(0, len(yt), batch):
            rows = order[i : i + batch]
            loss = F.cross_entropy(net(xt[rows].contiguous(memory_format=memory_format)), yt[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


def main() -> dict[str, list[float]]:
    torch.manual_seed(0)
    x, y = mnist_shaped(N)
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    return interleaved(
        {
            "auto": cnnspec_epoch(spec, x, y, BATCH, precision=AUTO.precision),
            "fp32": cnnspec_epoch(spec, x, y, BATCH),
            "bf16": cnnspec_epoch(spec, x, y, BATCH, precision="bf16"),
            "hand-written channels-last": hand_written_epoch(x, y, BATCH, channels_last=True),
            "hand-written": hand_written_epoch(x, y, BATCH),
        },
        REPEATS,
    )


if __name__ == "__main__":
    times = main()
    print(training_table("torch", N, BATCH, times, LABELS))
    print(
        f"\n`--precision auto` chose {AUTO.reason.removeprefix('auto: ')}; "
        f"its speed is {paired_ratio(times, 'auto', 'fp32'):.2f}x that of fp32 (paired; 1.00 when it chose fp32)."
    )
