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


def test_printouts_of_the_layouts_the_ecg_model_learnt_pass_the_ecg_gate():
    """Printouts of fold-8 recordings drawn in the common layouts (predictors.training.printouts) and
    captured as clinics capture them are seen as ECGs: the gate leaves what they are to the domain
    score, and whether they can be read to the quality check."""
    from predictors.training import printouts

    found = printouts.recordings()
    tested = printouts.test_patients(found)  # the ECG model's drawn test set: nothing is tuned on it
    chosen = [r for r in found if r.fold == 8 and r.patient_id not in tested][:32]
    kinds = []
    for recording in chosen:
        signals = printouts.read_signals(recording)
        for variant in range(3):
            printout = printouts.draw_printout(signals, recording.ecg_id, variant, seed=1234)
            scores = scene_scores(decode(printout.data, **LIMITS).image)
            kinds.append((printout.layout.family, printout.layout.grid, printout.capture, scores.kind))
    others = [kind for kind in kinds if kind[-1] != "ecg"]
    # The gate before its refit missed 7 of these 96; a faint crease or a hard recompression still hides a few.
    assert len(others) <= 2, f"{len(others)} of {len(kinds)} drawn printouts not seen as ECGs: {others}"


def test_a_typed_letter_or_a_signed_blank_page_is_not_an_ecg():
    """The ECG gate's least ink and edges admit a faint 12×1 printout, not a page of text or a signature."""
    import os

    import matplotlib
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), 22)
    letter, signed = (Image.new("RGB", (1240, 1754), "white") for _ in range(2))
    for line in range(30):
        ImageDraw.Draw(letter).text((100, 150 + line * 40), "Dear colleague, thank you for seeing this patient "
                                    "who presented with chest pain", fill="black", font=font)
    ImageDraw.Draw(signed).line((200, 1500, 600, 1450), fill="black", width=4)
    assert scene_scores(letter).kind == "other"
    assert scene_scores(signed).kind == "other"
