"""Printouts of real 12-lead recordings, drawn as clinics' machines print them, captured as
clinics capture them, and cached as the ECG model's input.

The ECG model learnt from one machine's report (Khan et al.); a clinic's printout is almost
never that one. PTB-XL's recordings (../shared/data/ecg-ptbxl, cardiologists' statements
mapped to the model's findings in its findings.csv) can be printed any way with the finding
known, so each recording is drawn several times, each time in a layout drawn at random
from the families machines print (Layout: 3×4 with one or three rhythm strips or none,
6×2, 12×1 and the Khan machine's own report; standard or Cabrera lead order; 25 or 50 mm/s;
5, 10 or 20 mm/mV; calibration pulse or none; grids of every colour or none; thermal or
white paper; headers, margins, fonts, line weights and page sizes), then captured by one of
the capture families (CAPTURES, built from predictors.training.captures). Nothing about
the layout or the capture depends on the finding: a printout is a pure function of
(record id, variant index, seed), so the layout never tells the finding and the same seed
gives the same bytes.

Each captured picture goes through the site's own decoder and
predictors.images.transform.model_input, so the cache under var/printouts/<key>/ holds
exactly what the network would be served; it is keyed by the input spec, RENDERER_VERSION
and the seed, and built in shards that a later run skips, in parallel processes. Pixels are
uint8 .npy shards (memory-mapped when read; one plane when the spec's input is grey, as the
ECG's is) with a CSV index of record, fold, patient, finding, layout and capture.

Drawing is PIL and numpy (the grid painted as array slices, traces and text with
ImageDraw, at twice the resolution and box-reduced for anti-aliasing): a few times faster
than matplotlib's Agg for a page of ~300 grid lines.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from predictors.catalogue import SPECS
from predictors.images.decode import decode
from predictors.images.transform import model_input
from predictors.training import captures, real_images

log = logging.getLogger(__name__)

# Bump whenever a change to drawing or capturing changes a cached pixel: it is part of the cache key.
RENDERER_VERSION = 1
PTBXL_DIR = "ecg-ptbxl"
CACHE_ROOT = Path(__file__).resolve().parents[2] / "var" / "printouts"
DEFAULT_SEED = 29
DEFAULT_VARIANTS = 4
# PTB-XL's strat_fold keeps each patient in one fold; folds 9 and 10 are withheld from the project.
FIT_FOLDS = frozenset(range(1, 8))
VALIDATION_FOLDS = frozenset({8})
# findings.csv's values (ecg-ptbxl/README.md gives the rule), and the model's answers that are right
# for each: a finding of the model's own is itself; an infarction of unknown age is either MI finding
# (acute or old is not stated); an abnormal ECG that is none of the four ("other") has no right answer
# among them, and "Normal" is its miss.
RIGHT_ANSWERS: dict[str, tuple[str, ...]] = {
    **{label: (label,) for label in SPECS["ecg"].labels},
    "MI, age unknown": ("Myocardial Infarction", "History of MI"),
    "other": (),
}
FINDINGS = tuple(RIGHT_ANSWERS)

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
RATE = 100  # Hz, PTB-XL's records100
SUPERSAMPLE = 2  # pages are drawn at twice their resolution, then box-reduced: anti-aliased lines
CALIBRATION_S = 0.2  # the 1 mV pulse is 200 ms wide
LEAD_AREA_MM = 250.0  # ten seconds at 25 mm/s

# --- recordings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """One PTB-XL recording: who, which fold, what finding, and where its WFDB files are."""

    ecg_id: int
    patient_id: int
    fold: int
    finding: str
    path: Path  # the WFDB record without extension

    @property
    def split(self) -> str:
        return split_of(self.fold)


def ptbxl_root() -> Path:
    return real_images.data_root() / PTBXL_DIR


def recordings(root: Path | None = None) -> list[Recording]:
    """Every recording of findings.csv, in ecg_id order; a finding outside FINDINGS is refused, so a
    changed mapping cannot slip into training as a new class."""
    root = root or ptbxl_root()
    with (root / "findings.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    found = []
    for row in rows:
        if row["finding"] not in FINDINGS:
            raise ValueError(f"ecg_id {row['ecg_id']}: unknown finding {row['finding']!r}")
        found.append(Recording(int(row["ecg_id"]), int(float(row["patient_id"])), int(row["strat_fold"]),
                               row["finding"], root / row["filename_lr"]))
    return sorted(found, key=lambda r: r.ecg_id)


def split_of(fold: int) -> str:
    if fold in FIT_FOLDS:
        return "fit"
    if fold in VALIDATION_FOLDS:
        return "validation"
    raise ValueError(f"strat_fold {fold} is in neither split")


# Fold 8's patients are divided in two at random with this seed: one half to validate and calibrate an
# ECG model that learns from drawn printouts, the other a drawn test set nothing is fitted or tuned on
# (bench/domain_shift.py draws its PTB-XL pages from it).
TEST_SEED = 20261123


def test_patients(found: Iterable[Recording]) -> frozenset[int]:
    """The fold-8 patients whose recordings are the drawn test set."""
    held = sorted({recording.patient_id for recording in found if recording.split == "validation"})
    return frozenset(np.random.default_rng(TEST_SEED).permutation(held)[: len(held) // 2].tolist())


def splits(found: Iterable[Recording]) -> dict[str, list[Recording]]:
    """Folds 1-7 to fit, fold 8 to validate and calibrate; PTB-XL's folds never split a patient."""
    result: dict[str, list[Recording]] = {"fit": [], "validation": []}
    for recording in found:
        result[recording.split].append(recording)
    return result


