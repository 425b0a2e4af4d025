"""A Keras model's graph as a list of nodes: its layers in order and what each reads, its input shape, and the
order a spec writes them in.

Keras 3 functional graphs hold more than layers: a model used as a layer (ConvNeXt's stem and downsampling
blocks), which is flattened here with its layers' names prefixed by its own (``stem.conv``), and ``keras.ops``
calls on tensors (``x + 3.0``, ``x * s`` in MobileNetV3), which are nodes of their own whose arguments may be
constants. Each node says where its Keras layer is (``path``), for reading its weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..layers.keras_config import UnsupportedKerasModel

MODELS = ("Sequential", "Functional", "Model")
TENSOR = "__keras_tensor__"


@dataclass
class Node:
    """One layer (or ``keras.ops`` call) of the flattened graph."""

    name: str  # the spec layer's name
    path: tuple[str, ...]  # the Keras layer: the names of the models it is nested in, then its own
    kind: str  # its Keras class (an op's: the op, "Add" for ``x + y``)
    config: dict[str, Any]
    sources: list[str]  # the spec names (or "input") of its tensor arguments, in order
    constants: list[Any] = field(default_factory=list)  # an op's arguments, None where a tensor goes
    input_shapes: list[tuple[Any, ...]] = field(default_factory=list)  # Keras shapes of those tensors, no batch
    op: bool = False  # a keras.ops call, not a layer


def flatten(model: dict[str, Any]) -> tuple[list[int], str, list[Node]]:
    """(input shape (H, W, C), the model's name, its nodes in Keras's order) of a model config."""
    kind, config = model.get("class_name"), model.get("config", {})
    if kind not in MODELS:
        raise UnsupportedKerasModel(f"model class {kind!r} is not supported (a Sequential or Functional model is)")
    entries = list(config.get("layers", []))
    if kind != "Sequential":
        inputs, outputs = _flat_names(config.get("input_layers")), _flat_names(config.get("output_layers"))
        if len(inputs) > 1 or len(outputs) > 1:
            raise UnsupportedKerasModel(f"the model has inputs {inputs} and outputs {outputs}: a spec has one of each")
    input_shape = _input_shape(entries)
    nodes: list[Node] = []
    output = _walk(kind, config, "", (), {}, "input", nodes)
    if nodes and output != nodes[-1].name:
        raise UnsupportedKerasModel(f"the model's output is {output!r}, not its last layer {nodes[-1].name!r}")
    return input_shape, config.get("name") or "model", nodes


def _walk(
    kind: str, config: dict[str, Any], prefix: str, path: tuple[str, ...], renamed: dict[str, str], source: str,
    nodes: list[Node],
) -> str:  # fmt: skip
    """Append the nodes of a (possibly nested) model; its InputLayer reads ``source``. Returns the spec name of
    its output. ``renamed``: Keras name -> spec name of what this model's layers read."""
    renamed = dict(renamed)
    previous = source
    for entry in config.get("layers", []):
        entry_kind = str(entry.get("class_name", "?")).removeprefix("cnnspec>")
        entry_config = dict(entry.get("config", {}))
        name = entry_config.get("name", "?")
        if entry_kind == "InputLayer":
            renamed[name] = source
            previous = source
            continue
        if len(entry.get("inbound_nodes", [])) > 1:
            raise UnsupportedKerasModel(f"layer {name!r} ({entry_kind}) is called more than once (a shared layer)")
        tensors, constants, shapes = _arguments(entry) if kind != "Sequential" else ([], [], [])
        sources = [renamed.get(t, f"{prefix}{t}") for t in tensors] if kind != "Sequential" else [previous]
        if entry_kind in MODELS:  # a model used as a layer: its layers, flattened, read what it reads
            inner = sources[0] if sources else previous
            output = _walk(entry_kind, entry_config, f"{prefix}{name}.", (*path, name), {}, inner, nodes)
            renamed[name] = output
            previous = output
            continue
        op = not {"trainable", "dtype"} & set(entry_config) and str(entry.get("module", "")).startswith("keras.src.ops")
        nodes.append(Node(f"{prefix}{name}", (*path, name), entry_kind, entry_config, sources or [previous],
                          constants, shapes, op))  # fmt: skip
        renamed[name] = f"{prefix}{name}"
        previous = f"{prefix}{name}"
    outputs = _flat_names(config.get("output_layers"))
    return renamed.get(outputs[0], f"{prefix}{outputs[0]}") if outputs else previous


def _arguments(entry: dict[str, Any]) -> tuple[list[str], list[Any], list[tuple[Any, ...]]]:
    """(the Keras names of the tensors a layer reads, an op's arguments with None for tensors, their shapes),
    in Keras 3's and in tf.keras's config formats."""
    tensors: list[str] = []
    constants: list[Any] = []
    shapes: list[tuple[Any, ...]] = []
    for node in entry.get("inbound_nodes", []):
        if isinstance(node, dict):  # Keras 3: {"args": [keras tensor(s) or constants], "kwargs": {}}
            for argument in node.get("args", []):
                for item in argument if isinstance(argument, list) and _has_tensor(argument) else [argument]:
                    if isinstance(item, dict) and item.get("class_name") == TENSOR:
                        tensors.append(item["config"]["keras_history"][0])
                        shapes.append(tuple(item["config"].get("shape", [None])[1:]))
                        constants.append(None)
                    else:
                        constants.append(item)
        else:  # tf.keras: [[name, node, tensor, kwargs], ...]
            tensors += [inbound[0] for inbound in node]
    return tensors, constants, shapes


def _has_tensor(value: list[Any]) -> bool:
    return any(isinstance(item, dict) and item.get("class_name") == TENSOR for item in value)


def _flat_names(value: Any) -> list[str]:
    """``output_layers``: [[name, 0, 0], ...] or [name, 0, 0]."""
    if not value:
        return []
    entries = value if isinstance(value[0], list) else [value]
    return [entry[0] for entry in entries]


def _input_shape(entries: list[dict[str, Any]]) -> list[int]:
    """(H, W, C) from the InputLayer (or the first layer's ``batch_input_shape``)."""
    config = (entries[0] if entries else {}).get("config", {})
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if shape is None and "input_shape" in config:
        shape = [None, *config["input_shape"]]
    if not shape:
        raise UnsupportedKerasModel("the model has no input shape (build it, or give the first layer input_shape)")
    if len(shape) != 4 or any(not isinstance(d, int) for d in shape[1:]):
        raise UnsupportedKerasModel(
            f"input shape {shape[1:]}: a spec's input is (height, width, channels) with fixed sizes"
        )
    return list(shape[1:])


def evaluation_order(layers: dict[str, tuple[dict[str, Any], list[str]]], last: str) -> list[str]:
    """The layers in the order a spec writes them: each after its inputs, a branch's inputs in order.

    Keras saves a functional model's layers in an order of its own (by depth); this one is what a
    person writes (a block's main path, then its shortcut, then the merge), so a spec round-trips.
    """
    order: list[str] = []
    placed = {"input"}
    stack: list[tuple[str, bool]] = [(last, False)]
    while stack:  # depth-first, emitting a layer once all its inputs are out (no recursion limit on deep nets)
        name, expanded = stack.pop()
        if name in placed:
            continue
        if expanded:
            placed.add(name)
            order.append(name)
            continue
        stack.append((name, True))
        stack.extend((source, False) for source in reversed(layers[name][1]) if source not in placed)
    return order
