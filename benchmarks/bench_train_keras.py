"""Training throughput: cnnspec's compiled Keras model vs the same network written by hand with ``fit``.

One epoch of 12,800 MNIST-shaped images, batch 128, Adam, mnist_cnn; same
process, timed in turns, median of several epochs after a warm-up (tracing).
Target: ratio >= 0.95 (issue 4).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, interleaved, mnist_shaped, training_table  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import load_backend  # noqa: E402

N, BATCH, REPEATS = 12_800, 128, 5
LABELS = {"fp32": "cnnspec keras (fp32)", "hand-written": "hand-written keras (fp32)"}


def hand_written(loss: str):
    """mnist_cnn as a Keras user writes it: Sequential, compile, fit."""
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
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    return net


def main() -> dict[str, list[float]]:
    """Seconds per epoch, per round: cnnspec fp32, hand-written fp32."""
    keras_backend = load_backend("keras")
    import keras

    x, y = mnist_shaped(N)
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")

    def compiled(precision: str):
        model = keras_backend.build(spec, precision=precision)
        trainer = keras_backend.Trainer(model, spec.training, precision=precision)
        data = trainer.prepare(x, y)
        epoch = [0]

        def run():
            epoch[0] += 1
            trainer.fit_epoch(data, np.random.default_rng(epoch[0]).permutation(N), BATCH, seed=epoch[0])

        return run

    net = hand_written("categorical_crossentropy")
    y_hot = keras.utils.to_categorical(y, 10)

    def by_hand():
        net.fit(x, y_hot, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)

    # fp32 only: once a mixed_bfloat16 model has run in a process, TensorFlow ran the *fp32*
    # hand-written model ~35% faster here too, so a bf16 row would poison the baseline;
    # bench_memory.py runs Keras bf16 in a process of its own.
    return interleaved({"fp32": compiled("fp32"), "hand-written": by_hand}, REPEATS)


if __name__ == "__main__":
    print(training_table("keras", N, BATCH, main(), LABELS))