def read_signals(recording: Recording) -> np.ndarray:
    """The record's twelve leads in mV, (12, samples) in LEADS order, from its format-16 WFDB files."""
    lines = [line.split() for line in recording.path.with_suffix(".hea").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    count, samples = int(lines[0][1]), int(lines[0][3])
    gains, baselines, names = [], [], []
    for fields in lines[1:1 + count]:
        if fields[1] != "16":
            raise ValueError(f"{recording.path}: format {fields[1]}, only 16 is read")
        gain_field = fields[2].split("/")[0]
        gain, _, baseline = gain_field.partition("(")
        gains.append(float(gain))
        # A missing baseline is the ADC zero (WFDB's rule).
        baselines.append(float(baseline.rstrip(")")) if baseline else float(fields[4]))
        names.append(fields[-1])
    raw = np.fromfile(recording.path.with_suffix(".dat"), dtype="<i2").reshape(samples, count)
    millivolts = (raw.astype(np.float32) - np.asarray(baselines, np.float32)) / np.asarray(gains, np.float32)
    canonical = {name.upper(): i for i, name in enumerate(names)}
    return np.ascontiguousarray(millivolts[:, [canonical[lead.upper()] for lead in LEADS]].T)


# --- what a printout looks like -------------------------------------------------------------------

RGB = tuple[int, int, int]

# The arrangement of the twelve leads (in the lead order's sequence) and the rhythm strips.
LAYOUT_FAMILIES: dict[str, float] = {  # family: how often it is drawn
    "3x4+1": 0.24, "3x4+3": 0.14, "3x4": 0.08, "6x2": 0.14, "12x1": 0.10, "khan": 0.30,
}
LEAD_ORDERS = {
    "standard": LEADS,
    # Cabrera: the limb leads in their frontal-plane order, aVR inverted.
    "cabrera": ("aVL", "I", "-aVR", "II", "aVF", "III", "V1", "V2", "V3", "V4", "V5", "V6"),
}
GRIDS: dict[str, tuple[RGB, RGB] | None] = {  # minor, major
    "red": ((248, 190, 190), (232, 105, 105)),
    "pink": ((252, 214, 220), (242, 160, 175)),
    "orange": ((250, 214, 175), (238, 150, 85)),
    "green": ((198, 234, 200), (100, 180, 112)),
    "blue": ((200, 214, 244), (100, 130, 210)),
    "grey": ((214, 214, 214), (150, 150, 150)),
    "black": ((150, 150, 150), (40, 40, 40)),  # a black-and-white printer's grid
    "none": None,
}
PAPERS: dict[str, tuple[RGB, RGB]] = {  # background, ink
    "white": ((255, 255, 255), (15, 15, 15)),
    "offwhite": ((250, 248, 242), (25, 25, 30)),
    "thermal": ((249, 244, 226), (45, 38, 32)),  # cream paper, a brownish, faded black
}
PAGES = {"A4": (297.0, 210.0), "Letter": (279.4, 215.9), "Legal": (355.6, 215.9), "roll": (300.0, 150.0),
         "khan": (281.0, 200.0)}  # the Khan photos' page: 10 s at 25 mm/s spans 89% of its width
HEADERS = ("none", "plain", "measurements", "banner", "side")
HEADER_MM = {"none": 0.0, "plain": 9.0, "measurements": 34.0, "banner": 24.0, "side": 0.0}
SIDE_HEADER_MM = 62.0  # the "side" header is a column left of the grid
FOOTER_LINES = 2.6  # the footer's height, in font sizes
SEPARATOR_OVERRUN_MM = 6.0
KHAN_FRAME = (225, 90, 90)
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf", "STIXGeneral.ttf",
         "cmss10.ttf")
KHAN_FONT = "STIXGeneral.ttf"  # the Khan report's Times-like type
MACHINES = ("MAC 5500", "MAC 2000", "CardioSoft", "PageWriter TC50", "ELI 250", "CARDIOVIT AT-102",
            "Cardiofax M", "ECG-1250", "SE-1200", "BeneHeart R12", "CP 150", "AT-10 plus")


@dataclass(frozen=True)
class Layout:
    """How one printout looks; recorded beside each cached picture, so that figures can be
    given per layout family."""

    family: str  # a LAYOUT_FAMILIES key
    lead_order: str  # a LEAD_ORDERS key
    rhythm: tuple[str, ...]  # the full-width rhythm strips under the grid of leads
    speed: float  # mm/s
    gain: float  # mm/mV
    calibration: str  # "start" or "end" of each row, or "none"
    grid: str  # a GRIDS key
    grid_style: str  # "lines", "dots" (dotted 1 mm grid, 5 mm lines) or "major" (5 mm lines only)
    grid_fade: float  # 0 = the grid's full colour, 1 = the paper's
    paper: str  # a PAPERS key
    header: str  # a HEADERS entry, or "khan"
    page: str  # a PAGES key
    margin_mm: float
    font: str
    font_mm: float
    trace_mm: float
    minor_mm: float
    major_mm: float
    labels: str  # where lead names go: "above", "below" or "left" of the trace
    separators: str  # between leads in a row: "tick", "line" or "none"
    frame: bool  # a box printed round the grid
    dpi: float

    def rows(self) -> list[list[str]]:
        """The leads of each row, top to bottom (a lead name with "-" is inverted)."""
        order = LEAD_ORDERS[self.lead_order]
        if self.family == "6x2":
            grid = [[order[r], order[r + 6]] for r in range(6)]
        elif self.family == "12x1":
            grid = [[lead] for lead in order]
        else:
            grid = [[order[c * 3 + r] for c in range(4)] for r in range(3)]
        return grid + [[lead] for lead in self.rhythm]


