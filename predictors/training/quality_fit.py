"""Fit the fundus blur floors of predictors/images/quality.py on the IDRiD training photos.

    .venv-dev/bin/python -m predictors.training.quality_fit [--every N] [--widths 640,1024,2048]

Each training photo is resized to each width, blurred by a ladder of Gaussian radii given as
shares of its field of view's diameter (under and over quality.FUNDUS_GRADABLE_BLUR, by √2
steps), saved as JPEG and decoded by the site's own decoder, as an upload would be. The floors
printed are the pair (FUNDUS_MIN_SHARPNESS, FUNDUS_MIN_DETAIL) that refuses as "blurred" the
fewest photos under the limit plus answers the fewest over it; they are written by hand in
quality.py, the one place they live, with the counts this prints. The test photos are never
used here: tests/images/test_quality.py holds the floors to a ladder on them.
"""
from __future__ import annotations

import argparse
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from predictors.images import quality
from predictors.images.decode import decode
from predictors.images.fundus import field_of_view_box

from . import real_images

# The ladder, in multiples of the gradable limit: answered at or under 1/√2, refused from √2 up.
UNDER = (0.0, 0.5, 2 ** -0.5)
OVER = tuple(2 ** 0.5 * 2 ** k for k in range(5))
SHARPNESS_GRID = np.round(np.arange(0.30, 0.80, 0.005), 3)
DETAIL_GRID = np.round(np.arange(0.004, 0.060, 0.0005), 4)


@dataclass(frozen=True)
class Measured:
    photo: str
    width: int
    blur: float  # the Gaussian radius as a multiple of FUNDUS_GRADABLE_BLUR
    sharpness: float
    detail: float


def at_width(photo: Image.Image, width: int) -> Image.Image:
    """The photo at `width` pixels wide, as a camera of that size would give it."""
    if photo.width == width:
        return photo
    return photo.resize((width, round(photo.height * width / photo.width)), Image.Resampling.LANCZOS)


def blurred_upload(photo: Image.Image, share: float) -> bytes:
    """The photo blurred by a Gaussian radius of `share` of its field of view's diameter, as JPEG bytes."""
    if share > 0:
        box = field_of_view_box(photo)
        diameter = max(box[2] - box[0], box[3] - box[1]) if box else max(photo.size)
        photo = photo.filter(ImageFilter.GaussianBlur(share * diameter))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def measure(every: int, widths: tuple[int, ...]) -> list[Measured]:
    items = [item for item in real_images.fundus_images() if item.source_split == "train"][::every]
    rows = []
    for item in items:
        with Image.open(item.path) as opened:
            photo = opened.convert("RGB")
        for width in widths:
            sized = at_width(photo, width)
            for blur in UNDER + OVER:
                upload = blurred_upload(sized, blur * quality.FUNDUS_GRADABLE_BLUR)
                image = decode(upload, **real_images.DECODE_LIMITS).image
                rows.append(Measured(item.path.name, width, blur, *quality.fundus_blur(image)))
    return rows


def fit(rows: list[Measured]) -> dict[str, float | int]:
    """The floors with the fewest errors on the ladder; among equals, the middle of their range."""
    blur = np.array([row.blur for row in rows])
    sharpness = np.array([row.sharpness for row in rows])[:, None, None]
    detail = np.array([row.detail for row in rows])[:, None, None]
    refused = (sharpness < SHARPNESS_GRID[None, :, None]) | (detail < DETAIL_GRID[None, None, :])
    under, over = blur < 1, blur > 1
    errors = (refused & under[:, None, None]).sum(axis=0) + (~refused & over[:, None, None]).sum(axis=0)
    best = np.argwhere(errors == errors.min())
    i, j = (int(np.median(best[:, axis])) for axis in (0, 1))
    return {"FUNDUS_MIN_SHARPNESS": float(SHARPNESS_GRID[i]), "FUNDUS_MIN_DETAIL": float(DETAIL_GRID[j]),
            "under_refused": int((refused[:, i, j] & under).sum()), "under": int(under.sum()),
            "over_answered": int((~refused[:, i, j] & over).sum()), "over": int(over.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=4, help="every Nth training photo")
    parser.add_argument("--widths", default="640,1024,2048", help="photo widths, comma-separated")
    args = parser.parse_args()
    rows = measure(args.every, tuple(int(width) for width in args.widths.split(",")))
    for blur in UNDER + OVER:
        at = [row for row in rows if row.blur == blur]
        print(f"blur {blur * quality.FUNDUS_GRADABLE_BLUR:.2%} of the field: sharpness "
              f"{min(r.sharpness for r in at):.3f}-{max(r.sharpness for r in at):.3f}, detail "
              f"{min(r.detail for r in at):.4f}-{max(r.detail for r in at):.4f}")
    print(fit(rows))


if __name__ == "__main__":
    main()
