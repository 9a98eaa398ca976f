"""predictors.serving.metrics: predictions counted by model and outcome, failures included."""
from __future__ import annotations

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
