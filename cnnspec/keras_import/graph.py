"""A Keras model's graph: its layers in order and what each reads, its input shape, and the order a spec
writes them in."""

from __future__ import annotations

from typing import Any

from ..layers.keras_config import UnsupportedKerasModel


def _layer_list(model: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The model's layers in order; a functional model's must have one input and end in its one output."""
    kind, config = model.get("class_name"), model.get("config", {})
    if kind not in ("Sequential", "Functional", "Model"):
        raise UnsupportedKerasModel(f"model class {kind!r} is not supported (a Sequential or Functional model is)")
    layers = list(config.get("layers", []))
    if kind != "Sequential":
        inputs, outputs = _flat_names(config.get("input_layers")), _flat_names(config.get("output_layers"))
        last = layers[-1]["config"].get("name") if layers else None
        if len(inputs) > 1 or len(outputs) > 1:
            raise UnsupportedKerasModel(f"the model has inputs {inputs} and outputs {outputs}: a spec has one of each")
        if outputs and outputs != [last]:
            raise UnsupportedKerasModel(f"the model's output is {outputs}, not its last layer {last!r}")
        for layer in layers:
            if len(layer.get("inbound_nodes", [])) > 1:
                name = layer["config"].get("name")
                raise UnsupportedKerasModel(
                    f"layer {name!r} ({layer['class_name']}) is called more than once (a shared layer)"
                )
    return layers, config.get("name") or "model"


def _inbound(layer: dict[str, Any]) -> list[str]:
    """Names of the layers feeding ``layer``, in Keras 3's and in tf.keras's config formats."""
    names: list[str] = []
    for node in layer.get("inbound_nodes", []):
        if isinstance(node, dict):  # Keras 3: {"args": [keras tensor(s)], "kwargs": {}}
            names += _history_names(node.get("args", []))
        else:  # tf.keras: [[name, node, tensor, kwargs], ...]
            names += [entry[0] for entry in node]
    return names


def _history_names(value: Any) -> list[str]:
    if isinstance(value, dict):
        history = value.get("config", {}).get("keras_history")
        return [history[0]] if history else []
    if isinstance(value, list):
        return [name for item in value for name in _history_names(item)]
    return []


def _flat_names(value: Any) -> list[str]:
    """``output_layers``: [[name, 0, 0], ...] or [name, 0, 0]."""
    if not value:
        return []
    entries = value if isinstance(value[0], list) else [value]
    return [entry[0] for entry in entries]


def _input_shape(entries: list[dict[str, Any]]) -> tuple[list[int], list[dict[str, Any]]]:
    """(H, W, C) from the InputLayer (or the first layer's ``batch_input_shape``), and the other layers."""
    first = entries[0] if entries else {}
    config = first.get("config", {})
    rest = entries[1:] if first.get("class_name") == "InputLayer" else entries
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if shape is None and "input_shape" in config:
        shape = [None, *config["input_shape"]]
    if not shape:
        raise UnsupportedKerasModel("the model has no input shape (build it, or give the first layer input_shape)")
    if len(shape) != 4 or any(not isinstance(d, int) for d in shape[1:]):
        raise UnsupportedKerasModel(
            f"input shape {shape[1:]}: a spec's input is (height, width, channels) with fixed sizes"
        )
    return list(shape[1:]), rest


def _evaluation_order(layers: dict[str, tuple[dict[str, Any], list[str]]], previous_name: str) -> list[str]:
    """The layers in the order a spec writes them: each after its inputs, a branch's inputs in order.

    Keras saves a functional model's layers in an order of its own (by depth); this one is what a
    person writes (a block's main path, then its shortcut, then the merge), so a spec round-trips.
    """
    order: list[str] = []
    placed = {"input"}
    last = next(reversed(layers)) if layers else previous_name
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
