"""predictors.images.gate: a fundus photo for the retina model, an ECG printout for the ECG model,
and nothing else for either."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from predictors.images.decode import ImageRejected, decode
from predictors.images.gate import gate, scene_scores
from predictors.training import real_images

from ..support import LIMITS, UNGRADABLE_AS_TAKEN, labelled_photos, sample, sample_names


ECG_SAMPLES = sample_names("ecg")


@pytest.mark.parametrize("name", ECG_SAMPLES)
def test_every_real_ecg_sample_passes_the_ecg_gate_only(name):
    image = decode(sample("ecg", name).read_bytes(), **LIMITS).image
    gate(image, "ecg")
    with pytest.raises(ImageRejected) as caught:
        gate(image, "fundus")
    assert caught.value.status == 422 and caught.value.code == "not_fundus"


def test_every_real_labelled_photo_passes_its_own_gate():
    for kind, items in (("fundus", labelled_photos("fundus")), ("ecg", labelled_photos("ecg"))):
        refused = []
        for item in items:
            try:
                gate(real_images.load_rgb(item.path), kind)
            except ImageRejected as exc:
                refused.append((item.path.name, exc.code))
        expected = [(name, "ungradable") for name in sorted(UNGRADABLE_AS_TAKEN)] if kind == "fundus" else []
        assert sorted(refused) == expected, f"real {kind} photos refused by their own gate: {refused[:5]}"


def test_real_fundus_photo_passes_the_fundus_gate_only():
    image = decode(sample("fundus", "retina.jpg").read_bytes(), **LIMITS).image
    gate(image, "fundus")
    with pytest.raises(ImageRejected, match="does not look like an ECG"):
        gate(image, "ecg")


def test_tiny_greyscale_crop_is_refused_not_graded():
    image = decode(sample("fundus", "microaneurysms.png").read_bytes(), **LIMITS).image  # 102×102 grey crop
    with pytest.raises(ImageRejected) as caught:
        gate(image, "fundus")
    assert (caught.value.code, caught.value.status) == ("image_too_small", 422)
    assert "256 pixels" in caught.value.message


def test_greyscale_fundus_photo_at_full_size_is_refused():
    colour = decode(sample("fundus", "retina.jpg").read_bytes(), **LIMITS).image
    with pytest.raises(ImageRejected) as caught:
        gate(colour.convert("L").convert("RGB"), "fundus")
    assert caught.value.code == "not_fundus"


def test_photos_of_other_things_pass_neither_gate():
    import matplotlib

    photo = Image.open(f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg").convert("RGB")
    assert scene_scores(photo).kind == "other"
    for blank in (Image.new("RGB", (300, 300), "white"), Image.new("RGB", (300, 300), (128, 128, 128)),
                  Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8))):
        assert scene_scores(blank).kind == "other"
