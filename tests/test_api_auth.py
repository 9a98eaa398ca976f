"""Who may call the API (predictors/http.py): tokens and sessions, and what a refused client is told."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from bench.harness import DIABETES
from predictors.models import APIToken, Prediction

from .support import api_error, assert_error, post_json

pytestmark = pytest.mark.django_db


def test_no_credentials_and_bad_token(client, artifacts):
    assert_error(client.post("/api/v1/predict/diabetes", json.dumps(DIABETES), content_type="application/json"),
                 401, "not_authenticated")
    assert_error(post_json(client, "diabetes", DIABETES, "not-a-real-token"), 401, "invalid_token")


def test_session_auth_needs_csrf(artifacts, clinician):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clinician)
    assert_error(browser.post("/api/v1/predict/diabetes", json.dumps(DIABETES), content_type="application/json"),
                 403, "csrf_failed")


@pytest.mark.parametrize("header", [None, "Bearer not-a-key", "Token not-a-key"])
def test_401_says_how_to_authenticate(artifacts, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().post("/api/v1/predict/diabetes", DIABETES, content_type="application/json", **extra)
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer realm=")


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


@pytest.mark.slow
def test_lower_case_token_scheme_is_accepted(strict_site):
    status, answer, _ = strict_site.request("POST", "/api/v1/predict/diabetes", b"{}",
                                            {"Authorization": f"token {strict_site.token}",
                                             "Content-Type": "application/json"})
    assert api_error(status, answer) == (400, "invalid_fields")  # authenticated: the fields are what is wrong
