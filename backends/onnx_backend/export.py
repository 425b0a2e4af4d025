"""The ONNX model: graph, metadata, IR version, and the checks made on export."""

from __future__ import annotations

import json
from typing import Any

import onnx
from onnx import helper

from cnnspec import __version__
from cnnspec.errors import CnnspecError
from cnnspec.numerics import DEFAULT_OPSET, LOGIT_ACTIVATIONS, MAX_OPSET, MIN_OPSET
from cnnspec.registry import Site
from cnnspec.shapes import INPUT
from cnnspec.spec import ModelSpec
from cnnspec.weights import Weights, check_weights

from .graph import BUILDERS, FLOAT, Graph

LAYOUTS = ("nhwc", "nchw")
LOGIT_OPS = tuple(name.capitalize() for name in LOGIT_ACTIVATIONS)  # Keras's loss reads their input as logits


def _dims(shape: tuple[int, ...]) -> list[Any]:
    """An NHWC-style spec shape as the NCHW dims the graph holds, batch dynamic."""
    return ["batch", shape[2], shape[0], shape[1]] if len(shape) == 3 else ["batch", *shape]


def _output_dims(shape: tuple[int, ...], layout: str) -> tuple[list[Any], Any]:
    """The model output's dims, and how to write it: an image-shaped output (a per-pixel map) comes out in
    the input's layout (channels last for "nhwc", as Keras gives it); a vector as it is."""
    if len(shape) == 3 and layout == "nhwc":
        height, width, channels = shape

        def channels_last(graph: Graph, tensor: str, name: str) -> str:
            nhwc = graph.interface("Transpose", [tensor], f"{name}/nhwc", perm=[0, 2, 3, 1])
            return graph.interface("Identity", [nhwc], name)

        return ["batch", height, width, channels], channels_last
    return _dims(shape), lambda graph, tensor, name: graph.interface("Identity", [tensor], name)


def check_opset(opset: int) -> None:
    newest = min(MAX_OPSET, onnx.defs.onnx_opset_version())
    if not MIN_OPSET <= opset <= newest:
        raise CnnspecError(f"opset {opset} is not supported: choose {MIN_OPSET}..{newest} (default {DEFAULT_OPSET})")


def to_onnx(
    spec: ModelSpec,
    weights: Weights,
    opset: int = DEFAULT_OPSET,
    layout: str = "nhwc",
    all_layer_outputs: bool = False,
    class_names: list[str] | None = None,
) -> onnx.ModelProto:
    """The spec with ``weights`` as an ONNX model: input "input", output "output" (and "logits").

    ``layout`` is the input's: "nhwc" (the spec's channels-last, default) or "nchw".
    ``all_layer_outputs`` also exposes every layer's output (NCHW), for parity checks.
    Training-only layers (random augmentation) are left out: no node at all.
    """
    return to_onnx_with_layers(spec, weights, opset, layout, all_layer_outputs, class_names)[0]


def to_onnx_with_layers(
    spec: ModelSpec,
    weights: Weights,
    opset: int = DEFAULT_OPSET,
    layout: str = "nhwc",
    all_layer_outputs: bool = False,
    class_names: list[str] | None = None,
) -> tuple[onnx.ModelProto, list[str]]:
    """``to_onnx``'s model, and per spec layer the tensor holding its output: the layer's name, or
    for a left-out layer the tensor it was handed (its input's)."""
    check_opset(opset)
    if layout not in LAYOUTS:
        raise CnnspecError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    graph = Graph(opset, check_weights(spec, weights))
    height, width, channels = spec.input_shape
    if layout == "nhwc":
        input_info = helper.make_tensor_value_info("input", FLOAT, ["batch", height, width, channels])
        x = graph.interface("Transpose", ["input"], "input/nchw", perm=[0, 3, 1, 2])
    else:
        input_info = helper.make_tensor_value_info("input", FLOAT, ["batch", channels, height, width])
        x = "input"
    report = spec.summary()
    tensors = []
    by_name = {INPUT: x}  # each layer's output tensor by layer name: later layers read them (``inputs``)
    for index, (layer, info) in enumerate(zip(spec.layers, report.layers)):
        site = Site(index, info.input_shapes, inputs=tuple(by_name[source] for source in info.inputs), graph=graph)
        x = BUILDERS[type(layer)](layer, site)
        by_name[layer.name] = x
        tensors.append(x)
    last = graph.nodes[-1]
    dims, as_given = _output_dims(report.output_shape, layout)
    outputs = [helper.make_tensor_value_info(as_given(graph, x, "output"), FLOAT, dims)]
    if spec.layers[-1].final_activation() in LOGIT_ACTIVATIONS and last.op_type in LOGIT_OPS:
        logits = as_given(graph, last.input[0], "logits")
        outputs.append(helper.make_tensor_value_info(logits, FLOAT, dims))
    if all_layer_outputs:  # each tensor once: a left-out layer's is its input's (the same shape)
        shapes = dict(zip(tensors, (info.output_shape for info in report.layers)))
        outputs += [helper.make_tensor_value_info(tensor, FLOAT, _dims(shape)) for tensor, shape in shapes.items()]
    body = helper.make_graph(graph.nodes, spec.name, [input_info], outputs, graph.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(body, opset_imports=opsets, producer_name="cnnspec", producer_version=__version__)
    # make_model stamps the newest IR version, which runtimes lag behind: use the oldest that has this opset
    model.ir_version = helper.find_min_ir_version_for(opsets)
    model.doc_string = f"{spec.name}: exported by cnnspec {__version__} from a spec of {len(spec.layers)} layers"
    metadata = {
        "cnnspec_version": __version__,
        "spec_name": spec.name,
        "spec": json.dumps(spec.to_dict()),
        "input_layout": layout,
        "num_classes": str(report.output_shape[-1]),
    }
    if class_names:
        metadata["class_names"] = json.dumps(list(class_names))
    helper.set_model_props(model, metadata)
    return model, tensors


def check_model(model: onnx.ModelProto, spec: ModelSpec, layer_tensors: list[str]) -> None:
    """onnx.checker (full check) and ONNX shape inference against the shape checker, layer by layer.

    ``layer_tensors``: per spec layer, the tensor holding its output (``to_onnx_with_layers``); every one
    must have an inferred shape, so no layer goes unchecked.
    """
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {
        vi.name: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]
        for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    }
    for info, tensor in zip(spec.summary().layers, layer_tensors):
        expected = _dims(info.output_shape)
        got = shapes.get(tensor)
        if got is None or got[1:] != expected[1:]:
            found = "no shape" if got is None else got[1:]
            raise CnnspecError(f"ONNX shape inference gives {found} for layer '{info.name}', the spec {expected[1:]}")
