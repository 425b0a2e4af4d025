"""The ``cnnspec`` command line: parse, call the library, print.

Thin on purpose: every command calls the Python API, and every framework import
happens inside the command that needs it, so ``cnnspec validate`` and
``cnnspec --help`` never load torch, TensorFlow or ONNX.
Exit codes: 0 ok, 1 invalid input (a ``CnnspecError``), 2 usage.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

# Pydantic looks for plugins by scanning every installed distribution's metadata
# (~50 ms, a sixth of `cnnspec validate`); the command line has no use for them.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from .errors import CnnspecError, SpecError  # noqa: E402

app = typer.Typer(
    name="cnnspec",
    help="Define a CNN once; validate, train, export and run it in PyTorch, Keras and ONNX Runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SpecArg = typer.Argument(..., help="Spec file (YAML or JSON).", show_default=False)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input ends in one clear message and exit 1, never a traceback."""
    try:
        yield
    except CnnspecError as err:
        raise _fail(str(err)) from None


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"cnnspec {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """cnnspec: one spec, every framework, the same outputs."""


@app.command()
def validate(
    spec: Path = SpecArg,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Check a spec: schema, shapes and parameter counts (exit 0 valid, 1 invalid)."""
    from .load import load_spec

    try:
        report = load_spec(spec).summary()
    except SpecError as err:
        if as_json:
            typer.echo(json.dumps({"valid": False, "errors": [issue.to_dict() for issue in err.issues]}, indent=2))
            raise typer.Exit(1) from None
        raise _fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    shape = ", ".join(str(d) for d in report.output_shape)
    typer.echo(
        f"{spec}: valid. {len(report.layers)} layers, output ({shape}), "
        f"{report.total_params:,} params ({report.trainable_params:,} trainable)"
    )


@app.command()
def summary(spec: Path = SpecArg) -> None:
    """Print a Keras-style table: layer (type), output shape, params."""
    from .load import load_spec

    with user_errors():
        typer.echo(load_spec(spec).summary().table())


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema (point your editor at it for completion)."""
    from .spec import ModelSpec

    typer.echo(json.dumps(ModelSpec.model_json_schema(), indent=2))


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(run())
