"""The spec models: Keras defaults, aliases, strictness, Python construction."""

from __future__ import annotations

import pytest
from hypothesis import given

import cnnspec
from cnnspec import Conv2D, Dense, Flatten, MaxPool2D, ModelSpec, SpecError
from cnnspec.spec import LAYER_ALIASES, LAYER_CLASSES
from tests.strategies import mutated_spec_dicts


def _spec(*layers, **extra):
    return {"input_shape": [8, 8, 1], "layers": list(layers), **extra}


HEAD = [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]


def test_keras_defaults_are_filled():
    spec = cnnspec.load_spec(
        _spec({"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "max_pool2d"}, {"type": "batch_norm"}, *HEAD)
    )
    conv, pool, bn = spec.layers[:3]
    assert (conv.strides, conv.padding, conv.dilation_rate, conv.activation, conv.use_bias) == (
        (1, 1),
        "valid",
        (1, 1),
        "linear",
        True,
    )
    assert (pool.pool_size, pool.strides, pool.padding) == ((2, 2), (2, 2), "valid")
    assert (bn.momentum, bn.epsilon, bn.center, bn.scale) == (0.99, 0.001, True, True)
    training = spec.training
    assert (training.loss, training.batch_size, training.epochs, training.validation_split) == (
        "categorical_crossentropy",
        32,
        10,
        0.1,
    )
    assert (training.optimizer.type, training.optimizer.learning_rate, training.optimizer.epsilon) == (
        "adam",
        0.001,
        1e-7,
    )


def test_pool_strides_default_to_pool_size():
    assert MaxPool2D(pool_size=3).strides == (3, 3)
    assert MaxPool2D(pool_size=3, strides=1).strides == (1, 1)


def test_optimizer_defaults_are_keras_per_type():
    sgd = cnnspec.load_spec(_spec(*HEAD, training={"optimizer": "sgd"})).training.optimizer
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)
    rms = cnnspec.load_spec(_spec(*HEAD, training={"optimizer": {"type": "RMSprop"}})).training.optimizer
    assert (rms.type, rms.rho, rms.epsilon, rms.centered) == ("rmsprop", 0.9, 1e-7, False)


@pytest.mark.parametrize("alias,canonical", sorted(LAYER_ALIASES.items()))
def test_keras_class_names_are_aliases(alias, canonical):
    fields = {
        "conv2d": {"filters": 2, "kernel_size": 1},
        "dropout": {"rate": 0.5},
        "dense": {"units": 3},
        "activation": {"activation": "relu"},
    }.get(canonical, {})
    layers = [{"type": alias, **fields}]
    if canonical == "dense":
        layers.insert(0, {"type": "flatten"})
    elif canonical not in ("global_avg_pool2d", "global_max_pool2d", "flatten"):
        layers.append({"type": "flatten"})
    spec = cnnspec.load_spec(_spec(*layers, {"type": "dense", "units": 2}))
    position = 1 if canonical == "dense" else 0
    assert spec.layers[position].type == canonical
    assert spec.to_dict()["layers"][position]["type"] == canonical


def test_default_names_are_type_and_index_and_names_must_be_unique():
    spec = cnnspec.load_spec(_spec(*HEAD))
    assert [layer.name for layer in spec.layers] == ["flatten_0", "dense_1"]
    with pytest.raises(SpecError) as info:
        cnnspec.load_spec(_spec({"type": "flatten", "name": "x"}, {"type": "dense", "units": 2, "name": "x"}))
    assert (info.value.issues[0].layer, info.value.issues[0].rule) == (1, "unique_name")


@pytest.mark.parametrize(
    "layer,field",
    [
        ({"type": "conv2d", "filters": "32", "kernel_size": 3}, "filters"),  # no silent coercion
        ({"type": "conv2d", "filters": True, "kernel_size": 3}, "filters"),
        ({"type": "conv2d", "filters": 0, "kernel_size": 3}, "filters"),
        ({"type": "conv2d", "filters": 2, "kernel_size": [3, 3, 3]}, "kernel_size"),
        ({"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
        ({"type": "conv2d", "filters": 2, "kernel_size": 3, "activation": "relu6"}, "activation"),
        ({"type": "conv2d", "filters": 2, "kernel_size": 3, "filter": 3}, "filter"),
        ({"type": "dropout", "rate": 1.0}, "rate"),
        ({"type": "dropout"}, "rate"),
        ({"type": "batch_norm", "epsilon": 0}, "epsilon"),
        ({"type": "conv3d"}, "type"),
        ({"filters": 3}, "type"),
    ],
)
def test_bad_layer_fields_name_layer_and_field(layer, field):
    with pytest.raises(SpecError) as info:
        cnnspec.load_spec(_spec(layer, *HEAD))
    issue = info.value.issues[0]
    assert (issue.layer, issue.field) == (0, field)
    assert str(issue).startswith("layer 0 ")


def test_all_schema_errors_are_reported_at_once():
    with pytest.raises(SpecError) as info:
        cnnspec.load_spec(_spec({"type": "conv2d"}, {"type": "dense"}, {"type": "dropout", "rate": 2}))
    assert [(i.layer, i.field) for i in info.value.issues] == [
        (0, "filters"),
        (0, "kernel_size"),
        (1, "units"),
        (2, "rate"),
    ]


def test_unknown_field_suggests_the_close_one():
    with pytest.raises(SpecError, match="did you mean 'filters'"):
        cnnspec.load_spec(_spec({"type": "conv2d", "filter": 2, "kernel_size": 3}, *HEAD))


def test_strides_with_dilation_is_refused_as_keras_does():
    with pytest.raises(SpecError, match="dilation_rate"):
        cnnspec.load_spec(
            _spec({"type": "conv2d", "filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, *HEAD)
        )


def test_early_stopping_on_validation_needs_a_validation_split():
    with pytest.raises(SpecError, match="validation_split is 0"):
        cnnspec.load_spec(_spec(*HEAD, training={"validation_split": 0, "early_stopping": {"patience": 2}}))


def test_python_construction_matches_dict_construction():
    built = ModelSpec(
        name="digits",
        input_shape=(8, 8, 1),
        layers=[Conv2D(filters=4, kernel_size=3, padding="same"), MaxPool2D(), Flatten(), Dense(units=10)],
    )
    loaded = cnnspec.load_spec(built.to_dict())
    assert loaded == built
    assert built.layers[0].name == "conv2d_0"


def test_python_construction_raises_spec_error():
    with pytest.raises(SpecError, match="units"):
        Dense(units=0)
    with pytest.raises(SpecError) as info:
        ModelSpec(input_shape=(8, 8, 1), layers=[{"type": "flatten"}, {"type": "dense", "units": "a"}])
    assert (info.value.issues[0].layer, info.value.issues[0].field) == (1, "units")


def test_every_layer_class_has_a_canonical_type():
    for type_name, cls in LAYER_CLASSES.items():
        assert cls.model_fields["type"].default == type_name


@given(mutated_spec_dicts())
def test_mutated_specs_load_or_raise_spec_error_naming_where(doc):
    try:
        cnnspec.load_spec(doc)
    except SpecError as err:
        assert err.issues
        for issue in err.issues:
            assert issue.layer is not None or issue.field, issue
            assert issue.message
