"""Who may use the API and what it answers when it fails: tokens, the public schema, 5xx, metrics."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from bench.harness import DIABETES
from predictors.models import APIToken, Prediction

from .conftest import sample
from .test_api import assert_error, post_image, post_json

pytestmark = pytest.mark.django_db


def test_token_records_when_it_was_last_used(client, artifacts, clinician, api_token):
    token = APIToken.objects.get(user=clinician)
    assert token.last_used is None
    before = timezone.now()
    assert post_json(client, "diabetes", DIABETES, api_token).status_code == 200
    token.refresh_from_db()
    assert token.last_used is not None and before <= token.last_used <= timezone.now()


def test_token_of_a_deactivated_clinician_is_refused(client, artifacts, clinician, api_token):
    clinician.is_active = False
    clinician.save()
    assert_error(post_json(client, "diabetes", DIABETES, api_token), 401, "invalid_token")
    assert APIToken.objects.get(user=clinician).last_used is None
    assert Prediction.objects.count() == 0


def test_token_revoked_in_the_admin_stops_working(client, artifacts, clinician, api_token, admin_client):
    assert post_json(client, "diabetes", DIABETES, api_token).status_code == 200
    token = APIToken.objects.get(user=clinician)
    response = admin_client.post(f"/admin/predictors/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert_error(post_json(client, "diabetes", DIABETES, api_token), 401, "invalid_token")
    # Another token of the same clinician is unaffected.
    _, other = APIToken.issue(clinician, name="second")
    assert post_json(client, "diabetes", DIABETES, other).status_code == 200


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


@pytest.mark.parametrize("header", [None, "Bearer not-a-key", "Token not-a-key"])
def test_401_says_how_to_authenticate(artifacts, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().post("/api/v1/predict/diabetes", DIABETES, content_type="application/json", **extra)
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer realm=")


def test_an_http_api_call_to_an_https_only_site_is_refused_not_redirected(artifacts, api_token, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    refused = client.post("/api/v1/predict/diabetes", DIABETES, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {api_token}")
    assert "Location" not in refused
    assert "https://" in assert_error(refused, 403, "https_required")["message"]
    assert Prediction.objects.count() == 0
    assert client.post("/api/v1/predict/diabetes", DIABETES, content_type="application/json", secure=True,
                       HTTP_AUTHORIZATION=f"Bearer {api_token}").status_code == 200
    assert client.get("/accounts/login/").status_code == 301  # pages still redirect


@pytest.mark.parametrize("path", ["/metrics", "/status/"])
def test_a_non_ascii_operator_token_is_refused_not_a_500(client, settings, path):
    settings.METRICS_TOKEN = "scrape-me"
    assert_error(client.get(path, HTTP_AUTHORIZATION="Bearer café"), 403, "forbidden")
    settings.METRICS_TOKEN = "café-au-lait"
    assert client.get(path, HTTP_AUTHORIZATION="Bearer café-au-lait").status_code == 200


def test_unexpected_error_is_a_json_500_in_the_api_error_shape(artifacts, api_token, monkeypatch):
    from predictors.serving.runtimes.xgboost_tabular import XGBoostTabular

    def broken_predict(self, features):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(XGBoostTabular, "predict", broken_predict)
    client = Client(raise_request_exception=False)
    error = assert_error(post_json(client, "diabetes", DIABETES, api_token), 500, "server_error")
    assert "internal detail" not in error["message"] and error["fields"] == {}
    assert Prediction.objects.count() == 0


def test_unavailable_model_asks_clients_to_retry_later(client, artifacts, api_token):
    (artifacts / "retina" / "model.onnx").write_bytes(b"corrupted")
    response = post_image(client, "retina", sample("fundus", "retina.jpg").read_bytes(), api_token)
    assert_error(response, 503, "model_unavailable")
    assert int(response["Retry-After"]) > 0


def prediction_count(client, model: str, outcome: str) -> float:
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-secret").content.decode()
    match = re.search(rf'^healthoracle_predictions_total{{model="{model}",outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_failed_predictions_by_outcome(client, artifacts, api_token, settings):
    settings.METRICS_TOKEN = "metrics-secret"
    ecg = sample("ecg", "ecg00001.png").read_bytes()
    before = {outcome: prediction_count(client, "ecg", outcome) for outcome in ("ok", "unavailable")}
    assert post_image(client, "ecg", ecg, api_token).status_code == 200
    (artifacts / "ecg" / "model.onnx").write_bytes(b"corrupted")
    for _ in range(2):
        assert post_image(client, "ecg", ecg, api_token).status_code == 503
    after = {outcome: prediction_count(client, "ecg", outcome) for outcome in ("ok", "unavailable")}
    assert after == {"ok": before["ok"] + 1, "unavailable": before["unavailable"] + 2}

