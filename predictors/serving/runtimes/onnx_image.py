"""ONNX Runtime for the image models: int8 (or fp32) graphs, lean session settings.

A graph answers its logits, the top class's activation map and its domain score (how far
the picture lies from those it was trained on, predictors/training/domain.py) in one
run; the runtime turns the logits into calibrated probabilities with the temperature on
the model card.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from predictors.serving.artifacts import Artifact, ArtifactError

from . import RuntimeOptions

# Chosen by measurement (bench/ort_settings.py, docs/benchmarks.md).
GRAPH_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


OUTPUTS = ["logits", "cam", "domain_distance"]


@dataclass(frozen=True)
class ImageOutput:
    """Calibrated probabilities, one per label; where in the picture the top one came from
    (the class activation map on the network's last feature grid: coarse, upsample to show
    it); and how far the picture lies from the pictures the model was trained on."""

    probabilities: np.ndarray
    activation_map: np.ndarray
    domain_distance: float


class OnnxImage:
    def __init__(self, session: ort.InferenceSession, size_bytes: int, temperature: float):
        self._session = session
        self._input = session.get_inputs()[0].name
        self._temperature = temperature
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
        outputs = {output.name: output.shape for output in session.get_outputs()}
        if sorted(outputs) != sorted(OUTPUTS):
            raise ArtifactError(f"the graph's outputs are {sorted(outputs)}; an image model answers {OUTPUTS}")
        if outputs["logits"][-1] != len(artifact.labels):
            raise ArtifactError(f"the graph has {outputs['logits'][-1]} outputs, the card lists "
                                f"{len(artifact.labels)} labels")
        try:
            temperature = float(artifact.card["calibration"]["temperature"])
        except (KeyError, TypeError, ValueError):
            raise ArtifactError("the card has no calibration temperature (calibration.temperature)") from None
        if not temperature > 0:
            raise ArtifactError(f"the card's calibration temperature {temperature} is not positive")
        return cls(session, artifact.model_path.stat().st_size, temperature)

    def predict(self, features: np.ndarray) -> ImageOutput:
        """Calibrated probabilities and the activation map for one preprocessed image (1, 3, H, W)."""
        logits, cam, distance = self._session.run(OUTPUTS, {self._input: features.astype(np.float32, copy=False)})
        scaled = logits[0] / self._temperature
        exp = np.exp(scaled - scaled.max())
        return ImageOutput(probabilities=exp / exp.sum(), activation_map=cam[0], domain_distance=float(distance[0]))
