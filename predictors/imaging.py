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
from PIL import Image

from . import ecg_page, image_quality

# Formats a browser, a scanner or a phone produces. Anything else is refused before
# Pillow's decoder for it ever runs.
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "BMP", "WEBP", "TIFF", "GIF"})
# A clinical upload is one still picture; a phone's MPO keeps its primary image first.
SINGLE_PRIMARY_FRAME_FORMATS = frozenset({"MPO"})

GATE_SIZE = 256
# The gate brightens a dim picture by up to this factor before judging what it shows.
GATE_MAX_GAIN = 4.0
# JPEGs decode straight to a reduced scale no smaller than this, and other formats are
# box-reduced to it right after decoding: every consumer (the gate, the quality check,
# the models' inputs of at most 288 pixels) downsamples further, so nothing is lost, and
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

    def could_be(self, expected: str) -> bool:
        """The kind's tone and layout without its sharp detail: a blurred printout or a soft fundus
        photo is still the right kind of picture, and is then judged on its quality instead."""
        if expected == "ecg":
            return self._ecg_tones()
        return self._dark_rim() and self.centre_luma > self.border_luma + 15 and self.red_dominance > 1.2

    def _ecg_tones(self) -> bool:
        return (self.median_luma >= 110 and self.near_median >= 0.5
                and 0.005 <= self.ink_fraction <= 0.15 and self.colourfulness < 80)

    def _looks_like_ecg(self) -> bool:
        return self._ecg_tones() and self.edge_fraction >= 0.02 and self.flat_fraction >= 0.25

    def _looks_like_fundus(self) -> bool:
        # A colour fundus photo: a lit red-orange disc inside a dark camera mask. Grey
        # (red-free) crops are refused: the model was trained on colour photographs only.
        return (self._dark_rim() and self.centre_luma > self.border_luma + 30
                and self.red_dominance > 1.2 and self.colourfulness >= 20)

    def _dark_rim(self) -> bool:
        """The camera's mask: near black, or (a washed-out capture lifts it) under half the disc's level."""
        return self.border_luma < 45 or self.border_luma < 0.5 * self.centre_luma


