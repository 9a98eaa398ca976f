"""ONNX Runtime for the image models: int8 (or fp32) graphs, lean session settings."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from predictors.artifacts import Artifact, ArtifactError

from . import RuntimeOptions

# Chosen by measurement (bench/ort_settings.py, docs/benchmarks.md).
GRAPH_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class OnnxImage:
    def __init__(self, session: ort.InferenceSession, size_bytes: int):
        self._session = session
        self._input = session.get_inputs()[0].name
        self.size_bytes = size_bytes

    @classmethod
    def load(cls, artifact: Artifact, options: RuntimeOptions) -> "OnnxImage":
        so = ort.SessionOptions()
        # The arena keeps peak activation memory forever; off, memory returns after each run.
        so.enable_cpu_mem_arena = False
        so.enable_mem_pattern = False
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
        shape = session.get_inputs()[0].shape
        spec = artifact.input_spec
        if len(shape) != 4 or shape[2:] != [spec["height"], spec["width"]]:
            raise ArtifactError(f"the graph's input shape {shape} does not match the card's "
                                f"{spec['height']}×{spec['width']}")
        outputs = session.get_outputs()[0].shape
        if outputs[-1] != len(artifact.labels):
            raise ArtifactError(f"the graph has {outputs[-1]} outputs, the card lists {len(artifact.labels)} labels")
        return cls(session, artifact.model_path.stat().st_size)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Softmax probabilities for one preprocessed image (1, 3, H, W)."""
        logits = self._session.run(None, {self._input: features.astype(np.float32, copy=False)})[0][0]
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()
