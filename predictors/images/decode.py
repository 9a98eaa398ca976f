"""Decoding an upload with hard limits, to upright 8-bit RGB at working size.

Refuses what it cannot read safely (formats, pixel counts, decoded bytes) before Pillow
decodes a pixel. Pure Pillow + numpy, no Django: training imports predictors.images.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from predictors.catalogue import IMAGE_FORMATS, image_format_words

from . import ecg_page

# A clinical upload is one still picture; a phone's MPO keeps its primary image first.
SINGLE_PRIMARY_FRAME_FORMATS = frozenset({"MPO"})

# JPEGs decode straight to a reduced scale no smaller than this, and other formats are
# box-reduced to it right after decoding: every consumer (the gate, the quality check,
# the models' inputs of at most 384 pixels) downsamples further, so nothing is lost, and
# every later step (EXIF rotation, alpha, 16-bit scaling, mode conversion) works on a
# small image instead of a full one.
DRAFT_MIN_SIDE = 512
# The largest decoded image, in bytes as Pillow stores it (4 bytes a pixel for any
# multi-band mode, 2 for 16-bit grey, 4 for 32-bit int or float grey), checked from the
# header before any pixel is decoded. Pixel counts alone let a 167 kB RGBA PNG cost a
# gigabyte; this keeps one decode inside the worker's 60 MB allowance per upload, and
# still takes a 12-megapixel fundus camera photo (4288×2848) losslessly as PNG.
MAX_DECODED_BYTES = 50_000_000
# Modes reduced a strip at a time, and the mode each strip is widened to first: Pillow
# cannot box-reduce palette, bilevel or 16-bit images, and it reduces images with alpha
# through a premultiplied copy; done whole, either would be a second full-size image.
_STRIP_WIDENED = {"P": "RGBA", "1": "L", "I;16": "I", "I;16L": "I", "I;16B": "I", "I;16N": "I",
                  "RGBA": "RGBA", "LA": "LA"}
# Scratch memory for one strip (in its widened, 4-byte-a-pixel form).
_STRIP_BYTES = 2_000_000
_GREY_WIDE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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
    # What the gate and the model transform both use, made by whichever asks first.
    _shared: dict[str, Image.Image] = field(default_factory=dict, repr=False, compare=False)

    def rectified_page(self) -> Image.Image:
        """The upload as a page at working size, seen square-on (ecg_page.rectified_page): the gate
        judges the picture on it and the ECG transform goes on from it, so it is found once."""
        if "rectified_page" not in self._shared:
            self._shared["rectified_page"] = ecg_page.rectified_page(self.image)
        return self._shared["rectified_page"]

    def record(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.bytes, "width": self.width,
                "height": self.height, "format": self.format}


def decode(data: bytes, *, max_bytes: int, max_pixels: int,
           max_decoded_bytes: int = MAX_DECODED_BYTES) -> DecodedImage:
    """Decode an upload into upright 8-bit RGB at working size, refusing what could hurt the worker.

    File size, pixel count and decoded size in bytes are checked from the header before
    any pixel is decoded, so a decompression bomb costs a few bytes of reading, not the
    worker's memory; the one full-size buffer is the decode itself, reduced at once.
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
            if fmt not in IMAGE_FORMATS:
                raise ImageRejected(
                    "unsupported_format",
                    f"{fmt or 'This'} files are not supported; upload a {image_format_words()} image.",
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
            needed = decoded_bytes(image.mode, *image.size)
            if needed > max_decoded_bytes:
                raise ImageRejected(
                    "image_too_large_to_decode",
                    f"The image is {width}×{height} pixels in {image.mode} mode, {needed / 1e6:.0f} MB decoded; "
                    f"the limit is {max_decoded_bytes / 1e6:.0f} MB. Save it as an 8-bit JPEG or a smaller PNG.",
                    413)
            orientation = image.getexif().get(_ORIENTATION_TAG, 1)
            image.load()
            peak = _grey_peak(image) if image.mode in _GREY_WIDE_MODES else None
            working = _reduce(image, max(1, min(image.size) // DRAFT_MIN_SIDE))
            del image
            rgb = to_rgb(working, peak=peak)
            if orientation in _TRANSPOSE_FOR_ORIENTATION:
                rgb = rgb.transpose(_TRANSPOSE_FOR_ORIENTATION[orientation])
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("too_many_pixels", "The image has too many pixels to decode safely.", 413) from None
    except Image.UnidentifiedImageError:
        raise ImageRejected("not_an_image", "The file is not an image this site can read.", 415) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("corrupt_image", "The image file is damaged or truncated.", 415) from None
    upright_swapped = orientation in (5, 6, 7, 8)
    return DecodedImage(
        image=rgb,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        width=height if upright_swapped else width,
        height=width if upright_swapped else height,
        format=fmt,
    )


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """Bytes Pillow allocates to hold an image of this mode and size (its storage, not the file)."""
    if Image.getmodebands(mode) > 1 or mode in ("I", "F"):
        per_pixel = 4
    elif mode.startswith("I;16"):
        per_pixel = 2
    else:
        per_pixel = 1
    return width * height * per_pixel


def _grey_peak(image: Image.Image) -> float:
    """The value that maps to white: 16-bit modes use their full range, wider ones their content's."""
    if image.mode.startswith("I;16"):
        return 65535.0
    return 65535.0 if image.getextrema()[1] > 255 else 255.0


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """Box-reduce by an integer factor; modes Pillow cannot reduce are widened a strip at a time,
    so no full-size copy in a wider mode ever exists."""
    if factor == 1:
        return image
    wide = _STRIP_WIDENED.get(image.mode)
    if wide is None:
        return image.reduce(factor)
    if image.mode == "P" and "transparency" not in image.info:
        wide = "RGB"
    width, height = image.size
    reduced = Image.new(wide, (-(-width // factor), -(-height // factor)))
    step = factor * max(1, _STRIP_BYTES // (4 * width * factor))
    for top in range(0, height, step):
        strip = image.crop((0, top, width, min(height, top + step))).convert(wide)
        reduced.paste(strip.reduce(factor), (0, top // factor))
    return reduced


def to_rgb(image: Image.Image, *, peak: float | None = None) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: transparency onto white, 16-bit and float scaled, CMYK converted.

    `peak` is the grey value that becomes white, decided on the full image before it was
    reduced (a reduced 16-bit image arrives widened to 32-bit). Work happens in float32
    on the image as given, which decode() has already brought to working size.
    """
    if image.mode in _GREY_WIDE_MODES:
        if peak is None:
            peak = _grey_peak(image)
        array = np.array(image, dtype=np.float32)
        array *= np.float32(255.0 / peak)
        np.clip(array, 0, 255, out=array)
        return Image.fromarray(array.astype(np.uint8), "L").convert("RGB")
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
    if image.mode in {"RGBA", "LA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image
