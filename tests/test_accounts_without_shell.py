"""Running the site with no shell (Render's free plan): the first admin from the Blueprint,
tokens a clinician manages on a page, records exported before the free database expires,
and a page that is refused for lack of an image slot keeping what was typed and the file."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from predictors.busy import HELD_FIELD
from predictors.server.admission import BUSY_KEY
from predictors.models import APIToken, Prediction

from .conftest import ROOT, sample

pytestmark = pytest.mark.django_db

ADMIN = {"ADMIN_USERNAME": "head_nurse", "ADMIN_EMAIL": "head@example.org",
         "ADMIN_PASSWORD": "a long and unusual passphrase"}


def test_build_creates_the_admin_from_the_blueprint_variables_once(monkeypatch, django_user_model, client):
    for name, value in ADMIN.items():
        monkeypatch.setenv(name, value)
    call_command("ensure_admin", stdout=StringIO())
    call_command("ensure_admin", stdout=StringIO())  # every re-deploy runs it again
    admin = django_user_model.objects.get(username="head_nurse")
    assert django_user_model.objects.filter(username="head_nurse").count() == 1
    assert admin.is_staff and admin.is_superuser and admin.email == "head@example.org"
    monkeypatch.setenv("ADMIN_PASSWORD", "another long unusual passphrase")
    call_command("ensure_admin", stdout=StringIO())  # the deployer changed the password in Render
    logged_in = client.post("/admin/login/?next=/admin/", {"username": "head_nurse",
                                                            "password": "another long unusual passphrase"})
    assert logged_in.status_code == 302 and client.get("/admin/").status_code == 200


def test_build_without_admin_variables_changes_nothing_and_a_weak_password_stops_it(monkeypatch, django_user_model):
    for name in ADMIN:
        monkeypatch.delenv(name, raising=False)
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    assert "not set" in out.getvalue() and not django_user_model.objects.exists()
    monkeypatch.setenv("ADMIN_USERNAME", "head_nurse")
    monkeypatch.setenv("ADMIN_PASSWORD", "password")
    with pytest.raises(CommandError, match="too weak"):
        call_command("ensure_admin", stdout=StringIO())
    assert not django_user_model.objects.exists()


def test_apitoken_prints_the_key_alone_on_stdout(runtime_python, tmp_path):
    """`KEY=$(manage.py apitoken bob)`: the site's start-up logs must not land in the key."""
    env = {"PATH": os.environ["PATH"], "DEBUG": "1", "LOG_LEVEL": "INFO",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    subprocess.run([runtime_python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    result = subprocess.run([runtime_python, "manage.py", "apitoken", "bob", "--create-user"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\n", result.stdout), result.stdout


def test_apitoken_revoke_by_prefix(clinician):
    _, key = APIToken.issue(clinician, name="ward laptop")
    _, kept = APIToken.issue(clinician, name="script")
    listed = StringIO()
    call_command("apitoken", clinician.username, "--list", stdout=listed)
    assert key[:8] in listed.getvalue() and "ward laptop" in listed.getvalue()
    call_command("apitoken", clinician.username, "--revoke", key[:8], stdout=StringIO(), stderr=StringIO())
    assert APIToken.user_for_key(key) is None and APIToken.user_for_key(kept) == clinician
    with pytest.raises(CommandError, match="no token"):
        call_command("apitoken", clinician.username, "--revoke", key[:8], stdout=StringIO(), stderr=StringIO())


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


def test_export_history_writes_every_record_as_json_lines_and_csv(clinician, tmp_path):
    form = Prediction.objects.create(user=clinician, model_name="diabetes", model_version="v1",
                                     inputs={"glucose": 150}, outputs={"probability": 0.7}, latency_ms=2.0,
                                     reference="bed 4")
    Prediction.objects.create(user=clinician, model_name="retina", model_version="v2", inputs={"image": {}},
                              outputs={"grade": 2}, latency_ms=50.0, parent=form)
    out = StringIO()
    call_command("export_history", stdout=out, stderr=StringIO())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["model"], r["parent_id"], r["user"]) for r in lines] == [("diabetes", None, "dr_ada"),
                                                                         ("retina", form.pk, "dr_ada")]
    assert lines[0]["inputs"] == {"glucose": 150} and lines[0]["reference"] == "bed 4"
    path = tmp_path / "history.csv"
    call_command("export_history", "--format", "csv", "--output", str(path), stderr=StringIO())
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == 2 and json.loads(rows[1]["outputs"]) == {"grade": 2}


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
