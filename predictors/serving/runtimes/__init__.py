"""One small interface every model kind implements, as in MLServer or Triton backends.

A runtime class has `load(artifact, options) -> runtime`, `predict(features) -> output`
and `size_bytes`. Runtime modules import their inference library (xgboost,
onnxruntime) themselves, so nothing heavy is imported until a model is first loaded; an
image model served by an Open Inference Protocol server (oip_image) imports none.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from predictors.serving.artifacts import Artifact

if TYPE_CHECKING:
    import numpy as np

RUNTIME_CLASSES = {
    "xgboost_tabular": "predictors.serving.runtimes.xgboost_tabular.XGBoostTabular",
    "onnx_image": "predictors.serving.runtimes.onnx_image.OnnxImage",
    "oip_image": "predictors.serving.runtimes.oip_image.RemoteImage",
}
# The kind a model is served as when its endpoint is a model server, by the kind on its card.
REMOTE_KINDS = {"onnx_image": "oip_image"}


@dataclass(frozen=True)
class InferenceEndpoint:
    """An Open Inference Protocol server that runs one model's graph (INFERENCE_URL)."""

    url: str
    timeout: float = 10.0
    token: str = ""


@dataclass(frozen=True)
class RuntimeOptions:
    intra_op_threads: int = 1
    graph_optimization: str = "all"
    # ONNX Runtime's memory: chosen by measurement under the worker's malloc settings
    # (bench/ort_settings.py, docs/benchmarks.md "ONNX Runtime settings").
    cpu_arena: bool = False
    memory_pattern: bool = True
    endpoints: dict[str, InferenceEndpoint] = field(default_factory=dict)  # model name -> its server


class RuntimeUnavailable(Exception):
    """A loaded runtime that cannot answer now for a reason outside its artifact (a model server
    down, slow, erroring or answering nonsense); the registry makes it the model's 503."""


class ModelRuntime(Protocol):
    size_bytes: int

    @classmethod
    def load(cls, artifact: Artifact, options: RuntimeOptions) -> "ModelRuntime": ...

    def predict(self, features: "np.ndarray") -> Any: ...


def runtime_class(kind: str, overrides: dict[str, str] | None = None) -> type[ModelRuntime]:
    """The class serving a model kind; MODEL_RUNTIME_OVERRIDES can swap one in (the benchmark's
    torch baseline does), the way serving systems let a model choose its backend."""
    try:
        dotted = (overrides or {}).get(kind) or RUNTIME_CLASSES[kind]
    except KeyError:
        raise ValueError(f"no runtime for model kind {kind!r}") from None
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)
