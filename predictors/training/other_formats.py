"""Pictures from outside the image models' validated domain, rendered for the domain-shift benchmark.

The ECG model learnt from one machine's printouts (Khan et al.: a 3×4 grid plus a lead II
rhythm strip on white paper with a pink grid framed in a red box, an "ECG REPORT" header of
patient fields, scanned); the retina model from one camera (IDRiD: a 50° circular field
cut at top and bottom, one colour response, 4288×2848). A clinic's printout or camera is
almost never those, and bench/domain_shift.py measures what the site answers when it is not:

- ECG_FORMATS print a simulated record (synth_ecg.simulate) in other machines' formats:
  other layouts (3×4 with three rhythm strips, 3×4 with none, 6×2, 12×1), other papers
  and grids (grey, blue and green grids, cream thermal paper, no grid), other header
  blocks, an ECG viewer's screenshot and a PDF export.
- FUNDUS_LOOKS re-make a real fundus photo as other cameras take it: other field-of-view
  shapes (octagonal, notched, a rectangular crop with no mask, a smaller field), other
  colour responses (greener, bluer, desaturated, another gamma) and other resolutions
  (640×480, very large with a wide black border). Each goes past the capture benchmark's
  strengths (captures.BENCHMARK: gamma 0.6-1.6, colour casts of 20%), which the model must
  still answer.

Every picture is returned encoded, as an upload is, and is deterministic per seed.
Simulation is slow (seconds per record) and printing fast, so a record is printed in
every format.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from predictors.images import fundus  # noqa: E402
from predictors.training.synth_ecg import LEADS, RATE, Record, r_peaks  # noqa: E402

Colour = tuple[float, float, float]

SECONDS = 10.0  # a 12-lead page shows ten seconds
MM_PER_S, MM_PER_MV = 25.0, 10.0

LAYOUT_3X4 = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]
LAYOUT_6X2 = [["I", "V1"], ["II", "V2"], ["III", "V3"], ["aVR", "V4"], ["aVL", "V5"], ["aVF", "V6"]]
LAYOUT_12X1 = [[lead] for lead in LEADS]


@dataclass(frozen=True)
class Paper:
    """The paper a machine prints on: its colour, its grid (None: no grid) and its ink."""

    background: Colour
    minor: Colour | None
    major: Colour | None
    trace: Colour = (0.05, 0.05, 0.05)
    text: Colour = (0.1, 0.1, 0.1)
    minor_width: float = 0.25  # points
    major_width: float = 0.6
    trace_width: float = 0.8


PINK = Paper((1.0, 0.97, 0.96), (0.98, 0.72, 0.72), (0.93, 0.45, 0.45))
GREY = Paper((1.0, 1.0, 1.0), (0.82, 0.82, 0.82), (0.55, 0.55, 0.55))
BLUE = Paper((0.99, 0.99, 1.0), (0.75, 0.82, 0.96), (0.35, 0.5, 0.85), trace=(0.0, 0.0, 0.15))
GREEN = Paper((0.98, 1.0, 0.98), (0.72, 0.9, 0.74), (0.3, 0.65, 0.35))
THERMAL = Paper((0.98, 0.95, 0.84), (0.9, 0.72, 0.55), (0.78, 0.48, 0.3), trace=(0.12, 0.08, 0.05))
BLANK = Paper((1.0, 1.0, 1.0), None, None, trace=(0.0, 0.0, 0.0), trace_width=0.9)
PDF = Paper((1.0, 1.0, 1.0), (1.0, 0.85, 0.85), (0.95, 0.6, 0.6), trace=(0.0, 0.0, 0.0),
            minor_width=0.08, major_width=0.2, trace_width=0.5)


@dataclass(frozen=True)
class EcgFormat:
    """One way a page can look: how it is drawn and how it is sent."""

    name: str
    description: str
    draw: Callable[[Record, np.random.Generator], Image.Image]
    file_format: str  # "JPEG" (a scan or photo) or "PNG" (a screenshot or an export)


@dataclass(frozen=True)
class FundusLook:
    """One other camera: how a photo is remade and how it is sent."""

    name: str
    description: str
    remake: Callable[[Image.Image, np.random.Generator], Image.Image]
    jpeg_quality: int = 90


# --- ECG pages --------------------------------------------------------------------------------


def recorded(signals: np.ndarray) -> Record:
    """A real recording's twelve leads (mV, at RATE) as a record this renderer prints: the heart rate
    in its header counted from the recording's own QRS peaks."""
    peaks = r_peaks(signals)
    heart_rate = 60 * RATE / float(np.median(np.diff(peaks))) if len(peaks) > 1 else 70.0
    return Record(0, signals, heart_rate, None)


