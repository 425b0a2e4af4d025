"""Commands about a spec: validate, summary, schema, parity (no framework until parity runs one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import SpecError
from ..numerics import ATOL
from .shared import _fail, app, user_errors

SpecArg = typer.Argument(..., help="Spec file (YAML or JSON).", show_default=False)


@app.command()
def validate(
    spec: Path = SpecArg,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Check a spec: schema, shapes and parameter counts (exit 0 valid, 1 invalid)."""
    from ..load import load_spec
    from ..resources import check_resources

    try:
        loaded = load_spec(spec)
        report = loaded.summary()
        check_resources(loaded)  # what training it would take: validate answers that too
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
def summary(
    spec: Path = SpecArg,
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the architecture to this PNG."),
) -> None:
    """Print a Keras-style table: layer (type), output shape, params."""
    from ..load import load_spec

    with user_errors():
        report = load_spec(spec).summary()
        typer.echo(report.table())
        if plot is not None:
            from ..figures import architecture_figure
            from ..files import atomic_write_bytes

            atomic_write_bytes(plot, architecture_figure(report))
            typer.echo(f"Architecture diagram written to {plot}")


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema (point your editor at it for completion)."""
    from ..spec import ModelSpec

    typer.echo(json.dumps(ModelSpec.model_json_schema(), indent=2))


@app.command()
def parity(
    spec: Path = SpecArg,
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights and batch."),
    tolerance: float = typer.Option(
        ATOL, "--tolerance", help="Allowed difference per layer, scaled by max(1, the largest value up to that layer)."
    ),
    inputs: str = typer.Option(
        "normal", "--inputs", help="The random batch: normal (N(0, 1)) or uniform ([0, 1), like images)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Build torch, Keras and ONNX from one set of random weights and compare every layer; run the file
    `export onnx` writes in every installed runtime (exit 1 when anything differs beyond its tolerance)."""
    from ..load import load_spec
    from ..parity import run_parity

    with user_errors():
        report = run_parity(load_spec(spec), seed=seed, atol=tolerance, inputs=inputs)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.table())
        for name, why in report.missing.items():
            typer.echo(f"({name} not compared: {why})")
        typer.echo(report.verdict())
    if not report.ok:
        raise typer.Exit(1)
