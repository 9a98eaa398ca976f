"""HealthOracle/settings.py, built from the environment (HealthOracle/environment.py) in a process of its
own: production refuses to start half-configured, and a typo is a system-check error naming the variable
(predictors/checks.py), which stops every command and a worker before it serves."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from HealthOracle.environment import Environment

from .support import PRODUCTION_ENV, ROOT, run_python


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
    assert "SECRET_KEY is not set" in result.stderr and "run manage.py as bin/manage" in result.stderr


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


def test_hsts_preload_and_subdomains_are_opt_in(runtime_python):
    code = ("import json, HealthOracle.settings as s; "
            "print(json.dumps([s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD]))")
    env = {"PATH": os.environ.get("PATH", ""), "SECRET_KEY": "x" * 50, "HTTPS_ONLY": "1"}
    out = subprocess.run([runtime_python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [31_536_000, False, False]


def last_json_line(stdout: str):
    """The printed answer; the site's INFO logs also go to stdout, before it."""
    return json.loads(stdout.strip().splitlines()[-1])


def settings_in_subprocess(python: str, env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    """Evaluate `expression` against HealthOracle.settings built from exactly `env`."""
    code = ("import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'HealthOracle.settings'\n"
            "import django; django.setup()\n"
            "from django.conf import settings\n"
            f"print(json.dumps({expression}))")
    return subprocess.run([python, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ["PATH"], "DEBUG": "1", **env})


def check_in_subprocess(python: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`manage.py check` with HealthOracle.settings built from exactly `env`."""
    return subprocess.run([python, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ["PATH"], "DEBUG": "1", **env})


def assert_check_error(result: subprocess.CompletedProcess, message: str) -> None:
    """The check fails with the message naming the variable, and no traceback."""
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_limits_and_onnx_threads_come_from_the_environment(runtime_python):
    env = {"ORT_INTRA_OP_THREADS": "3", "MAX_IMAGE_PIXELS": "1000000", "DB_CONNECT_TIMEOUT": "7",
           "DATABASE_URL": "postgres://u@db.example:5432/healthoracle"}
    result = settings_in_subprocess(runtime_python, env, "[settings.ORT_INTRA_OP_THREADS, settings.MAX_IMAGE_PIXELS, "
                                                         "settings.DATABASES['default']['OPTIONS']['connect_timeout']]")
    assert result.returncode == 0, result.stderr
    assert last_json_line(result.stdout) == [3, 1_000_000, 7]
    assert_check_error(check_in_subprocess(runtime_python, {"ORT_INTRA_OP_THREADS": "two"}),
                       "(predictors.E001) ORT_INTRA_OP_THREADS='two' is not a whole number")


def test_an_unknown_graph_optimisation_level_stops_start_up_with_a_clear_message(runtime_python):
    """A typo must stop the server when it starts, not fail the first image request."""
    chosen = settings_in_subprocess(runtime_python, {"ORT_GRAPH_OPTIMIZATION": "Basic"},
                                    "settings.ORT_GRAPH_OPTIMIZATION")
    assert chosen.returncode == 0, chosen.stderr
    assert last_json_line(chosen.stdout) == "basic"
    assert_check_error(check_in_subprocess(runtime_python, {"ORT_GRAPH_OPTIMIZATION": "max"}),
                       "ORT_GRAPH_OPTIMIZATION='max' is not a graph optimisation level")


def test_a_server_body_limit_below_what_page_forms_send_stops_start_up(runtime_python):
    """Below the page form's limit the server would answer a bare 413 where the form keeps what was typed."""
    form_limit = 4 * 1_000_000 + 256 * 1024
    default = settings_in_subprocess(runtime_python, {"MAX_UPLOAD_BYTES": "1000000"},
                                     "[settings.MAX_REQUEST_BODY_BYTES, settings.FORM_BODY_FACTOR, "
                                     "settings.UPLOAD_BODY_ALLOWANCE]")
    assert default.returncode == 0, default.stderr
    assert last_json_line(default.stdout) == [form_limit, 4, 256 * 1024]
    enough = settings_in_subprocess(runtime_python, {"MAX_UPLOAD_BYTES": "1000000",
                                                     "MAX_REQUEST_BODY_BYTES": str(form_limit)}, "1")
    assert enough.returncode == 0, enough.stderr
    broken = check_in_subprocess(runtime_python, {"MAX_UPLOAD_BYTES": "1000000",
                                                  "MAX_REQUEST_BODY_BYTES": str(form_limit - 1)})
    assert_check_error(broken, f"MAX_REQUEST_BODY_BYTES={form_limit - 1} is below the {form_limit} bytes "
                               "a page's form may send")


def test_db_connect_timeout_bounds_a_connect_to_a_silent_database(runtime_python):
    """A server that accepts TCP but never answers, as a hung database does: the connect gives up
    after DB_CONNECT_TIMEOUT seconds, not after the default 3 and not never."""
    probe = ("import json, os, time; os.environ['DJANGO_SETTINGS_MODULE'] = 'HealthOracle.settings'\n"
             "import django; django.setup()\n"
             "from django.db import OperationalError, connection\n"
             "started = time.monotonic()\n"
             "try:\n    connection.ensure_connection()\n    outcome = 'connected'\n"
             "except OperationalError as exc:\n    outcome = 'timeout' if 'timeout' in str(exc) else str(exc)\n"
             "print(json.dumps([outcome, time.monotonic() - started]))")
    with socket.create_server(("127.0.0.1", 0)) as silent:
        env = {"PATH": os.environ["PATH"], "DEBUG": "1", "DB_CONNECT_TIMEOUT": "5",
               "DATABASE_URL": f"postgres://postgres@127.0.0.1:{silent.getsockname()[1]}/nothing"}
        result = subprocess.run([runtime_python, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=90)
    assert result.returncode == 0, result.stderr
    outcome, seconds = last_json_line(result.stdout)
    assert outcome == "timeout"
    assert 4.5 <= seconds < 60, seconds


def test_the_model_server_settings_come_from_the_environment_and_a_wrong_one_stops_start_up(runtime_python):
    """INFERENCE_MODELS defaults to both image models; a form model or a URL without a scheme stops the server."""
    chosen = settings_in_subprocess(runtime_python, {"INFERENCE_URL": "http://engine.internal:8080/",
                                                     "INFERENCE_TIMEOUT": "2.5"},
                                    "[settings.INFERENCE_URL, settings.INFERENCE_MODELS, settings.INFERENCE_TIMEOUT]")
    assert chosen.returncode == 0, chosen.stderr
    assert last_json_line(chosen.stdout) == ["http://engine.internal:8080", ["retina", "ecg"], 2.5]
    unset = settings_in_subprocess(runtime_python, {"INFERENCE_MODELS": "retina"}, "settings.INFERENCE_MODELS")
    assert last_json_line(unset.stdout) == []  # no server, nothing remote
    form_model = check_in_subprocess(runtime_python, {"INFERENCE_URL": "http://engine:8080",
                                                      "INFERENCE_MODELS": "retina,diabetes"})
    assert_check_error(form_model, "INFERENCE_MODELS names diabetes: only the image models (retina, ecg)")
    assert_check_error(check_in_subprocess(runtime_python, {"INFERENCE_URL": "engine:8080"}),
                       "is not an http:// or https:// URL")


def test_each_variable_that_does_not_parse_is_named_and_its_default_stands_in():
    """Read once, for settings.py and gunicorn_config.py alike; nothing is raised while reading."""
    env = Environment({"MODEL_RETRY_SECONDS": "soon", "GUNICORN_THREADS": "4.5", "HTTPS_ONLY": "maybe",
                       "ORT_GRAPH_OPTIMIZATION": " Basic ", "IMAGE_QUEUE_SECONDS": " ", "ALLOWED_HOSTS": ""})
    assert env.problems == ["HTTPS_ONLY='maybe' is not a boolean; use 1/0, true/false, yes/no or on/off.",
                            "GUNICORN_THREADS='4.5' is not a whole number.",
                            "MODEL_RETRY_SECONDS='soon' is not a number."]
    assert (env.model_retry_seconds, env.gunicorn_threads, env.https_only) == (5.0, 4, True)
    assert (env.ort_graph_optimization, env.image_queue_seconds, env.allowed_hosts) == ("basic", 30.0, [])
    assert Environment({}).problems == []


@pytest.mark.django_db
def test_an_invalid_setting_is_a_system_check_error_naming_the_variable(settings):
    call_command("check")
    settings.ENVIRONMENT_PROBLEMS = Environment({"MODEL_RETRY_SECONDS": "soon"}).problems
    with pytest.raises(SystemCheckError, match=r"\(predictors.E001\) MODEL_RETRY_SECONDS='soon' is not a number"):
        call_command("check")
    settings.ENVIRONMENT_PROBLEMS = []
    settings.MAX_REQUEST_BODY_BYTES = 1000
    with pytest.raises(SystemCheckError, match=r"\(predictors.E002\) MAX_REQUEST_BODY_BYTES=1000 is below"):
        call_command("check")
    settings.MAX_REQUEST_BODY_BYTES = 100_000_000
    settings.INFERENCE_URL, settings.INFERENCE_TIMEOUT, settings.INFERENCE_MODELS = "engine:8080", 0, ["heart"]
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    for named in ("INFERENCE_URL='engine:8080' is not an http", "INFERENCE_TIMEOUT=0 must be a positive",
                  "INFERENCE_MODELS names heart"):
        assert named in str(caught.value)
