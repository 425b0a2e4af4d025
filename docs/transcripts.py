"""`make transcripts`: run every command the README and the guide show, and keep what each printed.

The console examples in README.md and docs/ are copied from these files (a test checks that every line
of them is in one), so the figures they show come from a committed run, on the machine named in
docs/transcripts/machine.txt, not from memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "transcripts"
CLI = str(Path(sys.executable).with_name("cnnspec"))

BAD_SPEC = """input_shape: [28, 28, 1]
layers:
  - {type: conv2d, filter: 32, kernel_size: 3}
  - {type: flatten}
  - {type: dense}
"""
SMALL_SPEC = """input_shape: [6, 6, 1]
layers:
  - {type: conv2d, filters: 8, kernel_size: 3}
  - {type: max_pool2d, pool_size: 2}
  - {type: conv2d, filters: 8, kernel_size: 3}
  - {type: flatten}
  - {type: dense, units: 10, activation: softmax}
"""
KERAS_MODELS = """
import keras
from keras import layers
cnn = keras.Sequential([
    keras.Input((28, 28, 1)),
    layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(), layers.Conv2D(64, 3, activation="relu"),
    layers.MaxPooling2D(), layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
])
cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
cnn.save("cnn.keras")
lam = keras.Sequential([keras.Input((8, 8, 1)), layers.Lambda(lambda x: x * 2, name="scale"), layers.Flatten()])
lam.save("lambda.keras")
"""
INPUTS = """
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
digits = load_digits()
np.save("five.npy", (digits.images[digits.target == 5][:3] / 16).astype("float32")[..., None])
Image.fromarray((digits.images[7] * 16).clip(0, 255).astype("uint8")).save("digit.png")
from cnnspec.data import load_data
shapes = load_data("shapes")
Image.fromarray((shapes.x_test[0, :, :, 0] * 255).round().astype("uint8")).save("shapes.png")
"""

# (transcript, [commands]); each command runs in a scratch folder holding the files above and links to specs/
STEPS = [
    ("validate", ["validate specs/mnist_cnn.yaml", "validate bad.yaml", "validate small.yaml"]),
    ("summary", ["summary specs/digits_cnn.yaml"]),
    ("train", ["train specs/digits_cnn.yaml --backend torch --out runs/demo/torch"]),
    ("train_keras", ["train specs/digits_cnn.yaml --backend keras --out runs/demo/keras --quiet"]),
    ("evaluate", ["evaluate runs/demo/keras --backend torch"]),
    ("export_onnx", ["export onnx runs/demo/torch --output runs/demo/digits_cnn.onnx"]),
    ("evaluate_onnx", ["evaluate runs/demo/digits_cnn.onnx --json"]),
    ("export_int8", ["export onnx runs/demo/torch --output runs/demo/digits_int8.onnx --quantize int8"]),
    ("export_native", ["export torch runs/demo/torch --output runs/demo/digits.pt2"]),
    ("predict", ["predict runs/demo/digits_cnn.onnx five.npy digit.png"]),
    ("import_keras", ["import keras cnn.keras --output cnn.yaml --run runs/cnn", "import keras lambda.keras --output l.yaml"]),
    ("parity", ["parity specs/every_layer.yaml"]),
    ("report", ["report runs/demo/torch"]),
    ("preview", ["data preview --data digits --output digits.png"]),
    ("segmentation", [
        "train specs/unet_shapes.yaml --data shapes --out runs/unet", "export onnx runs/unet --output unet.onnx",
        "predict unet.onnx shapes.png --masks masks",
    ]),
    ("regression", [
        "train specs/regression_counts.yaml --data shape_counts --out runs/counts --quiet", "evaluate runs/counts",
        "export onnx runs/counts --output counts.onnx", "predict counts.onnx shapes.png",
    ]),
    ("nproc", ["train specs/digits_cnn.yaml --backend torch --nproc 2 --epochs 3 --out runs/ddp"]),
    ("device", ["train specs/digits_cnn.yaml --device cuda", "train specs/digits_cnn.yaml --backend keras --device cuda"]),
]  # fmt: skip


def _machine() -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import machine  # the line make bench prints

    return machine()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="cnnspec-transcripts-"))
    try:
        (scratch / "specs").symlink_to(ROOT / "specs")
        (scratch / "bad.yaml").write_text(BAD_SPEC)
        (scratch / "small.yaml").write_text(SMALL_SPEC)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "100"}
        for script in (KERAS_MODELS, INPUTS):
            subprocess.run([sys.executable, "-c", script], cwd=scratch, env=env, check=True, capture_output=True)
        for name, commands in STEPS:
            lines = []
            for command in commands:
                proc = subprocess.run(
                    [CLI, *command.split()], cwd=scratch, env=env, capture_output=True, text=True, timeout=1800
                )
                lines += [f"$ cnnspec {command}", (proc.stdout + proc.stderr).rstrip(), ""]
                print(lines[-3], f"(exit {proc.returncode})", flush=True)
            (OUT / f"{name}.txt").write_text("\n".join(lines))
        (OUT / "machine.txt").write_text(_machine() + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
