"""Branching networks: cnnspec's torch graph interpreter against ResNet-20 written by hand as an nn.Module.

One epoch of 2,560 CIFAR-shaped images (32x32x3), batch 128, Adam, fp32, both channels-last (what
cnnspec runs), timed in turns; the ratio is the median of per-round ratios. Target (issue 17): the
interpreter costs at most 5%, i.e. a ratio of at least 0.95.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_torch import cnnspec_epoch, hand_written_epoch  # noqa: E402
from common import ROOT, interleaved, medians, paired_ratio  # noqa: E402

import cnnspec  # noqa: E402

N, BATCH, REPEATS = 2_560, 128, 5


class Block(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels, eps=1e-3))
            if stride != 1
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16, eps=1e-3), nn.ReLU())
        blocks, channels = [], 16
        for width in (16, 32, 64):
            for index in range(3):
                blocks.append(Block(channels, width, 2 if width > 16 and index == 0 else 1))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def main() -> dict[str, list[float]]:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.random((N, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, N)
    spec = cnnspec.load_spec(ROOT / "specs" / "resnet20_cifar.yaml")
    spec = cnnspec.load_spec({**spec.to_dict(), "training": {"optimizer": {"type": "adam"}, "batch_size": BATCH}})
    return interleaved(
        {
            "cnnspec": cnnspec_epoch(spec, x, y, BATCH),
            "hand-written": hand_written_epoch(x, y, BATCH, channels_last=True, network=ResNet20),
        },
        REPEATS,
    )


if __name__ == "__main__":
    times = main()
    rows = [
        f"One epoch of {N:,} CIFAR-shaped images, ResNet-20, batch {BATCH}, Adam, fp32, channels-last; "
        f"median of {REPEATS} epochs, timed in turns.\n",
        "| model | images/s | ratio to hand-written |",
        "|---|---|---|",
    ]
    for name, seconds in medians(times).items():
        rows.append(f"| {name} | {N / seconds:,.0f} | {paired_ratio(times, name, 'hand-written'):.2f} |")
    print("\n".join(rows))
