"""An ECG page as a clinic photographs it, put back the way the model was trained to read it.

A phone photo shows the paper at an angle on a table, tilted, perhaps sideways or upside
down, in dim or tinted light with a shadow across it. Each step here undoes one of those
from the picture's own evidence: the paper's outline, the direction of the grid and
trace lines, where the lead rows and the printed header lie, and the paper's own white.
Pure Pillow + numpy on small analysis copies, because it runs for every upload on a
tenth of a CPU and training runs the very same code (predictors.images.transform.model_input).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from . import channels
from .neighbourhood import erode

# The page is brought to about this many pixels on its longer side before anything else
# (between this and twice it): the model reads its lead area at 272 pixels across, and
# every step after costs by the pixel.
WORKING_SIDE = 576
# The paper's outline is looked for on a copy this many pixels on its longer side.
ANALYSIS_SIDE = 256
# The paper is found as the bright, grey part of the picture; when it fills nearly the
# whole frame (a scan, a screenshot, a flat close-up) there is nothing to rectify.
PAPER_FILLS_FRAME = 0.93
# Share of each side trimmed off a rectified page.
RECTIFIED_INSET = 0.015
# A quadrilateral smaller than this share of the frame is not the page (a label, a glare).
PAPER_MIN_AREA = 0.25
# Grey levels the paper's edge must step up by, from the table to the page: a shadow
# falling across a scan darkens gradually and is not taken for the paper's outline.
PAPER_EDGE_STEP = 30
# Tilts below this are the scanner's or printer's own and not worth a resampling; above
# the upper bound the estimate is not a tilt of a page the gate would have let through.
MIN_TILT_DEGREES = 0.4
MAX_TILT_DEGREES = 15.0
# The tilt is read from this many ink pixels (darker than INK_LEVEL on the evenly lit page).
TILT_POINTS = 6000
INK_LEVEL = 128
# A page is turned a quarter when its lead rows run vertically by this margin.
QUARTER_TURN_MARGIN = 1.15
# A printed header holds at least this share of the page's pixels in ink.
HEADER_MIN_INK = 0.002
# Paper white and ink black are read as these percentiles of the page's own pixels.
PAPER_PERCENTILE = 90
INK_PERCENTILE = 0.5
# The paper's brightness is estimated in blocks of this many pixels of the working page, so a
# shadow or a lamp's fall-off is divided out instead of read as ink or as blank paper.
LIGHT_BLOCK = 32


def rectified_page(image: Image.Image) -> Image.Image:
    """The page at working size, seen square-on: the part of the page analysis that the gate
    (is this a page?) and the model transform share, made once per upload (DecodedImage.rectified_page)."""
    return rectify_paper(_working_size(channels.as_rgb(image)))


def prepare_page(image: Image.Image, rectified: Image.Image | None = None) -> Image.Image:
    """The page at working size, rectified, evenly lit, deskewed and turned so its lead rows run across.

    `rectified` is rectified_page(image) when it has been made already. Upside-down pages
    are turned later, once the lead area is found (is_upside_down).
    """
    page = normalise_light(rectified if rectified is not None else rectified_page(image))
    grey = np.asarray(page.convert("L"), dtype=np.float32)
    angle = tilt_degrees(grey)
    if MIN_TILT_DEGREES <= abs(angle) <= MAX_TILT_DEGREES:
        page = page.rotate(-angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=(255, 255, 255))
        grey = np.asarray(page.convert("L"), dtype=np.float32)
    if is_quarter_turned(grey):
        page = page.transpose(Image.Transpose.ROTATE_90)
    return page


def _working_size(image: Image.Image) -> Image.Image:
    """Shrunk to about WORKING_SIDE on its longer side, by a whole-number box reduction when it can
    be (several times cheaper than resampling), else by bilinear resampling."""
    factor = max(image.size) // WORKING_SIDE
    if factor >= 2:
        return image.reduce(factor)
    if max(image.size) > WORKING_SIDE * 1.5:
        scale = WORKING_SIDE / max(image.size)
        return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    return image


def _otsu(values: np.ndarray) -> float:
    histogram = np.bincount(np.clip(values, 0, 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    weight = np.cumsum(histogram)
    mean = np.cumsum(histogram * np.arange(256))
    total, total_mean = weight[-1], mean[-1]
    between = (total_mean * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1e-9)
    return float(np.argmax(between))


def paper_corners(image: Image.Image) -> np.ndarray | None:
    """The four corners of the paper in a photo (top-left, top-right, bottom-right, bottom-left),
    in the image's pixels, or None when the paper fills the frame or cannot be told apart.

    Paper is the bright, colourless region; its outline's extreme points along the four
    diagonals tell its sides apart, and lines fitted to the sides give the corners.
    """
    rgb = channels.as_rgb(image)
    scale = ANALYSIS_SIDE / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    small = np.asarray(rgb.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    grey = channels.mean(small)
    chroma = channels.brightest(small) - channels.darkest(small)
    threshold = _otsu(grey)
    paper = _filled(erode((grey > threshold) & (chroma < 60)))
    share = paper.mean()
    if share >= PAPER_FILLS_FRAME or share < PAPER_MIN_AREA:
        return None
    ys, xs = np.nonzero(paper)
    corners = np.stack([(xs[i], ys[i]) for i in (np.argmin(xs + ys), np.argmax(xs - ys), np.argmax(xs + ys),
                                                 np.argmin(xs - ys))]).astype(np.float64)
    outline = np.stack(np.nonzero(paper & ~erode(paper))[::-1], axis=1).astype(np.float64)
    corners = _refine_corners(corners, outline)
    if corners is None:
        return None
    if _polygon_area(corners) < PAPER_MIN_AREA * grey.size:
        return None
    height, width = grey.shape
    if _polygon_area(corners) >= PAPER_FILLS_FRAME * width * height:
        return None
    if _edge_step(grey, corners) < PAPER_EDGE_STEP:
        return None  # a shadow's gradual edge, not the paper's
    return (corners + 0.5) / scale - 0.5


def _refine_corners(corners: np.ndarray, outline: np.ndarray) -> np.ndarray | None:
    """Corners as the crossings of lines fitted to the middle of each side of the paper's outline.

    The extreme points along the diagonals are only near the corners of a page seen at an
    angle; a straight line through each side's many outline pixels, and where neighbouring
    sides meet, is accurate to a pixel. The erosion that cleaned the mask pulled each
    side in by a pixel, which the fit puts back.
    """
    centre = corners.mean(axis=0)
    lines = []
    for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        along = b - a
        length = float(np.linalg.norm(along))
        if length < 8:
            return None
        unit = along / length
        normal = np.array([-unit[1], unit[0]])
        offset = outline - a
        t, distance = offset @ unit, offset @ normal
        near = (t > 0.2 * length) & (t < 0.8 * length) & (np.abs(distance) < max(3.0, 0.04 * length))
        if near.sum() < 5:
            return None
        points = outline[near]
        mean = points.mean(axis=0)
        direction = np.linalg.svd(points - mean, full_matrices=False)[2][0]
        side_normal = np.array([-direction[1], direction[0]])
        if np.dot(centre - mean, side_normal) > 0:
            side_normal = -side_normal  # pointing outwards
        lines.append((mean + side_normal, direction))
    refined = []
    for side in range(4):
        (p1, d1), (p2, d2) = lines[side - 1], lines[side]  # corner `side` joins the side before it and its own
        matrix = np.array([d1, -d2]).T
        if abs(np.linalg.det(matrix)) < 1e-6:
            return None
        s = np.linalg.solve(matrix, p2 - p1)
        refined.append(p1 + s[0] * d1)
    return np.array(refined, dtype=np.float64)


def _edge_step(grey: np.ndarray, corners: np.ndarray) -> float:
    """How much brighter the picture is just inside the quadrilateral's edges than just outside."""
    height, width = grey.shape
    centre = corners.mean(axis=0)
    steps = []
    for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        along = b - a
        normal = np.array([along[1], -along[0]]) / max(float(np.linalg.norm(along)), 1e-9)
        if np.dot(centre - (a + b) / 2, normal) < 0:
            normal = -normal  # point inwards
        for t in np.linspace(0.15, 0.85, 12):
            point = a + t * along
            inside, outside = np.round(point + 3 * normal).astype(int), np.round(point - 3 * normal).astype(int)
            if 0 <= outside[0] < width and 0 <= outside[1] < height and 0 <= inside[0] < width and 0 <= inside[1] < height:
                steps.append(grey[inside[1], inside[0]] - grey[outside[1], outside[0]])
    return float(np.median(steps)) if steps else 0.0


