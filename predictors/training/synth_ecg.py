"""Synthetic 12-lead ECG printouts for the four classes ECG-image models use.

Signals come from neurokit2's ECGSYN engine (McSharry et al. 2003) with a per-lead
amplitude matrix, so each lead has its own morphology; the classes differ the way
their ECGs do:

- Normal: sinus rhythm.
- Abnormal heartbeat: atrial fibrillation; no P waves, irregularly irregular RR,
  a fibrillatory baseline.
- Myocardial Infarction: acute ST elevation in one territory with reciprocal depression.
- History of MI: pathological Q waves, small R and inverted T in one territory.

They are printed like a hospital ECG: 3×4 leads plus a lead II rhythm strip, 25 mm/s,
10 mm/mV, on a 1 mm / 5 mm red grid, then scanned or photographed with skew, paper
tint, blur, noise and JPEG. Simulation (slow: an ODE per lead) and printing (fast) are
separate, so one simulated record can be printed several ways. Deterministic per seed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from neurokit2.ecg.ecg_simulate import _ecg_simulate_ecgsyn  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402
from scipy.signal import find_peaks  # noqa: E402

from predictors.catalogue import SPECS  # noqa: E402

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
RATE = 100  # Hz: ten samples per millimetre of paper is more than a scan resolves
DURATION = 10.0

# neurokit2's per-lead amplitudes of the P, Q, R, S, T waves (its "multileads" matrix).
LEAD_GAMMA = np.array([
    [1, 0.1, 1, 1.2, 1], [2, 0.2, 0.2, 0.2, 3], [1, -0.1, -0.8, -1.1, 2.5],
    [-1, -0.05, -0.8, -0.5, -1.2], [0.05, 0.05, 1, 1, 1], [1, -0.05, -0.1, -0.1, 3],
    [-0.5, 0.05, 0.2, 0.5, 1], [0.05, 0.05, 1.3, 2.5, 2], [1, 0.05, 1, 2, 1],
    [1.2, 0.05, 1, 2, 2], [1.5, 0.1, 0.8, 1, 2], [1.8, 0.05, 0.5, 0.1, 2],
], dtype=float)
# Its T column makes T waves dwarf the QRS once each lead is scaled; halve it for a sinus look.
LEAD_GAMMA[:, 4] *= 0.5
# Peak-to-peak size of each lead's QRS in mV on a typical adult tracing.
LEAD_QRS_MV = np.array([0.9, 1.3, 0.7, 0.9, 0.6, 0.9, 1.2, 1.8, 1.8, 1.8, 1.6, 1.2])

TERRITORIES = {
    "inferior": (["II", "III", "aVF"], ["I", "aVL"]),
    "anterior": (["V1", "V2", "V3", "V4"], ["III", "aVF"]),
    "lateral": (["I", "aVL", "V5", "V6"], ["II", "III", "aVF"]),
}
LAYOUT = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]


@dataclass(frozen=True)
class Record:
    """Twelve simulated leads in mV, sampled at RATE (about 30 s), plus what made them."""

    label: int
    signals: np.ndarray  # (12, samples)
    heart_rate: float
    territory: str | None


def simulate(label: int, seed: int) -> Record:
    """Simulate one 12-lead record of the given class (a few seconds of CPU: an ODE per lead)."""
    if label not in range(len(SPECS["ecg"].labels)):
        raise ValueError(f"label must be 0-3, not {label}")
    rng = np.random.default_rng([seed, label, 104729])
    gamma = LEAD_GAMMA * rng.uniform(0.85, 1.15, LEAD_GAMMA.shape)
    ai = np.array([1.2, -5, 30, -7.5, 0.75]) * rng.uniform(0.9, 1.1, 5)
    territory = None
    if label == 1:
        heart_rate = rng.uniform(85, 150)
        ai[0] = 0.0  # no organised atrial activity
    else:
        heart_rate = rng.uniform(52, 105)
    if label in (2, 3):
        territory = str(rng.choice(list(TERRITORIES)))
        leads, _ = TERRITORIES[territory]
        rows = [LEADS.index(lead) for lead in leads]
        if label == 3:
            gamma[rows, 1] = rng.uniform(1.5, 2.5, len(rows))  # deep Q: a third of R or more
            gamma[rows, 2] *= rng.uniform(0.2, 0.45)  # R-wave loss
            gamma[rows, 4] = -np.abs(gamma[rows, 4]) * rng.uniform(0.6, 1.0)  # T inversion
    # About 17 s of beats: neurokit2 then draws a 32-sample RR series, the one length whose
    # resampling leaves no zero RR at the end (on which its beat loop never terminates).
    beats = int(np.ceil(17 * heart_rate / 60))
    raw, _ = _ecg_simulate_ecgsyn(sfecg=RATE, N=beats, hrmean=heart_rate, hrstd=rng.uniform(1, 3),
                                  sfint=RATE, gamma=gamma, ai=tuple(ai), rng=rng)
    signals = np.array(raw)
    signals = signals - np.median(signals, axis=1, keepdims=True)
    span = np.ptp(signals, axis=1, keepdims=True) + 1e-6
    signals = signals / span * LEAD_QRS_MV[:, None] * rng.uniform(0.75, 1.35)
    peaks = r_peaks(signals)
    if label == 1:
        signals, peaks = _fibrillate(signals, peaks, rng)
    if label == 2:
        signals = _st_elevation(signals, peaks, territory, rng)
    signals = signals + rng.normal(0, rng.uniform(0.005, 0.02), signals.shape)
    return Record(label=label, signals=signals, heart_rate=float(heart_rate), territory=territory)


def r_peaks(signals: np.ndarray) -> np.ndarray:
    """Sample indices of the QRS peaks, from all leads' summed slope."""
    energy = np.abs(np.diff(signals, axis=1)).sum(axis=0)
    peaks, _ = find_peaks(energy, distance=int(0.25 * RATE), height=np.percentile(energy, 97) * 0.5)
    return peaks


