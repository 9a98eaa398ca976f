"""predictors.images.ecg_page: the leads found on a printout, however it was photographed: the
grid cropped, the red grid turned to paper, the page's tilt and outline read from the photo."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from predictors.images import ecg_page
from predictors.images.decode import decode
from predictors.images.ecg_page import crop_ecg_grid, suppress_red_grid
from predictors.training import captures, real_images

from ..support import DATA_LIMITS, labelled_photos


def test_ecg_crop_drops_the_report_header_and_grid_suppression_keeps_only_traces():
    page = real_images.load_rgb(real_images.ecg_images()[0].path)
    leads = crop_ecg_grid(page)
    assert leads.height < 0.85 * page.height and leads.width > 0.9 * page.width
    grey = np.asarray(suppress_red_grid(leads))[..., 0]
    array = np.asarray(leads).astype(int)
    grid_ink = (array[..., 0] - array[..., 1] > 30) & (array.max(axis=2) > 150)
    trace_ink = array.max(axis=2) < 80
    assert grid_ink.sum() > 1000 and trace_ink.sum() > 1000
    assert grey[grid_ink].mean() > 200, "the red grid must turn into paper"
    assert grey[trace_ink].mean() < 60, "the black traces must stay dark"


def test_trace_thickening_is_pillows_minimum_filter_pixel_for_pixel():
    from PIL import ImageFilter

    for item in labelled_photos("ecg")[::40]:
        page = real_images.load_rgb(item.path)
        brightest = Image.fromarray(np.asarray(page).max(axis=2), "L")
        expected = np.asarray(brightest.filter(ImageFilter.MinFilter(3)))
        np.testing.assert_array_equal(np.asarray(suppress_red_grid(page))[..., 0], expected)


def test_a_page_without_a_red_grid_is_used_whole():
    page = Image.new("RGB", (600, 400), "white")
    assert crop_ecg_grid(page).size == page.size


@pytest.mark.parametrize("degrees", [-8.0, -3.5, 2.0, 5.0])
def test_the_tilt_of_a_page_is_read_from_its_lines(ecg_pages, degrees):
    page = ecg_page.normalise_light(Image.open(ecg_pages[0]).convert("RGB").reduce(2))
    turned = page.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255))
    grey = np.asarray(turned.convert("L"), dtype=np.float32)
    assert ecg_page.tilt_degrees(grey) == pytest.approx(degrees, abs=0.3)


def test_a_scan_has_no_paper_outline_but_a_phone_photo_does(ecg_pages):
    scan = Image.open(ecg_pages[0]).convert("RGB")
    assert ecg_page.paper_corners(scan) is None
    phone = captures.recapture(scan, captures.Capture("phone_photo", 0.1, ("ecg",)), seed=3)
    photo = decode(phone, **DATA_LIMITS).image
    corners = ecg_page.paper_corners(photo)
    assert corners is not None
    # The page lies inside the photo's 8% margin on every side.
    assert (corners[:, 0] > 0.03 * photo.width).all() and (corners[:, 0] < 0.97 * photo.width).all()
    assert (corners[:, 1] > 0.03 * photo.height).all() and (corners[:, 1] < 0.97 * photo.height).all()


def test_a_shadow_across_a_scan_is_not_taken_for_the_paper_edge(ecg_pages):
    scan = Image.open(ecg_pages[1]).convert("RGB")
    shadowed = decode(captures.recapture(scan, captures.Capture("uneven_light", 0.5, captures.BOTH), seed=1),
                      **DATA_LIMITS).image
    assert ecg_page.paper_corners(shadowed) is None