def draw_layout(rng: np.random.Generator) -> Layout:
    """A seeded draw of one printout's look from the families machines print."""
    families = list(LAYOUT_FAMILIES)
    weights = np.array(list(LAYOUT_FAMILIES.values()))
    family = str(rng.choice(families, p=weights / weights.sum()))
    if family == "khan":
        return _khan_layout(rng)
    rhythm = {"3x4+1": (str(rng.choice(["II", "II", "II", "V1", "V5"])),), "3x4+3": ("V1", "II", "V5")}.get(family, ())
    rows = {"6x2": 6, "12x1": 12}.get(family, 3) + len(rhythm)
    header = str(rng.choice(HEADERS, p=[0.15, 0.25, 0.3, 0.15, 0.15]))
    pages = ["A4", "Letter"] + (["roll"] if rows <= 4 and header in ("none", "plain") else [])
    page = "Legal" if header == "side" else str(rng.choice(pages))
    # 20 mm/mV would run twelve rows into each other: machines print it on few rows, and 12×1 mostly at 5.
    gains = [5.0, 5.0, 10.0] if rows > 6 else [5.0, 10.0, 10.0, 10.0] + ([20.0] if rows <= 4 else [])
    # A name under the trace reads as the next row's when rows are narrow.
    labels = ["above", "above", "left"] + (["below"] if rows <= 6 else [])
    grid = str(rng.choice(list(GRIDS), p=[0.22, 0.16, 0.1, 0.1, 0.1, 0.12, 0.1, 0.1]))
    return Layout(
        family=family, lead_order=str(rng.choice(["standard", "cabrera"], p=[0.8, 0.2])), rhythm=rhythm,
        speed=float(rng.choice([25.0, 25.0, 25.0, 50.0])), gain=float(rng.choice(gains)),
        calibration=str(rng.choice(["start", "start", "end", "none"])), grid=grid,
        grid_style=str(rng.choice(["lines", "lines", "dots", "major"])), grid_fade=float(rng.uniform(0, 0.45)),
        paper=str(rng.choice(list(PAPERS), p=[0.6, 0.2, 0.2])), header=header, page=page,
        margin_mm=float(rng.uniform(3, 15)), font=str(rng.choice(FONTS)), font_mm=float(rng.uniform(2.0, 3.4)),
        trace_mm=float(rng.uniform(0.15, 0.45)), minor_mm=float(rng.uniform(0.05, 0.15)),
        major_mm=float(rng.uniform(0.12, 0.35)), labels=str(rng.choice(labels)),
        separators=str(rng.choice(["tick", "line", "none"])), frame=bool(rng.random() < 0.3),
        dpi=float(rng.uniform(100, 160)),
    )


def _khan_layout(rng: np.random.Generator) -> Layout:
    """The Khan et al. machine's report: 3×4 plus a lead II strip, white paper, a faint pink dotted
    grid framed in a red box, an "ECG REPORT" header, Times-like type; only resolution and line
    weights vary, as between its scans."""
    return Layout(
        family="khan", lead_order="standard", rhythm=("II",), speed=25.0, gain=10.0, calibration="start",
        grid="pink", grid_style="dots", grid_fade=float(rng.uniform(0.1, 0.3)), paper="white", header="khan",
        page="khan", margin_mm=9.0, font=KHAN_FONT, font_mm=float(rng.uniform(2.9, 3.3)),
        trace_mm=float(rng.uniform(0.2, 0.3)), minor_mm=0.08, major_mm=float(rng.uniform(0.1, 0.16)),
        labels="left", separators="line", frame=True, dpi=float(rng.uniform(95, 130)),
    )


# --- drawing ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _font(name: str, pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name), max(6, pixels))


def _fade(colour: RGB, paper: RGB, amount: float) -> RGB:
    return tuple(int(round(c + (p - c) * amount)) for c, p in zip(colour, paper))  # type: ignore[return-value]


