"""Re-capturing a photograph the ways a clinic does: dim rooms, tinted lamps, a shadow, a tilt,
a phone held over the paper, a page folded and opened again, a blur, a messaging app's
recompression, a photo of a screen.

One definition serves two users: bench/capture_robustness.py applies each family at
fixed strengths to the held-out test photos, and training draws milder ones at random for
augmentation (MILD_RANGES), so what the model learns and what it is judged on are the
same kinds of change. Every capture returns encoded bytes, because an upload is bytes:
the site's decoder, gate and transform see exactly what they would see from a clinic.
Deterministic for a given numpy Generator.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

from predictors.images.ecg_page import perspective_coefficients

# Phones and messaging apps send JPEG; captures other than the recompression family keep
# a phone camera's own quality so that they measure one change at a time.
CAMERA_JPEG_QUALITY = 92
# Table tops and desks a page is photographed on (RGB), and how much texture they have.
BACKGROUNDS = [(96, 72, 52), (60, 60, 64), (140, 110, 80), (35, 40, 45), (170, 160, 150)]


@dataclass(frozen=True)
class Capture:
    """One family at one strength, as the benchmark reports it."""

    family: str
    strength: float
    kinds: tuple[str, ...]  # "ecg", "fundus" or both

    @property
    def label(self) -> str:
        return f"{self.family} {self.strength:g}"


def _jpeg(image: Image.Image, quality: int = CAMERA_JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def _as_float(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _to_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def brightness(image: Image.Image, factor: float, rng: np.random.Generator) -> bytes:
    return _jpeg(_to_image(_as_float(image) * factor))


def contrast(image: Image.Image, factor: float, rng: np.random.Generator) -> bytes:
    array = _as_float(image)
    mean = array.mean()
    return _jpeg(_to_image((array - mean) * factor + mean))


def gamma(image: Image.Image, value: float, rng: np.random.Generator) -> bytes:
    return _jpeg(_to_image(255.0 * (_as_float(image) / 255.0) ** value))


def colour_cast(image: Image.Image, strength: float, rng: np.random.Generator) -> bytes:
    """A lamp's or a screen's white point: warm (tungsten) or cool (daylight LED), picked at random."""
    warm = rng.random() < 0.5
    gains = np.array([1 + strength, 1.0, 1 - strength]) if warm else np.array([1 - strength, 1.0, 1 + strength])
    return _jpeg(_to_image(_as_float(image) * gains.astype(np.float32)))


def uneven_light(image: Image.Image, strength: float, rng: np.random.Generator) -> bytes:
    """A shadow or a lamp's fall-off: brightness falling linearly across the picture by `strength`."""
    array = _as_float(image)
    height, width = array.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xx / width - 0.5) * math.cos(angle) + (yy / height - 0.5) * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    return _jpeg(_to_image(array * (1 - strength * ramp)[..., None]))


def tilt(image: Image.Image, degrees: float, rng: np.random.Generator) -> bytes:
    """A page fed askew into a scanner or a camera held slightly rolled; either direction."""
    sign = 1 if rng.random() < 0.5 else -1
    fill = (255, 255, 255) if _kind_of(image) == "ecg" else (0, 0, 0)
    return _jpeg(image.convert("RGB").rotate(sign * degrees, resample=Image.Resampling.BILINEAR, expand=True,
                                              fillcolor=fill))


def rotate(image: Image.Image, degrees: float, rng: np.random.Generator) -> bytes:
    transpose = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    return _jpeg(image.convert("RGB").transpose(transpose[int(degrees)]))


