"""predictors.images.transform: the one model input, shared with training.

It matches what standard torchvision transforms make around the image-kind steps, and the
model sees the same picture however the clinic captured it (issue 15): real labelled photos
from ../shared/data, re-captured by the benchmark's own families (predictors.training.captures),
go through the site's decoder and the transform, and the model input must stay close to the
one made from the original file.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from predictors.images import ecg_page
from predictors.images.decode import decode
from predictors.images.ecg_page import crop_ecg_grid, suppress_red_grid
from predictors.images.fundus import crop_field_of_view, normalise_fundus
from predictors.images.transform import model_input
from predictors.training import captures
from predictors.training.vision import ecg_spec, retina_spec

from ..support import DATA_LIMITS, LIMITS, sample, sample_names


ECG_SAMPLES = sample_names("ecg")
FUNDUS_SAMPLES = sample_names("fundus")
ECG_SPEC = ecg_spec(160, 272)
RETINA_SPEC = retina_spec(288)


def torchvision_reference(image: Image.Image, spec: dict) -> np.ndarray:
    """What a model trained with standard torchvision transforms expects, around our image-kind steps."""
    if spec.get("page") == "straighten":
        image = ecg_page.prepare_page(image)
    if spec.get("crop") == "field_of_view":
        image = crop_field_of_view(image)
    if spec.get("crop") == "ecg_grid":
        image = crop_ecg_grid(image, turn_upright=spec.get("page") == "straighten")
    if spec.get("grid") == "suppress_red":
        image = suppress_red_grid(image)
    if spec["resize"] == "stretch":
        resize = [transforms.Resize((spec["height"], spec["width"]))]
    else:
        resize = [transforms.Resize(spec["resize_shorter_side"]), transforms.CenterCrop(spec["height"])]
    tensor = transforms.Compose([*resize, transforms.ToTensor()])(image)
    if spec.get("light") == "field_of_view":
        lit = normalise_fundus(tensor.numpy().transpose(1, 2, 0) * 255) / 255
        tensor = torch.from_numpy(np.ascontiguousarray(lit.transpose(2, 0, 1), dtype=np.float32))
    return transforms.Normalize(spec["mean"], spec["std"])(tensor).unsqueeze(0).numpy()


def _input(data: bytes, spec: dict) -> np.ndarray:
    return model_input(decode(data, **DATA_LIMITS).image, spec)[0]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("name", FUNDUS_SAMPLES)
def test_fundus_transform_matches_torchvision_on_real_photos(name):
    image = decode(sample("fundus", name).read_bytes(), **LIMITS).image
    spec = retina_spec(224)
    ours = model_input(image, spec)
    assert ours.shape == (1, 3, 224, 224) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, torchvision_reference(image, spec), atol=1e-5)


@pytest.mark.parametrize("name", ECG_SAMPLES)
def test_ecg_transform_matches_torchvision_on_real_printouts(name):
    image = decode(sample("ecg", name).read_bytes(), **LIMITS).image
    spec = ecg_spec(160, 272)
    ours = model_input(image, spec)
    assert ours.shape == (1, 3, 160, 272)
    np.testing.assert_allclose(ours, torchvision_reference(image, spec), atol=1e-5)


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


def test_an_ecg_page_found_once_by_the_gate_gives_the_same_model_input(ecg_pages):
    """The server finds an upload's page once, for the gate, and hands it to the transform: the
    model input is the one training computes from the photo alone, pixel for pixel, for a scan
    and for a phone photo of the page on a table (where the page is really rectified)."""
    from predictors.images.gate import gate

    for n, path in enumerate(ecg_pages):
        for data in (path.read_bytes(), captures.recapture(Image.open(path), captures.Capture("phone_photo", 0.1, ("ecg",)), n)):
            decoded = decode(data, **LIMITS)
            gate(decoded.image, "ecg", decoded.rectified_page())
            page = decoded.rectified_page()
            assert decoded.rectified_page() is page  # made once
            alone = model_input(decoded.image, ECG_SPEC)
            assert np.array_equal(model_input(decoded.image, ECG_SPEC, rectified_page=page), alone)
