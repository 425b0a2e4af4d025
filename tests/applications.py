"""keras.applications CNNs built offline with random weights, for the zoo tests and docs/compatibility.py."""

from __future__ import annotations

import numpy as np

# name -> the smallest input side the application accepts (its docstring's minimum; 32 for most)
APPLICATIONS = {
    "MobileNet": 32,
    "MobileNetV2": 32,
    "MobileNetV3Small": 32,
    "MobileNetV3Large": 32,
    "EfficientNetB0": 32,
    "EfficientNetV2B0": 32,
    "NASNetMobile": 32,
    "ConvNeXtTiny": 32,
    "DenseNet121": 32,
    "ResNet50": 32,
    "ResNet50V2": 32,
    "InceptionV3": 75,
    "Xception": 71,
    "VGG16": 32,
}


BATCH_NORM_DRAWS = {
    "gamma": lambda rng, shape: rng.uniform(0.5, 1.5, shape),
    "beta": lambda rng, shape: rng.normal(0.0, 0.2, shape),
    "moving_mean": lambda rng, shape: rng.normal(0.0, 0.2, shape),
    "moving_variance": lambda rng, shape: rng.uniform(0.5, 1.5, shape),
}

NORMALIZATION_DRAWS = {
    "mean": lambda rng, shape: rng.uniform(0.4, 0.5, shape),
    "variance": lambda rng, shape: rng.uniform(0.04, 0.07, shape),
}


def build_application(name: str, seed: int = 0):
    """``keras.applications.<name>`` with random weights at its smallest input, 10 classes, and batch norms
        whose statistics, scales and offsets are random (positive variances); a Normalization layer (EfficientNet,
    ConvNeXt) gets statistics like those of real pixels instead of its unset mean 0, variance 1."""
    side = APPLICATIONS[name]
    import keras

    keras.utils.set_random_seed(seed)
    model = getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3), classes=10)
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable in layer.weights:
                draw = BATCH_NORM_DRAWS[variable.name]
                variable.assign(draw(rng, variable.shape).astype(np.float32))
        if isinstance(layer, keras.layers.Normalization):  # ImageNet's statistics of 0-1 pixels, roughly
            for variable in layer.weights:
                if variable.name in NORMALIZATION_DRAWS:
                    variable.assign(NORMALIZATION_DRAWS[variable.name](rng, variable.shape).astype(np.float32))
            layer.finalize_state()  # Keras computes from these the mean and variance it applies
    return model


def _all_layers(model):
    import keras

    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def images(side: int, n: int = 2, seed: int = 1) -> np.ndarray:
    """Pixels as the applications expect them before their own preprocessing: 0-255."""
    return np.random.default_rng(seed).uniform(0, 255, (n, side, side, 3)).astype(np.float32)
