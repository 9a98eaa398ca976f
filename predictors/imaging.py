"""Image handling shared by the web runtime and the training pipeline.

Decoding with hard limits, the cheap fundus / ECG / other gate, and the one definition
of the model transform. Pure Pillow + numpy: training imports this module, so the
pixels a model was trained on and the pixels it is served are made by the same code.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageOps

# Formats a browser, a scanner or a phone produces. Anything else is refused before
# Pillow's decoder for it ever runs.
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "BMP", "WEBP", "TIFF", "GIF"})
# A clinical upload is one still picture; a phone's MPO keeps its primary image first.
SINGLE_PRIMARY_FRAME_FORMATS = frozenset({"MPO"})

GATE_SIZE = 256
# JPEGs decode straight to a reduced scale no smaller than this: every consumer (the
# gate, a 224-pixel model input) downsamples further, and a 12-megapixel phone photo
# then costs a quarter of the time and a sixteenth of the memory to decode.
DRAFT_MIN_SIDE = 512


class ImageRejected(Exception):
    """An upload the site will not run through a model, with the status that says why."""

    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class DecodedImage:
    """An upload decoded to upright 8-bit RGB (JPEGs at a reduced scale), with what the
    history keeps instead of the file: its hash, size and upright full dimensions."""

    image: Image.Image
    sha256: str
    bytes: int
    width: int
    height: int
    format: str

    def record(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.bytes, "width": self.width,
                "height": self.height, "format": self.format}


def decode(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Decode an upload into upright 8-bit RGB, refusing what could hurt the worker.

    Size and pixel count are checked from the header before any pixel is decoded, so
    a decompression bomb costs a few bytes of reading, not the worker's memory.
    """
    if not data:
        raise ImageRejected("empty_file", "The uploaded file is empty.", 400)
    if len(data) > max_bytes:
        raise ImageRejected(
            "file_too_large",
            f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.", 413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format or ""
            if fmt not in ALLOWED_FORMATS:
                raise ImageRejected(
                    "unsupported_format",
                    f"{fmt or 'This'} files are not supported; upload a PNG, JPEG, BMP, WebP or TIFF image.",
                    415)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    "too_many_pixels",
                    f"The image is {width}×{height} pixels; the limit is {max_pixels / 1e6:.0f} megapixels.",
                    413)
            if getattr(image, "n_frames", 1) > 1 and fmt not in SINGLE_PRIMARY_FRAME_FORMATS:
                raise ImageRejected(
                    "multi_frame_image",
                    "Animated or multi-page images are not supported; upload a single still image.",
                    415)
            if fmt in ("JPEG", "MPO"):
                image.draft("RGB", (DRAFT_MIN_SIDE, DRAFT_MIN_SIDE))
            image.load()
            rgb = to_rgb(ImageOps.exif_transpose(image))
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("too_many_pixels", "The image has too many pixels to decode safely.", 413) from None
    except Image.UnidentifiedImageError:
        raise ImageRejected("not_an_image", "The file is not an image this site can read.", 415) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("corrupt_image", "The image file is damaged or truncated.", 415) from None
    upright_swapped = rgb.size != image.size and rgb.size[::-1] == image.size
    return DecodedImage(
        image=rgb,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        width=height if upright_swapped else width,
        height=width if upright_swapped else height,
        format=fmt,
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: transparency onto white, 16-bit scaled, CMYK converted."""
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / peak * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(array, "L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


@dataclass(frozen=True)
class SceneScores:
    """Cheap global statistics that tell a fundus photo from an ECG printout.

    Measured on a 256×256 thumbnail: ECG paper is one dominant light tone crossed by
    thin darker traces and grid lines, mostly flat between them; a colour fundus photo is a red-orange disc in a
    dark camera mask; a red-free fundus crop is smooth mid-grey with a little structure.
    """

    median_luma: float
    luma_std: float
    near_median: float
    ink_fraction: float
    edge_fraction: float
    flat_fraction: float
    border_luma: float
    centre_luma: float
    colourfulness: float
    red_dominance: float

    @property
    def kind(self) -> str:
        if self._looks_like_ecg():
            return "ecg"
        if self._looks_like_fundus():
            return "fundus"
        return "other"

    def _looks_like_ecg(self) -> bool:
        return (self.median_luma >= 110 and self.near_median >= 0.5
                and 0.005 <= self.ink_fraction <= 0.15 and self.edge_fraction >= 0.02
                and self.flat_fraction >= 0.25 and self.colourfulness < 80)

    def _looks_like_fundus(self) -> bool:
        colour_photo = (self.border_luma < 45 and self.centre_luma > self.border_luma + 30
                        and self.red_dominance > 1.2)
        red_free_crop = (self.colourfulness < 8 and 40 <= self.median_luma < 200
                         and self.near_median >= 0.8 and self.luma_std >= 3
                         and self.edge_fraction < 0.02 and self.ink_fraction < 0.05)
        return colour_photo or red_free_crop


def scene_scores(image: Image.Image) -> SceneScores:
    small = image.convert("RGB").resize((GATE_SIZE, GATE_SIZE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    median = float(np.median(luma))
    yy, xx = np.mgrid[0:GATE_SIZE, 0:GATE_SIZE]
    radius = np.hypot(yy - (GATE_SIZE - 1) / 2, xx - (GATE_SIZE - 1) / 2) / (GATE_SIZE / 2)
    centre = radius < 0.6
    gy = np.abs(np.diff(luma, axis=0))[:, :-1]
    gx = np.abs(np.diff(luma, axis=1))[:-1, :]
    gradient = np.maximum(gx, gy)
    red, blue = rgb[..., 0][centre].mean(), rgb[..., 2][centre].mean()
    return SceneScores(
        median_luma=median,
        luma_std=float(luma.std()),
        near_median=float((np.abs(luma - median) < 30).mean()),
        ink_fraction=float((luma < median - 40).mean()),
        edge_fraction=float((gradient > 25).mean()),
        flat_fraction=float((gradient < 12).mean()),
        border_luma=float(luma[radius > 1.05].mean()),
        centre_luma=float(luma[centre].mean()),
        colourfulness=float((rgb.max(axis=2) - rgb.min(axis=2)).mean()),
        red_dominance=float((red + 1) / (blue + 1)),
    )


GATE_MESSAGES = {
    "fundus": "This does not look like a retinal fundus photograph. Upload a colour fundus "
              "photo (the round, orange-red view of the back of the eye).",
    "ecg": "This does not look like an ECG printout. Upload a scan or photo of a 12-lead ECG "
           "on light paper.",
}


def gate(image: Image.Image, expected: str) -> SceneScores:
    """Refuse an image that is not the kind of picture the model was trained on."""
    scores = scene_scores(image)
    if scores.kind != expected:
        raise ImageRejected(f"not_{expected}", GATE_MESSAGES[expected], 422)
    return scores


def model_input(image: Image.Image, spec: Mapping[str, Any]) -> np.ndarray:
    """The model transform: the card's input spec applied to an RGB image.

    Matches torchvision's Resize / CenterCrop / ToTensor / Normalize on PIL images
    pixel for pixel (tests hold it to that), so weights trained with torchvision
    transforms elsewhere can be imported and served.
    """
    height, width = spec["height"], spec["width"]
    rule = spec["resize"]
    if rule == "shorter_side_then_centre_crop":
        resized = _resize_shorter_side(image, int(spec["resize_shorter_side"]))
        left = int(round((resized.width - width) / 2.0))
        top = int(round((resized.height - height) / 2.0))
        resized = resized.crop((left, top, left + width, top + height))
    elif rule == "stretch":
        resized = image.resize((width, height), Image.Resampling.BILINEAR)
    else:
        raise ValueError(f"unknown resize rule {rule!r}")
    array = np.asarray(resized.convert("RGB"), dtype=np.float32) / 255.0
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    array = (array - mean) / std
    return np.ascontiguousarray(array.transpose(2, 0, 1)[np.newaxis])


def _resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    return image.resize((new_w, new_h), Image.Resampling.BILINEAR)
