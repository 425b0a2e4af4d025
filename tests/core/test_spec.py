"""The spec models: Keras defaults, aliases, strictness, Python construction."""

from __future__ import annotations

import pytest
from hypothesis import given

import cnnspec
from cnnspec import Conv2D, Dense, Flatten, MaxPool2D, ModelSpec, SpecError
from cnnspec.spec import LAYER_ALIASES, LAYER_CLASSES
from tests.layers.cases import LAYER_CASES, case_index, case_spec
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
    assert (training.loss.type, training.batch_size, training.epochs, training.validation_split) == (
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
    layer, shape = LAYER_CASES[canonical][0]  # a valid layer of the type, from the shared table
    spec = case_spec({**layer, "type": alias}, shape)
    position = case_index(shape)
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
        ({"type": "conv2d", "filters": 2, "kernel_size": 3, "activation": "relu7"}, "activation"),
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


# -- training options (Keras 3 names and defaults) --------------------------------------------------
def _training(**training):
    return cnnspec.load_spec(_spec(*HEAD, training=training)).training


def test_loss_string_is_short_for_the_object_with_keras_defaults():
    short = _training(loss="sparse_categorical_crossentropy").loss
    assert short == _training(loss={"type": "sparse_categorical_crossentropy"}).loss
    assert short == _training(loss={"type": "SparseCategoricalCrossentropy"}).loss  # the Keras class name
    assert (short.from_logits, short.label_smoothing) == (False, 0.0)
    assert str(short) == "sparse_categorical_crossentropy"  # how messages name it
    smoothed = _training(loss={"type": "categorical_crossentropy", "label_smoothing": 0.1}).loss
    assert smoothed.label_smoothing == 0.1


def test_from_logits_needs_an_output_without_softmax_or_sigmoid():
    logits_head = [{"type": "flatten"}, {"type": "dense", "units": 10}]
    spec = cnnspec.load_spec(
        _spec(*logits_head, training={"loss": {"type": "categorical_crossentropy", "from_logits": True}})
    )
    assert spec.training.loss.from_logits
    for activation in ("softmax", "sigmoid"):
        head = [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": activation}]
        with pytest.raises(SpecError) as info:
            cnnspec.load_spec(
                _spec(*head, training={"loss": {"type": "categorical_crossentropy", "from_logits": True}})
            )
        issue = info.value.issues[0]
        assert (issue.layer, issue.field, issue.rule) == (1, "activation", "from_logits_output")
        assert "from_logits" in issue.message and activation in issue.message


def test_adamw_and_weight_decay_defaults_are_keras():
    adamw = _training(optimizer="AdamW").optimizer
    assert (adamw.type, adamw.weight_decay, adamw.learning_rate, adamw.beta_1, adamw.epsilon) == (
        "adamw",
        0.004,
        0.001,
        0.9,
        1e-7,
    )
    for name in ("adam", "sgd", "rmsprop"):
        assert _training(optimizer=name).optimizer.weight_decay is None
    assert _training(optimizer={"type": "sgd", "weight_decay": 0.01}).optimizer.weight_decay == 0.01


def test_schedules_are_learning_rates_with_keras_defaults():
    exponential = {"type": "ExponentialDecay", "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}
    optimizer = _training(optimizer={"type": "sgd", "learning_rate": exponential}).optimizer
    schedule = optimizer.schedule
    assert (schedule.type, schedule.staircase) == ("exponential_decay", False)
    assert (optimizer.initial_learning_rate, schedule.at(10), schedule.at(5)) == (0.1, 0.05, 0.1 * 0.5**0.5)
    cosine = _training(
        optimizer={
            "type": "adam",
            "learning_rate": {"type": "cosine_decay", "initial_learning_rate": 0.1, "decay_steps": 4},
        }
    ).optimizer.schedule
    assert (cosine.alpha, cosine.at(2), cosine.at(4), cosine.at(9)) == (0.0, pytest.approx(0.05), 0.0, 0.0)
    piecewise = {"type": "piecewise_constant_decay", "boundaries": [2, 5], "values": [0.1, 0.01, 0.001]}
    rule = _training(optimizer={"type": "sgd", "learning_rate": piecewise}).optimizer.schedule
    assert [rule.at(step) for step in (0, 2, 3, 5, 6)] == [0.1, 0.1, 0.01, 0.01, 0.001]  # boundaries inclusive
    constant = _training(optimizer={"type": "sgd", "learning_rate": 0.2}).optimizer
    assert (constant.schedule, constant.initial_learning_rate) == (None, 0.2)


def test_training_options_round_trip_through_the_canonical_form():
    spec = cnnspec.load_spec(
        _spec(
            *HEAD,
            training={
                "loss": {"type": "categorical_crossentropy", "label_smoothing": 0.1},
                "optimizer": {
                    "type": "adamw",
                    "learning_rate": {"type": "cosine_decay", "initial_learning_rate": 0.01, "decay_steps": 100},
                },
            },
        )
    )
    assert cnnspec.load_spec(spec.to_dict()) == spec
    assert spec.to_dict()["training"]["loss"] == {
        "type": "categorical_crossentropy",
        "from_logits": False,
        "label_smoothing": 0.1,
    }


def test_reduce_lr_on_plateau_defaults_are_keras():
    rule = _training(reduce_lr_on_plateau={}).reduce_lr_on_plateau
    assert (rule.monitor, rule.factor, rule.patience, rule.min_delta, rule.min_lr) == ("val_loss", 0.1, 10, 1e-4, 0.0)
    assert _training().reduce_lr_on_plateau is None


EXPONENTIAL = {"type": "exponential_decay", "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}


@pytest.mark.parametrize(
    "training,field,words",
    [
        ({"loss": "hinge"}, "training.loss", "unknown loss 'hinge'"),
        ({"loss": "categorical_crossentropyy"}, "training.loss", "did you mean 'categorical_crossentropy'"),
        (
            {"loss": {"type": "categorical_crossentropy", "label_smoothing": 1.5}},
            "training.loss.label_smoothing",
            "less than or equal to 1",
        ),
        (
            {"loss": {"type": "sparse_categorical_crossentropy", "label_smoothing": 0.1}},
            "training.loss.label_smoothing",
            "no label_smoothing",
        ),
        (
            {"loss": {"type": "categorical_crossentropy", "from_logit": True}},
            "training.loss.from_logit",
            "did you mean 'from_logits'",
        ),
        (
            {"optimizer": {"type": "sgd", "weight_decay": -0.1}},
            "training.optimizer.weight_decay",
            "greater than or equal to 0",
        ),
        ({"optimizer": {"type": "adamw", "weight_decay": None}}, "training.optimizer.weight_decay", "valid number"),
        (
            {"optimizer": {"type": "sgd", "learning_rate": -0.1}},
            "training.optimizer.learning_rate",
            "positive number or a schedule",
        ),
        (
            {"optimizer": {"type": "sgd", "learning_rate": "fast"}},
            "training.optimizer.learning_rate",
            "positive number or a schedule",
        ),
        (
            {"optimizer": {"type": "sgd", "learning_rate": {"type": "linear_decay"}}},
            "training.optimizer.learning_rate",
            "unknown schedule type 'linear_decay'",
        ),
        (
            {"optimizer": {"type": "sgd", "learning_rate": {**EXPONENTIAL, "decay_steps": 0}}},
            "training.optimizer.learning_rate",
            "exponential_decay.decay_steps",
        ),
        (
            {"optimizer": {"type": "sgd", "learning_rate": {"type": "cosine_decay", "initial_learning_rate": 0.1}}},
            "training.optimizer.learning_rate",
            "'decay_steps' is required",
        ),
        (
            {
                "optimizer": {
                    "type": "sgd",
                    "learning_rate": {"type": "piecewise_constant_decay", "boundaries": [3], "values": [0.1]},
                }
            },
            "training.optimizer.learning_rate",
            "values",
        ),
        (
            {
                "optimizer": {
                    "type": "sgd",
                    "learning_rate": {"type": "piecewise_constant_decay", "boundaries": [3, 6], "values": [0.1, 0.2]},
                }
            },
            "training.optimizer.learning_rate",
            "one more value than boundaries",
        ),
        (
            {
                "optimizer": {
                    "type": "sgd",
                    "learning_rate": {
                        "type": "piecewise_constant_decay",
                        "boundaries": [6, 3],
                        "values": [0.1, 0.2, 0.3],
                    },
                }
            },
            "training.optimizer.learning_rate",
            "increase strictly",
        ),
        ({"reduce_lr_on_plateau": {"factor": 1.0}}, "training.reduce_lr_on_plateau.factor", "less than 1"),
        ({"reduce_lr_on_plateau": {"monitor": "val_auc"}}, "training", "it can be val_loss"),
        ({"reduce_lr_on_plateau": {}, "validation_split": 0}, "training", "validation_split is 0"),
        (
            {"reduce_lr_on_plateau": {}, "optimizer": {"type": "sgd", "learning_rate": EXPONENTIAL}},
            "training",
            "needs a constant learning_rate",
        ),
    ],
)
def test_bad_training_options_name_the_field(training, field, words):
    with pytest.raises(SpecError) as info:
        cnnspec.load_spec(_spec(*HEAD, training=training))
    assert len(info.value.issues) == 1, info.value.issues  # one mistake, one message (no union noise)
    issue = info.value.issues[0]
    assert issue.field == field and words in issue.message, str(issue)
