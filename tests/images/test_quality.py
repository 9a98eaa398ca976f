"""predictors.images.quality: a photo the model cannot read is "ungradable: retake", named by what
to fix (issue 15 item 4), blur judged at the size of what it hides on the retina (issue 30). What the API and the forms say of it is in test_api.py and test_forms.py."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from predictors.images.decode import ImageRejected, decode
from predictors.images.gate import gate
from predictors.images.quality import FUNDUS_GRADABLE_BLUR, assess
from predictors.training import captures, real_images

from ..support import DATA_LIMITS, UNGRADABLE_AS_TAKEN, ecg_page_photo, fundus_photo, labelled_photos


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
    """Every labelled photo of ../shared/data, as taken, is readable (the limits sit below all of them),
    but the one a grader could not grade either, which is refused as blurred (UNGRADABLE_AS_TAKEN)."""
    for kind, items in (("fundus", labelled_photos("fundus")), ("ecg", labelled_photos("ecg"))):
        refused = [(item.path.name, quality.problems) for item in items
                   if not (quality := assess(real_images.load_rgb(item.path), kind)).readable]
        expected = [(name, ("blurred",)) for name in sorted(UNGRADABLE_AS_TAKEN)] if kind == "fundus" else []
        assert sorted(refused) == expected, refused[:5]


@pytest.mark.parametrize("radius", [25, 40])
def test_a_fundus_photo_blurred_far_past_focus_is_ungradable(radius):
    """Far past a few pixels of blur the fine-to-coarse ratio climbs back to a sharp photo's;
    the middle band's own detail does not (issue 21), so such a photo is still "blurred"."""
    from PIL import ImageFilter

    decoded = decode(labelled_photos("fundus")[3].path.read_bytes(), **DATA_LIMITS).image
    assert "blurred" in assess(decoded.filter(ImageFilter.GaussianBlur(radius)), "fundus").problems


# A ladder of Gaussian blur radii, as shares of the field of view's diameter, and the widths a
# fundus camera's photo comes at (issue 30 item 1): whether blur is seen must not depend on the size.
BLUR_SHARES = (0.0025, 0.005, 0.01, 0.02, 0.04)
CAMERA_WIDTHS = (640, 1024, 2048, 4288)


@pytest.fixture(scope="module")
def blur_ladder() -> dict[tuple[str, float, int], bytes]:
    """Three IDRiD test photos (never used to fit the floors), each blurred at its own 1024 px by
    every share of its field's diameter and then resized to every width, as JPEG uploads. Blur
    and resampling commute, and blurring 4288-px copies would take seconds per photo."""
    from PIL import ImageFilter

    from predictors.images.fundus import field_of_view_box
    from predictors.training.quality_fit import at_width

    tests = [item for item in labelled_photos("fundus") if item.source_split == "test"]
    ladder = {}
    for item in tests[::20]:
        with Image.open(item.path) as opened:
            photo = opened.convert("RGB")
        left, top, right, bottom = field_of_view_box(photo)
        for share in BLUR_SHARES:
            blurred = photo.filter(ImageFilter.GaussianBlur(share * max(right - left, bottom - top)))
            for width in CAMERA_WIDTHS:
                buffer = io.BytesIO()
                at_width(blurred, width).save(buffer, format="JPEG", quality=90)
                ladder[item.path.name, share, width] = buffer.getvalue()
    return ladder


def test_blur_past_the_gradable_limit_is_refused_at_every_size_and_under_it_answered(blur_ladder):
    """Through the site's own decoding and gate, as an upload is judged: every radius past
    FUNDUS_GRADABLE_BLUR of the field's diameter is "ungradable", every one under it passes,
    at 640 to 4288 pixels wide alike (a 30-px blur of a 4288-px photo was graded, issue 30)."""
    wrong = []
    for (name, share, width), upload in blur_ladder.items():
        try:
            gate(decode(upload, **DATA_LIMITS).image, "fundus")
            refused = None
        except ImageRejected as rejection:
            refused = rejection.code
        expected = "ungradable" if share > FUNDUS_GRADABLE_BLUR else None
        if refused != expected:
            wrong.append((name, f"{share:.2%}", width, refused))
    assert len(blur_ladder) == 3 * len(BLUR_SHARES) * len(CAMERA_WIDTHS)
    assert not wrong, wrong
