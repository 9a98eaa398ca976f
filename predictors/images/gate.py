"""The cheap fundus / ECG / other gate: is this the kind of picture the model reads, and can it be read?"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import channels, ecg_page, quality
from .decode import ImageRejected

GATE_SIZE = 256
# The gate brightens a dim picture by up to this factor before judging what it shows.
GATE_MAX_GAIN = 4.0


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

    # The least ink and edge an ECG shows at GATE_SIZE: a 12×1 page at 5 mm/mV, or a thin trace on a faint or
    # absent grid sent through a messaging app, has little of either (drawn printouts of every layout the ECG
    # model learnt, tests/images/test_gate.py); a blank page has none.
    ECG_MIN_INK = 0.001
    ECG_MIN_EDGES = 0.005

    def _ecg_tones(self) -> bool:
        return (self.median_luma >= 110 and self.near_median >= 0.5
                and self.ECG_MIN_INK <= self.ink_fraction <= 0.15 and self.colourfulness < 80)

    def _looks_like_ecg(self) -> bool:
        return self._ecg_tones() and self.edge_fraction >= self.ECG_MIN_EDGES and self.flat_fraction >= 0.25

    def _looks_like_fundus(self) -> bool:
        # A colour fundus photo: a lit red-orange disc inside a dark camera mask. Grey
        # (red-free) crops are refused: the model was trained on colour photographs only.
        return (self._dark_rim() and self.centre_luma > self.border_luma + 30
                and self.red_dominance > 1.2 and self.colourfulness >= 20)

    def _dark_rim(self) -> bool:
        """The camera's mask: near black, or (a washed-out capture lifts it) under half the disc's level."""
        return self.border_luma < 45 or self.border_luma < 0.5 * self.centre_luma


# Distance from the thumbnail's centre, in half-widths: the fundus camera's lit disc and its dark rim.
_RADIUS = np.hypot(*np.mgrid[0:GATE_SIZE, 0:GATE_SIZE] - (GATE_SIZE - 1) / 2) / (GATE_SIZE / 2)
_CENTRE, _BORDER = _RADIUS < 0.6, _RADIUS > 1.05


def scene_scores(image: Image.Image, rectified_page: Image.Image | None = None) -> SceneScores:
    """The scores of the picture as the model will see its subject: a page photographed on a
    table judged on the page (rectified, the very page the ECG model's transform goes on
    from: ecg_page.rectified_page, passed in when made already), and the exposure stretched
    so that a dim photo is told apart by what it shows; whether it is too dark to read is
    quality.py's call."""
    page = rectified_page if rectified_page is not None else ecg_page.rectified_page(image)
    small = page.resize((GATE_SIZE, GATE_SIZE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.float32)
    bright = float(np.percentile(channels.brightest(rgb), 99))
    rgb = np.minimum(rgb * min(GATE_MAX_GAIN, 255.0 / max(bright, 1.0)), 255.0)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    median = float(np.median(luma))
    gy = np.abs(np.diff(luma, axis=0))[:, :-1]
    gx = np.abs(np.diff(luma, axis=1))[:-1, :]
    gradient = np.maximum(gx, gy)
    red, blue = rgb[..., 0][_CENTRE].mean(), rgb[..., 2][_CENTRE].mean()
    return SceneScores(
        median_luma=median,
        luma_std=float(luma.std()),
        near_median=float((np.abs(luma - median) < 30).mean()),
        ink_fraction=float((luma < median - 40).mean()),
        edge_fraction=float((gradient > 25).mean()),
        flat_fraction=float((gradient < 12).mean()),
        border_luma=float(luma[_BORDER].mean()),
        centre_luma=float(luma[_CENTRE].mean()),
        colourfulness=float((channels.brightest(rgb) - channels.darkest(rgb)).mean()),
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


def gate(image: Image.Image, expected: str, rectified_page: Image.Image | None = None) -> SceneScores:
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
    scores = scene_scores(image, rectified_page)
    if scores.kind != expected and not scores.could_be(expected):
        raise ImageRejected(f"not_{expected}", GATE_MESSAGES[expected], 422)
    readability = quality.assess(image, expected)
    if not readability.readable:
        raise ImageRejected("ungradable", readability.message(expected), 422)
    if scores.kind != expected:
        raise ImageRejected(f"not_{expected}", GATE_MESSAGES[expected], 422)
    return scores
