"""The MLServer runtime for HealthOracle's image graphs: MLServer 1.7 ships none for ONNX.

Not imported by the site: `manage.py write_inference_repository` copies this file to the root
of the MLServer model repository it writes, and each model-settings.json names
`healthoracle_onnx.OnnxImageModel`. It runs the graph as the site's own runtime does
(predictors/serving/runtimes/onnx_image.py: the same session options, repeated here because
this file travels alone) and answers every output the graph has, as FP32 tensors.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

GRAPH_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class OnnxImageModel(MLModel):
    async def load(self) -> bool:
        extra = (self.settings.parameters.extra if self.settings.parameters else None) or {}
        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = True  # as the web process's own runtime (runtimes/onnx_image.py)
        options.intra_op_num_threads = int(extra.get("intra_op_threads", 1))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = GRAPH_OPTIMIZATION[extra.get("graph_optimization", "all")]
        options.log_severity_level = 3
        path = await get_model_uri(self.settings)
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [output.name for output in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensor = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        results = self._session.run(self._outputs, {self._input: tensor})
        return InferenceResponse(
            model_name=self.name, model_version=self.version,
            outputs=[NumpyCodec.encode_output(name, np.asarray(result, dtype=np.float32))
                     for name, result in zip(self._outputs, results)])
