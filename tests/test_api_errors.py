"""What the JSON API answers when it cannot answer: one error shape for every kind of bad input, an
unavailable model, an unexpected failure, and requests the real server's parsers must survive."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.test import Client
from PIL import Image

from bench.harness import DIABETES, HEART
from predictors.models import Prediction
from predictors.formatting import file_size

from .support import api_request_error, assert_error, png, post_image, post_json, sample

pytestmark = pytest.mark.django_db


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


def test_max_image_pixels_refuses_a_photo_over_the_limit(client, artifacts, api_token, settings):
    photo = sample("fundus", "retina.jpg").read_bytes()  # 1411 × 1411, about 2 megapixels

    def upload():
        from io import BytesIO

        file = BytesIO(photo)
        file.name = "retina.jpg"
        return client.post("/api/v1/predict/retina", {"image": file}, HTTP_AUTHORIZATION=f"Token {api_token}")

    settings.MAX_IMAGE_PIXELS = 1_900_000
    refused = upload()
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "too_many_pixels"
    settings.MAX_IMAGE_PIXELS = 2_100_000
    assert upload().status_code == 200


def test_model_unavailable_is_503_and_others_keep_working(client, artifacts, api_token):
    (artifacts / "ecg" / "model.onnx").write_bytes(b"corrupted")
    error = assert_error(post_image(client, "ecg", sample("ecg", "ecg00001.png").read_bytes(), api_token),
                         503, "model_unavailable")
    assert "manifest checksum" in error["message"]
    assert post_json(client, "diabetes", DIABETES, api_token).status_code == 200
    assert Prediction.objects.filter(model_name="ecg").count() == 0


def test_unavailable_model_asks_clients_to_retry_later(client, artifacts, api_token):
    (artifacts / "retina" / "model.onnx").write_bytes(b"corrupted")
    response = post_image(client, "retina", sample("fundus", "retina.jpg").read_bytes(), api_token)
    assert_error(response, 503, "model_unavailable")
    assert int(response["Retry-After"]) > 0


def test_an_unavailable_model_asks_for_the_pause_after_which_it_is_tried_again(client, logged_in, artifacts,
                                                                                api_token, settings):
    """Retry-After is MODEL_RETRY_SECONDS, on the API and on the page: asked sooner, the model is still refused."""
    settings.MODEL_RETRY_SECONDS = 42
    (artifacts / "retina" / "model.onnx").write_bytes(b"corrupted")
    response = post_image(client, "retina", sample("fundus", "retina.jpg").read_bytes(), api_token)
    assert_error(response, 503, "model_unavailable")
    assert response["Retry-After"] == "42"
    with open(sample("fundus", "retina.jpg"), "rb") as photo:
        page = logged_in.post("/predict/retina/", {"image": photo})
    assert page.status_code == 503 and page["Retry-After"] == "42"
    assert "Press Predict again in about 42 seconds" in page.content.decode()
    settings.MODEL_RETRY_SECONDS = 2.5  # whole seconds, rounded up (RFC 9110)
    assert post_image(client, "retina", sample("fundus", "retina.jpg").read_bytes(), api_token)["Retry-After"] == "3"


def test_unexpected_error_is_a_json_500_in_the_api_error_shape(artifacts, api_token, monkeypatch):
    from predictors.serving.runtimes.xgboost_tabular import XGBoostTabular

    def broken_predict(self, features):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(XGBoostTabular, "predict", broken_predict)
    client = Client(raise_request_exception=False)
    error = assert_error(post_json(client, "diabetes", DIABETES, api_token), 500, "server_error")
    assert "internal detail" not in error["message"] and error["fields"] == {}
    assert Prediction.objects.count() == 0


@pytest.mark.slow
def test_json_nested_100000_deep_is_a_400(strict_site):
    assert api_request_error(strict_site, "POST", "/api/v1/predict/diabetes", b"[" * 100_000 + b"]" * 100_000,
                             "application/json") == (400, "malformed_json")


@pytest.mark.slow
def test_401_digit_integer_is_refused_not_a_500(strict_site):
    body = json.dumps(DIABETES).replace('"glucose": 168', '"glucose": ' + "9" * 401).encode()
    assert '"glucose": 999' in body.decode()  # the replacement took
    answer = api_request_error(strict_site, "POST", "/api/v1/predict/diabetes", body, "application/json")
    assert answer == (422, "out_of_range")


@pytest.mark.slow
@pytest.mark.parametrize("body, content_type, expected", [
    (b"--x\r\n", "multipart/form-data", (400, "malformed_multipart")),
    (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nX-Pad: " + b"a" * 2048
     + b"\r\n\r\nxx\r\n--b--\r\n", "multipart/form-data; boundary=b", (400, "malformed_multipart")),
    (b"{}", "text/plain", (415, "unsupported_media_type")),
])
def test_malformed_uploads_answer_in_the_error_shape(strict_site, body, content_type, expected):
    assert api_request_error(strict_site, "POST", "/api/v1/predict/retina", body, content_type) == expected


@pytest.mark.slow
@pytest.mark.parametrize("method, path, headers, expected", [
    ("GET", "/api/v1/predict/diabetes", {}, (405, "method_not_allowed")),
    ("GET", "/api/v1/nowhere", {}, (404, "not_found")),
    ("POST", "/api/v1/predict/diabetes", {"Host": "evil.example"}, (400, "bad_request")),
    ("POST", "/status/", {"Cookie": "csrftoken=abc"}, (403, "forbidden")),
    ("POST", "/api/v1/predict/diabetes", {"Content-Length": "999999999"}, (413, "request_too_large")),
])
def test_errors_raised_outside_our_views_keep_the_shape(strict_site, method, path, headers, expected):
    assert api_request_error(strict_site, method, path, headers=headers) == expected
