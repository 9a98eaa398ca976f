"""The model sees the same picture however the clinic captured it (issue 15).

Real labelled photos from ../shared/data, re-captured by the benchmark's own families
(predictors.training.captures), go through the site's decoder and the shared transform;
the model input must stay close to the one made from the original file.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from predictors.images import ecg_page
from predictors.images.decode import decode
from predictors.images.transform import model_input
from predictors.training import captures, real_images
from predictors.training.vision import ecg_spec, retina_spec

LIMITS = {"max_bytes": 50_000_000, "max_pixels": 60_000_000}
ECG_SPEC = ecg_spec(160, 272)
RETINA_SPEC = retina_spec(288)


def _input(data: bytes, spec: dict) -> np.ndarray:
    return model_input(decode(data, **LIMITS).image, spec)[0]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def ecg_pages() -> list:
    return [item.path for item in real_images.ecg_images()[::110]]


@pytest.fixture(scope="module")
def fundus_photos() -> list:
    return [item.path for item in real_images.fundus_images()[::150]]


@pytest.mark.parametrize("capture", [
    captures.Capture("rotate", 180, captures.BOTH),
    captures.Capture("rotate", 90, captures.BOTH),
    captures.Capture("tilt", 6, captures.BOTH),
    captures.Capture("phone_photo", 0.1, ("ecg",)),
    captures.Capture("brightness", 0.45, captures.BOTH),
    captures.Capture("uneven_light", 0.5, captures.BOTH),
    captures.Capture("colour_cast", 0.2, captures.BOTH),
], ids=lambda c: c.label)
def test_a_recaptured_ecg_page_gives_the_model_the_same_leads(ecg_pages, capture):
    for n, path in enumerate(ecg_pages):
        original = _input(path.read_bytes(), ECG_SPEC)
        recaptured = _input(captures.recapture(Image.open(path), capture, seed=n), ECG_SPEC)
        assert _correlation(original, recaptured) > 0.45, f"{path.name} {capture.label}"


@pytest.mark.parametrize("capture", [
    captures.Capture("brightness", 0.45, captures.BOTH),
    captures.Capture("brightness", 1.3, captures.BOTH),
    captures.Capture("colour_cast", 0.2, captures.BOTH),
    captures.Capture("uneven_light", 0.5, captures.BOTH),
    captures.Capture("contrast", 0.5, captures.BOTH),
    captures.Capture("gamma", 1.6, captures.BOTH),
], ids=lambda c: c.label)
def test_a_recaptured_fundus_photo_gives_the_model_the_same_retina(fundus_photos, capture):
    """Pixel for pixel, within a tenth of the input's range on average ([-1, 1] after the EfficientNet scaling)."""
    for n, path in enumerate(fundus_photos):
        original = _input(path.read_bytes(), RETINA_SPEC)
        recaptured = _input(captures.recapture(Image.open(path), capture, seed=n), RETINA_SPEC)
        assert np.abs(original - recaptured).mean() < 0.1, f"{path.name} {capture.label}"


def test_without_straightening_an_upside_down_page_looks_different(ecg_pages):
    """The yardsticks of the tests above can fail: without the page step, the inputs do not correlate."""
    spec = {key: value for key, value in ECG_SPEC.items() if key != "page"}
    path = ecg_pages[0]
    turned = captures.recapture(Image.open(path), captures.Capture("rotate", 180, captures.BOTH), seed=0)
    assert _correlation(_input(path.read_bytes(), spec), _input(turned, spec)) < 0.3


def test_without_the_light_step_a_dim_fundus_photo_looks_different(fundus_photos):
    spec = {key: value for key, value in RETINA_SPEC.items() if key != "light"}
    path = fundus_photos[0]
    dim = captures.recapture(Image.open(path), captures.Capture("brightness", 0.45, captures.BOTH), seed=0)
    assert np.abs(_input(path.read_bytes(), spec) - _input(dim, spec)).mean() > 0.2


@pytest.mark.parametrize("degrees", [-8.0, -3.5, 2.0, 5.0])
def test_the_tilt_of_a_page_is_read_from_its_lines(ecg_pages, degrees):
    page = ecg_page.normalise_light(Image.open(ecg_pages[0]).convert("RGB").reduce(2))
    turned = page.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255))
    grey = np.asarray(turned.convert("L"), dtype=np.float32)
    assert ecg_page.tilt_degrees(grey) == pytest.approx(degrees, abs=0.3)


def test_a_scan_has_no_paper_outline_but_a_phone_photo_does(ecg_pages):
    scan = Image.open(ecg_pages[0]).convert("RGB")
    assert ecg_page.paper_corners(scan) is None
    photo = decode(captures.recapture(scan, captures.Capture("phone_photo", 0.1, ("ecg",)), seed=3), **LIMITS).image
    corners = ecg_page.paper_corners(photo)
    assert corners is not None
    # The page lies inside the photo's 8% margin on every side.
    assert (corners[:, 0] > 0.03 * photo.width).all() and (corners[:, 0] < 0.97 * photo.width).all()
    assert (corners[:, 1] > 0.03 * photo.height).all() and (corners[:, 1] < 0.97 * photo.height).all()


def test_a_shadow_across_a_scan_is_not_taken_for_the_paper_edge(ecg_pages):
    scan = Image.open(ecg_pages[1]).convert("RGB")
    shadowed = decode(captures.recapture(scan, captures.Capture("uneven_light", 0.5, captures.BOTH), seed=1),
                      **LIMITS).image
    assert ecg_page.paper_corners(shadowed) is None


def test_captures_are_reproducible(ecg_pages):
    image = Image.open(ecg_pages[0])
    capture = captures.Capture("phone_photo", 0.05, ("ecg",))
    assert captures.recapture(image, capture, seed=7) == captures.recapture(image, capture, seed=7)
