"""Branching networks: cnnspec's torch graph interpreter against the same networks written by hand.

Two specs: ResNet-20 (specs/resnet20_cifar.yaml; basic blocks, projection shortcuts) and MobileNetV2
(specs/mobilenet_v2.yaml, width 1.0 at 32x32: 17 inverted-residual blocks, ReLU6, depthwise
convolutions, 2.2M parameters; the other MobileNet specs are 8x8 toys, a single block or MobileNet v1).
Each is set against an ``nn.Module`` written by hand for the same architecture.

Whole-run timing (issue 26): each side trains in a fresh process of its own, one warm-up epoch and then
``EPOCHS`` epochs of ``N`` CIFAR-shaped images (32x32x3), batch 128, fp32, whose throughput is taken
from the whole run, data shuffled each epoch. cnnspec runs the Trainer `cnnspec train` uses (Keras-exact
Adam, its loss and accuracy bookkeeping); the hand-written side is channels-last too, with
``torch.optim.Adam(foreach=True)`` and ``F.cross_entropy``. The sides take turns, ``ROUNDS`` rounds per
network; the ratio is the median of the per-round ratios. Target: cnnspec >= 1.0x hand-written.

``python bench_graph.py --side cnnspec|hand-written --network resnet20|mobilenet_v2`` is one side's
process; it prints its images per second.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402

N, BATCH = 640, 128
# network -> (spec file, timed epochs per process, rounds): the twelve processes take ~5 minutes on a busy
# 2-core machine (each a few seconds to start, an epoch of either network 3-6 s)
NETWORKS = {"resnet20": ("resnet20_cifar.yaml", 2, 3), "mobilenet_v2": ("mobilenet_v2.yaml", 2, 3)}
SIDES = ("cnnspec", "hand-written")


# -- ResNet-20 (He et al. 2015, option B shortcuts), as specs/resnet20_cifar.yaml ---------------------
def _batch_norm(channels: int, keras_momentum: float = 0.99) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=1 - keras_momentum)


class Block(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = _batch_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = _batch_norm(channels)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False), _batch_norm(channels))
            if stride != 1
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), _batch_norm(16), nn.ReLU())
        blocks, channels = [], 16
        for width in (16, 32, 64):
            for index in range(3):
                blocks.append(Block(channels, width, 2 if width > 16 and index == 0 else 1))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


# -- MobileNetV2 (Sandler et al. 2018, table 2), as specs/mobilenet_v2.yaml and keras.applications ----
class InvertedResidual(nn.Module):
    """Expand (1x1, unless the factor is 1), depthwise 3x3, project (linear 1x1); add the input where the
    shape allows. A stride-2 depthwise convolution is a valid window on bottom/right zero padding, as Keras's."""

    def __init__(self, channels_in: int, channels: int, stride: int, expansion: int):
        super().__init__()
        middle = channels_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(channels_in, middle, 1, bias=False), _batch_norm(middle, 0.999), nn.ReLU6()]
        if stride == 2:
            layers += [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(middle, middle, 3, 2, 0, groups=middle, bias=False)]
        else:
            layers += [nn.Conv2d(middle, middle, 3, 1, 1, groups=middle, bias=False)]
        layers += [_batch_norm(middle, 0.999), nn.ReLU6(), nn.Conv2d(middle, channels, 1, bias=False)]
        self.body = nn.Sequential(*layers, _batch_norm(channels, 0.999))
        self.residual = stride == 1 and channels_in == channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    # (expansion, channels, blocks, first stride) per stage
    STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self) -> None:
        super().__init__()
        # the stem's `same` padding at stride 2 on an even size pads bottom/right only
        self.stem = nn.Sequential(
            nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 32, 3, 2, 0, bias=False), _batch_norm(32, 0.999), nn.ReLU6()
        )
        blocks, channels = [], 32
        for expansion, width, count, stride in self.STAGES:
            for index in range(count):
                blocks.append(InvertedResidual(channels, width, stride if index == 0 else 1, expansion))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(320, 1280, 1, bias=False), _batch_norm(1280, 0.999), nn.ReLU6())
        self.classifier = nn.Linear(1280, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.blocks(self.stem(x))).mean(dim=(2, 3)))


