"""Training throughput: cnnspec's compiled Keras model vs the same network written by hand with ``fit``.

One epoch of 12,800 MNIST-shaped images, batch 128, Adam, mnist_cnn; same
process, timed in turns, median of several epochs after a warm-up (tracing).
Target (issue 4): ratio >= 0.95.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, interleaved, mnist_shaped  # noqa: E402

import cnnspec  # noqa: E402
from cnnspec.backends import load_backend  # noqa: E402

N, BATCH, REPEATS = 12_800, 128, 5


def main() -> dict[str, float]:
    keras_backend = load_backend("keras")
    import keras

    x, y = mnist_shaped(N)
    spec = cnnspec.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    model = keras_backend.build(spec)
    trainer = keras_backend.Trainer(model, spec.training)
    data = trainer.prepare(x, y)
    epoch = [0]

    def compiled():
        epoch[0] += 1
        trainer.fit_epoch(data, np.random.default_rng(epoch[0]).permutation(N), BATCH, seed=epoch[0])

    layers = keras.layers
    net = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    y_hot = keras.utils.to_categorical(y, 10)

    def by_hand():
        net.fit(x, y_hot, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)

    seconds = interleaved({"cnnspec": compiled, "hand-written": by_hand}, REPEATS)
    result = {name: N / s for name, s in seconds.items()}
    result["ratio"] = result["cnnspec"] / result["hand-written"]
    return result


if __name__ == "__main__":
    r = main()
    print(f"One epoch of {N:,} MNIST-shaped images, mnist_cnn, batch {BATCH}, Adam, fp32; median of {REPEATS} epochs.\n")
    print("| model | images/s | ratio |\n|---|---|---|")
    print(f"| cnnspec compiled (keras) | {r['cnnspec']:,.0f} | {r['ratio']:.3f} |")
    print(f"| hand-written keras | {r['hand-written']:,.0f} | 1.000 |")
