"""A photo the model cannot read is answered "ungradable: retake", saying what to fix (issue 15 item 4)."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from predictors.images.quality import assess
from predictors.images.decode import decode
from predictors.models import Prediction
from predictors.training import captures, real_images

from .test_api import assert_error, post_image
from .test_clinician import DIABETES_FORM

LIMITS = {"max_bytes": 50_000_000, "max_pixels": 60_000_000}


def _fundus() -> Image.Image:
    return Image.open(real_images.fundus_images()[3].path)


def _ecg_page() -> Image.Image:
    return Image.open(real_images.ecg_images()[5].path)


def _dark_fundus() -> bytes:
    return captures.recapture(_fundus(), captures.Capture("brightness", 0.1, captures.BOTH), seed=0)


def _blurred_ecg() -> bytes:
    return captures.recapture(_ecg_page(), captures.Capture("blur", 5, captures.BOTH), seed=0)


def test_a_dark_fundus_photo_is_ungradable_and_the_api_says_to_add_light(client, artifacts, api_token):
    error = assert_error(post_image(client, "retina", _dark_fundus(), api_token, name="dark.jpg"), 422, "ungradable")
    assert "too dark" in error["message"] and "retake" in error["message"] and "image" in error["fields"]
    assert Prediction.objects.count() == 0


def test_a_blurred_ecg_photo_is_ungradable_and_the_api_says_to_hold_still(client, artifacts, api_token):
    error = assert_error(post_image(client, "ecg", _blurred_ecg(), api_token, name="shaky.jpg"), 422, "ungradable")
    assert "blurred" in error["message"] and "not_ecg" not in error["message"]


def test_a_phone_photo_of_an_ecg_on_a_table_is_answered(client, artifacts, api_token):
    """The form invites phone photos: one taken at an angle, paper on a table, is read, not refused."""
    photo = captures.recapture(_ecg_page(), captures.Capture("phone_photo", 0.08, ("ecg",)), seed=2)
    response = post_image(client, "ecg", photo, api_token, name="phone.jpg")
    assert response.status_code == 200, response.content


def test_a_dim_but_readable_photo_is_answered_not_refused(client, artifacts, api_token):
    dim = captures.recapture(_fundus(), captures.Capture("brightness", 0.45, captures.BOTH), seed=0)
    assert post_image(client, "retina", dim, api_token, name="dim.jpg").status_code == 200


def test_the_page_form_says_what_to_fix_and_keeps_the_typed_values(logged_in, artifacts):
    dark = io.BytesIO(_dark_fundus())
    dark.name = "dark.jpg"
    response = logged_in.post("/predict/diabetes/", {**DIABETES_FORM, "case_reference": "Bed 7",
                                                     "retina_image": dark})
    assert response.status_code == 400
    page = response.content.decode()
    assert "cannot be graded reliably" in page and "too dark" in page
    assert 'value="35.1"' in page and 'value="Bed 7"' in page
    assert Prediction.objects.count() == 0


@pytest.mark.parametrize("kind, capture, problem", [
    ("fundus", captures.Capture("brightness", 0.1, captures.BOTH), "too_dark"),
    ("ecg", captures.Capture("blur", 5, captures.BOTH), "blurred"),
    ("ecg", captures.Capture("contrast", 0.15, captures.BOTH), "faint"),
])
def test_each_problem_is_named(kind, capture, problem):
    original = _fundus() if kind == "fundus" else _ecg_page()
    quality = assess(decode(captures.recapture(original, capture, seed=0), **LIMITS).image, kind)
    assert problem in quality.problems


def test_no_pristine_photo_of_the_training_data_is_ungradable():
    """Every labelled photo of ../shared/data, as taken, is readable (the limits sit below all of them)."""
    for kind, items in (("fundus", real_images.fundus_images()), ("ecg", real_images.ecg_images())):
        refused = [(item.path.name, quality.problems) for item in items
                   if not (quality := assess(real_images.load_rgb(item.path), kind)).readable]
        assert not refused, refused[:5]
