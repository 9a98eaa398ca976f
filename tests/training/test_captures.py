"""predictors.training.captures: photos re-captured as clinics take them, the same for the same seed."""
from __future__ import annotations

from PIL import Image

from predictors.training import captures

from ..support import labelled_photos


def test_captures_are_reproducible():
    image = Image.open(labelled_photos("ecg")[0].path)
    capture = captures.Capture("phone_photo", 0.05, ("ecg",))
    assert captures.recapture(image, capture, seed=7) == captures.recapture(image, capture, seed=7)
