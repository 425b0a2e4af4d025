"""Training options are declared once (cnnspec/options.py) and everything that spells them agrees."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import typer

import cnnspec
from cnnspec.cli import app
from cnnspec.options import OPTIONS, TRAIN_OPTIONS, check_options, worker_command
from cnnspec.runs import RunSettings


def _train_command():
    return typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]


def test_the_command_line_and_the_python_api_take_exactly_the_declared_options():
    cli = {param.name for param in _train_command().params} - {"spec"}
    python = set(inspect.signature(cnnspec.train).parameters) - {"spec", "validation_data"}
    assert cli == python == set(OPTIONS)
    assert list(inspect.signature(cnnspec.train).parameters)[:3] == ["spec", "backend", "data"]  # positional as before


def test_every_recorded_option_is_a_field_of_the_run_settings():
    fields = {field.name for field in dataclasses.fields(RunSettings)}
    assert {option.name for option in TRAIN_OPTIONS if option.recorded} <= fields


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"backend": "keras", "epochs": 3, "learning_rate": 0.01, "verbose": False, "stream": False},
        {"data": "npz:x.npz", "resume": Path("runs/a"), "resize": True, "stream": True, "nproc": 2, "device": "cpu"},
    ],
)
def test_a_launched_worker_parses_back_the_options_it_was_started_with(given):
    values = check_options(given)
    args = worker_command(Path("specs/digits_cnn.yaml"), values)[1:]  # without the command name
    parsed = _train_command().make_context("train", args).params
    # typer < 0.29 keeps a path as text in the parsed context and makes it a Path as it calls the command
    as_called = {name: Path(parsed[name]) if isinstance(values[name], Path) else parsed[name] for name in OPTIONS}
    assert as_called == values


def test_an_unknown_option_is_a_type_error_as_in_python():
    with pytest.raises(TypeError, match="unexpected keyword arguments: epoch"):
        cnnspec.train("specs/digits_cnn.yaml", epoch=3)