def scene_scores(image: Image.Image) -> SceneScores:
    """The scores of the picture as the model will see its subject: a page photographed on a
    table judged on the page (rectified), and the exposure stretched so that a dim photo
    is told apart by what it shows; whether it is too dark to read is image_quality's call."""
    small = image.convert("RGB")
    factor = min(small.size) // (2 * GATE_SIZE)
    small = ecg_page.rectify_paper(small.reduce(factor) if factor > 1 else small)
    small = small.resize((GATE_SIZE, GATE_SIZE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.float32)
    bright = float(np.percentile(rgb.max(axis=2), 99))
    rgb = np.minimum(rgb * min(GATE_MAX_GAIN, 255.0 / max(bright, 1.0)), 255.0)
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
# Below this the models would grade upsampled blur: a real fundus camera or an ECG scan
# gives well over a thousand pixels on the shorter side.
MIN_SHORTER_SIDE = 256


def gate(image: Image.Image, expected: str) -> SceneScores:
    """Refuse an image that is not the kind of picture the model was trained on, or that it
    cannot read (too dark, burnt out, blurred, too faint: "ungradable", with what to fix).

    Draft decoding never takes a JPEG below DRAFT_MIN_SIDE, so the decoded size is a
    fair stand-in for the upload's own.
    """
    side = min(image.size)
    if side < MIN_SHORTER_SIDE:
        raise ImageRejected(
            "image_too_small",
            f"The image is only {side} pixels on its shorter side; upload the original photo or "
            f"scan (at least {MIN_SHORTER_SIDE} pixels).", 422)
    scores = scene_scores(image)
    if scores.kind != expected and not scores.could_be(expected):
        raise ImageRejected(f"not_{expected}", GATE_MESSAGES[expected], 422)
    quality = image_quality.assess(image, expected)
    if not quality.readable:
        raise ImageRejected("ungradable", quality.message(expected), 422)
    if scores.kind != expected:
        raise ImageRejected(f"not_{expected}", GATE_MESSAGES[expected], 422)
    return scores


def model_input(image: Image.Image, spec: Mapping[str, Any]) -> np.ndarray:
    """The model transform: the card's input spec applied to an RGB image.

    Optional image-kind steps come first (``page``: an ECG page rectified, evenly lit,
    deskewed and turned upright; ``crop``: the fundus camera's circular field of view or
    the ECG's lead area; ``grid``: the ECG paper's red grid), then the resize rule, which
    matches torchvision's Resize / CenterCrop / ToTensor / Normalize on PIL images pixel
    for pixel (tests hold it to that), then ``light``: a fundus photo's illumination and
    colour normalised inside its field of view. Training calls this same function, so served pixels
    cannot drift from trained ones.
    """
    page = spec.get("page")
    if page == "straighten":
        image = ecg_page.prepare_page(image)
    elif page is not None:
        raise ValueError(f"unknown page rule {page!r}")
    crop = spec.get("crop")
    if crop == "field_of_view":
        image = crop_field_of_view(image)
    elif crop == "ecg_grid":
        image = crop_ecg_grid(image, turn_upright=page == "straighten")
    elif crop is not None:
        raise ValueError(f"unknown crop rule {crop!r}")
    grid = spec.get("grid")
    if grid == "suppress_red":
        image = suppress_red_grid(image)
    elif grid is not None:
        raise ValueError(f"unknown grid rule {grid!r}")
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
    light = spec.get("light")
    if light == "field_of_view":
        array = normalise_fundus(np.asarray(resized.convert("RGB"), dtype=np.float32)) / 255.0
    elif light is None:
        array = np.asarray(resized.convert("RGB"), dtype=np.float32) / 255.0
    else:
        raise ValueError(f"unknown light rule {light!r}")
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    array = (array - mean) / std
    return np.ascontiguousarray(array.transpose(2, 0, 1)[np.newaxis])


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
    rgb = image.convert("RGB")
    factor = max(1, min(rgb.size) // FOV_FIND_SIDE)
    small = rgb.reduce(factor) if factor > 1 else rgb
    brightest = np.asarray(small, dtype=np.uint8).max(axis=2)
    lit = field_of_view_mask(brightest)
    rows = np.flatnonzero(lit.mean(axis=1) > FOV_MIN_SHARE)
    cols = np.flatnonzero(lit.mean(axis=0) > FOV_MIN_SHARE)
    if rows.size == 0 or cols.size == 0:
        return rgb
    left, top = int(cols[0]) * factor, int(rows[0]) * factor
    right, bottom = min(rgb.width, (int(cols[-1]) + 1) * factor), min(rgb.height, (int(rows[-1]) + 1) * factor)
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
    mask = field_of_view_mask(rgb.max(axis=2))
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
# edge tinted by JPEG's colour subsampling often leans to blue; a page shot under a cool
# light can lose the grid's blue dip to clipping, so blue is not asked to dip), on light paper.
GRID_RED_EXCESS = 12
GRID_MIN_RED = 150
# A row or column is inside the grid when this share of it is grid ink; the grid box must
# cover this share of the page, or the page is used whole (a photo with no clear grid).
GRID_MIN_SHARE = 0.03
# A row or column is a line of the grid's printed frame when grid ink covers this share of
# the grid's extent along it.
GRID_FRAME_SHARE = 0.6
# ... and two such lines are the frame's opposite sides only when they enclose most of the grid.
GRID_FRAME_SPAN = 0.5
GRID_MIN_AREA = 0.3


def crop_ecg_grid(image: Image.Image, turn_upright: bool = False) -> Image.Image:
    """Crop an ECG page to its red grid, where the leads are drawn.

    Report headers, margins and footers carry no waveform; cutting them gives the
    traces more of the model's few hundred pixels (about 1 px per mm of paper). With
    `turn_upright`, a page whose printed header lies below the grid is turned round.
    """
    rgb = image.convert("RGB")
    array = np.asarray(rgb, dtype=np.int16)
    red = array[..., 0]
    grid = (red - array[..., 1] > GRID_RED_EXCESS) & (red >= array[..., 2]) & (red > GRID_MIN_RED)
    row_share, col_share = grid.mean(axis=1), grid.mean(axis=0)
    rows = np.flatnonzero(row_share > GRID_MIN_SHARE)
    cols = np.flatnonzero(col_share > GRID_MIN_SHARE)
    if rows.size == 0 or cols.size == 0:
        return rgb
    # A printed frame round the grid, where there is one, is its edge: tinted text above or
    # below the grid never forms a line across it.
    frame_rows = np.flatnonzero(row_share > GRID_FRAME_SHARE * (cols[-1] + 1 - cols[0]) / rgb.width)
    frame_cols = np.flatnonzero(col_share > GRID_FRAME_SHARE * (rows[-1] + 1 - rows[0]) / rgb.height)
    if frame_rows.size >= 2 and frame_rows[-1] - frame_rows[0] > GRID_FRAME_SPAN * (rows[-1] - rows[0]):
        rows = frame_rows
    if frame_cols.size >= 2 and frame_cols[-1] - frame_cols[0] > GRID_FRAME_SPAN * (cols[-1] - cols[0]):
        cols = frame_cols
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    if (box[2] - box[0]) * (box[3] - box[1]) < GRID_MIN_AREA * rgb.width * rgb.height:
        return rgb
    lead_area = rgb.crop(box)
    if turn_upright and ecg_page.is_upside_down(rgb, box):
        return lead_area.transpose(Image.Transpose.ROTATE_180)
    return lead_area


def suppress_red_grid(image: Image.Image) -> Image.Image:
    """Grey ECG page with the red or pink millimetre grid removed, traces kept.

    On ECG paper the grid is red (high R, lower G and B) and the trace is dark in every
    channel, so the brightest channel is near white on paper and grid alike and dark
    only on the trace: the network sees waveforms, not 1 mm squares that a downscaled
    page turns into moire. A 3×3 minimum then thickens one-pixel traces so they survive
    the downscale to the model's input.
    """
    brightest = np.asarray(image.convert("RGB"), dtype=np.uint8).max(axis=2)
    return Image.fromarray(_minimum_3x3(brightest), "L").convert("RGB")


def _minimum_3x3(grey: np.ndarray) -> np.ndarray:
    """Pillow's MinFilter(3), edges replicated, pixel for pixel (tests hold it to that),
    as two separable passes of numpy minimums: 3 ms instead of 70 ms on a scanned page."""
    padded = np.pad(grey, 1, mode="edge")
    rows = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    return np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    return image.resize((new_w, new_h), Image.Resampling.BILINEAR)