def _window(record: Record, rng: np.random.Generator) -> np.ndarray:
    """Ten seconds of the record, from a start the seed picks."""
    length = int(SECONDS * RATE)
    start = int(rng.integers(0, max(1, record.signals.shape[1] - length)))
    return record.signals[:, start:start + length]


def _canvas(width_mm: float, height_mm: float, dpi: float, background: Colour) -> tuple[Figure, object]:
    """A figure whose data coordinates are millimetres of paper, origin at the bottom left."""
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor(background)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width_mm)
    ax.set_ylim(0, height_mm)
    ax.axis("off")
    return fig, ax


def _rasterise(fig: Figure) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, facecolor=fig.get_facecolor())
    return Image.open(buffer).convert("RGB")


def _grid(ax: object, box: tuple[float, float, float, float], paper: Paper, dotted_minor: bool = False) -> None:
    """1 mm minor and 5 mm major lines over box = (left, bottom, right, top), in mm."""
    if paper.minor is None or paper.major is None:
        return
    left, bottom, right, top = box
    xs, ys = np.arange(left, right + 1e-6, 1.0), np.arange(bottom, top + 1e-6, 1.0)
    if dotted_minor:
        gx, gy = np.meshgrid(xs, ys)
        ax.scatter(gx.ravel(), gy.ravel(), s=1.0, c=[paper.minor], marker="s", linewidths=0)
    else:
        minor = [((x, bottom), (x, top)) for x in xs] + [((left, y), (right, y)) for y in ys]
        ax.add_collection(LineCollection(minor, colors=[paper.minor], linewidths=paper.minor_width))
    major = [((x, bottom), (x, top)) for x in xs[::5]] + [((left, y), (right, y)) for y in ys[::5]]
    ax.add_collection(LineCollection(major, colors=[paper.major], linewidths=paper.major_width))


def _calibration(x: float, baseline: float) -> np.ndarray:
    """The 1 mV, 200 ms square pulse a machine prints at the start of a row."""
    return np.array([[x, baseline], [x + 1, baseline], [x + 1, baseline + MM_PER_MV], [x + 6, baseline + MM_PER_MV],
                     [x + 6, baseline], [x + 7, baseline]])


def _leads(ax: object, signals: np.ndarray, rows: list[list[str]], left: float, top: float, row_mm: float,
           paper: Paper, *, label_below: bool = False, separators: bool = True, fontsize: float = 6.0,
           colours: list[Colour] | None = None) -> None:
    """Rows of leads at 25 mm/s and 10 mm/mV from `top` down, each after a calibration pulse: a
    row of n leads shows consecutive 10/n-second windows, as every machine's multi-column format
    does; `separators` marks where one lead gives way to the next, `colours` gives each lead its own."""
    segments, segment_colours = [], []
    for r, names in enumerate(rows):
        baseline = top - (r + 0.55) * row_mm
        span = SECONDS / len(names)
        start_x = left + 8
        segments.append(_calibration(left, baseline))
        segment_colours.append(paper.trace)
        for c, name in enumerate(names):
            index = LEADS.index(name)
            lead = signals[index, int(c * span * RATE):int((c + 1) * span * RATE)]
            x0 = start_x + c * span * MM_PER_S
            x = x0 + np.arange(len(lead)) / RATE * MM_PER_S
            segments.append(np.column_stack([x, baseline + lead * MM_PER_MV]))
            colour = colours[index] if colours else paper.trace
            segment_colours.append(colour)
            label_y = baseline - 8 if label_below else baseline + 0.3 * row_mm
            ax.text(x0 + 1.5, label_y, name, fontsize=fontsize, color=colour if colours else paper.text,
                    va="center")
            if c and separators:
                segments.append(np.array([[x0, baseline - 3], [x0, baseline + 3]]))
                segment_colours.append(paper.trace)
    ax.add_collection(LineCollection(segments, colors=segment_colours, linewidths=paper.trace_width))


def _text_block(ax: object, x: float, y: float, lines: list[str], paper: Paper, fontsize: float,
                line_mm: float) -> None:
    for i, line in enumerate(lines):
        ax.text(x, y - i * line_mm, line, fontsize=fontsize, color=paper.text, va="top")


