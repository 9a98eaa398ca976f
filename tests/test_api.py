"""The JSON API's answers (predictors/api.py), through the test client: results, their explanation,
image answers that are the graph's own, where the model looked, unreadable photos."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from bench.harness import DIABETES, HEART
from predictors import selectors
from predictors.images.activation_maps import LEGEND_HEIGHT
from predictors.models import Prediction
from predictors.services import risk_band
from predictors.training import captures

from .support import (assert_error, blurred_ecg, dark_fundus, ecg_page_photo, ecg_printout, fundus_photo, named_upload, open_png,
                      png, post_image, post_json, sample)

pytestmark = pytest.mark.django_db


def test_diabetes_prediction_with_unknown_measurements(client, artifacts, api_token):
    response = post_json(client, "diabetes", DIABETES, api_token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == "diabetes" and body["version"]
    assert body["risk_band"] == risk_band(body["probability"])
    assert len(body["factors"]) == 3
    record = Prediction.objects.get(pk=body["prediction_id"])
    assert record.inputs["insulin"] is None and record.source == "api" and record.model_version == body["version"]


# Clearly high- and low-risk patients; the decisive finding for each model is named.
RISK_CASES = {
    "diabetes": {
        "high": {"pregnancies": 9, "glucose": 196, "blood_pressure": 84, "skin_thickness": 42, "insulin": 300,
                 "bmi": 46.0, "diabetes_pedigree": 1.6, "age": 58},
        "low": {"pregnancies": 0, "glucose": 82, "blood_pressure": 68, "skin_thickness": 18, "insulin": 60,
                "bmi": 20.5, "diabetes_pedigree": 0.12, "age": 22},
        "decisive": "glucose",
    },
    "heart": {
        "high": HEART,
        "low": {"age": 38, "sex": "female", "chest_pain_type": "non_anginal", "resting_bp": 118, "cholesterol": 190,
                "fasting_blood_sugar_gt_120": False, "resting_ecg": "normal", "max_heart_rate": 182,
                "exercise_angina": False, "st_depression": 0.0, "st_slope": "upsloping", "major_vessels": 0,
                "thal": "normal"},
        "decisive": None,
    },
}


@pytest.mark.parametrize("model", sorted(RISK_CASES))
def test_tabular_risk_and_its_explanation_follow_the_measurements(client, artifacts, api_token, model):
    high = post_json(client, model, RISK_CASES[model]["high"], api_token).json()
    low = post_json(client, model, RISK_CASES[model]["low"], api_token).json()
    assert high["probability"] > low["probability"] + 0.3, (high, low)
    assert high["risk_band"] == "high" and low["risk_band"] == "low"
    for body, sign in ((high, 1), (low, -1)):
        contributions = [f["contribution"] for f in body["factors"]]
        assert contributions == sorted(contributions, key=abs, reverse=True)
        for factor in body["factors"]:
            direction = "raised" if factor["contribution"] > 0 else "lowered"
            assert factor["direction"] == direction and factor["text"].endswith(f"{direction} the risk"), factor
        # A high-risk patient's strongest findings push the risk up, a low-risk one's push it down.
        assert sign * contributions[0] > 0, body["factors"]
    decisive = RISK_CASES[model]["decisive"]
    if decisive:
        assert {f["feature"]: f["direction"] for f in high["factors"]}.get(decisive) == "raised", high["factors"]
        assert {f["feature"]: f["direction"] for f in low["factors"]}.get(decisive) == "lowered", low["factors"]


def test_missing_optional_fields_mean_unknown(client, artifacts, api_token):
    response = post_json(client, "heart", {"age": 50, "sex": "female", "chest_pain_type": "non_anginal"}, api_token)
    assert response.status_code == 200, response.content
    assert Prediction.objects.get(pk=response.json()["prediction_id"]).inputs["thal"] is None


def test_heart_prediction_explains_in_clinical_words(client, artifacts, api_token):
    body = post_json(client, "heart", HEART, api_token).json()
    assert body["outcome"].startswith("coronary artery disease")
    assert all(f["text"].endswith(("raised the risk", "lowered the risk")) for f in body["factors"])


def graph_probabilities(artifacts, model: str, data: bytes, settings) -> dict[str, float]:
    """What the artifact's own graph says about an upload: ONNX Runtime run here, on the one
    shared transform, so a server that ignored the image, swapped models or mislabelled classes differs."""
    import onnxruntime as ort

    from predictors.images.decode import decode
    from predictors.images.transform import model_input

    card = json.loads((artifacts / model / "card.json").read_text())
    decoded = decode(data, max_bytes=settings.MAX_UPLOAD_BYTES, max_pixels=settings.MAX_IMAGE_PIXELS)
    session = ort.InferenceSession(str(artifacts / model / card["model_file"]), providers=["CPUExecutionProvider"])
    features = model_input(decoded.image, card["input"]).astype(np.float32)
    logits = session.run(["logits"], {session.get_inputs()[0].name: features})[0][0]
    logits = logits / card["calibration"]["temperature"]  # as the runtime calibrates them
    probabilities = np.exp(logits - logits.max())
    return dict(zip(card["labels"], (probabilities / probabilities.sum()).tolist(), strict=True))


def _darker_retina() -> bytes:
    """The one real colour fundus photo, dimmed: still a fundus, but a different input."""
    from PIL import ImageEnhance

    return png(ImageEnhance.Brightness(Image.open(sample("fundus", "retina.jpg")).convert("RGB")).enhance(0.45))


IMAGE_SAMPLES = {"retina": [lambda: sample("fundus", "retina.jpg").read_bytes(), _darker_retina],
                 "ecg": [lambda: ecg_printout(0), lambda: ecg_printout(1)]}


@pytest.mark.parametrize("model", ["retina", "ecg"])
def test_image_prediction_on_real_samples_is_the_models_answer(client, artifacts, api_token, settings, model):
    for image in IMAGE_SAMPLES[model]:
        data = image()
        response = post_image(client, model, data, api_token)
        assert response.status_code == 200, response.content
        body = response.json()
        expected = graph_probabilities(artifacts, model, data, settings)
        assert list(body["probabilities"]) == list(expected)
        # The API rounds to 4 decimals; the same graph on the same tensor agrees far closer than this.
        assert body["probabilities"] == pytest.approx(expected, abs=0.002)
        assert body["label"] == max(expected, key=expected.get) and body["class_index"] == list(expected).index(body["label"])
        assert body["confidence"] == pytest.approx(max(expected.values()), abs=0.002)
        decision = json.loads((artifacts / model / "card.json").read_text())["decision"]
        if model == "retina":  # the referral call, uncertain within its band
            referable = sum(list(expected.values())[2:])
            assert body["grade"] == body["class_index"]
            assert body["referable_probability"] == pytest.approx(referable, abs=0.002)
            called = referable >= decision["referable_threshold"]
            uncertain = not called and referable >= decision["not_referable_below"]
            assert body["uncertain"] is uncertain and body["referable_dr"] == (None if uncertain else called)
        else:
            assert body["uncertain"] == (max(expected.values()) < decision["uncertain_below"])
        assert body["next_step"]
        record = Prediction.objects.get(pk=body["prediction_id"])
        assert record.inputs["image"]["bytes"] == len(data) and len(record.inputs["image"]["sha256"]) == 64


def test_retina_answer_depends_on_the_photo(client, artifacts, api_token):
    """A server that ignored the upload would answer the same for two different eyes. Only the
    retina model can show it: the quick ECG model (a few records per class, one epoch) answers
    about the same for any image, so for ECG the graph check above is what applies. (The darker
    copy of the same eye would not do: the transform normalises exposure away, on purpose.)"""
    from predictors.training import real_images

    other_eye = next(item for item in real_images.fundus_images() if item.label == 3).path.read_bytes()
    first, second = (post_image(client, "retina", data, api_token).json()["probabilities"]
                     for data in (sample("fundus", "retina.jpg").read_bytes(), other_eye))
    assert max(abs(first[label] - second[label]) for label in first) > 0.02, (first, second)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "I;16"])
def test_unusual_modes_of_a_real_photo_are_accepted(client, artifacts, api_token, mode):
    photo = Image.open(sample("fundus", "retina.jpg")).convert("RGB").resize((512, 512))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
        grey_ok = True
    else:
        image = photo.convert(mode)
        grey_ok = mode == "L"
    buffer = io.BytesIO()
    image.save(buffer, "TIFF" if mode == "CMYK" else "PNG")
    response = post_image(client, "retina", buffer.getvalue(), api_token)
    if grey_ok:  # grey (red-free) fundus photos are refused: the model learnt from colour photos only
        assert_error(response, 422, "not_fundus")
    else:
        assert response.status_code == 200, response.content
        assert Prediction.objects.get().inputs["image"]["bytes"] == len(buffer.getvalue())


@pytest.mark.parametrize("model", ["retina", "ecg"])
def test_the_api_returns_the_map_as_a_png_only_when_asked(client, artifacts, api_token, model):
    data = sample("fundus", "retina.jpg").read_bytes() if model == "retina" else ecg_printout()
    plain = post_image(client, model, data, api_token).json()
    assert "activation_map_png" not in plain
    asked = client.post(f"/api/v1/predict/{model}?activation_map=1", {"image": named_upload(data)},
                        HTTP_AUTHORIZATION=f"Token {api_token}")
    assert asked.status_code == 200, asked.content
    picture = open_png(base64.b64decode(asked.json()["activation_map_png"]))
    served = selectors.served_input(model)  # the model's input as it was given, its legend beneath
    assert picture.size == (served["width"], served["height"] + LEGEND_HEIGHT) and picture.mode == "RGB"


def test_a_dark_fundus_photo_is_ungradable_and_the_api_says_to_add_light(client, artifacts, api_token):
    error = assert_error(post_image(client, "retina", dark_fundus(), api_token, name="dark.jpg"), 422, "ungradable")
    assert "too dark" in error["message"] and "retake" in error["message"] and "image" in error["fields"]
    assert Prediction.objects.count() == 0


def test_a_blurred_ecg_photo_is_ungradable_and_the_api_says_to_hold_still(client, artifacts, api_token):
    error = assert_error(post_image(client, "ecg", blurred_ecg(), api_token, name="shaky.jpg"), 422, "ungradable")
    assert "blurred" in error["message"] and "not_ecg" not in error["message"]


def test_a_phone_photo_of_an_ecg_on_a_table_is_answered(client, artifacts, api_token):
    """The form invites phone photos: one taken at an angle, paper on a table, is read, not refused."""
    photo = captures.recapture(ecg_page_photo(), captures.Capture("phone_photo", 0.08, ("ecg",)), seed=2)
    response = post_image(client, "ecg", photo, api_token, name="phone.jpg")
    assert response.status_code == 200, response.content


def test_a_dim_but_readable_photo_is_answered_not_refused(client, artifacts, api_token):
    dim = captures.recapture(fundus_photo(), captures.Capture("brightness", 0.45, captures.BOTH), seed=0)
    assert post_image(client, "retina", dim, api_token, name="dim.jpg").status_code == 200
