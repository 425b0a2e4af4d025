"""Training throughput: cnnspec's compiled torch model vs the same network written by hand.

One epoch of 12,800 MNIST-shaped images, batch 128, Adam, mnist_cnn; both in
this process, timed in turns, median of several epochs. Target (issue 3): ratio >= 0.95.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, interleaved, mnist_shaped  # noqa: E402

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
    torch.manual_seed(0)
    x, y = mnist_shaped(N)
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")

    model = torch_backend.build(spec)
    trainer = torch_backend.Trainer(model, spec.training)
    data = trainer.prepare(x, y)
    epoch = [0]

    def compiled():
        epoch[0] += 1
        trainer.fit_epoch(data, np.random.default_rng(epoch[0]).permutation(N), BATCH, seed=epoch[0])

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

    seconds = interleaved({"cnnspec": compiled, "hand-written": by_hand}, REPEATS)
    result = {name: N / s for name, s in seconds.items()}
    result["ratio"] = result["cnnspec"] / result["hand-written"]
    return result


if __name__ == "__main__":
    r = main()
    print(f"One epoch of {N:,} MNIST-shaped images, mnist_cnn, batch {BATCH}, Adam, fp32; median of {REPEATS} epochs.\n")
    print("| model | images/s | ratio |\n|---|---|---|")
    print(f"| cnnspec compiled (torch) | {r['cnnspec']:,.0f} | {r['ratio']:.3f} |")
    print(f"| hand-written torch | {r['hand-written']:,.0f} | 1.000 |")
