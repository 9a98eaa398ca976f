"""predictors/probes.py: /health/ cheap and model-free, /ready/ honest without loading, /status/ and
/metrics for staff and the operator's token."""
from __future__ import annotations

import json

import pytest

from .support import DIABETES_FORM, PRODUCTION_ENV, assert_error, run_python


def test_health_answers_without_importing_any_model_library(runtime_python):
    code = (
        "import os, sys, json, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'HealthOracle.settings'\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/health/')\n"
        "heavy = [m for m in ('onnxruntime', 'xgboost', 'numpy', 'PIL', 'torch', 'sklearn') if m in sys.modules]\n"
        "print(json.dumps({'status': r.status_code, 'body': r.json(), 'heavy': heavy}))\n"
    )
    env = {**PRODUCTION_ENV, "ALLOWED_HOSTS": "testserver", "HTTPS_ONLY": "0"}
    result = run_python(runtime_python, code, env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"status": 200, "body": {"status": "ok"}, "heavy": []}


def test_health_is_exempt_from_https_redirect_and_cheap(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_ready_checks_database_and_artifacts_without_loading(client, artifacts):
    response = client.get("/ready/")
    assert response.status_code == 200 and response.json()["status"] == "ready"
    (artifacts / "heart" / "model.ubj").write_bytes(b"tampered")
    body = client.get("/ready/").json()
    assert body["status"] == "not_ready" and "manifest" in body["checks"]["artifact:heart"]


@pytest.mark.django_db
def test_ready_does_not_name_the_database_host_when_it_is_down(client, monkeypatch):
    from django.db import OperationalError, connection

    def refuse():
        raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed')

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"
    assert b"db.internal" not in response.content and b"5432" not in response.content


@pytest.mark.django_db
def test_status_and_metrics_are_for_staff(client, logged_in, admin_client, artifacts, settings):
    assert logged_in.get("/status/").status_code == 403
    assert logged_in.get("/metrics").status_code == 403
    logged_in.post("/predict/diabetes/", DIABETES_FORM)
    status = admin_client.get("/status/").json()
    diabetes = next(m for m in status["models"] if m["name"] == "diabetes")
    assert diabetes["state"] == "loaded" and status["rss_mb"] > 0
    metrics = admin_client.get("/metrics").content.decode()
    assert 'healthoracle_predictions_total{model="diabetes",outcome="ok"}' in metrics
    assert "healthoracle_prediction_seconds_bucket" in metrics and "healthoracle_process_resident_memory_bytes" in metrics
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/metrics", "/status/"])
def test_a_non_ascii_operator_token_is_refused_not_a_500(client, settings, path):
    settings.METRICS_TOKEN = "scrape-me"
    assert_error(client.get(path, HTTP_AUTHORIZATION="Bearer café"), 403, "forbidden")
    settings.METRICS_TOKEN = "café-au-lait"
    assert client.get(path, HTTP_AUTHORIZATION="Bearer café-au-lait").status_code == 200