class _Page:
    """A page being drawn: numpy for the grid, ImageDraw for the rest, coordinates in mm from
    the top left."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.width_mm, self.height_mm = PAGES[layout.page]
        self.scale = layout.dpi / 25.4 * SUPERSAMPLE  # pixels per mm while drawing
        self.background, self.ink = PAPERS[layout.paper]
        size = (round(self.width_mm * self.scale), round(self.height_mm * self.scale))
        self.canvas = np.empty((size[1], size[0], 3), dtype=np.uint8)
        self.canvas[:] = self.background
        self.image: Image.Image | None = None
        self.draw: ImageDraw.ImageDraw | None = None

    def px(self, mm: float) -> float:
        return mm * self.scale

    def grid(self, box: tuple[float, float, float, float]) -> None:
        """1 mm and 5 mm lines (or dots) over box = (left, top, right, bottom) in mm, from its top left."""
        colours = GRIDS[self.layout.grid]
        if colours is None:
            return
        minor, major = (_fade(c, self.background, self.layout.grid_fade) for c in colours)
        left, top, right, bottom = box
        xs = np.arange(0, math.floor(right - left) + 1)
        ys = np.arange(0, math.floor(bottom - top) + 1)
        x_px, y_px = np.round(self.px(left + xs)).astype(int), np.round(self.px(top + ys)).astype(int)
        t, b, l, r = y_px[0], y_px[-1] + 1, x_px[0], x_px[-1] + 1
        minor_w = max(1, round(self.px(self.layout.minor_mm)))
        major_w = max(1, round(self.px(self.layout.major_mm)))
        if self.layout.grid_style == "lines":
            self._lines(x_px, y_px, minor_w, minor, (t, b, l, r))
        elif self.layout.grid_style == "dots":
            dot = max(2, minor_w + 1)
            cols = (x_px[:, None] + np.arange(dot)[None, :]).ravel()
            rows = (y_px[:, None] + np.arange(dot)[None, :]).ravel()
            self.canvas[np.ix_(rows[rows < self.canvas.shape[0]], cols[cols < self.canvas.shape[1]])] = minor
        self._lines(x_px[xs % 5 == 0], y_px[ys % 5 == 0], major_w, major, (t, b, l, r))

    def _lines(self, x_px: np.ndarray, y_px: np.ndarray, width: int, colour: RGB,
               box: tuple[int, int, int, int]) -> None:
        t, b, l, r = box
        height, span = self.canvas.shape[:2]
        cols = np.zeros(span, dtype=bool)
        rows = np.zeros(height, dtype=bool)
        for offset in range(width):
            cols[np.clip(x_px + offset - width // 2, 0, span - 1)] = True
            rows[np.clip(y_px + offset - width // 2, 0, height - 1)] = True
        self.canvas[t:b, l:r][:, cols[l:r]] = colour
        self.canvas[t:b, l:r][rows[t:b]] = colour

    def start_drawing(self) -> None:
        self.image = Image.fromarray(self.canvas, "RGB")
        self.draw = ImageDraw.Draw(self.image)

    def polyline(self, points_mm: np.ndarray, width_mm: float, colour: RGB | None = None) -> None:
        points = [(float(x), float(y)) for x, y in points_mm * self.scale]
        self.draw.line(points, fill=colour or self.ink, width=max(1, round(self.px(width_mm))))

    def rectangle(self, box_mm: tuple[float, float, float, float], width_mm: float, colour: RGB,
                  fill: RGB | None = None) -> None:
        self.draw.rectangle([self.px(v) for v in box_mm], outline=colour, fill=fill,
                            width=max(1, round(self.px(width_mm))))

    def text(self, x_mm: float, y_mm: float, text: str, size_mm: float | None = None, *, font: str | None = None,
             anchor: str = "la", colour: RGB | None = None) -> None:
        typeface = _font(font or self.layout.font, round(self.px(size_mm or self.layout.font_mm)))
        self.draw.text((self.px(x_mm), self.px(y_mm)), text, fill=colour or self.ink, font=typeface, anchor=anchor)

    def finish(self) -> Image.Image:
        return self.image.reduce(SUPERSAMPLE)


def render_page(signals: np.ndarray, layout: Layout, rng: np.random.Generator) -> Image.Image:
    """The pristine page: `signals` (12 leads in LEADS order, mV, RATE Hz) printed in `layout`;
    `rng` picks the window of the record and the header's invented patient and machine text."""
    page = _Page(layout)
    left, top, right, bottom, lead_left, lead_right = _geometry(layout, page)
    samples = signals.shape[1]
    # A machine sizes its lead area for ten seconds at 25 mm/s; at 50 mm/s the same paper shows five.
    width = min(lead_right - lead_left, LEAD_AREA_MM)
    seconds = min(width / layout.speed, samples / RATE)
    lead_right = lead_left + seconds * layout.speed
    page.grid((left, top, right, bottom))
    page.start_drawing()
    if layout.frame:
        frame_colour = KHAN_FRAME if layout.header == "khan" else (GRIDS[layout.grid] or ((0, 0, 0), page.ink))[1]
        page.rectangle((left, top, right, bottom), max(0.25, layout.major_mm), frame_colour)
    start = int(rng.integers(0, samples - round(seconds * RATE) + 1))
    window = signals[:, start:start + round(seconds * RATE)]
    window = window - np.median(window, axis=1, keepdims=True)  # a machine's baseline filter
    _draw_leads(page, window, layout, lead_left, lead_right, top, bottom)
    _draw_header(page, layout, rng)
    return page.finish()


def _geometry(layout: Layout, page: _Page) -> tuple[float, float, float, float, float, float]:
    """Where the grid box (left, top, right, bottom) and the leads (from, to) go, in mm."""
    if layout.header == "khan":
        # Measured off the Khan photos: the grid box, and the leads' start after the pulses.
        return 8.5, 36.0, 276.3, 192.7, 19.5, 276.3
    m = layout.margin_mm
    left = m + (SIDE_HEADER_MM if layout.header == "side" else 0.0)
    top = m + HEADER_MM[layout.header]
    right, bottom = page.width_mm - m, page.height_mm - m - FOOTER_LINES * layout.font_mm
    pulse = CALIBRATION_S * layout.speed + 3  # the pulse and a millimetre of baseline either side
    lead_left = left + (pulse + 1 if layout.calibration == "start" else 1)
    lead_right = right - (pulse + 1 if layout.calibration == "end" else 1)
    return left, top, right, bottom, lead_left, lead_right


