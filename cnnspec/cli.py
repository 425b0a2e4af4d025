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


@app.command()
def train(
    spec: Optional[Path] = typer.Argument(None, help="Spec file (omit with --resume).", show_default=False),
    backend: str = typer.Option("torch", "--backend", "-b", help="torch or keras."),
    data: str = typer.Option("digits", "--data", "-d", help="digits | npz:PATH | idx:DIR | folder:PATH | mnist | fashion_mnist | cifar10."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override training.epochs."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override training.batch_size."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Override the optimizer's learning_rate."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override training.seed."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32 (default, exact parity) or bf16."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/<spec>-<backend>)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory."),
    resize: bool = typer.Option(False, "--resize", help="Resize images (and convert channels) to the spec's input_shape."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Train a spec and write a run directory (weights, history, plots, metrics, checkpoints)."""
    from .train import TrainingInterrupted, train as train_spec

    if spec is None and resume is None:
        raise typer.BadParameter("give a SPEC to train, or --resume RUN_DIR")
    if precision is not None and precision not in ("fp32", "bf16"):
        raise typer.BadParameter(f"--precision must be fp32 or bf16, got {precision!r}")
    with user_errors():
        try:
            train_spec(spec, backend, data, epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed,
                       precision=precision, out=out, resume=resume, resize=resize, verbose=not quiet)  # fmt: skip
        except TrainingInterrupted as err:
            typer.echo(f"\n{err}", err=True)
            raise typer.Exit(130) from None


@app.command()
def evaluate(
    target: Path = typer.Argument(..., help="A run directory or an .onnx file.", show_default=False),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source (default: the run's own)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Evaluate a run with torch or keras."),
    resize: Optional[bool] = typer.Option(None, "--resize/--no-resize", help="Resize images to the input shape."),
    as_json: bool = typer.Option(False, "--json", help='Print {"accuracy", "loss", "n"}.'),
) -> None:
    """Accuracy and loss on the test split."""
    from .api import evaluate as evaluate_target

    with user_errors():
        metrics = evaluate_target(target, data=data, backend=backend, resize=resize)
    if as_json:
        typer.echo(json.dumps(metrics))
    else:
        typer.echo(f"{target}: accuracy {metrics['accuracy']:.4f} - loss {metrics['loss']:.4f} ({metrics['n']:,} test images)")


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(run())
