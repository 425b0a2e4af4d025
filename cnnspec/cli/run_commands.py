"""Commands about training runs: train, evaluate, report, data preview."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Optional

import typer

from .shared import _interrupted, app, user_errors


def train(spec: Optional[Path] = None, **options: Any) -> None:
    """Train a spec and write a run directory (weights, history, plots, metrics, checkpoints)."""
    from ..driver import TrainingInterrupted, train as train_spec, trains_in_processes
    from ..options import worker_command

    if spec is None and options["resume"] is None:
        raise typer.BadParameter("give a SPEC to train, or --resume RUN_DIR")
    if options["precision"] is not None and options["precision"] not in ("auto", "fp32", "bf16"):
        raise typer.BadParameter(f"--precision must be auto, fp32 or bf16, got {options['precision']!r}")
    if options["nproc"] < 1:
        raise typer.BadParameter(f"--nproc must be at least 1, got {options['nproc']}")
    with user_errors():
        try:
            if options["nproc"] > 1 and trains_in_processes(options["backend"], options["resume"]):
                from ..backends import load_backend  # torch: start the workers, each runs this command again

                where = str(options["resume"] or options["out"] or "RUN_DIR")
                load_backend("torch").launch(worker_command(spec, options), options["nproc"], where)
                return
            train_spec(spec, **options)
        except TrainingInterrupted as err:
            raise _interrupted(err) from None


def _train_signature() -> inspect.Signature:
    from ..options import cli_signature

    spec = typer.Argument(None, help="Spec file (omit with --resume).", show_default=False)
    return cli_signature(inspect.Parameter("spec", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=spec,
                                           annotation=Optional[Path]))  # fmt: skip


train.__signature__ = _train_signature()  # type: ignore[attr-defined]  # every option of cnnspec.options
app.command()(train)


@app.command()
def evaluate(
    target: Path = typer.Argument(..., help="A run directory or an .onnx file.", show_default=False),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source (default: the run's own)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Evaluate a run with torch or keras."),
    resize: Optional[bool] = typer.Option(None, "--resize/--no-resize", help="Resize images to the input shape."),
    as_json: bool = typer.Option(False, "--json", help='Print {METRIC: value, "loss", "n"}.'),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (torch and keras runs)."),
    runtime: str = typer.Option(
        "onnxruntime", "--runtime", help="An .onnx file: onnxruntime, openvino, or auto (the faster here)."
    ),
) -> None:
    """The spec's metrics (accuracy, mean IoU, MAE ...) and loss on the test split."""
    from ..api import evaluate as evaluate_target

    with user_errors():
        metrics = evaluate_target(target, data=data, backend=backend, resize=resize, device=device, runtime=runtime)
    if as_json:
        typer.echo(json.dumps(metrics))
    else:
        shown = " - ".join(f"{key} {value:.4f}" for key, value in metrics.items() if key != "n" and key != "loss")
        typer.echo(
            f"{target}: {shown + ' - ' if shown else ''}loss {metrics['loss']:.4f} ({metrics['n']:,} test images)"
        )


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory.", show_default=False),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source (default: the run's own)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The HTML file (default RUN_DIR/report.html)."),
    image: Optional[int] = typer.Option(None, "--image", help="Test image index for the feature maps (default 0)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="torch or keras (default: the run's)."),
) -> None:
    """Write a self-contained HTML report of a run (and its figures as PNGs under RUN_DIR/report/)."""
    from ..report import build_report

    with user_errors():
        result = build_report(run_dir, data=data, output=output, image=image, backend=backend)
    typer.echo(f"Report written to {result.html_path} ({len(result.figures)} figures in {run_dir}/report/)")


data_app = typer.Typer(help="Look at data before training.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("preview")
def data_preview(
    data: str = typer.Option("digits", "--data", "-d", help="The data source."),
    output: Path = typer.Option(Path("data_preview.png"), "--output", "-o", help="The grid PNG."),
    samples: int = typer.Option(32, "--samples", help="How many training images to show."),
) -> None:
    """A labelled grid of training images, class counts, shapes and value range."""
    from ..data import preview

    with user_errors():
        facts = preview(data, output, samples=max(1, samples))
    typer.echo(
        f"{facts['source']}: train {tuple(facts['train_shape'])}, test {tuple(facts['test_shape'])}, "
        f"values {facts['value_range'][0]:.3g}..{facts['value_range'][1]:.3g}"
    )
    typer.echo("class counts (train): " + ", ".join(f"{k}: {v}" for k, v in facts["class_counts"].items()))
    typer.echo(f"grid written to {facts['output']}")
