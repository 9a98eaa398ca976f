"""Synthetic colour fundus photographs with the lesions of each diabetic-retinopathy grade.

The retina model learns from real photographs (real_images); these calibrate int8 for
imported weights when no folder of photos is given (import_weights), and give tests a
fundus photo of a known grade. Grades follow the International Clinical DR scale:
0 none; 1 mild (microaneurysms only); 2 moderate (more microaneurysms, dot/blot
haemorrhages, hard exudates); 3 severe (haemorrhages in all four quadrants, cotton-wool
spots, venous beading); 4 proliferative (new vessels at the disc, pre-retinal bleeding).
Deterministic for a given seed.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from predictors.catalogue import SPECS

SIZE = 288


@dataclass(frozen=True)
class _Eye:
    """Where things are in one photo, drawn at twice the output size (smooth edges for free)."""

    s: int
    centre: tuple[float, float]
    radius: float
    left_eye: bool
    disc: tuple[float, float]
    disc_r: float
    macula: tuple[float, float]


def generate(grade: int, seed: int, size: int = SIZE) -> Image.Image:
    """One fundus photo of the given grade; the same (grade, seed) gives the same pixels."""
    if grade not in range(len(SPECS["retina"].labels)):
        raise ValueError(f"grade must be 0-4, not {grade}")
    rng = np.random.default_rng([seed, grade, 7919])
    eye = _layout(rng, size * 2)
    image, base = _background(rng, eye)
    draw = ImageDraw.Draw(image)
    _optic_disc(draw, rng, eye)
    vessel = tuple(int(v) for v in base * np.array([0.55, 0.35, 0.35]))
    _arcades(draw, rng, eye, vessel, beading=grade >= 3)
    _lesions(draw, rng, eye, grade, vessel)
    return _camera(image, rng, eye, size)


def _layout(rng: np.random.Generator, s: int) -> _Eye:
    """The camera's circle, a left or right eye, and its disc and macula on either side of centre."""
    cx, cy = s / 2 + rng.normal(0, s * 0.01), s / 2 + rng.normal(0, s * 0.01)
    radius = s * rng.uniform(0.43, 0.48)
    left_eye = rng.random() < 0.5
    disc = (cx + (-1 if left_eye else 1) * radius * rng.uniform(0.38, 0.48), cy + rng.normal(0, radius * 0.04))
    macula = (cx - (-1 if left_eye else 1) * radius * rng.uniform(0.05, 0.15), cy + rng.normal(0, radius * 0.03))
    disc_r = radius * rng.uniform(0.11, 0.14)
    return _Eye(s, (cx, cy), radius, left_eye, disc, disc_r, macula)


def _background(rng: np.random.Generator, eye: _Eye) -> tuple[Image.Image, np.ndarray]:
    """The orange-red fundus, darker at the rim and the macula, glowing round the disc; and its base colour."""
    s, (cx, cy), radius = eye.s, eye.centre, eye.radius
    base = np.array([rng.uniform(170, 225), rng.uniform(60, 105), rng.uniform(20, 50)])
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    dist = np.hypot(xx - cx, yy - cy) / radius
    shade = np.clip(1.05 - 0.45 * dist ** 2.2, 0.2, 1.1)  # vignetting towards the rim
    texture = _smooth_noise(rng, s, 40) * 0.03 + _smooth_noise(rng, s, 6) * 0.04
    mdist = np.hypot(xx - eye.macula[0], yy - eye.macula[1]) / (radius * 0.22)
    macula_dark = 1 - 0.35 * np.exp(-mdist ** 2)
    ddist = np.hypot(xx - eye.disc[0], yy - eye.disc[1]) / (eye.disc_r * 2.2)
    disc_glow = 0.35 * np.exp(-ddist ** 2)
    rgb = base[None, None, :] * (shade * (1 + texture) * macula_dark)[..., None]
    rgb = rgb + disc_glow[..., None] * np.array([60, 70, 40])
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB"), base


def _optic_disc(draw: ImageDraw.ImageDraw, rng: np.random.Generator, eye: _Eye) -> None:
    """The optic disc and its pale cup."""
    _ellipse(draw, eye.disc, eye.disc_r, eye.disc_r * rng.uniform(1.0, 1.15), (245, 205, 140))
    _ellipse(draw, eye.disc, eye.disc_r * rng.uniform(0.35, 0.55), eye.disc_r * 0.5, (252, 235, 190))


def _arcades(draw: ImageDraw.ImageDraw, rng: np.random.Generator, eye: _Eye, colour: tuple[int, ...],
             beading: bool) -> None:
    """Temporal arcades arch above and below the macula; nasal vessels run the other way."""
    towards_macula = 0.0 if eye.left_eye else math.pi
    side = 1 if eye.left_eye else -1
    for offset, bend, length in ((-0.9, 1, 1.25), (0.9, -1, 1.25), (-2.2, -1, 0.7), (2.2, 1, 0.7)):
        direction = towards_macula + side * offset
        _vessel(draw, rng, eye.disc, direction, eye.s * 0.012, eye.radius * length, colour, side * bend, eye.macula,
                beading=beading, depth=0)


