"""The site skeleton: settings from the environment, deploy files, probes, accounts."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from django.urls import resolve

from .conftest import ROOT

PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 64 + "production-like-key-with-enough-entropy-0123456789",
    "DEBUG": "0",
    "ALLOWED_HOSTS": "healthoracle.onrender.com",
    "RENDER_EXTERNAL_HOSTNAME": "healthoracle.onrender.com",
    "PATH": os.environ["PATH"],
}


def run_python(python: str, code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


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


def test_check_deploy_is_clean_with_production_environment():
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=PRODUCTION_ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_in_production_is_a_clear_startup_error():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_database_url_selects_postgresql_with_pooling_and_health_checks():
    code = ("import os; os.environ['DJANGO_SETTINGS_MODULE']='HealthOracle.settings'\n"
            "from django.conf import settings; import json\n"
            "d = settings.DATABASES['default']\n"
            "print(json.dumps([d['ENGINE'], d['NAME'], d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], "
            "settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, settings.ALLOWED_HOSTS]))")
    env = {**PRODUCTION_ENV, "DATABASE_URL": "postgres://u:p@db.example:5432/healthoracle"}
    result = run_python(sys.executable, code, env)
    assert result.returncode == 0, result.stderr
    engine, name, max_age, health, redirect, secure_cookie, hosts = json.loads(result.stdout)
    assert engine == "django.db.backends.postgresql" and name == "healthoracle"
    assert max_age == 600 and health is True
    assert redirect is True and secure_cookie is True
    assert "healthoracle.onrender.com" in hosts


def test_render_blueprint_starts_gunicorn_with_our_config_and_probes_a_routed_health_path():
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text())
    web = next(s for s in blueprint["services"] if s["type"] == "web")
    assert "gunicorn" in web["startCommand"] and "--config gunicorn_config.py" in web["startCommand"]
    assert "requirements.txt" in web["buildCommand"] and "requirements-train" not in web["buildCommand"]
    assert resolve(web["healthCheckPath"]).url_name == "health"
    env = {e["key"]: e for e in web["envVars"]}
    assert env["SECRET_KEY"].get("generateValue") is True
    assert env["DATABASE_URL"]["fromDatabase"]["name"] == blueprint["databases"][0]["name"]
    assert env["PYTHON_VERSION"]["value"].startswith("3.11")


def test_gunicorn_config_fits_one_small_instance():
    code = ("import runpy, json; c = runpy.run_path('gunicorn_config.py')\n"
            "print(json.dumps({k: c[k] for k in ('workers','worker_class','threads','timeout','graceful_timeout',"
            "'max_requests','max_requests_jitter','preload_app','worker_tmp_dir','bind')}))")
    result = run_python(sys.executable, code, {"PATH": os.environ["PATH"], "PORT": "10000"})
    config = json.loads(result.stdout)
    # One asyncio worker: slow clients cost a coroutine; Django runs in the bridge's own thread pool.
    assert config["workers"] == 1 and config["worker_class"] == "asgi" and config["threads"] == 1
    assert config["preload_app"] is False
    # gunicorn's recycling counts probes and leaves a gap; predictors/server/recycling.py does it instead.
    assert config["max_requests"] == 0
    assert config["bind"] == "0.0.0.0:10000"
    assert config["timeout"] > config["graceful_timeout"] > 0


def test_gunicorn_config_refuses_a_typo_naming_the_variable():
    """gunicorn prints what its config file raises and exits: the message must say which setting is wrong."""
    code = "import runpy; runpy.run_path('gunicorn_config.py')"
    env = {"PATH": os.environ["PATH"]}
    chosen = run_python(sys.executable, code, {**env, "GUNICORN_WORKER_CLASS": "gevent", "GUNICORN_TIMEOUT": "90"})
    assert chosen.returncode == 0, chosen.stderr
    not_a_number = run_python(sys.executable, code, {**env, "GUNICORN_TIMEOUT": "2m"})
    assert not_a_number.returncode != 0
    assert "ValueError: GUNICORN_TIMEOUT='2m' is not a whole number" in not_a_number.stderr
    unknown_class = run_python(sys.executable, code, {**env, "GUNICORN_WORKER_CLASS": "uvicorn"})
    assert unknown_class.returncode != 0
    assert "GUNICORN_WORKER_CLASS='uvicorn' is not supported" in unknown_class.stderr
    assert "use asgi, gthread, gevent" in unknown_class.stderr


def test_web_requirements_exclude_training_libraries():
    names = {line.split("==")[0].strip().lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    assert not names & {"torch", "torchvision", "scikit-learn", "xgboost"}
    assert {"django", "gunicorn", "onnxruntime", "xgboost-cpu"} <= names
    assert all("==" in line for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/predict/diabetes/", "/predict/ecg/", "/history/", "/models/heart/"])
def test_pages_require_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_login_and_logout(client, clinician):
    response = client.post("/accounts/login/", {"username": "dr_ada", "password": "correct horse battery staple"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_wrong_password_is_refused_with_a_message(client, clinician):
    response = client.post("/accounts/login/", {"username": "dr_ada", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


@pytest.mark.django_db
def test_apitoken_command_prints_a_working_token_stored_hashed(client, django_user_model):
    from django.core.management import call_command
    from io import StringIO

    from predictors.models import APIToken

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


@pytest.mark.django_db
def test_apitoken_for_unknown_user_without_create_fails_clearly():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user named"):
        call_command("apitoken", "ghost")


@pytest.mark.django_db
def test_admin_is_enabled(admin_client):
    assert admin_client.get("/admin/predictors/prediction/").status_code == 200
