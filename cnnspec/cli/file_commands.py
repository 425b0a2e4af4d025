"""Commands about model files: export (onnx, keras, torch), import keras, predict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import CnnspecError
from ..metrics import higher_is_better
from ..numerics import ATOL
from .shared import app, user_errors

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
    from ..export import export_onnx as export

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
        change = report.accuracy - report.accuracy_fp32
        # a share (accuracy, IoU) changes by points; an error or a loss by its own amount
        shown = f"{100 * change:+.2f} points" if higher_is_better(report.metric) else f"{change:+.4f}"
        speedup = report.images_per_second / report.images_per_second_fp32
        typer.echo(
            f"{report.variant}: test {report.metric} {report.accuracy:.4f} vs fp32 {report.accuracy_fp32:.4f} "
            f"({shown}); batch 256 on CPU {report.images_per_second:,.0f} vs "
            f"{report.images_per_second_fp32:,.0f} img/s ({speedup:.2f}x)"
        )


@export_app.command("keras")
def export_keras(
    run_dir: Path = typer.Argument(..., help="A run directory (from cnnspec train).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="The .keras file.", show_default=False),
    tolerance: float = typer.Option(ATOL, "--tolerance", help="Allowed difference when verifying (scaled)."),
) -> None:
    """Export a run as a .keras file (keras.models.load_model), verified against the run before it is written."""
    from ..native_export import export_keras as export

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
    from ..native_export import export_torch as export

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
    from ..files import atomic_write_bytes
    from ..keras_import import import_keras as translate, write_imported_run
    from ..load import dump_spec

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
    masks: Path = typer.Option(
        Path("masks"), "--masks", help="Segmentation: the folder for the predicted mask PNGs (class indices)."
    ),
    runtime: str = typer.Option(
        "onnxruntime", "--runtime", help="onnxruntime, openvino, or auto (the faster at batch 1 on this machine)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Classify images (the best classes), segment them (a mask PNG each) or predict their values, with an
    exported model (ONNX Runtime)."""
    from ..data import read_inputs
    from ..predictions import describe
    from ..predictor import Predictor

    with user_errors():
        predictor = Predictor(model, provider=provider, runtime=runtime)
        x, labels = read_inputs(inputs, predictor.spec.input_shape)
        if predictor.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        if predictor.spec.task != "classification":
            output = predictor.channels_last(predictor.predict(x))
            rows = describe(predictor.spec, output, labels, predictor.class_names, masks, max(1, top))
            typer.echo(
                json.dumps([row for row, _ in rows], indent=2) if as_json else "\n".join(line for _, line in rows)
            )
            return
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
