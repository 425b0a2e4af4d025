"""One table of example layers per registered layer type, shared by the tests that must cover every type.

``tests/core/test_layer_registry.py`` fails for a registered type without cases here;
the cases then run through the Keras shape/parameter-count check
(``tests/backends/test_keras_backend.py``) and three-backend forward parity
(``tests/parity/test_forward_parity.py``). Each case is a layer (as a spec writes it)
and an input shape (H, W, C) or (F,) chosen to exercise the type's edge cases:
uneven ``same`` padding, stride > 1, odd and non-square sizes.
"""

from __future__ import annotations

LAYER_CASES: dict[str, list[tuple[dict, tuple[int, ...]]]] = {
    "conv2d": [
        ({"type": "conv2d", "filters": 3, "kernel_size": [2, 3], "strides": 2, "padding": "same"}, (7, 9, 2)),
        ({"type": "conv2d", "filters": 6, "kernel_size": 3, "groups": 3, "padding": "same"}, (5, 6, 3)),
        ({"type": "conv2d", "filters": 2, "kernel_size": 3, "dilation_rate": 2, "activation": "relu"}, (9, 8, 3)),
        ({"type": "conv2d", "filters": 4, "kernel_size": 1, "use_bias": False}, (5, 5, 2)),
    ],
    "depthwise_conv2d": [
        (
            {"type": "depthwise_conv2d", "kernel_size": [2, 3], "strides": 2, "padding": "same", "depth_multiplier": 2},
            (7, 9, 3),
        ),
        ({"type": "depthwise_conv2d", "kernel_size": 3, "dilation_rate": [1, 2], "activation": "relu"}, (8, 9, 2)),
        (
            {"type": "depthwise_conv2d", "kernel_size": 3, "strides": [1, 3], "use_bias": False, "depth_multiplier": 3},
            (5, 10, 2),
        ),
    ],
    "separable_conv2d": [
        (
            {
                "type": "separable_conv2d",
                "filters": 4,
                "kernel_size": 3,
                "strides": 2,
                "padding": "same",
                "depth_multiplier": 2,
            },
            (9, 8, 3),
        ),
        (
            {"type": "separable_conv2d", "filters": 3, "kernel_size": [3, 2], "dilation_rate": 2, "use_bias": False},
            (10, 7, 2),
        ),
        ({"type": "separable_conv2d", "filters": 5, "kernel_size": 1, "activation": "elu"}, (4, 4, 6)),
    ],
    "rescaling": [
        ({"type": "rescaling", "scale": 0.00392156862745098}, (5, 4, 3)),
        ({"type": "rescaling", "scale": -2.0, "offset": 0.5}, (6,)),
    ],
    "zero_padding2d": [
        ({"type": "zero_padding2d"}, (4, 5, 2)),
        ({"type": "zero_padding2d", "padding": [2, 0]}, (3, 3, 1)),
        ({"type": "zero_padding2d", "padding": [[0, 3], [1, 2]]}, (5, 4, 2)),
    ],
    "conv2d_transpose": [
        ({"type": "conv2d_transpose", "filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (4, 5, 2)),
        ({"type": "conv2d_transpose", "filters": 2, "kernel_size": [2, 3], "strides": [3, 2]}, (3, 4, 3)),
        (
            {
                "type": "conv2d_transpose",
                "filters": 2,
                "kernel_size": 3,
                "strides": 2,
                "output_padding": 1,
                "padding": "same",
                "activation": "relu",
            },
            (3, 3, 2),
        ),
        (
            {"type": "conv2d_transpose", "filters": 4, "kernel_size": 3, "dilation_rate": 2, "use_bias": False},
            (4, 4, 2),
        ),
        (
            {"type": "conv2d_transpose", "filters": 2, "kernel_size": 4, "strides": 2, "output_padding": [1, 0]},
            (3, 2, 2),
        ),
    ],
    "up_sampling2d": [
        ({"type": "up_sampling2d"}, (3, 4, 2)),
        ({"type": "up_sampling2d", "size": [3, 2], "interpolation": "bilinear"}, (4, 3, 2)),
        ({"type": "up_sampling2d", "size": [2, 3], "interpolation": "bilinear"}, (1, 5, 2)),
        ({"type": "up_sampling2d", "size": [41, 1]}, (2, 3, 1)),
    ],
    "reshape": [
        ({"type": "reshape", "target_shape": [1, 1, -1]}, (6,)),
        ({"type": "reshape", "target_shape": [-1]}, (3, 4, 2)),
        ({"type": "reshape", "target_shape": [2, 6, 2]}, (3, 4, 2)),
    ],
    "cropping2d": [
        ({"type": "cropping2d", "cropping": 1}, (5, 6, 2)),
        ({"type": "cropping2d", "cropping": [[0, 3], [2, 1]]}, (7, 5, 3)),
    ],
    "relu": [
        ({"type": "relu"}, (4, 5, 2)),
        ({"type": "relu", "max_value": 6.0}, (5,)),
        ({"type": "relu", "max_value": 1.5, "negative_slope": 0.1, "threshold": 0.25}, (3, 4, 3)),
        ({"type": "relu", "negative_slope": 0.2}, (4, 3, 2)),
    ],
    "leaky_relu": [({"type": "leaky_relu"}, (4, 5, 2)), ({"type": "leaky_relu", "negative_slope": 0.05}, (6,))],
    "prelu": [
        ({"type": "prelu"}, (4, 5, 2)),
        ({"type": "prelu", "shared_axes": [1, 2]}, (5, 3, 4)),
        ({"type": "prelu"}, (7,)),
    ],
    "elu": [({"type": "elu"}, (4, 5, 2)), ({"type": "elu", "alpha": 0.5}, (6,))],
    "softmax": [
        ({"type": "softmax"}, (4, 5, 3)),
        ({"type": "softmax", "axis": 2}, (4, 5, 3)),
        ({"type": "softmax", "axis": -1}, (6,)),
    ],
    # random augmentation: the identity at inference, where parity compares (tests/backends/test_augmentation.py
    # checks training against Keras)
    "random_flip": [({"type": "random_flip"}, (5, 6, 2)), ({"type": "random_flip", "mode": "vertical"}, (4, 4, 1))],
    "random_translation": [
        ({"type": "random_translation", "height_factor": 0.2, "width_factor": [-0.1, 0.3]}, (7, 9, 2)),
        (
            {"type": "random_translation", "height_factor": [0.5, -0.5], "width_factor": 1, "fill_mode": "wrap"},
            (5, 4, 1),
        ),
    ],
    "random_rotation": [
        ({"type": "random_rotation", "factor": 0.1}, (8, 8, 1)),
        ({"type": "random_rotation", "factor": [-0.5, 2], "fill_mode": "constant", "fill_value": 0.5}, (6, 9, 3)),
    ],
    "random_zoom": [
        ({"type": "random_zoom", "height_factor": 0.2}, (8, 7, 1)),
        ({"type": "random_zoom", "height_factor": [-0.3, 0.1], "width_factor": 0.5, "fill_mode": "nearest"}, (5, 9, 2)),
    ],
    "random_contrast": [
        ({"type": "random_contrast", "factor": 0.5}, (6, 5, 3)),
        ({"type": "random_contrast", "factor": [0.2, 1]}, (4, 4, 1)),
    ],
    # merges read two or more earlier outputs: here the input (or the flattened input) twice
    "add": [
        ({"type": "add", "inputs": ["input", "input"]}, (4, 5, 2)),
        ({"type": "add", "inputs": ["flatten_0", "flatten_0", "flatten_0"]}, (6,)),
    ],
    "multiply": [
        ({"type": "multiply", "inputs": ["input", "input"]}, (4, 5, 2)),
        ({"type": "multiply", "inputs": ["flatten_0", "flatten_0", "flatten_0"]}, (6,)),
    ],
    "subtract": [({"type": "subtract", "inputs": ["input", "input"]}, (4, 5, 2))],
    "average": [({"type": "average", "inputs": ["input", "input", "input"]}, (3, 4, 2))],
    "maximum": [({"type": "maximum", "inputs": ["input", "input"]}, (4, 5, 2))],
    "minimum": [({"type": "minimum", "inputs": ["flatten_0", "flatten_0"]}, (6,))],
    "concatenate": [
        ({"type": "concatenate", "inputs": ["input", "input"]}, (4, 5, 2)),
        ({"type": "concatenate", "inputs": ["flatten_0", "flatten_0"]}, (6,)),
    ],
    "max_pool2d": [({"type": "max_pool2d", "pool_size": 3, "strides": 2, "padding": "same"}, (8, 7, 2))],
    "avg_pool2d": [({"type": "avg_pool2d", "pool_size": [2, 3], "strides": [1, 2], "padding": "same"}, (7, 8, 2))],
    "min_pool2d": [({"type": "min_pool2d", "pool_size": 3, "strides": 2, "padding": "same"}, (8, 7, 2))],
    "sum_pool2d": [({"type": "sum_pool2d", "pool_size": [2, 3], "strides": [1, 2], "padding": "same"}, (7, 8, 2))],
    "global_avg_pool2d": [
        ({"type": "global_avg_pool2d"}, (5, 6, 3)),
        ({"type": "global_avg_pool2d", "keepdims": True}, (4, 3, 2)),
    ],
    "global_max_pool2d": [
        ({"type": "global_max_pool2d"}, (5, 6, 3)),
        ({"type": "global_max_pool2d", "keepdims": True}, (4, 3, 2)),
    ],
    "batch_norm": [
        ({"type": "batch_norm", "momentum": 0.9, "epsilon": 0.01}, (4, 5, 3)),
        ({"type": "batch_norm", "center": False, "scale": False}, (6,)),
    ],
    "dropout": [
        ({"type": "dropout", "rate": 0.5}, (4, 4, 2)),
        ({"type": "dropout", "rate": 0.2, "noise_shape": [None, 1, 1, 1]}, (3, 4, 2)),
    ],
    "spatial_dropout2d": [({"type": "spatial_dropout2d", "rate": 0.3}, (4, 5, 3))],
    "layer_normalization": [
        ({"type": "layer_normalization"}, (4, 5, 3)),
        ({"type": "layer_normalization", "epsilon": 1e-6, "center": False}, (6,)),
        ({"type": "layer_normalization", "scale": False}, (3, 2, 4)),
    ],
    "normalization": [
        ({"type": "normalization"}, (4, 5, 3)),
        ({"type": "normalization", "mean": [0.5, -1.0, 2.0], "variance": [0.25, 4.0, 1.0]}, (3, 4, 3)),
        ({"type": "normalization", "mean": 0.2, "variance": 2.0}, (6,)),
    ],
    "scale": [({"type": "scale", "init_values": 0.5}, (4, 5, 3)), ({"type": "scale"}, (6,))],
    "flatten": [({"type": "flatten"}, (3, 4, 5))],
    "dense": [
        ({"type": "dense", "units": 5, "activation": "tanh"}, (7,)),
        ({"type": "dense", "units": 3, "use_bias": False}, (4,)),
    ],
    "activation": [({"type": "activation", "activation": "selu"}, (4, 4, 2))],
}


def case_spec(layer: dict, shape: tuple[int, ...]):
    """A valid spec whose layer ``case_index(shape)`` is ``layer`` on an input of ``shape``.

    A flat ``shape`` (F,) comes from a (1, 1, F) input through a flatten; a softmax
    dense head on top makes the spec trainable.
    """
    import cnnspec

    flat = len(shape) == 1
    layers = [{"type": "flatten"}] * flat + [
        layer,
        {"type": "flatten"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    return cnnspec.load_spec({"name": "case", "input_shape": [1, 1, *shape] if flat else list(shape), "layers": layers})


def case_index(shape: tuple[int, ...]) -> int:
    return 1 if len(shape) == 1 else 0


def layer_case_params() -> list:
    """``pytest.param`` per case, with readable ids (``conv2d-0`` ...)."""
    import pytest

    return [
        pytest.param(layer, shape, id=f"{kind}-{index}")
        for kind, cases in LAYER_CASES.items()
        for index, (layer, shape) in enumerate(cases)
    ]
