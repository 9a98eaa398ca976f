"""Where the model looked: its class activation map drawn over the picture it was given.

The map comes out of the same graph run as the answer (predictors.serving.runtimes.onnx_image),
on the network's last feature grid: a few cells across. It is drawn over the model's own
input, the cropped, straightened and normalised picture, because that is the geometry
the map belongs to; drawn over the upload it would point at the wrong place whenever
the transform cropped, turned or rectified the photo.
"""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# The picture is shown this many pixels wide; the PNG stays a few tens of kilobytes.
OVERLAY_WIDTH = 320
# How much of the heat colour covers the picture where the model looked most.
OVERLAY_STRENGTH = 0.55


def overlay_png(features: np.ndarray, activation_map: np.ndarray, spec: dict) -> bytes:
    """A PNG of the model input (1, 3, H, W, normalised by the card's mean and std) with the map
    drawn over it: warm where the top class's evidence was, the picture untouched elsewhere."""
    mean = np.asarray(spec["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(spec["std"], dtype=np.float32)[:, None, None]
    picture = np.clip((features[0] * std + mean).transpose(1, 2, 0), 0, 1)
    height, width = picture.shape[:2]
    # Relative, as class activation maps are shown: the map's own lowest cell is cold and its
    # highest hot. Its absolute level carries the class bias, which can put every cell below
    # zero while one part of the picture still carried the answer most.
    evidence = activation_map.astype(np.float32)
    span = float(evidence.max() - evidence.min())
    heat = (evidence - evidence.min()) / span if span > 0 else np.zeros_like(evidence)
    heat = np.asarray(Image.fromarray(heat, "F").resize((width, height), Image.Resampling.BILINEAR))[..., None]
    colour = np.array([1.0, 0.35, 0.0], dtype=np.float32)  # orange-red: the conventional "hot"
    blended = picture * (1 - OVERLAY_STRENGTH * heat) + colour * (OVERLAY_STRENGTH * heat)
    image = Image.fromarray((blended * 255).astype(np.uint8), "RGB")
    image = image.resize((OVERLAY_WIDTH, round(height * OVERLAY_WIDTH / width)), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