def _lesions(draw: ImageDraw.ImageDraw, rng: np.random.Generator, eye: _Eye, grade: int,
             vessel: tuple[int, ...]) -> None:
    """The grade's lesions (_lesion_counts) scattered over the retina, away from the disc."""
    s = eye.s
    lesions = _lesion_counts(grade, rng)
    def retina_points(n: int) -> list[tuple[float, float]]:
        return _points_in_retina(rng, n, eye.centre, eye.radius * 0.9, eye.disc, eye.disc_r)

    for x, y in retina_points(lesions["microaneurysms"]):
        _ellipse(draw, (x, y), s * rng.uniform(0.003, 0.0055), None, (110, 10, 15))
    for x, y in retina_points(lesions["haemorrhages"]):
        r = s * rng.uniform(0.007, 0.02)
        _ellipse(draw, (x, y), r, r * rng.uniform(0.6, 1.3), (120, 15, 20))
    for x, y in retina_points(lesions["exudate_clusters"]):
        for _ in range(rng.integers(3, 9)):
            px, py = x + rng.normal(0, s * 0.015), y + rng.normal(0, s * 0.015)
            _ellipse(draw, (px, py), s * rng.uniform(0.003, 0.007), None, (240, 220, 90))
    for x, y in retina_points(lesions["cotton_wool"]):
        r = s * rng.uniform(0.015, 0.03)
        _ellipse(draw, (x, y), r, r * rng.uniform(0.6, 1.0), (235, 215, 190))
    if grade == 4:
        _new_vessels(draw, rng, eye.disc, eye.disc_r, vessel, s)
        if rng.random() < 0.5:
            x, y = retina_points(1)[0]
            _ellipse(draw, (x, y), s * rng.uniform(0.04, 0.07), s * rng.uniform(0.025, 0.04), (100, 5, 10))


def _camera(image: Image.Image, rng: np.random.Generator, eye: _Eye, size: int) -> Image.Image:
    """Camera mask, focus, exposure and compression, which vary between clinics."""
    s, (cx, cy), radius = eye.s, eye.centre, eye.radius
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    image = Image.composite(image, Image.new("RGB", (s, s), (0, 0, 0)), mask)
    image = image.rotate(rng.uniform(-25, 25), resample=Image.Resampling.BILINEAR, center=(cx, cy))
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.0)))
    gain = rng.uniform(0.8, 1.15)
    array = np.asarray(image, dtype=np.float32) * gain + rng.normal(0, rng.uniform(1, 4), (size, size, 3))
    image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(60, 96)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _lesion_counts(grade: int, rng: np.random.Generator) -> dict[str, int]:
    table = {
        0: ((0, 0), (0, 0), (0, 0), (0, 0)),
        1: ((2, 8), (0, 0), (0, 0), (0, 0)),
        2: ((6, 18), (3, 9), (1, 4), (0, 1)),
        3: ((12, 25), (18, 35), (2, 6), (2, 6)),
        4: ((10, 25), (8, 25), (2, 6), (1, 5)),
    }[grade]
    names = ("microaneurysms", "haemorrhages", "exudate_clusters", "cotton_wool")
    return {name: int(rng.integers(low, high + 1)) for name, (low, high) in zip(names, table, strict=True)}


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    coarse = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    img = Image.fromarray(coarse, "F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img)


def _ellipse(draw: ImageDraw.ImageDraw, centre: tuple[float, float], rx: float, ry: float | None,
             colour: tuple[int, int, int]) -> None:
    ry = rx if ry is None else ry
    x, y = centre
    draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=colour)


def _vessel(draw: ImageDraw.ImageDraw, rng: np.random.Generator, start: tuple[float, float],
            direction: float, width: float, length: float, colour: tuple[int, int, int], bend: int,
            macula: tuple[float, float], beading: bool, depth: int) -> None:
    """A vessel arcade: a curving polyline that thins and branches as it goes."""
    x, y = start
    steps = 14
    step = length / steps
    for i in range(steps):
        direction += bend * rng.uniform(0.02, 0.12) + rng.normal(0, 0.06)
        nx, ny = x + step * math.cos(direction), y + step * math.sin(direction)
        w = max(1.0, width * (1 - i / (steps * 1.3)))
        if beading and depth == 0 and i % 3 == 1:
            w *= rng.uniform(1.4, 1.9)
        draw.line((x, y, nx, ny), fill=colour, width=int(round(w)))
        if depth < 2 and rng.random() < 0.22:
            _vessel(draw, rng, (nx, ny), direction + rng.choice([-1, 1]) * rng.uniform(0.5, 1.0),
                    w * 0.6, length * 0.45, colour, -bend, macula, beading, depth + 1)
        x, y = nx, ny


def _new_vessels(draw: ImageDraw.ImageDraw, rng: np.random.Generator, disc: tuple[float, float],
                 disc_r: float, colour: tuple[int, int, int], s: int) -> None:
    """Neovascularisation at the disc: fine, tortuous loops on and around it."""
    for _ in range(rng.integers(10, 22)):
        angle = rng.uniform(0, 2 * math.pi)
        x, y = disc[0] + disc_r * rng.uniform(0.2, 1.4) * math.cos(angle), disc[1] + disc_r * rng.uniform(0.2, 1.4) * math.sin(angle)
        points = [(x, y)]
        for _ in range(rng.integers(4, 9)):
            angle += rng.normal(0, 1.2)
            x, y = x + s * 0.012 * math.cos(angle), y + s * 0.012 * math.sin(angle)
            points.append((x, y))
        draw.line(points, fill=tuple(max(0, c - 20) for c in colour), width=max(1, int(s * 0.0025)))


def _points_in_retina(rng: np.random.Generator, n: int, centre: tuple[float, float], radius: float,
                      disc: tuple[float, float], disc_r: float) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    while len(points) < n:
        r = radius * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        x, y = centre[0] + r * math.cos(a), centre[1] + r * math.sin(a)
        if math.hypot(x - disc[0], y - disc[1]) > disc_r * 1.6:
            points.append((x, y))
    return points
