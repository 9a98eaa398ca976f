"""The JSON API through real HTTP: results, one error shape, every kind of bad input."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from bench.harness import DIABETES, HEART
from predictors.models import Prediction
from predictors.presentation import file_size
from predictors.services import risk_band

from .conftest import sample

pytestmark = pytest.mark.django_db

def post_json(client, model, body, token, raw=False):
    data = body if raw else json.dumps(body)
    return client.post(f"/api/v1/predict/{model}", data, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {token}")


def post_image(client, model, content: bytes | None, token, name="upload.png", field="image"):
    files = {} if content is None else {field: io.BytesIO(content)}
    if content is not None:
        files[field].name = name
    return client.post(f"/api/v1/predict/{model}", files, HTTP_AUTHORIZATION=f"Token {token}")


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


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
                 "ecg": [lambda: sample("ecg", "stemi_printout.png").read_bytes(),
                         lambda: sample("ecg", "ecg00001.png").read_bytes()]}


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
        assert body["uncertain"] == (max(expected.values()) < decision["uncertain_below"])
        if model == "retina":
            referable = sum(list(expected.values())[2:])
            assert body["grade"] == body["class_index"]
            assert body["referable_probability"] == pytest.approx(referable, abs=0.002)
            assert body["referable_dr"] == (referable >= decision["referable_threshold"])
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


def test_no_credentials_and_bad_token(client, artifacts):
    assert_error(client.post("/api/v1/predict/diabetes", json.dumps(DIABETES), content_type="application/json"),
                 401, "not_authenticated")
    assert_error(post_json(client, "diabetes", DIABETES, "not-a-real-token"), 401, "invalid_token")


def test_session_auth_needs_csrf(artifacts, clinician):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clinician)
    assert_error(browser.post("/api/v1/predict/diabetes", json.dumps(DIABETES), content_type="application/json"),
                 403, "csrf_failed")


def test_get_is_not_allowed(client, api_token):
    response = client.get("/api/v1/predict/diabetes", HTTP_AUTHORIZATION=f"Token {api_token}")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_unknown_endpoint_is_json_404(client):
    assert_error(client.post("/api/v1/predict/kidney"), 404, "not_found")


TABULAR_BAD_INPUT = [
    # (description, model, raw body or dict, status, code, field)
    ("not JSON", "diabetes", b"{glucose: 1", 400, "malformed_json", None),
    ("NaN literal", "diabetes", b'{"glucose": NaN}', 400, "malformed_json", None),
    ("Infinity literal", "diabetes", b'{"bmi": Infinity}', 400, "malformed_json", None),
    ("not UTF-8", "diabetes", b'{"age": "\xff"}', 400, "malformed_json", None),
    ("array body", "diabetes", [1, 2, 3], 400, "invalid_fields", "__all__"),
    ("string for a number", "diabetes", {**DIABETES, "glucose": "168"}, 400, "invalid_fields", "glucose"),
    ("bool for a number", "diabetes", {**DIABETES, "age": True}, 400, "invalid_fields", "age"),
    ("missing required", "diabetes", {k: v for k, v in DIABETES.items() if k != "age"}, 400, "invalid_fields", "age"),
    ("null required", "heart", {**HEART, "sex": None}, 400, "invalid_fields", "sex"),
    ("extra field", "diabetes", {**DIABETES, "weight": 80}, 400, "invalid_fields", "weight"),
    ("number for a choice", "heart", {**HEART, "sex": 1}, 400, "invalid_fields", "sex"),
    ("string for a bool", "heart", {**HEART, "exercise_angina": "yes"}, 400, "invalid_fields", "exercise_angina"),
    ("out of range", "diabetes", {**DIABETES, "glucose": 1000}, 422, "out_of_range", "glucose"),
    ("negative age", "diabetes", {**DIABETES, "age": -4}, 422, "out_of_range", "age"),
    ("fractional count", "diabetes", {**DIABETES, "pregnancies": 1.5}, 422, "out_of_range", "pregnancies"),
    ("huge number", "heart", {**HEART, "cholesterol": 1e308}, 422, "out_of_range", "cholesterol"),
    ("unknown choice", "heart", {**HEART, "thal": "maybe"}, 422, "out_of_range", "thal"),
    ("vessels past 3", "heart", {**HEART, "major_vessels": 4}, 422, "out_of_range", "major_vessels"),
]


@pytest.mark.parametrize("description, model, body, status, code, field", TABULAR_BAD_INPUT,
                         ids=[case[0] for case in TABULAR_BAD_INPUT])
def test_bad_tabular_input_is_refused_clearly_and_records_nothing(client, artifacts, api_token, description, model,
                                                                  body, status, code, field):
    response = post_json(client, model, body, api_token, raw=isinstance(body, bytes))
    error = assert_error(response, status, code)
    if field:
        assert field in error["fields"], error
    assert Prediction.objects.count() == 0


def test_form_encoded_body_is_unsupported_media(client, artifacts, api_token):
    response = client.post("/api/v1/predict/diabetes", {"age": 40}, HTTP_AUTHORIZATION=f"Token {api_token}")
    assert_error(response, 415, "unsupported_media_type")


def test_huge_body_is_refused_before_reading(client, artifacts, api_token, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    body = json.dumps({**DIABETES, "padding": "x" * 400_000})
    assert_error(post_json(client, "diabetes", body, api_token, raw=True), 413, "request_too_large")


def _bomb() -> bytes:
    return png(Image.new("1", (20_000, 20_000)))


def _animated() -> bytes:
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _jpeg_truncated() -> bytes:
    data = io.BytesIO()
    Image.open(sample("fundus", "retina.jpg")).save(data, "JPEG")
    return data.getvalue()[:5000]


IMAGE_BAD_INPUT = [
    ("no file", "retina", None, 400, "missing_image"),
    ("empty file", "retina", b"", 400, None),
    ("text named .png", "ecg", b"hello, I am not a picture", 415, "not_an_image"),
    ("pdf named .png", "ecg", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", 415, "not_an_image"),
    ("truncated jpeg", "retina", "truncated", 415, "corrupt_image"),
    ("decompression bomb", "retina", "bomb", 413, "too_many_pixels"),
    ("animated gif", "ecg", "animated", 415, "multi_frame_image"),
    ("ecg sent to retina", "retina", ("ecg", "ecg00001.png"), 422, "not_fundus"),
    ("fundus sent to ecg", "ecg", ("fundus", "retina.jpg"), 422, "not_ecg"),
    ("plain white page", "ecg", "white", 422, "not_ecg"),
    ("random noise", "retina", "noise", 422, "not_fundus"),
]


def _content(spec):
    if spec is None or isinstance(spec, bytes):
        return spec
    if isinstance(spec, tuple):
        return sample(*spec).read_bytes()
    return {"truncated": _jpeg_truncated, "bomb": _bomb, "animated": _animated,
            "white": lambda: png(Image.new("RGB", (800, 400), "white")),
            "noise": lambda: png(Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8))),
            }[spec]()


@pytest.mark.parametrize("description, model, spec, status, code", IMAGE_BAD_INPUT,
                         ids=[case[0] for case in IMAGE_BAD_INPUT])
def test_bad_image_input_is_refused_clearly_and_records_nothing(client, artifacts, api_token, description, model,
                                                                spec, status, code):
    response = post_image(client, model, _content(spec), api_token)
    error = assert_error(response, status, code)
    assert "image" in error["fields"]
    assert Prediction.objects.count() == 0


def test_oversized_image_file_is_413(client, artifacts, api_token, settings):
    settings.MAX_UPLOAD_BYTES = 100_000
    data = sample("fundus", "retina.jpg").read_bytes()
    error = assert_error(post_image(client, "retina", data, api_token), 413, "file_too_large")
    assert error["message"].startswith(f"The file is {file_size(len(data))}; the limit is 98 kB.")
    assert error["fields"]["image"] == [error["message"]]
    assert Prediction.objects.count() == 0


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


def test_model_unavailable_is_503_and_others_keep_working(client, artifacts, api_token):
    (artifacts / "ecg" / "model.onnx").write_bytes(b"corrupted")
    error = assert_error(post_image(client, "ecg", sample("ecg", "ecg00001.png").read_bytes(), api_token),
                         503, "model_unavailable")
    assert "manifest checksum" in error["message"]
    assert post_json(client, "diabetes", DIABETES, api_token).status_code == 200
    assert Prediction.objects.filter(model_name="ecg").count() == 0


def test_openapi_document_describes_the_real_responses(client, artifacts, api_token):
    import jsonschema

    document = client.get("/api/v1/openapi.json").json()
    assert set(document["paths"]) == {f"/api/v1/predict/{m}" for m in ("diabetes", "heart", "retina", "ecg")}
    components = document["components"]["schemas"]

    def check(instance, name):
        jsonschema.validate(instance, {**components[name], "components": {"schemas": components}})
        # Every field an answer carries is documented, so generated clients see all of it.
        assert set(instance) <= set(components[name]["properties"]), set(instance) - set(components[name]["properties"])

    check(DIABETES, "DiabetesInput")
    check(HEART, "HeartInput")
    check(post_json(client, "diabetes", DIABETES, api_token).json(), "TabularResult")
    check(post_json(client, "heart", HEART, api_token).json(), "TabularResult")
    check(post_image(client, "retina", sample("fundus", "retina.jpg").read_bytes(), api_token).json(), "RetinaResult")
    check(post_image(client, "ecg", sample("ecg", "ecg00010.png").read_bytes(), api_token).json(), "ImageResult")
    check(post_json(client, "diabetes", {**DIABETES, "glucose": 9999}, api_token).json(), "Error")
    with pytest.raises(jsonschema.ValidationError):
        check({**DIABETES, "glucose": "high"}, "DiabetesInput")
