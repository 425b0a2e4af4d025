"""Training throughput: cnnspec's compiled Keras model vs the same network written by hand with ``fit``.

One epoch of 12,800 MNIST-shaped images, batch 128, mnist_cnn; same process, timed in
turns after a warm-up epoch each (tracing). Target: ratio >= 0.95 (issues 4 and 26).

What each side runs, per epoch (the same computation, step for step):

* cnnspec: ``Trainer.fit_epoch``, what ``cnnspec train --backend keras`` runs: the spec's seeded
  permutation gathers the rows in numpy (``x[order]``, one ~40 MB copy, ~20 ms here) and Keras's
  ``fit`` reads them in that order (``shuffle=False``).
* hand-written: ``Sequential`` of the same Keras layers, ``fit(shuffle=True)``: Keras shuffles
  the rows inside its own input pipeline.

Both: ``keras.optimizers.Adam(1e-3)`` with Keras's epsilon 1e-7 (the spec's own, so cnnspec
builds exactly this optimizer), categorical cross-entropy on one-hot targets, an accuracy
metric, no validation inside the timed epoch, ``jit_compile`` and ``steps_per_execution`` as
Keras defaults them (off and 1 on a CPU).

The rounds alternate which side goes first (ABBA), and each epoch records its process
CPU time (all threads) beside its wall time: on a shared machine other jobs change the wall
time of an epoch by 2x within minutes, while the CPU time an epoch needs barely moves.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, mnist_shaped, paired_ratio, training_table  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import load_backend  # noqa: E402

N, BATCH, REPEATS = 12_800, 128, 6
LABELS = {"fp32": "cnnspec keras (fp32)", "hand-written": "hand-written keras (fp32)"}
SIDES = (
    "cnnspec: `Trainer.fit_epoch` (Keras `fit` on the rows in the spec's seeded order, gathered in numpy); "
    "hand-written: `Sequential` of the same layers, `fit(shuffle=True)`. Both: Keras Adam (1e-3, epsilon 1e-7), "
    "categorical cross-entropy, accuracy, no validation in the timed epoch."
)


def hand_written(loss: str):
    """mnist_cnn as a Keras user writes it: Sequential, compile, fit (Adam with Keras's defaults, epsilon 1e-7)."""
    import keras

    layers = keras.layers
    net = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    net.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7), loss=loss, metrics=["accuracy"])
    return net


def in_turns(
    fns: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall seconds, process CPU seconds) of each function per round; the order flips every round."""
    for fn in fns.values():
        fn()  # warm-up: tracing
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeats):
        for name in list(fns) if round_ % 2 == 0 else list(fns)[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            fns[name]()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def main() -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds per epoch, per round, wall and CPU: cnnspec fp32, hand-written fp32."""
    keras_backend = load_backend("keras")
    import keras

    x, y = mnist_shaped(N)
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    model = keras_backend.build(spec, precision="fp32")
    trainer = keras_backend.Trainer(model, spec.training, precision="fp32")
    data = trainer.prepare(x, y)
    epoch = [0]

    def compiled():
        epoch[0] += 1
        trainer.fit_epoch(data, np.random.default_rng(epoch[0]).permutation(N), BATCH, seed=epoch[0])

    net = hand_written("categorical_crossentropy")
    y_hot = keras.utils.to_categorical(y, 10)

    def by_hand():
        net.fit(x, y_hot, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)

    # fp32 only: once a mixed_bfloat16 model has run in a process, TensorFlow ran the *fp32*
    # hand-written model ~35% faster here too, so a bf16 row would poison the baseline;
    # bench_memory.py runs Keras bf16 in a process of its own.
    return in_turns({"fp32": compiled, "hand-written": by_hand}, REPEATS)


def cpu_line(cpu: dict[str, list[float]]) -> str:
    seconds = {name: statistics.median(values) for name, values in cpu.items()}
    return (
        f"\nProcess CPU time per epoch (all threads), medians: cnnspec {seconds['fp32']:.2f} s, hand-written "
        f"{seconds['hand-written']:.2f} s; paired ratio {paired_ratio(cpu, 'fp32', 'hand-written'):.2f} "
        "(the work each epoch takes, which other jobs on the machine distort far less than its wall time)."
    )


if __name__ == "__main__":
    wall, cpu = main()
    print(training_table("keras", N, BATCH, wall, LABELS))
    print("\nRounds alternate which side goes first. " + SIDES)
    print(cpu_line(cpu))