def _draw_leads(page: _Page, window: np.ndarray, layout: Layout, lead_left: float, lead_right: float,
                top: float, bottom: float) -> None:
    """Each row's leads side by side, time running on across the row as every multi-column
    format prints it; calibration pulses, lead names and separators as the layout says."""
    rows = layout.rows()
    row_mm = (bottom - top) / len(rows)
    width = lead_right - lead_left
    samples = window.shape[1]
    pulse = CALIBRATION_S * layout.speed
    for r, names in enumerate(rows):
        baseline = top + (r + 0.6) * row_mm
        box = width / len(names)
        per_box = samples // len(names)
        for c, name in enumerate(names):
            lead = window[LEADS.index(name.lstrip("-"))] * (-1 if name.startswith("-") else 1)
            values = lead[c * per_box:(c + 1) * per_box + (1 if c < len(names) - 1 else 0)]
            x0 = lead_left + c * box
            x = x0 + np.arange(len(values)) / RATE * layout.speed
            page.polyline(np.column_stack([x, baseline - values * layout.gain]), layout.trace_mm)
            _label(page, layout, name, x0, baseline, row_mm)
            if c and layout.separators == "tick":
                page.polyline(np.array([[x0, baseline - 2.5], [x0, baseline + 2.5]]), layout.trace_mm)
            elif c and layout.separators == "line":
                # One line down the whole block of multi-column rows, a few mm past its first and last.
                upper = baseline - (SEPARATOR_OVERRUN_MM if r == 0 else 0.5 * row_mm)
                last = r + 1 == len(rows) or len(rows[r + 1]) == 1
                lower = baseline + (SEPARATOR_OVERRUN_MM if last else 0.5 * row_mm)
                page.polyline(np.array([[x0, upper], [x0, lower]]), layout.trace_mm)
        if layout.calibration != "none":
            x = lead_left - pulse - 3 if layout.calibration == "start" else lead_right + 1
            high = baseline - layout.gain
            page.polyline(np.array([[x, baseline], [x + 1, baseline], [x + 1, high], [x + 1 + pulse, high],
                                    [x + 1 + pulse, baseline], [x + 2 + pulse, baseline]]), layout.trace_mm)


def _label(page: _Page, layout: Layout, name: str, x0: float, baseline: float, row_mm: float) -> None:
    if layout.labels == "left":
        page.text(x0 + 0.3, baseline, name, anchor="lm")
    elif layout.labels == "above":
        page.text(x0 + 1.0, baseline - min(0.4 * row_mm, 9.0), name, anchor="ls")
    else:
        page.text(x0 + 1.0, baseline + min(0.3 * row_mm, 7.0), name, anchor="lt")


def _identity(rng: np.random.Generator) -> list[str]:
    """An invented patient: nothing on a page is the record's, so nothing tells the finding."""
    return [f"ID: {int(rng.integers(10**5, 10**7))}",
            f"{int(rng.integers(1995, 2025))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d} "
            f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}",
            f"Age: {int(rng.integers(20, 90))}  Sex: {rng.choice(['M', 'F', '-'])}",
            f"Room {int(rng.integers(1, 40))}"]


def _measurements(rng: np.random.Generator) -> list[str]:
    """A machine's measurement block, invented per seed (not the record's: it must not tell the finding)."""
    qt = int(rng.integers(340, 440))
    return [f"Vent. rate {int(rng.integers(50, 110))} bpm", f"PR interval {int(rng.integers(120, 200))} ms",
            f"QRS duration {int(rng.integers(80, 120))} ms", f"QT/QTc {qt}/{qt + int(rng.integers(5, 40))} ms",
            "P-R-T axes " + " ".join(str(int(rng.integers(-30, 90))) for _ in range(3))]


def _machine_line(layout: Layout, rng: np.random.Generator) -> str:
    return (f"{layout.speed:g} mm/s   {layout.gain:g} mm/mV   0.05-{rng.choice(['40', '100', '150'])} Hz   "
            f"{rng.choice(['50', '60'])} Hz   {rng.choice(MACHINES)}")


def _draw_header(page: _Page, layout: Layout, rng: np.random.Generator) -> None:
    m, size = layout.margin_mm, layout.font_mm
    footer_mm = FOOTER_LINES * size
    w, h = page.width_mm, page.height_mm
    if layout.header == "khan":
        _khan_header(page, rng)
        return
    if layout.header == "plain":
        page.text(m, m + 2, "   ".join(_identity(rng)[:3]) + f"   {rng.choice(['12-lead ECG', 'Resting ECG', ''])}")
    elif layout.header == "measurements":
        for i, line in enumerate(_identity(rng)):
            page.text(m, m + 1 + i * 1.5 * size, line)
        for i, line in enumerate(_measurements(rng)):
            page.text(m + 70, m + 1 + i * 1.5 * size, line)
        for i, line in enumerate(["Unconfirmed report", "Interpretation withheld", "Referred by:",
                                  "Confirmed by:"]):
            page.text(m + 150, m + 1 + i * 1.5 * size, line)
    elif layout.header == "banner":
        band = (40, 70, 130) if rng.random() < 0.5 else (60, 60, 60)
        page.rectangle((0, m - 2, w, m + 9), 0.1, band, fill=band)
        page.text(m, m + 3.5, str(rng.choice(["12-LEAD RESTING ECG", "ELECTROCARDIOGRAM", "ECG"])), size * 1.4,
                  anchor="lm", colour=(255, 255, 255))
        page.text(w - m, m + 3.5, f"Cardiology · Bed {int(rng.integers(1, 30))}", anchor="rm", colour=(255, 255, 255))
        page.text(m, m + 12, "    ".join(_identity(rng)))
        page.text(m, m + 12 + 1.6 * size, "    ".join(_measurements(rng)[:3]))
    elif layout.header == "side":
        page.rectangle((m, m, m + SIDE_HEADER_MM - 4, h - m - footer_mm), 0.2, page.ink)
        lines = ["PATIENT", *_identity(rng), "", "MEASUREMENTS", *_measurements(rng), "", "Unconfirmed"]
        for i, line in enumerate(lines):
            page.text(m + 2, m + 3 + i * 1.6 * size, line)
    page.text(m, h - m - footer_mm / 2, _machine_line(layout, rng), anchor="lm")
    if rng.random() < 0.5:
        page.text(w - m, h - m - footer_mm / 2, f"Page 1 of 1   {rng.choice(['', 'Unconfirmed', 'Printed'])}",
                  anchor="rm")


