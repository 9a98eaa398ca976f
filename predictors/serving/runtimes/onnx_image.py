"""ONNX Runtime for the image models in this process: int8 (or fp32) graphs, lean session settings.

The graph's three outputs become an ImageOutput (runtimes/images.py) with the temperature on
the model card.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from predictors.serving.artifacts import Artifact, ArtifactError

from . import RuntimeOptions
from .images import OUTPUTS, ImageOutput, card_temperature, check_graph, image_output

# Chosen by measurement (bench/ort_settings.py, docs/benchmarks.md).
GRAPH_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class OnnxImage:
    def __init__(self, session: ort.InferenceSession, size_bytes: int, temperature: float):
        self._session = session
        self._input = session.get_inputs()[0].name
        self._temperature = temperature
        self.size_bytes = size_bytes

    @classmethod
    def load(cls, artifact: Artifact, options: RuntimeOptions) -> "OnnxImage":
        so = ort.SessionOptions()
        # The arena keeps each model's peak activation memory resident for good (about 20 MB for
        # both); the memory pattern plans one block a run instead, which the worker's malloc
        # settings (serving/memory.py) hand back after it, and saves most of the arena's time.
        so.enable_cpu_mem_arena = options.cpu_arena
        so.enable_mem_pattern = options.memory_pattern
        so.intra_op_num_threads = options.intra_op_threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = GRAPH_OPTIMIZATION[options.graph_optimization]
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(artifact.model_path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(f"ONNX Runtime cannot load {artifact.model_path.name}: {first_line}") from exc
        check_graph(artifact, session.get_inputs()[0].shape,
                    {output.name: output.shape for output in session.get_outputs()})
        temperature = card_temperature(artifact)
        return cls(session, artifact.model_path.stat().st_size, temperature)

    def predict(self, features: np.ndarray) -> ImageOutput:
        """Calibrated probabilities and the activation map for one preprocessed image (1, 3, H, W)."""
        logits, cam, distance = self._session.run(OUTPUTS, {self._input: features.astype(np.float32, copy=False)})
        return image_output(logits, cam, distance, self._temperature)
