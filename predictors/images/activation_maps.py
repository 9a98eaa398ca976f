"""Where the model looked: its class activation map drawn over the picture it was given.

The map comes out of the same graph run as the answer (predictors.serving.runtimes.onnx_image),
on the network's last feature grid: a few cells across. It is drawn over the model's own
input, the cropped, straightened and normalised picture, because that is the geometry
the map belongs to; drawn over the upload it would point at the wrong place whenever
the transform cropped, turned or rectified the photo.

It is drawn at the model input's own size, a few hundred pixels across, which the browser scales
to its column; only the few-cells map is resized, and the colouring and blending are done in bytes:
on the free instance's tenth of a CPU every millisecond here is ten of the clinician's wait. The
result page shows it as a JPEG with the scale's legend in HTML (`scale_stops`, `LEGEND_WORDS`); the
API, which has no page around it, as a PNG with the legend drawn beneath.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

# How much of the colour scale covers the grey picture: enough to read the colour, little enough
# that the lesions or waves it points at still show through.
OVERLAY_STRENGTH = 0.45
# The colour scale, from least to most evidence (viridis's stops): no hue of a fundus (orange-red)
# or an ECG grid (pink), and it reads the same in grey print and to red-green colour blindness.
SCALE_STOPS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
# The legend's two ends, named: on the result page as text, in the API's PNG drawn beneath the picture.
LEGEND_WORDS = ("less evidence", "more evidence")
# The API's PNG legend: the scale as a bar, the words under it.
LEGEND_HEIGHT = 30
LEGEND_BAR = 10
# The page's JPEG: ECG traces are thin dark lines on a coloured field, the hardest case for JPEG;
# at 90 they look as the lossless picture does, enlarged too (42 dB PSNR on a real printout), in
# 11 to 14 kB for the inputs it was measured on (a 288-px fundus, a 272x160 ECG).
JPEG_QUALITY = 90
# 256 colours from the stops, interpolated in sRGB as a CSS or SVG gradient of the same stops is.
_STOPS = np.asarray(SCALE_STOPS, dtype=np.float64)
_PALETTE = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_STOPS)), _STOPS[:, c])
                     for c in range(3)], axis=1).round().astype(np.uint8)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def overlay(features: np.ndarray, activation_map: np.ndarray, spec: Mapping[str, Any]) -> Image.Image:
    """The model input (1, 3, H, W, normalised by the card's mean and std) in grey, under the map in a
    colour scale, at the input's own H x W: the picture is shown as the model saw it and the colour
    says where its evidence for the top class was."""
    mean = np.asarray(spec["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(spec["std"], dtype=np.float32)[:, None, None]
    picture = np.clip(features[0] * std + mean, 0, 1)
    grey = Image.fromarray(np.tensordot(_LUMA * 255, picture, axes=1).astype(np.uint8), "L")
    # Relative, as class activation maps are shown: the map's own lowest cell is the scale's low
    # end and its highest the high end. Its absolute level carries the class bias, which can put
    # every cell below zero while one part of the picture still carried the answer most.
    evidence = activation_map.astype(np.float32)
    span = float(evidence.max() - evidence.min())
    cells = (np.round((evidence - evidence.min()) * (255 / span)) if span > 0 else np.zeros_like(evidence))
    heat = Image.fromarray(cells.astype(np.uint8), "L").resize(grey.size, Image.Resampling.BILINEAR)
    heat.putpalette(_PALETTE.tobytes())
    return Image.blend(grey.convert("RGB"), heat.convert("RGB"), OVERLAY_STRENGTH)


def overlay_jpeg(features: np.ndarray, activation_map: np.ndarray, spec: Mapping[str, Any]) -> bytes:
    """The overlay for the result page, whose legend is HTML: as a JPEG, for a 288-px fundus input 0.15 ms
    of CPU and 14 kB where a PNG (compress level 1) is 4 ms and 94 kB."""
    buffer = io.BytesIO()
    overlay(features, activation_map, spec).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def overlay_png(features: np.ndarray, activation_map: np.ndarray, spec: Mapping[str, Any]) -> bytes:
    """The overlay for the API, with the scale's legend drawn beneath: an API client has no page to
    say what the colours mean."""
    picture = overlay(features, activation_map, spec)
    canvas = Image.new("RGB", (picture.width, picture.height + LEGEND_HEIGHT), "white")
    canvas.paste(picture)
    _draw_legend(canvas, picture.height)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=1)  # level 6 takes four times as long for 10% less
    return buffer.getvalue()


def scale_stops() -> list[tuple[str, str]]:
    """The colour scale's stops as (offset, hex colour), for the page's legend, which draws the same
    scale as a gradient of them: the stops are written once, here."""
    last = len(SCALE_STOPS) - 1
    return [(f"{i / last:.0%}", "#{:02x}{:02x}{:02x}".format(*stop)) for i, stop in enumerate(SCALE_STOPS)]


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
    bar = _PALETTE[np.linspace(0, 255, canvas.width).astype(np.uint8)]
    canvas.paste(Image.fromarray(np.repeat(bar[None], LEGEND_BAR, axis=0), "RGB"), (0, top + 2))
    draw = ImageDraw.Draw(canvas)
    low, high = LEGEND_WORDS
    draw.text((2, top + LEGEND_BAR + 4), low, fill="black")
    draw.text((canvas.width - 2, top + LEGEND_BAR + 4), high, fill="black", anchor="ra")


def data_uri(jpeg: bytes) -> str:
    """The page's JPEG as a data: URI: it lives only in the response that answers the upload."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