def _khan_header(page: _Page, rng: np.random.Generator) -> None:
    """The Khan machine's "ECG REPORT": title, a line of patient fields, a double rule, the
    diagnosis and signature fields, and its footer of filter, speed and gain settings."""
    w, h, size = page.width_mm, page.height_mm, page.layout.font_mm
    page.text(w / 2, 3.0, "ECG REPORT", size * 1.7, anchor="mt")
    sex = "Male" if rng.random() < 0.5 else "Female"
    fields = [(8.5, f"ID : {int(rng.integers(100000, 999999))}"), (42, "Years"), (56, sex), (77, "cm"), (97, "kg"),
              (115, "/"), (121, "mmHg"), (138.5, "Race:Unknown"), (169, "Room No.:"), (193, "Department:")]
    for x, word in fields:
        page.text(x, 10.7, word, anchor="lm")
    page.text(8.5, 14.9, "Exam.Room:      Medication:", anchor="lm")
    page.polyline(np.array([[8.5, 17.6], [w - 8, 17.6]]), 0.25)
    page.polyline(np.array([[8.5, 18.4], [w - 8, 18.4]]), 0.25)
    page.text(8.5, 20.5, "Diagnosis Information:", anchor="lm")
    for i, word in enumerate(["Technician :", "Ref-Phys. :", "Report Confirmed by:"]):
        page.text(197.6, 24.6 + i * 4.15, word, anchor="lm")
    footer = 195.9
    page.text(9, footer, f"0.67~25Hz  AC50  25mm/s  10mm/mV  4*2.5s+1r  ♥{int(rng.integers(50, 110))}   SE=3  "
                         "V1.0  SEMIP V1.7", size * 0.85, anchor="lm")
    page.text(261.7, footer, f"20{int(rng.integers(18, 24))}-{int(rng.integers(1, 13)):02d}-"
                              f"{int(rng.integers(1, 29)):02d}   {int(rng.integers(1, 13)):02d}:"
                              f"{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d} "
                              f"{rng.choice(['AM', 'PM'])}", size * 0.85, anchor="rm")


# --- capturing ----------------------------------------------------------------------------------


def _step(image: Image.Image, family: str, rng: np.random.Generator, strength: float | None = None) -> Image.Image:
    """One capture family of predictors.training.captures at a strength drawn from its training range."""
    if strength is None:
        low, high = captures.MILD_RANGES[family]
        strength = float(rng.uniform(low, high))
    picture = Image.open(io.BytesIO(captures.FAMILIES[family](image, strength, rng)))
    picture.load()
    return picture


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _export(page: Image.Image, rng: np.random.Generator) -> bytes:
    """A PDF export or a screenshot of one: the page itself, losslessly."""
    return _png(page)


def _scan(page: Image.Image, rng: np.random.Generator) -> bytes:
    """An office scanner: a page fed a little askew, slightly soft, toner or lamp a little off."""
    picture = _step(page, "tilt", rng, float(rng.uniform(0, 2.5)))
    picture = _step(picture, "blur", rng, float(rng.uniform(0, 1.2)))
    picture = _step(picture, str(rng.choice(["brightness", "contrast", "gamma"])), rng)
    return _jpeg(picture, int(rng.integers(75, 96)))


def _phone(page: Image.Image, rng: np.random.Generator) -> Image.Image:
    picture = _step(page, "phone_photo", rng)
    for family in rng.choice(["uneven_light", "colour_cast", "brightness", "gamma", "blur"], size=2, replace=False):
        picture = _step(picture, str(family), rng)
    if rng.random() < 0.1:
        picture = _step(picture, "rotate", rng, float(rng.choice([90, 180, 270])))
    return picture


def _phone_photo(page: Image.Image, rng: np.random.Generator) -> bytes:
    """A phone held over the page on a table: at an angle, in uneven or tinted light."""
    return _jpeg(_phone(page, rng), int(rng.integers(80, 96)))


def _messaging(page: Image.Image, rng: np.random.Generator) -> bytes:
    """A phone photo sent through a messaging app: shrunk and recompressed hard."""
    return captures.FAMILIES["recompress"](_phone(page, rng), float(rng.uniform(*captures.MILD_RANGES["recompress"])),
                                           rng)


