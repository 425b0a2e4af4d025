"""The ``cnnspec`` command line: parse, call the library, print.

Thin on purpose: every command calls the Python API, and every framework import
happens inside the command that needs it, so ``cnnspec validate`` and
``cnnspec --help`` never load torch, TensorFlow or ONNX.
Exit codes: 0 ok, 1 invalid input (a ``CnnspecError``), 2 usage.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

# Pydantic looks for plugins by scanning every installed distribution's metadata
# (~50 ms, a sixth of `cnnspec validate`); the command line has no use for them.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from .errors import CnnspecError, CnnspecWarning, SpecError  # noqa: E402
from .numerics import ATOL  # noqa: E402

app = typer.Typer(
    name="cnnspec",
    help="Define a CNN once; validate, train, export and run it in PyTorch, Keras and ONNX Runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SpecArg = typer.Argument(..., help="Spec file (YAML or JSON).", show_default=False)


def _worker_rank() -> int | None:
    """This process's rank when torch's launcher started it as one of several (None otherwise)."""
    from .placement import LAUNCHED_ENV

    if not os.environ.get(LAUNCHED_ENV) or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    return int(os.environ.get("RANK", "0"))


def _fail(message: str) -> typer.Exit:
    rank = _worker_rank()
    typer.echo(f"error: {f'[rank {rank}] ' if rank else ''}{message}", err=True)
    return typer.Exit(1)


def _interrupted(err: Exception) -> typer.Exit:
    """Ctrl-C: one message, from the process the user started (the launcher, when there is one)."""
    from .placement import LAUNCHER_ENV

    if _worker_rank() is None or (_worker_rank() == 0 and not os.environ.get(LAUNCHER_ENV)):
        typer.echo(f"\n{err}", err=True)
    return typer.Exit(130)


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


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """cnnspec's own warnings as one plain line; anything else as Python shows it."""
    if issubclass(category, CnnspecWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """cnnspec: one spec, every framework, the same outputs."""
    warnings.showwarning = _show_warning


@app.command()
def validate(
    spec: Path = SpecArg,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Check a spec: schema, shapes and parameter counts (exit 0 valid, 1 invalid)."""
    from .load import load_spec
    from .resources import check_resources

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
    from .load import load_spec

    with user_errors():
        report = load_spec(spec).summary()
        typer.echo(report.table())
        if plot is not None:
            from .figures import architecture_figure
            from .files import atomic_write_bytes

            atomic_write_bytes(plot, architecture_figure(report))
            typer.echo(f"Architecture diagram written to {plot}")


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema (point your editor at it for completion)."""
    from .spec import ModelSpec

    typer.echo(json.dumps(ModelSpec.model_json_schema(), indent=2))


def train(spec: Optional[Path] = None, **options: Any) -> None:
    """Train a spec and write a run directory (weights, history, plots, metrics, checkpoints)."""
    from .driver import TrainingInterrupted, train as train_spec, trains_in_processes
    from .options import worker_command

    if spec is None and options["resume"] is None:
        raise typer.BadParameter("give a SPEC to train, or --resume RUN_DIR")
    if options["precision"] is not None and options["precision"] not in ("auto", "fp32", "bf16"):
        raise typer.BadParameter(f"--precision must be auto, fp32 or bf16, got {options['precision']!r}")
    if options["nproc"] < 1:
        raise typer.BadParameter(f"--nproc must be at least 1, got {options['nproc']}")
    with user_errors():
        try:
            if options["nproc"] > 1 and trains_in_processes(options["backend"], options["resume"]):
                from .backends import load_backend  # torch: start the workers, each runs this command again

                where = str(options["resume"] or options["out"] or "RUN_DIR")
                load_backend("torch").launch(worker_command(spec, options), options["nproc"], where)
                return
            train_spec(spec, **options)
        except TrainingInterrupted as err:
            raise _interrupted(err) from None


def _train_signature() -> inspect.Signature:
    from .options import cli_signature

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
    as_json: bool = typer.Option(False, "--json", help='Print {"accuracy", "loss", "n"}.'),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (torch and keras runs)."),
) -> None:
    """Accuracy and loss on the test split."""
    from .api import evaluate as evaluate_target

    with user_errors():
        metrics = evaluate_target(target, data=data, backend=backend, resize=resize, device=device)
    if as_json:
        typer.echo(json.dumps(metrics))
    else:
        typer.echo(
            f"{target}: accuracy {metrics['accuracy']:.4f} - loss {metrics['loss']:.4f} ({metrics['n']:,} test images)"
        )


export_app = typer.Typer(help="Export a trained run.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx(
    run_dir: Path = typer.Argument(..., help="A run directory (from cnnspec train).", show_default=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The .onnx file (default RUN_DIR/model.onnx)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (13 or newer)."),
    layout: str = typer.Option("nhwc", "--layout", help="Input layout: nhwc (the spec's, default) or nchw."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Compare ONNX Runtime with the run's backend."),
    tolerance: float = typer.Option(
        ATOL,
        "--tolerance",
        help="Allowed difference when verifying, scaled by max(1, the largest value in the network).",
    ),
    quantize: Optional[str] = typer.Option(
        None, "--quantize", help="int8: static quantization calibrated on training data."
    ),
    fp16: bool = typer.Option(False, "--fp16", help="Float16 weights and arithmetic (float32 input/output)."),
) -> None:
    """Export a run's kept weights to ONNX: checked, shape-inferred, and verified against the training backend."""
    from .export import export_onnx as export

    if layout not in ("nhwc", "nchw"):
        raise typer.BadParameter(f"--layout must be nhwc or nchw, got {layout!r}")
    if quantize not in (None, "int8"):
        raise typer.BadParameter(f"--quantize supports int8, got {quantize!r}")
    if quantize and fp16:
        raise typer.BadParameter("choose one of --quantize int8 and --fp16")
    variant = "int8" if quantize else ("fp16" if fp16 else "fp32")
    with user_errors():
        report = export(run_dir, output, opset=opset, layout=layout, verify=verify, atol=tolerance, variant=variant)
    typer.echo(
        f"Exported {report.path} (opset {report.opset}, {report.layout} input, {report.size_bytes:,} bytes) "
        f"in {report.export_seconds * 1000:.1f} ms"
    )
    if report.max_abs_diff is not None:
        before = f" before {report.variant} conversion" if report.variant != "fp32" else ""
        typer.echo(
            f"Verified: the file in ONNX Runtime at each of its {len(report.runners)} optimisation levels vs "
            f"{report.reference}, max abs difference {report.max_abs_diff:.2e} (tolerance {report.tolerance:.1e}){before}"
        )
    if report.accuracy is not None and report.accuracy_fp32 is not None:
        assert report.images_per_second is not None and report.images_per_second_fp32  # measured with the accuracies
        change = 100 * (report.accuracy - report.accuracy_fp32)
        speedup = report.images_per_second / report.images_per_second_fp32
        typer.echo(
            f"{report.variant}: test accuracy {report.accuracy:.4f} vs fp32 {report.accuracy_fp32:.4f} "
            f"({change:+.2f} points); batch 256 on CPU {report.images_per_second:,.0f} vs "
            f"{report.images_per_second_fp32:,.0f} img/s ({speedup:.2f}x)"
        )


@export_app.command("keras")
def export_keras(
    run_dir: Path = typer.Argument(..., help="A run directory (from cnnspec train).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="The .keras file.", show_default=False),
    tolerance: float = typer.Option(ATOL, "--tolerance", help="Allowed difference when verifying (scaled)."),
) -> None:
    """Export a run as a .keras file (keras.models.load_model), verified against the run before it is written."""
    from .native_export import export_keras as export

    with user_errors():
        report = export(run_dir, output, atol=tolerance)
    _native_export_lines(report)


@export_app.command("torch")
def export_torch(
    run_dir: Path = typer.Argument(..., help="A run directory (from cnnspec train).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="The .pt2 file (torch.export).", show_default=False),
    layout: str = typer.Option("nhwc", "--layout", help="Input layout: nhwc (the spec's, default) or nchw."),
    tolerance: float = typer.Option(ATOL, "--tolerance", help="Allowed difference when verifying (scaled)."),
) -> None:
    """Export a run as a torch.export program (torch.export.load; no cnnspec needed), verified before it is written."""
    from .native_export import export_torch as export

    if layout not in ("nhwc", "nchw"):
        raise typer.BadParameter(f"--layout must be nhwc or nchw, got {layout!r}")
    with user_errors():
        report = export(run_dir, output, layout=layout, atol=tolerance)
    _native_export_lines(report)


def _native_export_lines(report: Any) -> None:
    typer.echo(
        f"Exported {report.path} ({report.framework}, {report.size_bytes:,} bytes) in {report.export_seconds:.2f} s"
    )
    typer.echo(
        f"Verified: loaded back, vs {report.reference}, max abs difference {report.max_abs_diff:.2e} "
        f"(tolerance {report.tolerance:.1e})"
    )
    if report.left_out:
        typer.echo(f"Left out (training only): {', '.join(report.left_out)}")
    if report.needs:
        typer.echo(f"note: {report.needs}")


import_app = typer.Typer(help="Make a spec (and a run) from a model built elsewhere.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("keras")
def import_keras(
    model: Path = typer.Argument(..., help="A .keras, .h5 or model.to_json() file.", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="The spec to write (.yaml or .json).", show_default=False),
    run_dir: Optional[Path] = typer.Option(None, "--run", help="Also write a run directory with the model's weights."),
    data: str = typer.Option("digits", "--data", "-d", help="The data source the run evaluates on by default."),
) -> None:
    """Translate a Keras model into a spec; refuse (exit 1, nothing written) what a spec cannot express."""
    from .files import atomic_write_bytes
    from .keras_import import import_keras as translate, write_imported_run
    from .load import dump_spec

    with user_errors():
        spec, weights = translate(model)
        if run_dir is not None and weights is None:
            raise CnnspecError(f"{model}: a model config without weights cannot make a run; save the whole model")
        fmt = "json" if output.suffix.lower() == ".json" else "yaml"
        if run_dir is not None and weights is not None:  # refuses an existing run before anything is written
            write_imported_run(spec, weights, run_dir, data)
        atomic_write_bytes(output, dump_spec(spec, fmt).encode())
    report = spec.summary()
    typer.echo(f"Wrote {output}: {len(spec.layers)} layers, {report.total_params:,} parameters")
    if run_dir is not None:
        typer.echo(
            f"Wrote {run_dir} (the model's weights; evaluate, export, report, or fine-tune with "
            f"cnnspec train --resume {run_dir})"
        )


@app.command()
def predict(
    model: Path = typer.Argument(..., help="An exported .onnx file.", show_default=False),
    inputs: list[Path] = typer.Argument(..., help="PNG/JPG images or .npy arrays.", show_default=False),
    top: int = typer.Option(3, "--top", "-k", help="How many classes to show per input."),
    provider: Optional[str] = typer.Option(None, "--provider", help="cpu, cuda or tensorrt (default: CUDA if usable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Classify images or arrays with an exported model (ONNX Runtime)."""
    from .data import read_inputs
    from .predictor import Predictor

    with user_errors():
        predictor = Predictor(model, provider=provider)
        x, labels = read_inputs(inputs, predictor.spec.input_shape)
        if predictor.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        results = predictor.top_k(x, max(1, top))
    if as_json:
        rows = [
            {"input": label, "top": [{"class": c, "name": n, "probability": p} for c, n, p in best]}
            for label, best in zip(labels, results)
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for label, best in zip(labels, results):
        shown = ", ".join(f"{name} {prob:.3f}" for _, name, prob in best)
        typer.echo(f"{label}: {shown}")


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
    from .load import load_spec
    from .parity import run_parity

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


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory.", show_default=False),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source (default: the run's own)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The HTML file (default RUN_DIR/report.html)."),
    image: Optional[int] = typer.Option(None, "--image", help="Test image index for the feature maps (default 0)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="torch or keras (default: the run's)."),
) -> None:
    """Write a self-contained HTML report of a run (and its figures as PNGs under RUN_DIR/report/)."""
    from .report import build_report

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
    from .data import preview

    with user_errors():
        facts = preview(data, output, samples=max(1, samples))
    typer.echo(
        f"{facts['source']}: train {tuple(facts['train_shape'])}, test {tuple(facts['test_shape'])}, "
        f"values {facts['value_range'][0]:.3g}..{facts['value_range'][1]:.3g}"
    )
    typer.echo("class counts (train): " + ", ".join(f"{k}: {v}" for k, v in facts["class_counts"].items()))
    typer.echo(f"grid written to {facts['output']}")


def run() -> None:
    """Console-script entry point."""
    if _worker_rank() is None:
        app()
        return
    # One of torch's launched workers: end without interpreter finalisation. There, gloo's threads
    # can still release work holding Python objects and abort the process ("terminate called without
    # an active exception", pytorch/pytorch#179291) after the run has finished and been written.
    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
