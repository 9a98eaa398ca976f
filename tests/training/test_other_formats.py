"""predictors.training.other_formats: other machines' ECG printouts and other cameras' fundus photos,
each the kind of picture the site's gate lets through to the model (or refused for a stated
reason), reproducible per seed."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from predictors.images.decode import ImageRejected, decode
from predictors.images.gate import gate
from predictors.training import other_formats, real_images, synth_ecg

# The site's default upload limits (settings.py MAX_UPLOAD_BYTES, MAX_IMAGE_PIXELS): every
# picture the benchmark sends must be one a clinic could upload.
SITE_LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 25_000_000}

RETINA_CARD = Path(__file__).resolve().parents[2] / "predictors" / "artifacts" / "retina" / "card.json"

# Formats the gate turns away before the model sees them, and why.
ECG_REFUSED = {
    # A dark window: the gate looks for light paper (median grey >= 110) crossed by dark ink.
    "viewer screenshot": "not_ecg",
}
FUNDUS_REFUSED = {
    # No dark camera mask around the field: the gate looks for a lit disc inside a dark rim.
    "rectangle, no mask": "not_fundus",
}


def what_the_gate_says(data: bytes, kind: str) -> str:
    image = decode(data, **SITE_LIMITS).image
    try:
        gate(image, kind)
    except ImageRejected as refused:
        return refused.code
    return "accepted"


@pytest.fixture(scope="module")
def record() -> synth_ecg.Record:
    return synth_ecg.simulate(2, seed=5)


@pytest.fixture(scope="module")
def idrid_test_photos() -> list[Image.Image]:
    """Two of the retina model's test photos (never a fitting one), far apart in its list."""
    files = json.loads(RETINA_CARD.read_text())["data"]["test_files"]
    return [real_images.load_rgb(real_images.data_root() / file) for file in (files[0], files[-1])]


@pytest.mark.parametrize("name", list(other_formats.ECG_FORMATS))
def test_each_ecg_format_reaches_the_model_unless_the_gate_refuses_it_for_its_stated_reason(record, name):
    data = other_formats.render_ecg(name, record, seed=1)
    assert what_the_gate_says(data, "ecg") == ECG_REFUSED.get(name, "accepted")


def test_ecg_formats_are_reproducible_per_seed_and_differ_between_seeds(record):
    for name in ("6x2", "viewer screenshot", "pdf export"):
        first = other_formats.render_ecg(name, record, seed=3)
        assert other_formats.render_ecg(name, record, seed=3) == first
        assert other_formats.render_ecg(name, record, seed=4) != first


@pytest.mark.parametrize("name", list(other_formats.FUNDUS_LOOKS))
def test_each_fundus_look_reaches_the_model_unless_the_gate_refuses_it_for_its_stated_reason(
        idrid_test_photos, name):
    for seed, photo in enumerate(idrid_test_photos):
        data = other_formats.render_fundus(name, photo, seed)
        assert what_the_gate_says(data, "fundus") == FUNDUS_REFUSED.get(name, "accepted"), (name, seed)


def test_fundus_looks_are_reproducible_per_seed_and_differ_between_seeds(idrid_test_photos):
    photo = idrid_test_photos[0]
    for name in other_formats.FUNDUS_LOOKS:
        first = other_formats.render_fundus(name, photo, seed=2)
        assert other_formats.render_fundus(name, photo, seed=2) == first, name
        assert other_formats.render_fundus(name, photo, seed=9) != first, name


def test_the_resolution_looks_have_their_cameras_sizes(idrid_test_photos):
    photo = idrid_test_photos[0]
    assert Image.open(io.BytesIO(other_formats.render_fundus("640x480", photo, 0))).size == (640, 480)
    large = Image.open(io.BytesIO(other_formats.render_fundus("large, wide border", photo, 0)))
    assert large.width >= 3800 and large.height >= 2850
