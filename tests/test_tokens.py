"""API tokens a clinician manages on a page (predictors/token_views.py): named, shown once, revoked."""
from __future__ import annotations

import re

import pytest

from predictors.models import APIToken

pytestmark = pytest.mark.django_db


def test_clinician_creates_names_sees_once_and_revokes_a_token(logged_in, clinician, client):
    page = logged_in.get("/tokens/")
    assert page.status_code == 200 and b"no API tokens" in page.content
    assert logged_in.post("/tokens/", {"name": ""}).status_code == 400
    created = logged_in.post("/tokens/", {"name": "clinic laptop"})
    key = re.search(r'<code class="key">([^<]+)</code>', created.content.decode()).group(1)
    assert APIToken.user_for_key(key) == clinician
    again = logged_in.get("/tokens/").content.decode()
    assert "clinic laptop" in again and key[:8] in again and key not in again  # seen once, then only its prefix
    answer = client.post("/api/v1/predict/diabetes", "{}", content_type="application/json",
                         HTTP_AUTHORIZATION=f"Token {key}")
    assert answer.status_code != 401
    token = APIToken.objects.get(user=clinician)
    revoked = logged_in.post(f"/tokens/{token.pk}/revoke/", follow=True)
    assert b"revoked" in revoked.content and APIToken.user_for_key(key) is None


def test_a_clinician_cannot_revoke_another_ones_token(logged_in, django_user_model):
    other = django_user_model.objects.create_user(username="dr_bo", password="x" * 20)
    token, key = APIToken.issue(other, name="theirs")
    logged_in.post(f"/tokens/{token.pk}/revoke/")
    assert APIToken.user_for_key(key) == other
