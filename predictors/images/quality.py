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
from .fundus import field_of_view_mask
from .neighbourhood import box_mean, erode

# Measures are taken on a copy this many pixels on its longer side: enough for the fine
# structure (vessels, a trace's edge) that blur removes first.
QUALITY_SIDE = 256

# Fundus: the lit disc's typical brightness (median of the brightest channel inside it).
FUNDUS_MIN_EXPOSURE = 28.0
# ... the share of the disc burnt out to white in every channel.
FUNDUS_MAX_BURNT = 0.25
# ... fine detail against coarse: blurred photos lose the first long before the second.
FUNDUS_MIN_SHARPNESS = 0.62
# ... and the middle band's detail against the disc's contrast. Past a few pixels of blur
# both bands are nearly gone and their ratio above climbs back (on six IDRiD test photos:
# 0.73-1.08 sharp, 0.45-0.60 at a Gaussian radius of 4, 1.01-1.25 at 25); this measure
# keeps falling (0.061-0.104 sharp, 0.008-0.014 at 25, 0.006-0.009 at 40). The floor is
# under every one of the 455 labelled fundus photos (least 0.0155).
FUNDUS_MIN_DETAIL = 0.012

# ECG: the paper's brightness (90th percentile of grey) and the ink's contrast against it.
ECG_MIN_PAPER = 45.0
ECG_MIN_INK_CONTRAST = 35.0
ECG_MIN_SHARPNESS = 0.55

ADVICE = {
    "too_dark": "it is too dark: retake it with more light or a longer exposure",
    "burnt_out": "much of it is burnt out to white: retake it with less light or flash",
    "blurred": "it is blurred: hold the camera still, focus, and retake it",
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


def _working_grey(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The photo at about QUALITY_SIDE, as its brightest channel and its mean grey (float32)."""
    factor = max(image.size) // QUALITY_SIDE
    if factor > 1:
        image = image.reduce(factor)
    rgb = np.asarray(channels.as_rgb(image), dtype=np.float32)
    return channels.brightest(rgb), channels.mean(rgb)


def _bands(grey: np.ndarray, where: np.ndarray) -> tuple[float, float]:
    """The mean size, inside `where`, of the fine band (grey less its 3×3 mean) and of the middle
    band (the 3×3 mean less the 7×7): what blur takes first, and what it takes next."""
    fine, coarse = box_mean(grey, 1), box_mean(grey, 3)
    return float(np.abs(grey - fine)[where].mean()), float(np.abs(fine - coarse)[where].mean())


def _sharpness(high: float, middle: float) -> float:
    """Fine-band detail over middle-band detail: about 0.5 or more on a sharp photo, falling
    steeply with the first pixels of blur (then climbing back, see FUNDUS_MIN_DETAIL), and
    unchanged by brightness or contrast."""
    return high / max(middle, 1e-3)


def assess(image: Image.Image, kind: str) -> Quality:
    """The photo's readability for the model of `kind` ("fundus" or "ecg")."""
    brightest, grey = _working_grey(image)
    if kind == "fundus":
        disc = field_of_view_mask(brightest)
        if not disc.any():
            disc = np.ones_like(brightest, dtype=bool)
        # The rim of the disc is an edge of the camera, not of the retina: measure inside it.
        inner = erode(disc, 4)
        inner = inner if inner.any() else disc
        exposure = float(np.median(brightest[disc]))
        burnt = float((grey[disc] >= 250).mean())
        high, middle = _bands(grey, inner)
        sharpness = _sharpness(high, middle)
        contrast = float(grey[inner].std())
        detail = middle / max(contrast, 1e-3)
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