def _filled(mask: np.ndarray) -> np.ndarray:
    """The mask with the ink inside the page filled in: each row and each column filled between
    its first and last pixel, and only what both agree on kept (exact for a convex page)."""
    def span(m: np.ndarray) -> np.ndarray:
        index = np.arange(m.shape[1])
        has = m.any(axis=1)
        first = np.where(has, m.argmax(axis=1), m.shape[1])
        last = np.where(has, m.shape[1] - 1 - m[:, ::-1].argmax(axis=1), -1)
        return (index >= first[:, None]) & (index <= last[:, None])

    return span(mask) & span(mask.T).T


def _polygon_area(corners: np.ndarray) -> float:
    x, y = corners[:, 0], corners[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def rectify_paper(image: Image.Image) -> Image.Image:
    """A photo of a page at an angle warped to the page seen square-on; anything else unchanged."""
    corners = paper_corners(image)
    if corners is None:
        return image
    tl, tr, br, bl = corners
    width = round((np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2)
    height = round((np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2)
    if width < 16 or height < 16:
        return image
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    coefficients = perspective_coefficients(target, corners + 0.5)
    page = channels.as_rgb(image).transform((width, height), Image.Transform.PERSPECTIVE, coefficients,
                                          Image.Resampling.BILINEAR)
    # A sliver of table left along an edge would be lit up as paper and read as grid ink; a
    # page's own margin is blank, so a little of it goes instead.
    inset_x, inset_y = round(width * RECTIFIED_INSET), round(height * RECTIFIED_INSET)
    return page.crop((inset_x, inset_y, width - inset_x, height - inset_y))


def perspective_coefficients(target: np.ndarray, source: np.ndarray) -> tuple[float, ...]:
    """Pillow's eight PERSPECTIVE coefficients mapping each output (target) point to its input (source) point."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values.extend([u, v])
    return tuple(float(c) for c in np.linalg.solve(np.array(rows), np.array(values)))


def tilt_degrees(grey: np.ndarray) -> float:
    """How far the page's lines are turned from the horizontal, in degrees (positive: counter-clockwise).

    The lead baselines, the grid's frame, its columns and the printed text run along the
    page's two axes: turned back by the right angle, the ink piles up in the fewest rows
    and columns, whichever way up the page lies. Points are projected instead of the
    picture rotated, a coarse pass then a fine one, on at most TILT_POINTS ink pixels.
    """
    ys, xs = np.nonzero(grey < INK_LEVEL)
    if xs.size < 50:
        return 0.0
    if xs.size > TILT_POINTS:
        keep = np.linspace(0, xs.size - 1, TILT_POINTS).astype(np.int64)
        xs, ys = xs[keep], ys[keep]
    xs = xs - grey.shape[1] / 2
    ys = ys - grey.shape[0] / 2
    best = 0.0
    for step, span in ((1.0, MAX_TILT_DEGREES), (0.1, 0.9)):
        angles = np.arange(best - span, best + span + step / 2, step)
        best = float(angles[int(np.argmax([_row_sharpness(xs, ys, a) for a in angles]))])
    return best


def _row_sharpness(xs: np.ndarray, ys: np.ndarray, degrees: float) -> float:
    """How concentrated the ink is in rows and columns once the page is turned back by `degrees`."""
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    total = 0.0
    for line in (ys * cos + xs * sin, xs * cos - ys * sin):
        counts = np.bincount(np.round(line - line.min()).astype(np.int64))
        total += float(np.dot(counts, counts))
    return total


def is_quarter_turned(grey: np.ndarray) -> bool:
    """True when the lead rows run top to bottom: the evenly lit page lies on its side.

    Upright, the ink of the traces gathers in a few horizontal bands (the lead rows),
    so its profile down the page varies much more than its profile across it.
    """
    ink = grey < INK_LEVEL
    down, across = ink.sum(axis=1, dtype=np.float32), ink.sum(axis=0, dtype=np.float32)
    spread = lambda profile: float(profile.std() / max(profile.mean(), 1e-6))  # noqa: E731
    return spread(across) > QUARTER_TURN_MARGIN * spread(down)


def is_upside_down(page: Image.Image, grid_box: tuple[int, int, int, int]) -> bool:
    """True when the printed header (patient line, title) lies below the lead area instead of above.

    Only a page with text on one side of its grid can tell; one with none, or about as
    much on both sides, is left as it is.
    """
    ink = np.asarray(page.convert("L"), dtype=np.uint8) < INK_LEVEL
    above, below = int(ink[:grid_box[1]].sum()), int(ink[grid_box[3]:].sum())
    return below > 2 * above and below > HEADER_MIN_INK * ink.size


def normalise_light(image: Image.Image) -> Image.Image:
    """Paper made white and ink black, from the page's own statistics.

    Each channel is divided by a smooth map of the paper's brightness (a shadow, a lamp's
    fall-off and a colour cast go with it), then stretched so the darkest ink is black.
    """
    rgb = np.asarray(image, dtype=np.float32)
    height, width = rgb.shape[:2]
    rows, cols = max(1, height // LIGHT_BLOCK), max(1, width // LIGHT_BLOCK)
    blocks = rgb[:rows * LIGHT_BLOCK, :cols * LIGHT_BLOCK].reshape(rows, LIGHT_BLOCK, cols, LIGHT_BLOCK, 3)
    # The paper's level in each block: a high percentile of a quarter of its pixels.
    sample = blocks[:, ::2, :, ::2].transpose(0, 2, 1, 3, 4).reshape(rows, cols, -1, 3)
    k = int(sample.shape[2] * PAPER_PERCENTILE / 100)
    level = np.partition(sample, k, axis=2)[:, :, k].astype(np.float32)
    padded = np.pad(level, ((1, 1), (1, 1), (0, 0)), mode="edge")
    smooth = sum(padded[i:i + rows, j:j + cols] for i in range(3) for j in range(3)) / 9
    light = np.stack([np.asarray(Image.fromarray(smooth[..., c].astype(np.float32)).resize(
        (width, height), Image.Resampling.BILINEAR)) for c in range(3)], axis=2)
    flat = rgb / np.maximum(light, 1.0)
    ink = min(float(np.percentile(channels.mean(flat[::4, ::4]), INK_PERCENTILE)), 0.8)
    flat -= ink
    flat *= 255.0 / (1.0 - ink)
    return Image.fromarray(np.clip(flat, 0, 255).astype(np.uint8), "RGB")


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
    rgb = channels.as_rgb(image)
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
    if turn_upright and is_upside_down(rgb, box):
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
    brightest = channels.brightest(np.asarray(channels.as_rgb(image), dtype=np.uint8))
    return Image.fromarray(_minimum_3x3(brightest), "L").convert("RGB")


def _minimum_3x3(grey: np.ndarray) -> np.ndarray:
    """Pillow's MinFilter(3), edges replicated, pixel for pixel (tests hold it to that),
    as two separable passes of numpy minimums: 3 ms instead of 70 ms on a scanned page."""
    padded = np.pad(grey, 1, mode="edge")
    rows = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    return np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])

