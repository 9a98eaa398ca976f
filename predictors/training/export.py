"""PyTorch -> ONNX export and ONNX Runtime static int8 quantization."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

OPSET = 17


def export_onnx(model: torch.nn.Module, path: Path, input_spec: dict[str, Any]) -> None:
    """Export with a dynamic batch axis; input 'input' (N,3,H,W) float32, output 'logits'."""
    dummy = torch.zeros(1, 3, input_spec["height"], input_spec["width"])
    torch.onnx.export(model.eval(), (dummy,), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET,
                      dynamo=False)


class _ArrayReader(CalibrationDataReader):
    def __init__(self, name: str, images: np.ndarray):
        self._items = iter([{name: images[i:i + 1]} for i in range(len(images))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_int8(fp32_path: Path, int8_path: Path, calibration: np.ndarray) -> None:
    """Static QDQ quantization, per-channel int8 weights, calibrated on real training inputs."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(int8_path), _ArrayReader("input", calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
