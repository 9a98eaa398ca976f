"""The baseline the benchmark compares against: image models served by PyTorch in the worker.

This is how the sites HealthOracle replaces serve their models. The shipped artifacts
hold ONNX graphs, not torch weights, so the baseline builds the same network
(the card's training.network) with freshly initialised weights: the same tensors, memory and arithmetic,
different numbers. Never used by the site itself.
"""
from __future__ import annotations

import numpy as np
import torch

from predictors.serving.artifacts import Artifact
from predictors.serving.runtimes.images import ImageOutput
from predictors.training.export import with_activation_map
from predictors.training.vision import build_network


class TorchImage:
    def __init__(self, network: torch.nn.Module, size_bytes: int):
        self._network = network
        self.size_bytes = size_bytes

    @classmethod
    def load(cls, artifact: Artifact, options) -> "TorchImage":
        architecture = artifact.card["training"]["network"]
        network = with_activation_map(build_network(architecture, len(artifact.labels)), architecture).eval()
        size = sum(p.numel() * p.element_size() for p in network.parameters())
        return cls(network, size)

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> ImageOutput:
        logits, cam = self._network(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)))
        # Random weights have no domain to measure: the baseline always answers, as it costs the same.
        return ImageOutput(probabilities=torch.softmax(logits, dim=1)[0].numpy(), activation_map=cam[0].numpy(),
                           domain_distance=0.0)
