"""predictors.images.quality: a photo the model cannot read is "ungradable: retake", named by what
to fix (issue 15 item 4). What the API and the forms say of it is in test_api.py and test_forms.py."""
from __future__ import annotations

import pytest

from predictors.images.decode import decode
from predictors.images.quality import assess
from predictors.training import captures, real_images

from ..support import DATA_LIMITS, ecg_page_photo, fundus_photo, labelled_photos


@pytest.mark.parametrize("kind, capture, problem", [
    ("fundus", captures.Capture("brightness", 0.1, captures.BOTH), "too_dark"),
    ("ecg", captures.Capture("blur", 5, captures.BOTH), "blurred"),
    ("ecg", captures.Capture("contrast", 0.15, captures.BOTH), "faint"),
])
def test_each_problem_is_named(kind, capture, problem):
    original = fundus_photo() if kind == "fundus" else ecg_page_photo()
    quality = assess(decode(captures.recapture(original, capture, seed=0), **DATA_LIMITS).image, kind)
    assert problem in quality.problems


def test_no_pristine_photo_of_the_training_data_is_ungradable():
    """Every labelled photo of ../shared/data, as taken, is readable (the limits sit below all of them)."""
    for kind, items in (("fundus", labelled_photos("fundus")), ("ecg", labelled_photos("ecg"))):
        refused = [(item.path.name, quality.problems) for item in items
                   if not (quality := assess(real_images.load_rgb(item.path), kind)).readable]
        assert not refused, refused[:5]


@pytest.mark.parametrize("radius", [25, 40])
def test_a_fundus_photo_blurred_far_past_focus_is_ungradable(radius):
    """Far past a few pixels of blur the fine-to-coarse ratio climbs back to a sharp photo's;
    the middle band's own detail does not (issue 21), so such a photo is still "blurred"."""
    from PIL import ImageFilter

    decoded = decode(labelled_photos("fundus")[3].path.read_bytes(), **DATA_LIMITS).image
    assert "blurred" in assess(decoded.filter(ImageFilter.GaussianBlur(radius)), "fundus").problems