def phone_photo(image: Image.Image, strength: float, rng: np.random.Generator) -> bytes:
    """The paper lying on a table, photographed from above at an angle: each corner moved inwards by
    up to `strength` of the frame, a textured background around it, light falling off across it."""
    page = image.convert("RGB")
    width, height = page.size
    margin = 0.08
    frame = (round(width * (1 + 2 * margin)), round(height * (1 + 2 * margin)))
    background = np.empty((frame[1], frame[0], 3), dtype=np.float32)
    background[:] = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    background += rng.normal(0, 8, size=(frame[1] // 8 + 1, frame[0] // 8 + 1, 1)).repeat(8, 0).repeat(8, 1)[
        :frame[1], :frame[0]]
    jitter = lambda: rng.uniform(0, strength)  # noqa: E731
    # Where each page corner lands in the photo (top-left, top-right, bottom-right, bottom-left).
    ox, oy = width * margin, height * margin
    landed = np.array([
        [ox + jitter() * width, oy + jitter() * height],
        [ox + width - jitter() * width, oy + jitter() * height],
        [ox + width - jitter() * width, oy + height - jitter() * height],
        [ox + jitter() * width, oy + height - jitter() * height],
    ])
    page_corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    coefficients = perspective_coefficients(landed, page_corners)
    warped = page.transform(frame, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR)
    mask = Image.new("L", page.size, 255).transform(frame, Image.Transform.PERSPECTIVE, coefficients,
                                                    Image.Resampling.BILINEAR)
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    photo = _as_float(warped) * alpha + background * (1 - alpha)
    photo_image = _to_image(photo)
    return uneven_light(photo_image, 0.25 * rng.random(), rng)


def crease(image: Image.Image, strength: float, rng: np.random.Generator) -> bytes:
    """A printout folded (in half or in three, for a folder or a pocket) and opened flat again:
    across each fold a narrow shadow on one side and a sheen on the other, by `strength` (0-1)."""
    array = _as_float(image)
    height, width = array.shape[:2]
    across = rng.random() < 0.5  # folds across the page's width (vertical lines) or its height
    span = width if across else height
    folds = [0.5] if rng.random() < 0.5 else [1 / 3, 2 / 3]
    position = (np.arange(span, dtype=np.float32) + 0.5) / span
    shade = np.ones(span, dtype=np.float32)
    band = 0.012 * rng.uniform(0.7, 1.4)  # of the page, either side of the fold
    for fold in folds:
        offset = (position - (fold + rng.uniform(-0.03, 0.03))) / band
        # A derivative of a Gaussian: dark on one side of the fold, light on the other.
        shade += strength * float(rng.choice([-1, 1])) * 0.6 * offset * np.exp(0.5 - 0.5 * offset ** 2)
        shade -= strength * 0.35 * np.exp(-0.5 * (offset * 4) ** 2)  # the fold line itself
    field = shade[None, :] if across else shade[:, None]
    return _jpeg(_to_image(array * field[..., None]))


def blur(image: Image.Image, sigma: float, rng: np.random.Generator) -> bytes:
    """Out of focus or shaken; sigma in pixels of a 1000-pixel-wide picture, scaled to this one."""
    scaled = sigma * image.width / 1000
    return _jpeg(image.convert("RGB").filter(ImageFilter.GaussianBlur(scaled)))


def recompress(image: Image.Image, quality: float, rng: np.random.Generator) -> bytes:
    """What a messaging app sends: at most 1000 pixels wide, then JPEG at a low quality."""
    picture = image.convert("RGB")
    if picture.width > 1000:
        picture = picture.resize((1000, round(picture.height * 1000 / picture.width)), Image.Resampling.BILINEAR)
    return _jpeg(picture, int(quality))


def screen_photo(image: Image.Image, strength: float, rng: np.random.Generator) -> bytes:
    """The picture photographed off a monitor: a pixel-stripe pattern, a brighter centre, softness
    and a cooler white, each by `strength` (0-1)."""
    array = _as_float(image)
    height, width = array.shape[:2]
    stripes = np.ones((1, width, 3), dtype=np.float32)
    for channel in range(3):
        stripes[0, channel::3, channel] = 1 + 0.5 * strength
        stripes[0, (channel + 1) % 3::3, channel] = 1 - 0.5 * strength
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    glow = 1 - strength * 0.4 * (((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2) * 2)
    screen = array * stripes * glow[..., None] * np.array([0.92, 0.97, 1.05], dtype=np.float32)
    return _jpeg(_to_image(screen).filter(ImageFilter.GaussianBlur(0.8 * strength * width / 1000)), 80)


FAMILIES: dict[str, Callable[[Image.Image, float, np.random.Generator], bytes]] = {
    "brightness": brightness, "contrast": contrast, "gamma": gamma, "colour_cast": colour_cast,
    "uneven_light": uneven_light, "tilt": tilt, "rotate": rotate, "phone_photo": phone_photo,
    "crease": crease, "blur": blur, "recompress": recompress, "screen_photo": screen_photo,
}
BOTH = ("ecg", "fundus")

# What the benchmark measures: each family from mild to harsh.
BENCHMARK: list[Capture] = [
    *(Capture("brightness", s, BOTH) for s in (0.3, 0.45, 0.6, 0.8, 1.15, 1.3)),
    *(Capture("contrast", s, BOTH) for s in (0.5, 0.7, 1.3)),
    *(Capture("gamma", s, BOTH) for s in (0.6, 1.6)),
    *(Capture("colour_cast", s, BOTH) for s in (0.1, 0.2)),
    *(Capture("uneven_light", s, BOTH) for s in (0.3, 0.5)),
    *(Capture("tilt", s, BOTH) for s in (2, 4, 6, 10)),
    *(Capture("rotate", s, BOTH) for s in (90, 180)),
    *(Capture("phone_photo", s, ("ecg",)) for s in (0.05, 0.1)),
    *(Capture("blur", s, BOTH) for s in (0.8, 1.5, 3, 4)),
    *(Capture("recompress", s, BOTH) for s in (50, 35, 30)),
    *(Capture("screen_photo", s, BOTH) for s in (0.5, 1.0)),
]

# What training draws from: the same families, milder than the benchmark's harshest.
MILD_RANGES: dict[str, tuple[float, float]] = {
    "brightness": (0.45, 1.25), "contrast": (0.6, 1.25), "gamma": (0.7, 1.45), "colour_cast": (0.0, 0.15),
    "uneven_light": (0.0, 0.4), "tilt": (0.0, 7.0), "phone_photo": (0.0, 0.08), "blur": (0.0, 2.0),
    "recompress": (35, 70), "screen_photo": (0.2, 0.7), "crease": (0.1, 0.5),
}
# Families that act on a sheet of paper (photographed lying on a table, folded), so printouts only.
PAPER_ONLY = ("phone_photo", "crease")


def recapture(image: Image.Image, capture: Capture, seed: int) -> bytes:
    """The picture re-captured by one benchmark family at its strength, reproducibly."""
    return FAMILIES[capture.family](image, capture.strength, np.random.default_rng(seed))


def mild_families(kind: str) -> list[str]:
    """The capture families training draws from for one kind of picture; a page on a table
    photographed at an angle, or a folded page, is a printout only (PAPER_ONLY)."""
    return [family for family in MILD_RANGES if kind == "ecg" or family not in PAPER_ONLY]


def random_capture(image: Image.Image, kind: str, rng: np.random.Generator) -> bytes:
    """A training augmentation: one or two mild captures in a row, then as a phone sends it.

    Fundus photos are also turned freely (a camera's roll), which _augment does in the
    tensor; ECG pages are turned a quarter or half only because phones and scanners do.
    """
    picture = image.convert("RGB")
    for family in rng.choice(mild_families(kind), size=int(rng.integers(1, 3)), replace=False):
        low, high = MILD_RANGES[family]
        picture = Image.open(io.BytesIO(FAMILIES[family](picture, float(rng.uniform(low, high)), rng)))
        picture.load()
    if kind == "ecg" and rng.random() < 0.15:
        picture = Image.open(io.BytesIO(rotate(picture, float(rng.choice([90, 180, 270])), rng)))
    return _jpeg(picture, int(rng.integers(60, 95)))


def _kind_of(image: Image.Image) -> str:
    """Fundus photos are dark at the corners (the camera mask), ECG pages light."""
    small = np.asarray(image.convert("L").resize((16, 16)), dtype=np.float32)
    corners = np.concatenate([small[:2, :2].ravel(), small[:2, -2:].ravel(), small[-2:, :2].ravel(),
                              small[-2:, -2:].ravel()])
    return "fundus" if corners.mean() < 60 else "ecg"
