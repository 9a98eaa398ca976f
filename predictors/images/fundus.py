"""A fundus photo's field of view and its light and colour, normalised inside it."""
from __future__ import annotations

import numpy as np
from PIL import Image

from . import channels

# A fundus camera's mask is near black; the retina, even at its darkest edge, is not.
# The threshold follows the photo's own exposure (a share of the way from its mask's black
# to its brightest pixels), so a dim or washed-out photo keeps its whole disc, with a
# floor above JPEG noise in the mask.
FOV_THRESHOLD_SHARE = 0.08
FOV_THRESHOLD_FLOOR = 6
# A row or column belongs to the field of view when this share of it is lit: a stray
# bright pixel (a label, a reflection) in the mask does not stretch the crop.
FOV_MIN_SHARE = 0.02
# The disc is looked for on a copy with about this many pixels on its shorter side.
FOV_FIND_SIDE = 160


def crop_field_of_view(image: Image.Image) -> Image.Image:
    """Crop a fundus photo to its circular field of view, padded square with black.

    Cameras frame the retina differently (full circle, circle cut at top and bottom,
    wide black margins); cropping to the lit disc makes the optic disc and lesions the
    same size in the model's input whatever the camera did. The disc is found on a copy
    about FOV_FIND_SIDE pixels high; a square box around it is cut from the image itself,
    padded with the mask's level where it reaches past the photo's edge.
    """
    rgb = channels.as_rgb(image)
    box, brightest, lit = _find_field_of_view(rgb)
    if box is None:
        return rgb
    left, top, right, bottom = box
    side = max(right - left, bottom - top)
    x0, y0 = left - (side - (right - left)) // 2, top - (side - (bottom - top)) // 2
    square = rgb.crop((x0, y0, x0 + side, y0 + side))
    if x0 >= 0 and y0 >= 0 and x0 + side <= rgb.width and y0 + side <= rgb.height:
        return square
    # Padded with the camera mask's own level, so a washed-out photo's grey mask and the
    # padding are one background, never a lit ring around the disc.
    mask_level = int(np.median(brightest[~lit])) if (~lit).any() else 0
    padded = Image.new("RGB", (side, side), (mask_level,) * 3)
    padded.paste(rgb.crop((max(0, x0), max(0, y0), min(rgb.width, x0 + side), min(rgb.height, y0 + side))),
                 (max(0, -x0), max(0, -y0)))
    return padded


def field_of_view_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The box (left, top, right, bottom; right and bottom excluded) around a fundus photo's lit
    disc, in the photo's own pixels, found as `crop_field_of_view` finds it; None when nothing
    is lit. The one field-of-view finder: training's other-camera looks draw their masks on it."""
    return _find_field_of_view(channels.as_rgb(image))[0]


def _find_field_of_view(rgb: Image.Image) -> tuple[tuple[int, int, int, int] | None, np.ndarray, np.ndarray]:
    """The lit disc's box in `rgb`'s pixels, with the brightest channel and the lit mask of the
    reduced copy it was found on (the crop pads with the mask's level from them)."""
    factor = max(1, min(rgb.size) // FOV_FIND_SIDE)
    small = rgb.reduce(factor) if factor > 1 else rgb
    brightest = channels.brightest(np.asarray(small, dtype=np.uint8))
    lit = field_of_view_mask(brightest)
    rows = np.flatnonzero(lit.mean(axis=1) > FOV_MIN_SHARE)
    cols = np.flatnonzero(lit.mean(axis=0) > FOV_MIN_SHARE)
    if rows.size == 0 or cols.size == 0:
        return None, brightest, lit
    left, top = int(cols[0]) * factor, int(rows[0]) * factor
    right, bottom = min(rgb.width, (int(cols[-1]) + 1) * factor), min(rgb.height, (int(rows[-1]) + 1) * factor)
    return (left, top, right, bottom), brightest, lit


def field_of_view_mask(brightest: np.ndarray) -> np.ndarray:
    """Pixels inside the camera's lit disc, from the brightest channel of each pixel."""
    counts = np.cumsum(np.bincount(brightest.astype(np.uint8).ravel(), minlength=256))
    black, bright = (float(np.searchsorted(counts, share * counts[-1])) for share in (0.01, 0.99))
    return brightest > black + max(FOV_THRESHOLD_FLOOR, FOV_THRESHOLD_SHARE * (bright - black))


# Inside the field of view, each channel is divided by its own smooth illumination (the
# channel averaged over a FUNDUS_LIGHT_GRID × FUNDUS_LIGHT_GRID grid of the disc, then
# interpolated) and then given this mean and spread, per channel: a dim, tinted or
# unevenly lit photo and a well-exposed one come out alike, while vessels, haemorrhages
# and exudates keep their contrast against the retina around them.
FUNDUS_LIGHT_GRID = 12
FUNDUS_TARGET_MEAN = (150.0, 80.0, 40.0)
FUNDUS_TARGET_STD = (28.0, 22.0, 14.0)


def normalise_fundus(rgb: np.ndarray) -> np.ndarray:
    """A fundus photo (H, W, 3 float32, 0-255) with illumination and colour normalised inside its field of view."""
    mask = field_of_view_mask(channels.brightest(rgb))
    if mask.mean() < 0.05:
        return rgb
    height, width = mask.shape
    grid = (FUNDUS_LIGHT_GRID, FUNDUS_LIGHT_GRID)

    def smooth(values: np.ndarray) -> np.ndarray:
        small = Image.fromarray(values.astype(np.float32), "F").resize(grid, Image.Resampling.BOX)
        return np.asarray(small.resize((width, height), Image.Resampling.BILINEAR))

    weight = np.maximum(smooth(mask), 1e-3)
    out = np.zeros_like(rgb)
    for channel in range(3):
        values = rgb[..., channel] * mask
        ratio = values / np.maximum(smooth(values) / weight, 1.0)
        inside = ratio[mask]
        spread = max(float(inside.std()), 1e-3)
        out[..., channel] = ((ratio - float(inside.mean())) / spread * FUNDUS_TARGET_STD[channel]
                             + FUNDUS_TARGET_MEAN[channel]) * mask
    return np.clip(out, 0, 255)


# Red or pink grid ink: clearly more red than green and no bluer than red (a grey text
