"""Training throughput: cnnspec's compiled torch model vs the same network written by hand.

One epoch of 12,800 MNIST-shaped images, batch 128, Adam, mnist_cnn; both in
this process, timed in turns, median of several epochs. Targets: fp32 ratio >= 0.95 (issue 3); bf16 mixed precision reported beside it (issue 6).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, interleaved, mnist_shaped, training_table  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import torch_backend  # noqa: E402

N, BATCH, REPEATS = 12_800, 128, 5


def hand_written() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
    )  # fmt: skip


def main() -> dict[str, float]:
    """Median seconds per epoch: cnnspec fp32, cnnspec bf16, hand-written fp32."""
    torch.manual_seed(0)
    x, y = mnist_shaped(N)
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")

    def compiled(precision: str):
        trainer = torch_backend.Trainer(torch_backend.build(spec), spec.training, precision=precision)
        data = trainer.prepare(x, y)
        epoch = [0]

        def run():
            epoch[0] += 1
            trainer.fit_epoch(data, np.random.default_rng(epoch[0]).permutation(N), BATCH, seed=epoch[0])

        return run

    net = hand_written()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y)

    def by_hand():
        net.train()
        order = torch.randperm(N)
        for i in range(0, N, BATCH):
            rows = order[i : i + BATCH]
            loss = F.cross_entropy(net(xt[rows]), yt[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return interleaved({"fp32": compiled("fp32"), "bf16": compiled("bf16"), "hand-written": by_hand}, REPEATS)


if __name__ == "__main__":
    print(training_table("torch", N, BATCH, REPEATS, main()))
