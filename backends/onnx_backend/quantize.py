"""Smaller, faster variants of an exported model: int8 (static, calibrated) and float16.

int8 is ONNX Runtime's static quantization (QDQ format, per-channel int8
weights, uint8 activations) calibrated on training images; float16 converts
weights and arithmetic but keeps float32 inputs and outputs. Neither keeps the
1e-5 parity of the float32 graph, so export reports their test accuracy instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper


def _mark(model: onnx.ModelProto, precision: str) -> onnx.ModelProto:
    props = {p.key: p.value for p in model.metadata_props}
    props["precision"] = precision
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    return model


def quantize_int8(model: onnx.ModelProto, calibration: np.ndarray, batch: int = 32) -> onnx.ModelProto:
    """Static int8 quantization calibrated on ``calibration`` (images in the model's input layout)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": calibration[i : i + batch]} for i in range(0, len(calibration), batch)])

        def get_next(self):  # noqa: ANN201 - ONNX Runtime's interface
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, quantized = (Path(tmp) / name for name in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, source)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantized),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return _mark(onnx.load(quantized), "int8")


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Float16 weights and arithmetic, float32 input and outputs."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return _mark(convert_float_to_float16(model, keep_io_types=True), "fp16")
