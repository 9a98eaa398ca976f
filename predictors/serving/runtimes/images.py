"""What every image runtime answers, wherever the graph runs: this process (onnx_image) or an
Open Inference Protocol server (oip_image). Written once so a remote answer is the local one:
the same outputs checked against the card, the same temperature, the same softmax.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from predictors.serving.artifacts import Artifact, ArtifactError

# A graph answers its logits, the top class's activation map and its domain score (how far the
# picture lies from those it was trained on, predictors/training/domain.py) in one run.
OUTPUTS = ["logits", "cam", "domain_distance"]


@dataclass(frozen=True)
class ImageOutput:
    """Calibrated probabilities, one per label; where in the picture the top one came from
    (the class activation map on the network's last feature grid: coarse, upsample to show
    it); and how far the picture lies from the pictures the model was trained on."""

    probabilities: np.ndarray
    activation_map: np.ndarray
    domain_distance: float


def check_graph(artifact: Artifact, input_shape: Sequence, output_shapes: Mapping[str, Sequence]) -> None:
    """Refuse a graph (local, or as a model server describes it) that does not take the card's
    input or answer what an image model answers; a dimension may be symbolic (batch)."""
    spec = artifact.input_spec
    if len(input_shape) != 4 or list(input_shape[2:]) != [spec["height"], spec["width"]]:
        raise ArtifactError(f"the graph's input shape {list(input_shape)} does not match the card's "
                            f"{spec['height']}×{spec['width']}")
    if sorted(output_shapes) != sorted(OUTPUTS):
        raise ArtifactError(f"the graph's outputs are {sorted(output_shapes)}; an image model answers {OUTPUTS}")
    classes = list(output_shapes["logits"])[-1]
    if classes != len(artifact.labels):
        raise ArtifactError(f"the graph has {classes} outputs, the card lists {len(artifact.labels)} labels")


def card_temperature(artifact: Artifact) -> float:
    try:
        temperature = float(artifact.card["calibration"]["temperature"])
    except (KeyError, TypeError, ValueError):
        raise ArtifactError("the card has no calibration temperature (calibration.temperature)") from None
    if not temperature > 0:
        raise ArtifactError(f"the card's calibration temperature {temperature} is not positive")
    return temperature


def image_output(logits: np.ndarray, cam: np.ndarray, distance: np.ndarray, temperature: float) -> ImageOutput:
    """One image's answer from the graph's three outputs (batch of one)."""
    scaled = logits[0] / temperature
    exp = np.exp(scaled - scaled.max())
    return ImageOutput(probabilities=exp / exp.sum(), activation_map=cam[0], domain_distance=float(distance[0]))
