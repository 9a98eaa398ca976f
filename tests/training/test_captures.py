"""predictors.training.captures: photos re-captured as clinics take them, the same for the same seed."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from predictors.training import captures

from ..support import labelled_photos


@pytest.fixture(scope="module")
def printout() -> Image.Image:
    with Image.open(labelled_photos("ecg")[0].path) as image:
        return image.convert("RGB")


def test_captures_are_reproducible(printout):
    capture = captures.Capture("phone_photo", 0.05, ("ecg",))
    first = captures.recapture(printout, capture, seed=7)
    assert captures.recapture(printout, capture, seed=7) == first
    # Another seed, another photo: the angle and the table are drawn from it.
    assert captures.recapture(printout, capture, seed=8) != first


def test_a_phone_photo_is_a_jpeg_of_the_page_framed_by_the_table_around_it(printout):
    photo = Image.open(io.BytesIO(captures.recapture(printout, captures.Capture("phone_photo", 0.05, ("ecg",)), 7)))
    assert photo.format == "JPEG"
    assert photo.width > printout.width and photo.height > printout.height


def test_a_dimmed_capture_has_the_light_it_was_asked_for(printout):
    dimmed = Image.open(io.BytesIO(captures.recapture(printout, captures.Capture("brightness", 0.5, captures.BOTH), 0)))
    assert dimmed.size == printout.size
    ratio = np.asarray(dimmed, dtype=np.float32).mean() / np.asarray(printout, dtype=np.float32).mean()
    assert ratio == pytest.approx(0.5, abs=0.02)


def test_a_crease_shades_narrow_bands_across_the_page_and_leaves_the_rest():
    page = Image.new("RGB", (600, 400), (200, 200, 200))
    data = captures.crease(page, 0.5, np.random.default_rng(3))
    assert captures.crease(page, 0.5, np.random.default_rng(3)) == data
    creased = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32)
    changed = np.abs(creased - 200) > 12
    assert 0.01 < changed.mean() < 0.3  # a fold's band or two, not the page
    # A fold is a straight line across the page: the shading is the same all along it.
    assert min(creased.std(axis=0).mean(), creased.std(axis=1).mean()) < 3
    assert creased.min() < 170 and creased.max() > 215  # a shadow on one side of the fold, a sheen on the other


def test_creases_are_drawn_for_printouts_only():
    assert "crease" in captures.mild_families("ecg")
    assert "crease" not in captures.mild_families("fundus")
