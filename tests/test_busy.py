"""predictors/busy.py: a page refused for lack of an image slot keeps what was typed and the file."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from predictors.busy import HELD_FIELD
from predictors.models import Prediction
from predictors.server.admission import BUSY_KEY

from .support import sample

pytestmark = pytest.mark.django_db


def test_busy_page_keeps_what_was_typed_and_the_file(logged_in, django_user_model):
    """Refused for lack of an image slot, the page shows the form as typed and keeps the upload
    on the server: the next Predict, with no file chosen again, uses it (the shipped retina model answers)."""
    photo = sample("fundus", "retina.jpg")
    with open(photo, "rb") as fh:
        busy = logged_in.post("/predict/retina/", {"case_reference": "bay 7", "image": fh}, **{BUSY_KEY: "12"})
    page = busy.content.decode()
    assert busy.status_code == 503 and busy["Retry-After"] == "12"
    assert "busy" in page and 'value="bay 7"' in page and "retina.jpg is kept" in page
    assert not Prediction.objects.exists()
    token = re.search(rf'name="{HELD_FIELD}" value="([^"]+)"', page).group(1)
    other = Client()
    other.force_login(django_user_model.objects.create_user(username="dr_bo", password="x" * 20))
    assert other.post("/predict/retina/", {HELD_FIELD: token}).status_code == 400  # held for its sender alone
    answer = logged_in.post("/predict/retina/", {"case_reference": "bay 7", HELD_FIELD: token})
    assert answer.status_code == 200, answer.content.decode()[:2000]
    record = Prediction.objects.get()
    assert record.model_name == "retina" and record.reference == "bay 7"
    reused = logged_in.post("/predict/retina/", {"case_reference": "bay 7", HELD_FIELD: token})
    assert reused.status_code == 400  # the held file is used once, then gone