def _screen_photo(page: Image.Image, rng: np.random.Generator) -> bytes:
    """A photo of the page shown on a monitor."""
    return _jpeg(_step(page, "screen_photo", rng), int(rng.integers(75, 95)))


def _creased(page: Image.Image, rng: np.random.Generator) -> bytes:
    """A page folded for a folder or a pocket, opened again and scanned or photographed."""
    folded = _step(page, "crease", rng)
    return _scan(folded, rng) if rng.random() < 0.5 else _phone_photo(folded, rng)


CAPTURES: dict[str, tuple[float, Callable[[Image.Image, np.random.Generator], bytes]]] = {  # how often, how
    "export": (0.12, _export), "scan": (0.28, _scan), "phone_photo": (0.25, _phone_photo),
    "messaging": (0.15, _messaging), "screen_photo": (0.08, _screen_photo), "creased": (0.12, _creased),
}


# --- one printout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Printout:
    layout: Layout
    capture: str  # a CAPTURES key
    page: Image.Image  # as printed
    data: bytes  # as captured and uploaded


def draw_printout(signals: np.ndarray, ecg_id: int, variant: int, seed: int) -> Printout:
    """The record's `variant`-th printout: a pure function of (record id, variant, seed) and the
    record's signals, never of its finding."""
    rng = np.random.default_rng([seed, ecg_id, variant, 29])
    layout = draw_layout(rng)
    page = render_page(signals, layout, rng)
    names = list(CAPTURES)
    weights = np.array([CAPTURES[name][0] for name in names])
    capture = str(rng.choice(names, p=weights / weights.sum()))
    return Printout(layout, capture, page, CAPTURES[capture][1](page, rng))


def model_pixels(data: bytes, spec: Mapping[str, Any]) -> np.ndarray:
    """What the network sees of an uploaded picture, as uint8 (3, H, W): the site's decoder, then
    model_input, un-normalised. Refuses a spec whose normalisation would not round-trip exactly."""
    features = model_input(decode(data, **real_images.DECODE_LIMITS).image, spec)[0]
    mean, std = (np.asarray(spec[key], dtype=np.float32)[:, None, None] for key in ("mean", "std"))
    pixels = np.clip(np.round((features * std + mean) * 255.0), 0, 255).astype(np.uint8)
    if not np.array_equal(normalised(pixels, spec), features):
        raise ValueError("this input spec's model input is not 8-bit pixels normalised; it cannot be cached as uint8")
    return pixels