def _measurements(record: Record, rng: np.random.Generator) -> list[str]:
    """A machine's measurement block; only the rate is the record's, the rest vary per seed."""
    pr, qrs, qt = int(rng.integers(130, 200)), int(rng.integers(80, 120)), int(rng.integers(340, 440))
    axes = " ".join(str(int(rng.integers(-20, 80))) for _ in range(3))
    return [f"Vent. rate {record.heart_rate:.0f} BPM", f"PR interval {pr} ms", f"QRS duration {qrs} ms",
            f"QT/QTc {qt}/{qt + int(rng.integers(5, 40))} ms", f"P-R-T axes {axes}"]


def _identity(rng: np.random.Generator) -> list[str]:
    return [f"ID: {int(rng.integers(10**6, 10**7))}", f"Date: 20{int(rng.integers(10, 24)):02d}-"
            f"{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}", "Sex: -   Age: -",
            f"Room: {int(rng.integers(1, 40))}"]


def _scan(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A page through an office scanner: a fraction of a degree askew, a little noise and softness."""
    image = image.rotate(float(rng.uniform(-1.0, 1.0)), resample=Image.Resampling.BILINEAR,
                         fillcolor=(255, 255, 255))
    array = np.asarray(image, dtype=np.float32) * float(rng.uniform(0.92, 1.0))
    array += rng.normal(0, float(rng.uniform(1, 4)), array.shape)
    image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 0.5))))


def _report(record: Record, rng: np.random.Generator, *, paper: Paper, rows: list[list[str]],
            header: str, label_below: bool = False, row_mm: float = 38.0, dpi: tuple[float, float] = (110, 150),
            width_mm: float = 297.0, dotted_minor: bool = False) -> Image.Image:
    """A printed and scanned page: a header block of the named style, the leads on the grid, a footer line."""
    signals = _window(record, rng)
    header_mm = {"measurements": 48.0, "banner": 30.0, "plain": 14.0, "side": 8.0, "none": 6.0}[header]
    side_mm = 62.0 if header == "side" else 0.0
    footer_mm = 10.0
    grid_width = 8 + SECONDS * MM_PER_S + 4
    left = side_mm + max(6.0, (width_mm - side_mm - grid_width) / 2)
    height_mm = header_mm + len(rows) * row_mm + footer_mm
    fig, ax = _canvas(width_mm, height_mm, float(rng.uniform(*dpi)), paper.background)
    grid_top = height_mm - header_mm
    _grid(ax, (left - 2, footer_mm, left + grid_width, grid_top), paper, dotted_minor)
    small = 6.5
    if header == "measurements":
        _text_block(ax, 8, height_mm - 6, _identity(rng), paper, small, 4.2)
        _text_block(ax, 70, height_mm - 6, _measurements(record, rng), paper, small, 4.2)
        _text_block(ax, 150, height_mm - 6, ["Unconfirmed report", "Interpretation withheld",
                                             "Compared with: none on file"], paper, small, 4.2)
        ax.text(150, height_mm - 34, "Referred by:            Confirmed by:", fontsize=small, color=paper.text)
    elif header == "banner":
        ax.add_patch(Rectangle((0, height_mm - 12), width_mm, 12, color=(0.15, 0.3, 0.55)))
        ax.text(8, height_mm - 6, "12-LEAD RESTING ECG", fontsize=11, color="white", va="center", weight="bold")
        ax.text(width_mm - 8, height_mm - 6, f"Cardiology  ·  Bed {int(rng.integers(1, 30))}", fontsize=8,
                color="white", va="center", ha="right")
        _text_block(ax, 8, height_mm - 15, ["  ".join(_identity(rng))], paper, small, 4)
        ax.text(8, height_mm - 22, "   ".join(_measurements(record, rng)[:3]),
                fontsize=small, color=paper.text, va="top")
    elif header == "plain":
        ax.text(left, height_mm - 7, f"{'  '.join(_identity(rng)[:2])}    HR {record.heart_rate:.0f}/min",
                fontsize=small, color=paper.text, va="center")
    elif header == "side":
        ax.add_patch(Rectangle((3, footer_mm), side_mm - 6, height_mm - footer_mm - 4, fill=False,
                               edgecolor=paper.text, linewidth=0.6))
        _text_block(ax, 6, height_mm - 8, ["PATIENT", *_identity(rng), "", "MEASUREMENTS",
                                           *_measurements(record, rng),
                                           "", "Unconfirmed"], paper, small, 5.0)
    _leads(ax, signals, rows, left, grid_top, row_mm, paper, label_below=label_below)
    ax.text(left, footer_mm / 2, f"25 mm/s   10 mm/mV   0.05-150 Hz   {rng.choice(['MAC', 'PW', 'CS', 'EL'])}"
            f"-{int(rng.integers(100, 9999))}", fontsize=small, color=paper.text, va="center")
    return _scan(_rasterise(fig), rng)


def _viewer(record: Record, rng: np.random.Generator) -> Image.Image:
    """An ECG viewer on a monitor, captured as a screenshot: dark window, coloured traces, title
    bar, toolbar, a lead list and a status bar."""
    width, height = [(1366, 768), (1600, 900), (1920, 1080)][int(rng.integers(3))]
    dpi = 100.0
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    dark = (0.07, 0.08, 0.1) if rng.random() < 0.5 else (0.0, 0.0, 0.0)
    fig.patch.set_facecolor(dark)
    chrome = (0.22, 0.23, 0.26)
    title = fig.add_axes((0, 0.965, 1, 0.035))
    title.set_facecolor((0.15, 0.16, 0.19))
    title.text(0.01, 0.5, f"ECG Viewer - record {int(rng.integers(1000, 9999))}.xml", color="white", fontsize=9,
               va="center", transform=title.transAxes)
    toolbar = fig.add_axes((0, 0.92, 1, 0.045))
    toolbar.set_facecolor(chrome)
    for i, word in enumerate(["Open", "Print", "Export", "25 mm/s", "10 mm/mV", "Filter 40 Hz", "Measure"]):
        toolbar.add_patch(Rectangle((0.01 + i * 0.09, 0.15), 0.08, 0.7, color=(0.32, 0.34, 0.38),
                                    transform=toolbar.transAxes))
        toolbar.text(0.05 + i * 0.09, 0.5, word, color=(0.9, 0.9, 0.9), fontsize=8, ha="center", va="center",
                     transform=toolbar.transAxes)
    panel = fig.add_axes((0, 0.03, 0.12, 0.89))
    panel.set_facecolor((0.12, 0.13, 0.16))
    for i, name in enumerate(["Patient", "Leads", *LEADS, "Rhythm", "Median beats"]):
        panel.text(0.1, 0.96 - i * 0.055, name, color=(0.8, 0.85, 0.9), fontsize=8, transform=panel.transAxes)
    status = fig.add_axes((0, 0, 1, 0.03))
    status.set_facecolor(chrome)
    status.text(0.01, 0.5, f"HR {record.heart_rate:.0f} bpm   Ready", color=(0.85, 0.85, 0.85), fontsize=8,
                va="center", transform=status.transAxes)
    for axes in (title, toolbar, panel, status):
        axes.set_xticks([])
        axes.set_yticks([])
    rows = LAYOUT_6X2 if rng.random() < 0.5 else LAYOUT_3X4 + [["II"]]
    row_mm = 30.0
    view_w, view_h = 8 + SECONDS * MM_PER_S + 4, len(rows) * row_mm
    ax = fig.add_axes((0.13, 0.04, 0.86, 0.87))
    ax.set_facecolor(dark)
    ax.set_xlim(-2, view_w)
    ax.set_ylim(0, view_h)
    ax.set_xticks([])
    ax.set_yticks([])
    grid = Paper(dark, (0.13, 0.2, 0.15), (0.2, 0.35, 0.24), trace=(0.3, 1.0, 0.4), text=(0.85, 0.9, 0.85),
                 minor_width=0.3, major_width=0.6, trace_width=1.0)
    _grid(ax, (-2, 0, view_w, view_h), grid)
    palette = [(0.3, 1.0, 0.4), (1.0, 0.9, 0.2), (0.3, 0.85, 1.0), (1.0, 0.45, 0.6)]
    colours = [palette[(i // 3) % len(palette)] for i in range(len(LEADS))]
    _leads(ax, _window(record, rng), rows, 0, view_h, row_mm, grid, separators=False, fontsize=8,
           colours=colours)
    return _rasterise(fig)


def _pdf_export(record: Record, rng: np.random.Generator) -> Image.Image:
    """A PDF export rasterised: A4 landscape, white margins, hairline grid and trace, small type."""
    paper = PDF
    signals = _window(record, rng)
    width_mm, height_mm = 297.0, 210.0
    fig, ax = _canvas(width_mm, height_mm, float(rng.uniform(140, 200)), paper.background)
    rows = LAYOUT_3X4 + [["II"]]
    row_mm = 34.0
    left, top = 18.0, height_mm - 32
    _grid(ax, (left - 2, top - len(rows) * row_mm, left + 8 + SECONDS * MM_PER_S + 2, top), paper)
    _text_block(ax, left, height_mm - 10, ["  ".join(_identity(rng)), "   ".join(_measurements(record, rng))],
                paper, 4.5, 3.2)
    ax.text(width_mm - 12, height_mm - 10, "Page 1 of 1", fontsize=4.5, color=paper.text, ha="right", va="top")
    _leads(ax, signals, rows, left, top, row_mm, paper, fontsize=4.5)
    ax.text(left, 12, "Speed: 25 mm/s   Limb: 10 mm/mV   Chest: 10 mm/mV   F 50~ 0.15-100 Hz   "
            "Exported document - not for diagnostic use without review", fontsize=4.5, color=paper.text)
    return _rasterise(fig)


ECG_FORMATS: dict[str, EcgFormat] = {f.name: f for f in [
    EcgFormat("3x4 + 3 rhythm", "3×4 with II, V1 and V5 rhythm strips, salmon grid, measurement header",
              lambda r, g: _report(r, g, paper=PINK, rows=LAYOUT_3X4 + [["II"], ["V1"], ["V5"]],
                                   header="measurements", label_below=True, row_mm=30.0), "JPEG"),
    EcgFormat("3x4 no rhythm", "3×4, no rhythm strip, grid over the whole page, labels under the trace",
              lambda r, g: _report(r, g, paper=PINK, rows=LAYOUT_3X4, header="none", label_below=True,
                                   row_mm=50.0), "JPEG"),
    EcgFormat("6x2", "6×2 (limb leads, then chest leads), red grid, banner header",
              lambda r, g: _report(r, g, paper=PINK, rows=LAYOUT_6X2, header="banner", row_mm=26.0),
              "JPEG"),
    EcgFormat("12x1", "12×1, ten seconds of every lead on a tall page, plain header",
              lambda r, g: _report(r, g, paper=PINK, rows=LAYOUT_12X1, header="plain", row_mm=21.0,
                                   width_mm=290.0), "JPEG"),
    EcgFormat("grey grid", "3×4 + II on white paper with a grey grid", lambda r, g: _report(
        r, g, paper=GREY, rows=LAYOUT_3X4 + [["II"]], header="plain"), "JPEG"),
    EcgFormat("blue grid", "3×4 + II on white paper with a blue grid", lambda r, g: _report(
        r, g, paper=BLUE, rows=LAYOUT_3X4 + [["II"]], header="plain"), "JPEG"),
    EcgFormat("green grid", "3×4 + II on white paper with a green grid", lambda r, g: _report(
        r, g, paper=GREEN, rows=LAYOUT_3X4 + [["II"]], header="plain"), "JPEG"),
    EcgFormat("thermal paper", "3×4 + II on cream thermal paper with a brown grid, dotted 1 mm grid",
              lambda r, g: _report(r, g, paper=THERMAL, rows=LAYOUT_3X4 + [["II"]], header="plain",
                                   dotted_minor=True), "JPEG"),
    EcgFormat("no grid", "3×4 + II on plain white paper, no grid", lambda r, g: _report(
        r, g, paper=BLANK, rows=LAYOUT_3X4 + [["II"]], header="plain"), "JPEG"),
    EcgFormat("side header", "3×4 + II with the patient and measurement block in a column on the left",
              lambda r, g: _report(r, g, paper=PINK, rows=LAYOUT_3X4 + [["II"]], header="side",
                                   width_mm=340.0), "JPEG"),
    EcgFormat("viewer screenshot", "an ECG viewer's window: dark background, coloured traces, toolbar and panels",
              _viewer, "PNG"),
    EcgFormat("pdf export", "a PDF export rasterised: white A4 page, hairline grid and trace, small type",
              _pdf_export, "PNG"),
]}


def render_ecg(format_name: str, record: Record, seed: int) -> bytes:
    """One page of the record in the named format, encoded as it would be uploaded."""
    spec = ECG_FORMATS[format_name]
    rng = np.random.default_rng([seed, record.label, 7919])
    image = spec.draw(record, rng)
    buffer = io.BytesIO()
    if spec.file_format == "JPEG":
        image.save(buffer, format="JPEG", quality=int(rng.integers(80, 95)))
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- Fundus photos ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disc:
    """Where a photo's lit field of view is, in pixels."""

    cx: float
    cy: float
    radius: float


def find_disc(photo: Image.Image) -> Disc:
    """The lit circle of a fundus photo, from the field of view the site finds (images.fundus):
    the box's width is the circle's diameter even when the camera cuts the circle at top and
    bottom, and its middle the centre (a camera cuts its circle equally at both)."""
    box = fundus.field_of_view_box(photo)
    if box is None:
        raise ValueError("no lit field of view in this photo")
    left, top, right, bottom = box
    return Disc(cx=(left + right - 1) / 2, cy=(top + bottom - 1) / 2, radius=(right - 1 - left) / 2)


def _circle_mask(size: tuple[int, int], disc: Disc) -> np.ndarray:
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    return np.hypot(xx - disc.cx, yy - disc.cy) <= disc.radius


def _masked(photo: Image.Image, mask: np.ndarray) -> Image.Image:
    array = np.asarray(photo.convert("RGB"), dtype=np.uint8) * mask[..., None]
    return Image.fromarray(array.astype(np.uint8), "RGB")


def _octagon(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An octagonal field stop: the disc inside a regular octagon, the rest black."""
    disc = find_disc(photo)
    r = disc.radius * float(rng.uniform(0.85, 0.95))
    turn = float(rng.uniform(0, math.pi / 8))
    corners = [(disc.cx + r * math.cos(turn + k * math.pi / 4), disc.cy + r * math.sin(turn + k * math.pi / 4))
               for k in range(8)]
    mask = Image.new("L", photo.size, 0)
    ImageDraw.Draw(mask).polygon(corners, fill=255)
    return _masked(photo, (np.asarray(mask) > 0) & _circle_mask(photo.size, disc))


def _notched(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A full circle, smaller than the frame, with a square orientation notch cut into its rim."""
    disc = find_disc(photo)
    small = Disc(disc.cx, disc.cy, min(disc.radius * 0.92, photo.height / 2 - 8))
    mask = _circle_mask(photo.size, small)
    angle = float(rng.uniform(0, 2 * math.pi))
    side = small.radius * float(rng.uniform(0.12, 0.2))
    nx, ny = small.cx + small.radius * math.cos(angle), small.cy + small.radius * math.sin(angle)
    yy, xx = np.mgrid[0:photo.height, 0:photo.width]
    mask &= ~((np.abs(xx - nx) < side) & (np.abs(yy - ny) < side))
    return _masked(photo, mask)


def _rectangle(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A rectangular crop from inside the field, no camera mask at all (a slit-lamp or phone adapter's
    cropped export)."""
    disc = find_disc(photo)
    half_h = min(disc.radius * 0.6, disc.cy - 2, photo.height - disc.cy - 2)
    half_w = math.sqrt(max(disc.radius ** 2 - half_h ** 2, 1)) * float(rng.uniform(0.85, 0.95))
    box = (round(disc.cx - half_w), round(disc.cy - half_h), round(disc.cx + half_w), round(disc.cy + half_h))
    crop = photo.convert("RGB").crop(box)
    return crop.resize((1024, round(1024 * crop.height / crop.width)), Image.Resampling.LANCZOS)


def _small_field(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A narrower camera (about 30° instead of 50°): the centre of the field magnified, shown as a
    whole circle on a black square."""
    disc = find_disc(photo)
    share = float(rng.uniform(0.5, 0.62))
    r = disc.radius * share
    cx = disc.cx + float(rng.uniform(-0.2, 0.2)) * disc.radius
    cy = min(max(disc.cy, r), photo.height - r)
    crop = photo.convert("RGB").crop((round(cx - r), round(cy - r), round(cx + r), round(cy + r)))
    side = 1200
    inner = round(side * 0.45) * 2
    circle = crop.resize((inner, inner), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (side, side))
    offset = (side - inner) // 2
    mask = Image.new("L", (inner, inner), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, inner - 1, inner - 1), fill=255)
    canvas.paste(circle, (offset, offset), mask)
    return canvas


def _colour(photo: Image.Image, matrix: np.ndarray, gamma: np.ndarray | None = None) -> Image.Image:
    """Another sensor's colour response inside the field: a channel mix, then a tone curve."""
    disc = find_disc(photo)
    array = np.asarray(photo.convert("RGB"), dtype=np.float32) / 255.0
    mixed = np.clip(array @ matrix.T.astype(np.float32), 0, 1)
    if gamma is not None:
        mixed = mixed ** gamma.astype(np.float32)
    mask = _circle_mask(photo.size, Disc(disc.cx, disc.cy, disc.radius * 1.01))[..., None]
    out = np.where(mask, mixed, array)
    return Image.fromarray(np.clip(out * 255, 0, 255).astype(np.uint8), "RGB")


def _greener(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A red-and-green laser scanner's pseudo-colour: the retina green-yellow, almost no blue."""
    g = float(rng.uniform(1.3, 1.6))
    return _colour(photo, np.array([[0.55, 0.25, 0.0], [0.45, g, 0.0], [0.0, 0.05, 0.15]]))


def _bluer(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A camera with a cool, blue-heavy response, well past a lamp's 20% cast."""
    b = float(rng.uniform(1.45, 1.7))
    return _colour(photo, np.array([[0.75, 0.0, 0.0], [0.0, 1.0, 0.1], [0.05, 0.15, b]]))


def _desaturated(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A washed, low-saturation response: the colours a third of the way from grey."""
    keep = float(rng.uniform(0.3, 0.4))
    luma = np.array([0.299, 0.587, 0.114])
    return _colour(photo, keep * np.eye(3) + (1 - keep) * np.tile(luma, (3, 1)))


def _other_gamma(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Another tone curve per channel (a linear-light export read as sRGB, or the reverse), past the
    capture benchmark's gamma 0.6-1.6."""
    curve = np.array([0.45, 0.45, 0.45]) if rng.random() < 0.5 else np.array([1.9, 2.1, 2.2])
    return _colour(photo, np.eye(3), curve * rng.uniform(0.95, 1.05, 3))


def _vga(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An old or handheld camera's 640×480 frame, the field letterboxed into 4:3."""
    rgb = photo.convert("RGB")
    scale = min(640 / rgb.width, 480 / rgb.height)
    small = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (640, 480))
    canvas.paste(small, ((640 - small.width) // 2, (480 - small.height) // 2))
    return canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.7))))


def _large_border(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A high-resolution sensor framing the field small: about 3900×2900, the field 40-45% of its width.

    At a third of the width the gate refuses many as not a fundus photo (it averages colour
    over the whole frame); this look stays above that, so that it reaches the model."""
    rgb = photo.convert("RGB")
    width = int(rng.integers(3800, 4000))
    height = width * 3 // 4
    scale = float(rng.uniform(0.5, 0.56)) * width / rgb.width
    big = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(big, ((width - big.width) // 2, (height - big.height) // 2))
    return canvas


FUNDUS_LOOKS: dict[str, FundusLook] = {look.name: look for look in [
    FundusLook("octagonal field", "the field behind an octagonal stop", _octagon),
    FundusLook("notched field", "a whole, smaller circle with a square notch in its rim", _notched),
    FundusLook("rectangle, no mask", "a rectangular crop from inside the field, no black mask", _rectangle),
    FundusLook("smaller field", "a ~30° field (the centre magnified) as a whole circle on black", _small_field),
    FundusLook("greener", "a red/green scanner's pseudo-colour: green-yellow retina, no blue", _greener),
    FundusLook("bluer", "a cool, blue-heavy colour response", _bluer),
    FundusLook("desaturated", "a third of the colour saturation", _desaturated),
    FundusLook("other gamma", "tone curve 0.45 or about 2 per channel", _other_gamma),
    FundusLook("640x480", "a 640×480 camera, field letterboxed, JPEG quality 75", _vga, jpeg_quality=75),
    FundusLook("large, wide border", "about 3900×2900, the field 40-45% of its width", _large_border),
]}


def render_fundus(look_name: str, photo: Image.Image, seed: int) -> bytes:
    """The photo remade as the named other camera would take it, as JPEG bytes."""
    look = FUNDUS_LOOKS[look_name]
    image = look.remake(photo, np.random.default_rng([seed, 6151]))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=look.jpeg_quality)
    return buffer.getvalue()
