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
from PIL import Image, ImageDraw

# The picture is shown this many pixels wide; the PNG stays a few tens of kilobytes.
OVERLAY_WIDTH = 320
# How much of the colour scale covers the grey picture: enough to read the colour, little enough
# that the lesions or waves it points at still show through.
OVERLAY_STRENGTH = 0.45
# The colour scale, from least to most evidence (viridis's stops): no hue of a fundus (orange-red)
# or an ECG grid (pink), and it reads the same in grey print and to red-green colour blindness.
SCALE_STOPS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
                       dtype=np.float32) / 255
# The legend under the picture: the scale as a bar, its two ends named.
LEGEND_HEIGHT = 30
LEGEND_BAR = 10
LEGEND_WORDS = ("less evidence", "more evidence")
_SCALE = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(SCALE_STOPS)), SCALE_STOPS[:, c])
                   for c in range(3)], axis=1).astype(np.float32)


def overlay_png(features: np.ndarray, activation_map: np.ndarray, spec: dict) -> bytes:
    """A PNG of the model input (1, 3, H, W, normalised by the card's mean and std) in grey, under the
    map in a colour scale, with the scale's legend beneath: the picture is shown as the model saw it
    and the colour says where its evidence for the top class was."""
    mean = np.asarray(spec["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(spec["std"], dtype=np.float32)[:, None, None]
    picture = np.clip((features[0] * std + mean).transpose(1, 2, 0), 0, 1)
    height, width = picture.shape[:2]
    size = (OVERLAY_WIDTH, round(height * OVERLAY_WIDTH / width))
    grey = picture @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey = np.asarray(Image.fromarray(grey, "F").resize(size, Image.Resampling.BILINEAR))[..., None]
    # Relative, as class activation maps are shown: the map's own lowest cell is the scale's low
    # end and its highest the high end. Its absolute level carries the class bias, which can put
    # every cell below zero while one part of the picture still carried the answer most.
    evidence = activation_map.astype(np.float32)
    span = float(evidence.max() - evidence.min())
    heat = (evidence - evidence.min()) / span if span > 0 else np.zeros_like(evidence)
    heat = np.asarray(Image.fromarray(heat, "F").resize(size, Image.Resampling.BILINEAR))
    colour = _SCALE[np.clip(heat * 255, 0, 255).astype(np.uint8)]
    blended = grey * (1 - OVERLAY_STRENGTH) + colour * OVERLAY_STRENGTH
    canvas = Image.new("RGB", (size[0], size[1] + LEGEND_HEIGHT), "white")
    canvas.paste(Image.fromarray((blended * 255).astype(np.uint8), "RGB"))
    _draw_legend(canvas, size[1])
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=1)  # level 6 takes four times as long for 10% less
    return buffer.getvalue()


# The picture in thirds, as a sentence names a place in it.
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "centre", "right")
# Cells within this share of the map's range of its highest make up the area it was strongest in.
STRONG = 0.8


def strongest_place(activation_map: np.ndarray) -> str:
    """Where in the picture the map was strongest, as words that follow "strongest" in its alt text:
    "in the top left", "on the right", "in the centre", or "in several places" when its strongest
    cells lie more than half the picture apart (their centre would name a place between them)."""
    evidence = activation_map.astype(np.float32)
    span = float(evidence.max() - evidence.min())
    if not span > 0:
        return "nowhere: it is the same everywhere"
    heat = (evidence - evidence.min()) / span
    ys, xs = np.nonzero(heat >= STRONG)
    height, width = heat.shape
    if (ys.max() - ys.min() + 1) / height > 0.5 or (xs.max() - xs.min() + 1) / width > 0.5:
        return "in several places across the picture"
    weights = heat[ys, xs]
    row = ROWS[min(2, int(3 * (np.average(ys, weights=weights) + 0.5) / height))]
    column = COLUMNS[min(2, int(3 * (np.average(xs, weights=weights) + 0.5) / width))]
    if row == "middle":
        return "in the centre" if column == "centre" else f"on the {column}"
    return f"in the {row} {column}"


def _draw_legend(canvas: Image.Image, top: int) -> None:
    bar = (_SCALE[np.linspace(0, 255, canvas.width).astype(np.uint8)] * 255).astype(np.uint8)
    canvas.paste(Image.fromarray(np.repeat(bar[None], LEGEND_BAR, axis=0), "RGB"), (0, top + 2))
    draw = ImageDraw.Draw(canvas)
    low, high = LEGEND_WORDS
    draw.text((2, top + LEGEND_BAR + 4), low, fill="black")
    draw.text((canvas.width - 2, top + LEGEND_BAR + 4), high, fill="black", anchor="ra")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
