"""Pictures of what each image model was validated on, for the page that refuses an upload outside it.

The real training photos may not be copied into the repository, so the project draws
its own: an ECG printout in the training machine's layout (an "ECG REPORT" header, 3×4
leads and a lead II rhythm strip on a pink grid) from a simulated record, and a
synthetic colour fundus photo. `python -m predictors.training.examples` writes them to
static/examples/, where the prediction page shows them.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from PIL import Image

from . import synth_ecg, synth_fundus

STATIC = Path(__file__).resolve().parents[2] / "static" / "examples"
SEED = 7
PINK_GRID = (0.96, 0.62, 0.66)


def ecg_printout(seed: int = SEED, width: int = 640) -> Image.Image:
    """A normal simulated record printed in the training machine's report layout."""
    record = synth_ecg.simulate(0, seed)
    rate, quarter = synth_ecg.RATE, int(2.5 * synth_ecg.RATE)
    width_mm, row_mm, header_mm = 280.0, 34.0, 22.0
    height_mm = header_mm + 4 * row_mm + 8
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=width / (width_mm / 25.4))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width_mm)
    ax.set_ylim(0, height_mm)
    ax.axis("off")
    grid_top = height_mm - header_mm
    for step, width_line in ((1.0, 0.2), (5.0, 0.5)):
        lines = [((x, 4), (x, grid_top)) for x in np.arange(5, width_mm - 4, step)]
        lines += [((5, y), (width_mm - 5, y)) for y in np.arange(4, grid_top, step)]
        ax.add_collection(LineCollection(lines, colors=[PINK_GRID], linewidths=width_line))
    ax.text(width_mm / 2, height_mm - 7, "ECG REPORT", fontsize=11, ha="center", family="serif")
    ax.text(8, height_mm - 14, "ID:      Years   Sex    cm    kg    mmHg     Room No.     Department",
            fontsize=5, family="serif")
    segments = []
    for row, names in enumerate([*synth_ecg.LAYOUT, ["II"]]):
        baseline = grid_top - (row + 0.6) * row_mm
        for col, name in enumerate(names):
            span = record.signals[synth_ecg.LEADS.index(name)]
            lead = span[:4 * quarter] if len(names) == 1 else span[col * quarter:(col + 1) * quarter]
            x = 12 + col * 2.5 * 25 + np.arange(len(lead)) / rate * 25
            segments.append(np.column_stack([x, baseline + lead * 10]))
            ax.text(13 + col * 62.5, baseline + 6, name, fontsize=6, family="serif")
    ax.add_collection(LineCollection(segments, colors=["black"], linewidths=0.7))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    return Image.open(buffer).convert("RGB")


def fundus_photo(seed: int = SEED) -> Image.Image:
    """A synthetic colour fundus photo with no retinopathy."""
    return synth_fundus.generate(0, seed, size=320)


def write(directory: Path = STATIC) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in (("ecg", ecg_printout()), ("retina", fundus_photo())):
        path = directory / f"{name}.png"
        image.save(path, optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path)
