"""The management commands an operator runs, with a shell or without one (Render's free plan): the
first admin from the Blueprint, API tokens, the history exported before the free database
expires, the models checked and warmed, a demo clinician, migrations."""
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

from predictors.models import APIToken, Prediction
from predictors.serving.registry import get_loader

from .support import ROOT

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


def test_apitoken_command_prints_a_working_token_stored_hashed(client, django_user_model):
    out, err = StringIO(), StringIO()
    call_command("apitoken", "nurse_lee", "--create-user", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert "password" in err.getvalue()
    token = APIToken.objects.get(user__username="nurse_lee")
    assert token.key_hash != key and key not in token.key_hash and len(token.key_hash) == 64
    assert APIToken.user_for_key(key).username == "nurse_lee"
    response = client.post("/api/v1/predict/diabetes", "{}", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 400  # authenticated; the body is what is wrong


def test_apitoken_for_unknown_user_without_create_fails_clearly():
    with pytest.raises(CommandError, match="no user named"):
        call_command("apitoken", "ghost")


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
    # "--revoke=PREFIX": a key's URL-safe prefix may begin with "-", which argparse would take for an option.
    call_command("apitoken", clinician.username, f"--revoke={key[:8]}", stdout=StringIO(), stderr=StringIO())
    assert APIToken.user_for_key(key) is None and APIToken.user_for_key(kept) == clinician
    with pytest.raises(CommandError, match="no token"):
        call_command("apitoken", clinician.username, f"--revoke={key[:8]}", stdout=StringIO(), stderr=StringIO())


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


def test_check_models_passes_intact_artifacts_and_names_a_broken_one(artifacts):
    out = StringIO()
    call_command("check_models", stdout=out)
    lines = dict(line.split(maxsplit=1) for line in out.getvalue().splitlines())
    assert lines == {"diabetes": "ok", "heart": "ok", "retina": "ok", "ecg": "ok"}

    model_file = artifacts / "heart" / "model.ubj"
    model_file.write_bytes(model_file.read_bytes()[:-1])
    out = StringIO()
    with pytest.raises(CommandError, match=r"1 model artifact\(s\) unusable .*: heart\."):
        call_command("check_models", stdout=out)
    lines = dict(line.split(maxsplit=1) for line in out.getvalue().splitlines())
    assert "manifest checksum" in lines["heart"] and lines["ecg"] == "ok"


def test_warm_models_command_loads_and_reports(artifacts):
    out = StringIO()
    call_command("warm_models", "all", stdout=out)
    states = dict(line.split()[:2] for line in out.getvalue().splitlines())
    assert states == {"diabetes": "loaded", "heart": "loaded", "retina": "loaded", "ecg": "loaded"}
    assert all(m["state"] == "loaded" for m in get_loader().status()["models"])


def test_demo_user_prints_a_password_that_logs_in_and_keeps_it_on_a_second_run(client):
    out = StringIO()
    call_command("demo_user", stdout=out)
    password = re.fullmatch(r"Created demo clinician 'demo' with password: (\S+)\n", out.getvalue()).group(1)
    again = StringIO()
    call_command("demo_user", stdout=again)
    assert "exists" in again.getvalue() and password not in again.getvalue()
    response = client.post("/accounts/login/", {"username": "demo", "password": password})
    assert response.status_code == 302 and response["Location"] == "/"


def test_models_have_no_missing_migrations():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"model changes without a migration:\n{out.getvalue()}")