HAND_WRITTEN = {"resnet20": ResNet20, "mobilenet_v2": MobileNetV2}


# -- one side, in its own process ----------------------------------------------------------------------
def _cnnspec_epochs(network: str, x: np.ndarray, y: np.ndarray):
    import cnnspec
    from cnnspec.backends import torch_backend

    spec = cnnspec.load_spec(ROOT / "specs" / NETWORKS[network][0])
    spec = cnnspec.load_spec({**spec.to_dict(), "training": {"optimizer": {"type": "adam"}, "batch_size": BATCH}})
    trainer = torch_backend.Trainer(torch_backend.build(spec), spec.training)
    data = trainer.prepare(x, y)

    def epoch(seed: int) -> None:
        trainer.fit_epoch(data, np.random.default_rng(seed).permutation(len(y)), BATCH, seed=seed)

    return epoch


def _hand_written_epochs(network: str, x: np.ndarray, y: np.ndarray):
    net = HAND_WRITTEN[network]().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7, foreach=True)
    images = torch.from_numpy(x).permute(0, 3, 1, 2)  # NCHW shape, channels-last in memory, as cnnspec keeps them
    labels = torch.from_numpy(y)

    def epoch(seed: int) -> None:
        net.train()
        order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            loss = F.cross_entropy(net(images[rows].contiguous(memory_format=torch.channels_last)), labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return epoch


def run_side(side: str, network: str) -> float:
    """Images per second of ``EPOCHS`` epochs after a warm-up epoch, timed as one run."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.random((N, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, N)
    epoch = (_cnnspec_epochs if side == "cnnspec" else _hand_written_epochs)(network, x, y)
    epoch(0)
    epochs = NETWORKS[network][1]
    start = time.perf_counter()
    for seed in range(1, epochs + 1):
        epoch(seed)
    return epochs * N / (time.perf_counter() - start)


def measure(network: str) -> dict[str, list[float]]:
    """Images/s of each side per round, each side a fresh process, the order alternating between rounds."""
    speeds: dict[str, list[float]] = {side: [] for side in SIDES}
    for round_index in range(NETWORKS[network][2]):
        for side in SIDES if round_index % 2 == 0 else SIDES[::-1]:
            command = [sys.executable, __file__, "--side", side, "--network", network]
            out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
            speeds[side].append(float(out.split()[-1]))
    return speeds


def main() -> None:
    titles = {"resnet20": "ResNet-20", "mobilenet_v2": "MobileNetV2 (1.0, 32x32)"}
    rows = [
        f"Training, {N:,} CIFAR-shaped images per epoch, batch {BATCH}, Adam, fp32, channels-last; each side in "
        "a fresh process: a warm-up epoch, then the images/s of a whole run of several epochs. Sides in turns; "
        "the ratio is the median of the per-round ratios (target: >= 1.00).\n",
        "| network | epochs x rounds | cnnspec images/s | hand-written images/s | ratio to hand-written |",
        "|---|---|---|---|---|",
    ]
    for network, (_, epochs, rounds) in NETWORKS.items():
        speeds = measure(network)
        ratio = statistics.median(c / h for c, h in zip(speeds["cnnspec"], speeds["hand-written"]))
        cnnspec_speed, hand_speed = (statistics.median(speeds[side]) for side in SIDES)
        rows.append(
            f"| {titles[network]} | {epochs} x {rounds} | {cnnspec_speed:,.0f} | {hand_speed:,.0f} | {ratio:.2f} |"
        )
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=SIDES)
    parser.add_argument("--network", choices=list(NETWORKS), default="resnet20")
    args = parser.parse_args()
    if args.side:
        print(f"{run_side(args.side, args.network):.1f}")
    else:
        main()