def _fibrillate(signals: np.ndarray, r_peaks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reassemble the beats with irregularly irregular gaps and a fibrillatory baseline."""
    before, after = int(0.08 * RATE), int(0.36 * RATE)
    mean_rr = np.median(np.diff(r_peaks)) / RATE if len(r_peaks) > 1 else 0.6
    pieces, peaks, length = [], [], 0
    for r in r_peaks:
        if r - before < 0 or r + after > signals.shape[1]:
            continue
        chunk = signals[:, r - before:r + after]
        pieces.append(chunk)
        peaks.append(length + before)
        length += chunk.shape[1]
        gap = max(0.03, mean_rr * rng.lognormal(0, 0.28) - (before + after) / RATE)
        gap_samples = int(gap * RATE)
        pieces.append(np.repeat(chunk[:, -1:], gap_samples, axis=1))
        length += gap_samples
    out = np.concatenate(pieces, axis=1)
    t = np.arange(out.shape[1]) / RATE
    f_waves = sum(rng.uniform(0.02, 0.06) * np.sin(2 * np.pi * rng.uniform(4, 9) * t + rng.uniform(0, 6.3))
                  for _ in range(3))
    lead_weight = np.ones(len(LEADS))
    lead_weight[[LEADS.index("V1"), LEADS.index("II"), LEADS.index("III"), LEADS.index("aVF")]] = 1.8
    return out + lead_weight[:, None] * f_waves[None, :], np.array(peaks)


def _st_elevation(signals: np.ndarray, r_peaks: np.ndarray, territory: str | None,
                  rng: np.random.Generator) -> np.ndarray:
    """Lift the ST segment after every QRS in the territory; depress it in reciprocal leads."""
    leads, reciprocal = TERRITORIES[territory or "inferior"]
    height = rng.uniform(0.2, 0.45)
    start, end = int(0.04 * RATE), int(0.34 * RATE)
    window = np.hanning(2 * (end - start))[(end - start) // 3:][: end - start]
    window = np.maximum(window, np.r_[np.ones((end - start) // 2), np.zeros(end - start - (end - start) // 2)])
    bump = np.zeros(signals.shape[1])
    for r in r_peaks:
        a, b = r + start, min(r + end, signals.shape[1])
        if a < b:
            bump[a:b] = np.maximum(bump[a:b], window[: b - a])
    out = signals.copy()
    for lead in leads:
        out[LEADS.index(lead)] += height * bump
    for lead in reciprocal:
        out[LEADS.index(lead)] -= 0.5 * height * bump
    return out


def render(record: Record, seed: int, dpi: float | None = None) -> Image.Image:
    """Print a 10-s window of a record on ECG paper and 'scan' it; deterministic per seed."""
    rng = np.random.default_rng([seed, record.label, 15485863])
    length = int(DURATION * RATE)
    start = int(rng.integers(0, max(1, record.signals.shape[1] - length)))
    signals = record.signals[:, start:start + length]
    width_mm, row_mm = 270.0, 36.0
    height_mm = row_mm * 4 + 14
    dpi = dpi or rng.uniform(42, 60)
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width_mm)
    ax.set_ylim(0, height_mm)
    ax.axis("off")
    paper = np.array([1.0, rng.uniform(0.93, 1.0), rng.uniform(0.9, 1.0)])
    fig.patch.set_facecolor(paper)
    grid_colour = [(0.95, 0.55, 0.55), (0.98, 0.6, 0.7), (0.95, 0.65, 0.45), (0.7, 0.7, 0.7)][rng.integers(0, 4)]
    minor = [((x, 0), (x, height_mm)) for x in np.arange(0, width_mm, 1.0)] + \
            [((0, y), (width_mm, y)) for y in np.arange(0, height_mm, 1.0)]
    major = [((x, 0), (x, height_mm)) for x in np.arange(0, width_mm, 5.0)] + \
            [((0, y), (width_mm, y)) for y in np.arange(0, height_mm, 5.0)]
    ax.add_collection(LineCollection(minor, colors=[grid_colour], linewidths=0.3, alpha=0.6))
    ax.add_collection(LineCollection(major, colors=[grid_colour], linewidths=0.7))

    trace = [(0.05, 0.05, 0.05), (0.05, 0.05, 0.25), (0.15, 0.1, 0.1)][rng.integers(0, 3)]
    lw = rng.uniform(0.8, 1.4)
    left = 10.0
    segments = []
    mm_per_s, mm_per_mv = 25.0, 10.0
    quarter = int(2.5 * RATE)
    for row, names in enumerate(LAYOUT):
        baseline = height_mm - 12 - row * row_mm - row_mm * 0.3
        segments.append(_calibration(left - 7, baseline))
        for col, name in enumerate(names):
            lead = signals[LEADS.index(name), col * quarter:(col + 1) * quarter]
            x = left + col * 2.5 * mm_per_s + np.arange(len(lead)) / RATE * mm_per_s
            segments.append(np.column_stack([x, baseline + lead * mm_per_mv]))
            ax.text(left + col * 2.5 * mm_per_s + 1, baseline + 8, name, fontsize=5, color=trace)
    rhythm_baseline = height_mm - 12 - 3 * row_mm - row_mm * 0.3
    lead_ii = signals[LEADS.index("II")]
    segments.append(_calibration(left - 7, rhythm_baseline))
    segments.append(np.column_stack([left + np.arange(len(lead_ii)) / RATE * mm_per_s,
                                     rhythm_baseline + lead_ii * mm_per_mv]))
    ax.text(left + 1, rhythm_baseline + 8, "II", fontsize=5, color=trace)
    ax.text(left, height_mm - 5, "25 mm/s  10 mm/mV", fontsize=4, color=trace)
    ax.add_collection(LineCollection(segments, colors=[trace], linewidths=lw))

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    image = Image.open(buffer).convert("RGB")
    return _scan(image, rng)


def _calibration(x: float, baseline: float) -> np.ndarray:
    return np.array([[x, baseline], [x + 1, baseline], [x + 1, baseline + 10], [x + 6, baseline + 10],
                     [x + 6, baseline], [x + 7, baseline]])


def _scan(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """What a scanner or a phone adds: skew, uneven light, blur, noise, compression."""
    image = image.rotate(rng.uniform(-3, 3), resample=Image.Resampling.BILINEAR, expand=False,
                         fillcolor=tuple(int(v) for v in rng.uniform(200, 255, 3)))
    array = np.asarray(image, dtype=np.float32)
    h, w = array.shape[:2]
    gradient = 1 - rng.uniform(0, 0.25) * np.linspace(0, 1, w)[None, :] ** rng.uniform(0.5, 2)
    if rng.random() < 0.5:
        gradient = gradient[:, ::-1]
    array = array * gradient[..., None] * rng.uniform(0.8, 1.0) + rng.normal(0, rng.uniform(1, 6), array.shape)
    image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.7)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(55, 95)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def generate(label: int, seed: int) -> Image.Image:
    """One printout of a freshly simulated record."""
    return render(simulate(label, seed), seed)
