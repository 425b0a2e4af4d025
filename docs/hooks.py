"""mkdocs hook: the reference pages are made from the code at every build, so they cannot drift.

- reference/layers.md: every registered layer type, from its class (docstring, fields and their JSON Schema,
  Keras class and what a spec fixes of it) and from what the backends really build for its first case
  (tests/layers/cases.py): its canonical variables, its torch modules and its ONNX operators.
- reference/cli.md: every command's --help, from the Typer app.
- reference/training-options.md: cnnspec.options.TRAIN_OPTIONS, the one list behind train's flags and keywords.
- reference/losses-and-metrics.md: every registered loss (its class's docstring and fields) and cnnspec.metrics.
- tutorials/*.ipynb: the notebooks of examples/, rendered by mkdocs-jupyter (the tests execute them).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"tutorials/quickstart.ipynb": "examples/quickstart.ipynb", "tutorials/keras.ipynb": "examples/keras.ipynb"}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    sys.path.insert(0, str(ROOT))  # tests/layers/cases.py: the examples of each layer type
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pages = {
        "reference/layers.md": layer_reference(),
        "reference/cli.md": cli_reference(),
        "reference/training-options.md": options_reference(),
        "reference/losses-and-metrics.md": losses_and_metrics_reference(),
    }
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    for uri, source in NOTEBOOKS.items():
        files.append(File.generated(config, uri, abs_src_path=str(ROOT / source)))
    return files


# -- layers ------------------------------------------------------------------------------------------------
def _describe(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A field's JSON Schema in a few words."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        fields = ", ".join(f"`{key}`" for key in defs[name].get("properties", {}))
        return f"{{{fields}}}"
    if "anyOf" in schema:
        parts = [_describe(option, defs) for option in schema["anyOf"] if option.get("type") != "null"]
        return " or ".join(parts)
    if "enum" in schema:
        return " ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type")
    if kind == "array" and "prefixItems" in schema:
        return f"[{', '.join(_describe(item, defs) for item in schema['prefixItems'])}]"
    if kind == "array":
        items = schema.get("items", {})
        inner = _describe(items, defs) if isinstance(items, dict) else "value"
        count = schema.get("minItems") if schema.get("minItems") == schema.get("maxItems") else None
        return f"[{', '.join([inner] * count)}]" if count else f"list of {inner}"
    bounds = [
        f"{symbol} {schema[key]}"
        for key, symbol in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if key in schema
    ]
    words = {"integer": "integer", "number": "number", "boolean": "true or false", "string": "text"}
    return " ".join([words.get(kind, str(kind)), *bounds])


def _default(schema: dict[str, Any]) -> str:
    if "default" not in schema:
        return "required"
    value = schema["default"]
    return "none" if value is None else f"`{json.dumps(value)}`"


def layer_reference() -> str:
    import cnnspec
    from cnnspec.backends import load_backend
    from cnnspec.registry import LAYER_CLASSES, Site
    from cnnspec.weights import random_weights
    from tests.layers.cases import LAYER_CASES, case_index, case_spec

    torch_backend, onnx_backend = load_backend("torch"), load_backend("onnx")
    schema = cnnspec.ModelSpec.model_json_schema()
    defs = schema["$defs"]
    lines = [
        "# Layer types",
        "",
        "Every layer type of the spec language, generated from its registered class and from what each backend",
        "builds for the example shown (the first of its cases in `tests/layers/cases.py`, which the layer harness",
        "runs through every framework). Every layer also takes `name` (default `<type>_<index>`) and `inputs`",
        "(default: the layer before; see [graphs](../spec.md#graphs)). Keras class names are accepted for `type`.",
        "",
    ]
    families = ["conv", "pooling", "normalization", "core", "reshaping", "preprocessing", "merge", "augmentation"]
    ordered = sorted(LAYER_CLASSES.items(), key=lambda item: _family(item[1], families))
    for kind, cls in ordered:
        layer_doc, shape = LAYER_CASES[kind][0]
        spec = case_spec(layer_doc, shape)
        layer, info = spec.layers[case_index(shape)], spec.summary().layers[case_index(shape)]
        properties = defs[cls.__name__]["properties"]
        doc = " ".join((cls.__doc__ or "").split()).replace("``", "`")
        lines += [f"## `{kind}`", "", doc if doc.startswith("Keras") else f"Keras `{cls.keras_class}`. {doc}", ""]
        lines += ["| field | value | default |", "|---|---|---|"]
        for field, field_schema in properties.items():
            if field not in ("type", "name", "inputs"):
                lines.append(f"| `{field}` | {_describe(field_schema, defs)} | {_default(field_schema)} |")
        if len(properties) <= 3:
            lines.append("| (none) | | |")
        variables = layer.variables(info.input_shape)
        shown = ", ".join(f"`{name}` {tuple(size)}" for name, size in variables.items()) or "none"
        built = torch_backend.BUILDERS[cls](layer, Site(0, info.input_shapes)).modules
        model, tensors = onnx_backend.to_onnx_with_layers(spec, random_weights(spec))
        index = case_index(shape)
        produced = [n for n in model.graph.node if n.output[0] == tensors[index] or n.name.startswith(f"{layer.name}/")]
        ops = ["none (left out of inference files)"] if cls.training_only else sorted({n.op_type for n in produced})
        lines += [
            "",
            f"- Variables for the example's input {tuple(shape)}: {shown}"
            + (f" (non-trainable: {', '.join(sorted(cls.non_trainable))})" if cls.non_trainable else ""),
            f"- torch: {', '.join(f'`{type(m).__name__}`' for m in built)}; ONNX: {', '.join(f'`{op}`' for op in ops)}",
        ]
        if cls.keras_classes:
            lines.append(f"- Also read from cnnspec's Keras classes {', '.join(f'`{c}`' for c in cls.keras_classes)}")
        if cls.keras_fixed:
            fixed = ", ".join(f"`{arg}` {json.dumps(allowed[0])}" for arg, allowed in cls.keras_fixed.items())
            lines.append(f"- Keras arguments a spec cannot change (import refuses other values): {fixed}")
        if cls.training_only:
            lines.append("- Training only: the identity at inference, left out of exported files.")
        example = {"type": kind, **{k: v for k, v in layer_doc.items() if k != "type"}}
        lines += ["", "```yaml", f"- {json.dumps(example)}", "```", ""]
    return "\n".join(lines)


def _family(cls: Any, families: list[str]) -> tuple[int, str]:
    module = cls.__module__.rsplit(".", 1)[-1]
    return (families.index(module) if module in families else len(families), cls.__name__)


# -- the command line --------------------------------------------------------------------------------------
def cli_reference() -> str:
    import click
    import typer

    from cnnspec.cli import app

    root = typer.main.get_command(app)
    lines = ["# Command line", "", "Every command's `--help`, generated from the Typer app.", ""]

    def visit(command: click.Command, path: list[str], parent: click.Context | None) -> None:
        context = click.Context(command, info_name=path[-1], parent=parent)
        if path != ["cnnspec"]:
            lines.extend([f"## `{' '.join(path)}`", "", "```text", command.get_help(context).strip(), "```", ""])
        for name, child in getattr(command, "commands", {}).items():
            visit(child, [*path, name], context)

    visit(root, ["cnnspec"], None)
    return "\n".join(lines)


def options_reference() -> str:
    from cnnspec.options import TRAIN_OPTIONS

    lines = [
        "# Training options",
        "",
        "One list (`cnnspec.options.TRAIN_OPTIONS`) is `cnnspec train`'s flags, `cnnspec.train`'s keywords, the",
        "command a launched worker runs, and, where marked, what `run.json` records. Generated from it.",
        "",
        "| keyword | flags | default | recorded | meaning |",
        "|---|---|---|---|---|",
    ]
    for option in TRAIN_OPTIONS:
        flags = ", ".join(f"`{flag.strip()}`" for flag in option.cli_flags if flag.strip() != "/")
        default = "none" if option.default is None else f"`{option.default}`"
        lines.append(f"| `{option.name}` | {flags} | {default} | {'yes' if option.recorded else ''} | {option.help} |")
    return "\n".join(lines) + "\n"


def losses_and_metrics_reference() -> str:
    import inspect

    from cnnspec.metrics import METRICS
    from cnnspec.registry import LOSS_ALIASES, LOSS_CLASSES
    from cnnspec.spec import ModelSpec  # noqa: F401  (registers the losses)

    lines = [
        "# Losses and metrics",
        "",
        "`training.loss` and `training.metrics`, generated from the registered loss classes and `cnnspec.metrics`.",
        "Each loss is Keras 3's class of the same name, with its formula and defaults on every backend (torch,",
        "Keras, and numpy for evaluating an exported file); the tests compare all three with Keras's own classes.",
        "",
        "**Targets.** A loss reads *classes* (an integer class index per image, or per pixel of a map; one-hot",
        "rows are converted) or *values* (numbers of the output's shape, e.g. 0/1 masks or regression targets).",
        "",
        "## Losses",
        "",
    ]
    for name, cls in LOSS_CLASSES.items():
        aliases = sorted(alias for alias, target in LOSS_ALIASES.items() if target == name)
        fields = [f"`{key}` (default `{info.default}`)" for key, info in cls.model_fields.items() if key != "type"]
        targets = {"classes": "classes", "values": "values", "either": "classes for 2+ channels, else values"}
        lines += [
            f"### `{name}`",
            "",
            inspect.cleandoc(cls.__doc__ or ""),
            "",
            f"- Keras: `keras.losses.{cls.keras_class}`"
            + (f"; also written {', '.join(f'`{a}`' for a in aliases)}" if aliases else ""),
            f"- targets: {targets[cls.targets]}",
            f"- options: {', '.join(fields) if fields else 'none'}",
            f"- metrics by default: {', '.join(f'`{m}`' for m in cls.default_metrics) or 'none'}",
            "",
        ]
    lines += [
        "## Metrics",
        "",
        "Shown in the progress bar, recorded in `history.json`, `metrics.json` and the report, and watched by",
        "`early_stopping`, `reduce_lr_on_plateau` and `keep_best` (as `NAME` or `val_NAME`) in their direction.",
        "",
        "| metric | targets | better | Keras class | what it is |",
        "|---|---|---|---|---|",
    ]
    for metric in METRICS.values():
        better = "higher" if metric.higher_is_better else "lower"
        lines.append(f"| `{metric.name}` | {metric.targets} | {better} | `{metric.keras_class}` | {metric.summary} |")
    return "\n".join(lines) + "\n"