def normalised(pixels: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Cached uint8 pixels (..., 3, H, W) as the float network input, computed as model_input does."""
    array = np.moveaxis(pixels, -3, -1).astype(np.float32) / 255.0
    array = (array - np.asarray(spec["mean"], dtype=np.float32)) / np.asarray(spec["std"], dtype=np.float32)
    return np.ascontiguousarray(np.moveaxis(array, -1, -3))


# --- the cache ----------------------------------------------------------------------------------

INDEX_FIELDS = ("ecg_id", "variant", "patient_id", "fold", "split", "finding", "layout_family", "capture",
                "layout")


def cache_key(spec: Mapping[str, Any], seed: int, variants: int) -> str:
    material = json.dumps({"spec": spec, "renderer": RENDERER_VERSION, "seed": seed, "variants": variants},
                          sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def cache_dir(spec: Mapping[str, Any], seed: int = DEFAULT_SEED, variants: int = DEFAULT_VARIANTS,
              root: Path = CACHE_ROOT) -> Path:
    return root / cache_key(spec, seed, variants)


def _shard_name(block: int) -> str:
    return f"shard-{block:04d}"


def _build_shard(job: tuple[Path, str, list[Recording], dict[str, Any], int, int]) -> tuple[str, int, float]:
    """Draw, capture and transform one shard's printouts, written atomically: pixels, then the index
    that marks the shard complete."""
    directory, name, chosen, spec, seed, variants = job
    began = time.perf_counter()
    pixels, rows = [], []
    for recording in chosen:
        signals = read_signals(recording)
        for variant in range(variants):
            printout = draw_printout(signals, recording.ecg_id, variant, seed)
            pixels.append(model_pixels(printout.data, spec))
            rows.append({"ecg_id": recording.ecg_id, "variant": variant, "patient_id": recording.patient_id,
                         "fold": recording.fold, "split": recording.split, "finding": recording.finding,
                         "layout_family": printout.layout.family, "capture": printout.capture,
                         "layout": json.dumps(dataclasses.asdict(printout.layout), sort_keys=True)})
    stacked = np.stack(pixels)
    if (stacked == stacked[:, :1]).all():
        stacked = stacked[:, :1]  # a grey input spec (the ECG's grid suppression): one plane, a third of the disk
    with open(directory / f"{name}.npy.tmp", "wb") as handle:
        np.save(handle, stacked)
    os.replace(directory / f"{name}.npy.tmp", directory / f"{name}.npy")
    with open(directory / f"{name}.csv.tmp", "w", newline="") as handle:
        writer = csv.DictWriter(handle, INDEX_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(directory / f"{name}.csv.tmp", directory / f"{name}.csv")
    return name, len(rows), time.perf_counter() - began


def _shard_complete(directory: Path, name: str, chosen: Sequence[Recording], variants: int) -> bool:
    index = directory / f"{name}.csv"
    if not index.exists() or not (directory / f"{name}.npy").exists():
        return False
    with index.open(newline="") as handle:
        held = [(int(row["ecg_id"]), int(row["variant"])) for row in csv.DictReader(handle)]
    return held == [(r.ecg_id, v) for r in chosen for v in range(variants)]


def build_cache(spec: Mapping[str, Any], *, seed: int = DEFAULT_SEED, variants: int = DEFAULT_VARIANTS,
                chosen: Sequence[Recording] | None = None, workers: int = 1, shard_records: int = 16,
                root: Path = CACHE_ROOT) -> Path:
    """Cache the printouts of `chosen` recordings (all of them by default) as the model's input.

    Recordings are grouped into shards by ecg_id (ids ecg_id // shard_records), so a shard always
    holds the same printouts; a shard already written with exactly those is skipped, so an
    interrupted build resumes, and a build of a few records followed by a full one redraws only
    what changed. Progress goes to the log, a line per shard with the seconds per printout.
    """
    chosen = sorted(chosen if chosen is not None else recordings(), key=lambda r: r.ecg_id)
    directory = cache_dir(spec, seed, variants, root)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").write_text(json.dumps({
        "spec": spec, "renderer": RENDERER_VERSION, "seed": seed, "variants": variants,
        "shard_records": shard_records}, indent=2, sort_keys=True))
    blocks: dict[int, list[Recording]] = {}
    for recording in chosen:
        blocks.setdefault(recording.ecg_id // shard_records, []).append(recording)
    jobs = [(directory, _shard_name(block), members, dict(spec), seed, variants) for block, members in
            sorted(blocks.items()) if not _shard_complete(directory, _shard_name(block), members, variants)]
    log.info("printouts %s: %d shards to draw, %d already cached", directory, len(jobs), len(blocks) - len(jobs))
    began = time.perf_counter()
    if workers <= 1:
        results: Iterable[tuple[str, int, float]] = map(_build_shard, jobs)
        _log_progress(results, len(jobs), began)
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            _log_progress(pool.imap_unordered(_build_shard, jobs), len(jobs), began)
    _write_index(directory, [_shard_name(block) for block in sorted(blocks)])
    return directory


def _log_progress(results: Iterable[tuple[str, int, float]], total: int, began: float) -> None:
    for done, (name, count, seconds) in enumerate(results, start=1):
        elapsed = time.perf_counter() - began
        log.info("printouts: %s done (%d printouts, %.2f s each); %d/%d shards, %.0f s elapsed, about %.0f s left",
                 name, count, seconds / max(count, 1), done, total, elapsed, elapsed / done * (total - done))


def _write_index(directory: Path, names: Sequence[str]) -> None:
    """index.csv: every cached picture's row, with the shard and position that hold its pixels."""
    with (directory / "index.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, ("shard", "position", *INDEX_FIELDS))
        writer.writeheader()
        for name in names:
            with (directory / f"{name}.csv").open(newline="") as handle:
                for position, row in enumerate(csv.DictReader(handle)):
                    writer.writerow({"shard": name, "position": position, **row})


@dataclass(frozen=True)
class CachedPrintouts:
    """A built cache: one index row per picture, its pixels memory-mapped from the shards."""

    directory: Path
    rows: list[dict[str, str]]
    shards: dict[str, np.ndarray]

    def pixels(self, i: int) -> np.ndarray:
        """The i-th picture's uint8 (3, H, W) pixels; a shard of grey pictures holds one plane of each."""
        row = self.rows[i]
        held = self.shards[row["shard"]][int(row["position"])]
        return np.broadcast_to(held, (3, *held.shape[1:]))


def load_cache(directory: Path) -> CachedPrintouts:
    with (directory / "index.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    shards = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in {row["shard"] for row in rows}}
    return CachedPrintouts(directory, rows, shards)


def other_machine_inputs(spec: Mapping[str, Any], count: int, *, seed: int = DEFAULT_SEED,
                         workers: int = 1) -> np.ndarray:
    """Model inputs (N, 3, H, W), float16, of `count` fitting-fold recordings chosen at random (seeded),
    each in its DEFAULT_VARIANTS printouts: other machines' pages, for the domain score's machine check
    (predictors.training.domain.fit_machine). Cached like any printout, so a second fit redraws nothing."""
    fitting = splits(recordings())["fit"]
    rng = np.random.default_rng([seed, count])
    chosen = [fitting[i] for i in sorted(rng.choice(len(fitting), size=count, replace=False))]
    cache = load_cache(build_cache(spec, seed=seed, chosen=chosen, workers=workers))
    wanted = {recording.ecg_id for recording in chosen}
    return np.stack([normalised(cache.pixels(i), spec) for i, row in enumerate(cache.rows)
                     if int(row["ecg_id"]) in wanted]).astype(np.float16)


def main(argv: Sequence[str] | None = None) -> None:
    """Build the cache for the ECG card's input spec from the command line, logging to stderr."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--variants", type=int, default=DEFAULT_VARIANTS)
    parser.add_argument("--limit", type=int, help="only the first N recordings of each split")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = json.loads((Path(__file__).resolve().parents[1] / "artifacts" / "ecg" / "card.json").read_text())["input"]
    chosen = recordings()
    if args.limit:
        chosen = [r for group in splits(chosen).values() for r in group[:args.limit]]
    print(build_cache(spec, seed=args.seed, variants=args.variants, chosen=chosen, workers=args.workers))


if __name__ == "__main__":
    main()
