"""Whether a photo can be read at all: too dark, burnt out, blurred or cut off means "retake", not a guess.

Autonomous retinopathy screening answers "insufficient image quality" instead of grading
a photo it cannot read; so do we, for both image models, saying what to fix. The
measures are cheap statistics of the decoded photo, each independent of overall
brightness and contrast where it should be (the transform normalises those away), and
the limits sit below every pristine photo of the training data and were checked on the
capture benchmark (bench/capture_robustness.py, docs/benchmarks.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import channels
from .fundus import FOV_MIN_SHARE, field_of_view_mask
from .neighbourhood import box_mean, erode

# Exposure and the ECG's measures are taken on a copy this many pixels on its longer side:
# enough for the fine structure of a trace's edge that blur removes first.
QUALITY_SIDE = 256

# Fundus: the lit disc's typical brightness (median of the brightest channel inside it).
FUNDUS_MIN_EXPOSURE = 28.0
# ... the share of the disc burnt out to white in every channel.
FUNDUS_MAX_BURNT = 0.25
# Blur is judged on the field of view resampled to this diameter in pixels (never enlarged:
# a smaller field is measured as it is). A pixel is then 0.26% of the field, about 37 µm of
# a 50° field, so a microaneurysm (25-125 µm) spans one to three of them.
FUNDUS_QUALITY_DIAMETER = 384
# What can be graded: a Gaussian blur whose standard deviation is at most this share of the
# field's diameter (about 50 µm on the retina, 12 px on a 4288-px IDRiD photo, 1.3 pixels of the
# model's 384-px input). Past it a microaneurysm keeps under half its contrast, and a grader
# could not rule one out. The two floors below are fitted to it by
# predictors/training/quality_fit.py (`--every 8`: 50 IDRiD training photos at 640, 1024 and
# 2048 px wide, 450 uploads under the limit and 750 over it, none of either misjudged). One
# labelled photo as taken, IDRiD_train_081 (a haemorrhage or opacity over much of the field),
# has less fine detail than blur past the limit and is refused as blurred or clouded: no floor
# answers it without answering such blur too.
FUNDUS_GRADABLE_BLUR = 0.0035
# ... the fine band's detail (the 3×3 mean less the 7×7) against the coarse band's (the 7×7
# less the 15×15): blur takes the first before the second, so this falls from the first
# fraction of a percent of blur, whatever the photo's brightness and contrast; past a few
# percent both bands are gone and it climbs back, hence the next measure.
FUNDUS_MIN_SHARPNESS = 0.57
# ... and the fine band's detail against the field's contrast, which keeps falling however
# heavy the blur.
FUNDUS_MIN_DETAIL = 0.018

# ECG: the paper's brightness (90th percentile of grey) and the ink's contrast against it.
ECG_MIN_PAPER = 45.0
ECG_MIN_INK_CONTRAST = 35.0
ECG_MIN_SHARPNESS = 0.55

ADVICE = {
    "too_dark": "it is too dark: retake it with more light or a longer exposure",
    "burnt_out": "much of it is burnt out to white: retake it with less light or flash",
    "blurred": "it is blurred or clouded: focus, hold the camera still and retake it",
    "faint": "the tracing is too faint against the paper: retake it in even light, without glare",
}


@dataclass(frozen=True)
class Quality:
    """The measures of one photo and what, if anything, makes it unreadable."""

    exposure: float
    contrast: float
    burnt: float
    sharpness: float
    problems: tuple[str, ...]

    @property
    def readable(self) -> bool:
        return not self.problems

    def message(self, kind: str) -> str:
        what = "fundus photo" if kind == "fundus" else "ECG picture"
        return (f"This {what} cannot be graded reliably: " + "; ".join(ADVICE[p] for p in self.problems) + ".")


def _working_grey(image: Image.Image) -> tuple[np.ndarray, np.ndarray, int]:
    """The photo at about QUALITY_SIDE, as its brightest channel and its mean grey (float32), and
    the factor it was reduced by."""
    factor = max(1, max(image.size) // QUALITY_SIDE)
    if factor > 1:
        image = image.reduce(factor)
    rgb = np.asarray(channels.as_rgb(image), dtype=np.float32)
    return channels.brightest(rgb), channels.mean(rgb), factor


def _field_of_view_grey(image: Image.Image, disc: np.ndarray, inner: np.ndarray,
                        factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The field of view's grey (luma, float32) at FUNDUS_QUALITY_DIAMETER across, or as it is when
    smaller, and where in it to measure: `inner`, found on the copy reduced by `factor`. Box-resampled
    from the decoded photo, so that a blur is seen at its size on the retina."""
    rows = np.flatnonzero(disc.mean(axis=1) > FOV_MIN_SHARE)
    cols = np.flatnonzero(disc.mean(axis=0) > FOV_MIN_SHARE)
    if rows.size == 0 or cols.size == 0:
        rows, cols = np.arange(disc.shape[0]), np.arange(disc.shape[1])
    left, top, right, bottom = int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    box = (left * factor, top * factor, min(image.width, right * factor), min(image.height, bottom * factor))
    width, height = box[2] - box[0], box[3] - box[1]
    scale = min(1.0, FUNDUS_QUALITY_DIAMETER / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Box-reduced by a whole factor first (a third of the time of resampling all of it), then to size.
    reduced = image.reduce(max(1, int(1 / scale)), box=box).convert("L")
    grey = np.asarray(reduced if reduced.size == size else reduced.resize(size, Image.Resampling.BOX),
                      dtype=np.float32)
    where = np.asarray(Image.fromarray(inner[top:bottom, left:right]).resize(size, Image.Resampling.NEAREST))
    return grey, where


def _fundus_blur(grey: np.ndarray, where: np.ndarray) -> tuple[float, float, float]:
    """Sharpness (fine band over coarse band), detail (fine band over contrast) and the contrast
    (grey's spread), inside `where`: see FUNDUS_MIN_SHARPNESS and FUNDUS_MIN_DETAIL."""
    fine, middle, coarse = box_mean(grey, 1), box_mean(grey, 3), box_mean(grey, 7)
    fine_band = float(np.abs(fine - middle)[where].mean())
    coarse_band = float(np.abs(middle - coarse)[where].mean())
    contrast = float(grey[where].std())
    return fine_band / max(coarse_band, 1e-3), fine_band / max(contrast, 1e-3), contrast


def _bands(grey: np.ndarray, where: np.ndarray) -> tuple[float, float]:
    """The mean size, inside `where`, of the fine band (grey less its 3×3 mean) and of the middle
    band (the 3×3 mean less the 7×7): what blur takes first, and what it takes next."""
    fine, coarse = box_mean(grey, 1), box_mean(grey, 3)
    return float(np.abs(grey - fine)[where].mean()), float(np.abs(fine - coarse)[where].mean())


def _sharpness(high: float, middle: float) -> float:
    """Fine-band detail over middle-band detail: about 0.5 or more on a sharp printout, falling
    steeply with the first pixels of blur, and unchanged by brightness or contrast."""
    return high / max(middle, 1e-3)


def _disc(brightest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lit disc on the working copy (all of it when nothing is lit), and its inside: the rim
    of the disc is an edge of the camera, not of the retina, so blur is measured inside it."""
    disc = field_of_view_mask(brightest)
    if not disc.any():
        disc = np.ones_like(brightest, dtype=bool)
    inner = erode(disc, 4)
    return disc, inner if inner.any() else disc


def fundus_blur(image: Image.Image) -> tuple[float, float]:
    """A decoded fundus photo's sharpness and detail, as `assess` judges its blur by (training's
    quality_fit fits FUNDUS_MIN_SHARPNESS and FUNDUS_MIN_DETAIL on them)."""
    brightest, _, factor = _working_grey(image)
    sharpness, detail, _ = _fundus_blur(*_field_of_view_grey(image, *_disc(brightest), factor))
    return sharpness, detail


def assess(image: Image.Image, kind: str) -> Quality:
    """The photo's readability for the model of `kind` ("fundus" or "ecg")."""
    brightest, grey, factor = _working_grey(image)
    if kind == "fundus":
        disc, inner = _disc(brightest)
        exposure = float(np.median(brightest[disc]))
        burnt = float((grey[disc] >= 250).mean())
        sharpness, detail, contrast = _fundus_blur(*_field_of_view_grey(image, disc, inner, factor))
        problems = tuple(problem for problem, bad in (
            ("too_dark", exposure < FUNDUS_MIN_EXPOSURE), ("burnt_out", burnt > FUNDUS_MAX_BURNT),
            ("blurred", sharpness < FUNDUS_MIN_SHARPNESS or detail < FUNDUS_MIN_DETAIL)) if bad)
    else:
        paper, ink = (float(v) for v in np.percentile(grey[::2, ::2], (90, 0.5)))
        exposure, burnt, contrast = paper, float((grey >= 254).mean()), paper - ink
        strokes = np.abs(grey - box_mean(grey, 4)) > 0.1 * contrast
        sharpness = _sharpness(*_bands(grey, strokes)) if strokes.any() else 0.0
        problems = tuple(problem for problem, bad in (
            ("too_dark", paper < ECG_MIN_PAPER), ("faint", contrast < ECG_MIN_INK_CONTRAST),
            ("blurred", sharpness < ECG_MIN_SHARPNESS)) if bad)
    return Quality(exposure=round(exposure, 2), contrast=round(contrast, 2), burnt=round(burnt, 4),
                   sharpness=round(sharpness, 4), problems=problems)
