"""predictors.serving.metrics: predictions counted by model and outcome, failures included."""
from __future__ import annotations

import json
import re

import pytest

from ..support import ecg_printout, post_image

pytestmark = pytest.mark.django_db


def prediction_count(client, model: str, outcome: str) -> float:
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-secret").content.decode()
    match = re.search(rf'^healthoracle_predictions_total{{model="{model}",outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_failed_predictions_by_outcome(client, artifacts, api_token, settings):
    settings.METRICS_TOKEN = "metrics-secret"
    ecg = ecg_printout()
    before = {outcome: prediction_count(client, "ecg", outcome) for outcome in ("ok", "unavailable")}
    assert post_image(client, "ecg", ecg, api_token).status_code == 200
    (artifacts / "ecg" / "model.onnx").write_bytes(b"corrupted")
    for _ in range(2):
        assert post_image(client, "ecg", ecg, api_token).status_code == 503
    after = {outcome: prediction_count(client, "ecg", outcome) for outcome in ("ok", "unavailable")}
    assert after == {"ok": before["ok"] + 1, "unavailable": before["unavailable"] + 2}


def test_the_first_page_does_not_wait_for_the_metrics_client(runtime_python):
    """prometheus_client is imported at the first prediction or scrape, not for a page: after a
    spin-down the log-in page is the first thing a clinician waits for."""
    from ..support import PRODUCTION_ENV, run_python

    # tests.settings: the site's settings with static files served unhashed, so the page renders
    # without a collectstatic run first (a fresh clone has none).
    code = ("import json, os, sys, django\n"
            "os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'\n"
            "django.setup()\n"
            "from django.test import Client\n"
            "r = Client().get('/accounts/login/')\n"
            "print(json.dumps({'status': r.status_code, 'imported': 'prometheus_client' in sys.modules}))\n")
    env = {**PRODUCTION_ENV, "ALLOWED_HOSTS": "testserver", "HTTPS_ONLY": "0"}
    result = run_python(runtime_python, code, env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"status": 200, "imported": False}
