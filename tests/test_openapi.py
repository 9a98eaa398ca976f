"""predictors/openapi.py: the API's document, public, true of the real answers, usable by generated clients."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.http import HttpResponse
from django.test import Client

from bench.harness import DIABETES, HEART

from .support import assert_error, ecg_printout, post_image, post_json, sample

pytestmark = pytest.mark.django_db


def test_openapi_document_is_public_and_says_how_to_authenticate(artifacts, api_token):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    document = response.json()
    scheme = document["components"]["securitySchemes"]["token"]
    assert document["security"] == [{"token": []}, {"session": []}]
    # What a generated client sends for that scheme is accepted (issue 16 item 9: apiKey made
    # clients send the bare key, and "Bearer" got a 401).
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    client = Client()
    assert client.post("/api/v1/predict/diabetes", DIABETES, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {api_token}").status_code == 200
    assert client.post("/api/v1/predict/diabetes", DIABETES, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {api_token}").status_code == 200


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
    check(post_image(client, "ecg", ecg_printout(), api_token).json(), "ImageResult")
    check(post_json(client, "diabetes", {**DIABETES, "glucose": 9999}, api_token).json(), "Error")
    with pytest.raises(jsonschema.ValidationError):
        check({**DIABETES, "glucose": "high"}, "DiabetesInput")


@pytest.mark.slow
def test_openapi_declares_the_image_as_a_binary_file_part(strict_site):
    document = json.loads(strict_site.request("GET", "/api/v1/openapi.json")[1])
    content = document["paths"]["/api/v1/predict/retina"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert content["schema"]["properties"]["image"] == {"type": "string", "format": "binary",
                                                         "description": "The image file"}
    assert "image/png" in content["encoding"]["image"]["contentType"]


def _documented_statuses(document: dict) -> set[int]:
    """The error statuses every operation lists (each lists the same)."""
    listed = [{int(status) for status in path["post"]["responses"] if status != "200"}
              for path in document["paths"].values()]
    assert all(statuses == listed[0] for statuses in listed)
    return listed[0]


def _fails_unexpectedly(case) -> HttpResponse:
    from predictors.serving.runtimes.xgboost_tabular import XGBoostTabular

    def broken_predict(self, features):
        raise RuntimeError("internal detail")

    case.monkeypatch.setattr(XGBoostTabular, "predict", broken_predict)
    return post_json(Client(raise_request_exception=False), "diabetes", DIABETES, case.token)


def _over_plain_http(case) -> HttpResponse:
    case.settings.SECURE_SSL_REDIRECT = True
    return post_json(case.client, "diabetes", DIABETES, case.token)


def _too_large(case) -> HttpResponse:
    case.settings.MAX_UPLOAD_BYTES = 1000
    return post_json(case.client, "diabetes", {**DIABETES, "padding": "x" * 400_000}, case.token)


def _model_away(case) -> HttpResponse:
    (case.artifacts / "retina" / "model.onnx").write_bytes(b"corrupted")
    return post_image(case.client, "retina", sample("fundus", "retina.jpg").read_bytes(), case.token)


# One real request for each error status the document lists, and the header that tells the
# client what to do next where there is one. 408 is answered by the server before Django
# runs, so it is sent to a real server below.
REQUESTS = {
    400: (lambda case: post_json(case.client, "diabetes", b"{glucose: 1", case.token, raw=True), None),
    401: (lambda case: post_json(case.client, "diabetes", DIABETES, "not-a-key"), "WWW-Authenticate"),
    403: (_over_plain_http, None),
    404: (lambda case: case.client.post("/api/v1/predict/kidney", HTTP_AUTHORIZATION=f"Token {case.token}"), None),
    405: (lambda case: case.client.get("/api/v1/predict/diabetes", HTTP_AUTHORIZATION=f"Token {case.token}"), "Allow"),
    413: (_too_large, None),
    415: (lambda case: case.client.post("/api/v1/predict/diabetes", {"age": 40},
                                        HTTP_AUTHORIZATION=f"Token {case.token}"), None),
    422: (lambda case: post_json(case.client, "diabetes", {**DIABETES, "glucose": 9999}, case.token), None),
    500: (_fails_unexpectedly, None),
    503: (_model_away, "Retry-After"),
}
SERVED_ONLY = {408}


@pytest.fixture
def case(client, api_token, artifacts, settings, monkeypatch) -> SimpleNamespace:
    return SimpleNamespace(client=client, token=api_token, artifacts=artifacts, settings=settings,
                           monkeypatch=monkeypatch)


def test_the_document_lists_every_error_status_the_api_answers(client):
    """No status is sent undocumented, none documented that nothing sends (each is sent below)."""
    assert _documented_statuses(client.get("/api/v1/openapi.json").json()) == set(REQUESTS) | SERVED_ONLY


@pytest.mark.parametrize("status", sorted(REQUESTS))
def test_each_documented_error_status_is_answered_in_the_documented_shape(case, status):
    import jsonschema

    document = case.client.get("/api/v1/openapi.json").json()
    send, header = REQUESTS[status]
    response = send(case)
    error = assert_error(response, status)
    schemas = document["components"]["schemas"]
    jsonschema.validate({"error": error}, {**schemas["Error"], "components": {"schemas": schemas}})
    assert not header or response[header]


@pytest.mark.slow
def test_a_request_that_does_not_arrive_in_time_is_the_documented_408(strict_site):
    from bench.hostile import short_body_request

    from .support import STRICT_READ_TIMEOUT, api_error

    document = json.loads(strict_site.request("GET", "/api/v1/openapi.json")[1])
    assert 408 in _documented_statuses(document)
    stalled = short_body_request(strict_site.port, strict_site.token, json.dumps(DIABETES).encode(), missing=10,
                                 close_write=False, wait=STRICT_READ_TIMEOUT + 5)
    assert api_error(int(stalled.split(b" ", 2)[1]), stalled.split(b"\r\n\r\n", 1)[1]) == (408, "request_timeout")


def test_openapi_documents_the_glucose_unit_with_mg_per_dl_by_default_and_its_ranges(client, artifacts):
    import jsonschema

    components = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    schema = {**components["DiabetesInput"], "components": {"schemas": components}}
    unit = schema["properties"]["glucose_unit"]
    assert unit["enum"] == ["mg/dL", "mmol/L"] and unit["default"] == "mg/dL"
    assert "glucose_unit" not in schema["required"]
    jsonschema.validate({**DIABETES, "glucose": 7.8, "glucose_unit": "mmol/L"}, schema)
    jsonschema.validate({**DIABETES, "glucose": 140, "glucose_unit": "mg/dL"}, schema)
    for wrong in ({**DIABETES, "glucose": 7.8}, {**DIABETES, "glucose": 140, "glucose_unit": "mmol/L"},
                  {**DIABETES, "glucose_unit": "mmol"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)
