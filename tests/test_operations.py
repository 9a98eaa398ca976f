"""What an operator runs and sets: management commands, migrations, environment settings."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from .conftest import ROOT, sample


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


@pytest.mark.django_db
def test_demo_user_prints_a_password_that_logs_in_and_keeps_it_on_a_second_run(client):
    out = StringIO()
    call_command("demo_user", stdout=out)
    password = re.fullmatch(r"Created demo clinician 'demo' with password: (\S+)\n", out.getvalue()).group(1)
    again = StringIO()
    call_command("demo_user", stdout=again)
    assert "exists" in again.getvalue() and password not in again.getvalue()
    response = client.post("/accounts/login/", {"username": "demo", "password": password})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.django_db
def test_models_have_no_missing_migrations():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"model changes without a migration:\n{out.getvalue()}")


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


def test_limits_and_onnx_threads_come_from_the_environment(runtime_python):
    env = {"ORT_INTRA_OP_THREADS": "3", "MAX_IMAGE_PIXELS": "1000000", "DB_CONNECT_TIMEOUT": "7",
           "DATABASE_URL": "postgres://u@db.example:5432/healthoracle"}
    result = settings_in_subprocess(runtime_python, env, "[settings.ORT_INTRA_OP_THREADS, settings.MAX_IMAGE_PIXELS, "
                                                         "settings.DATABASES['default']['OPTIONS']['connect_timeout']]")
    assert result.returncode == 0, result.stderr
    assert last_json_line(result.stdout) == [3, 1_000_000, 7]
    broken = settings_in_subprocess(runtime_python, {"ORT_INTRA_OP_THREADS": "two"}, "1")
    assert broken.returncode != 0 and "ORT_INTRA_OP_THREADS='two' is not a valid int" in broken.stderr


def test_an_unknown_graph_optimisation_level_stops_start_up_with_a_clear_message(runtime_python):
    """A typo must stop the server when it starts, not fail the first image request."""
    chosen = settings_in_subprocess(runtime_python, {"ORT_GRAPH_OPTIMIZATION": "Basic"},
                                    "settings.ORT_GRAPH_OPTIMIZATION")
    assert chosen.returncode == 0, chosen.stderr
    assert last_json_line(chosen.stdout) == "basic"
    broken = settings_in_subprocess(runtime_python, {"ORT_GRAPH_OPTIMIZATION": "max"}, "1")
    assert broken.returncode != 0
    assert "ImproperlyConfigured: ORT_GRAPH_OPTIMIZATION='max' is not a graph optimisation level" in broken.stderr


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
    broken = settings_in_subprocess(runtime_python, {"MAX_UPLOAD_BYTES": "1000000",
                                                     "MAX_REQUEST_BODY_BYTES": str(form_limit - 1)}, "1")
    assert broken.returncode != 0
    assert (f"ImproperlyConfigured: MAX_REQUEST_BODY_BYTES={form_limit - 1} is below the {form_limit} bytes "
            "a page's form may send") in broken.stderr


@pytest.mark.django_db
def test_max_image_pixels_refuses_a_photo_over_the_limit(client, artifacts, api_token, settings):
    photo = sample("fundus", "retina.jpg").read_bytes()  # 1411 × 1411, about 2 megapixels

    def upload():
        from io import BytesIO

        file = BytesIO(photo)
        file.name = "retina.jpg"
        return client.post("/api/v1/predict/retina", {"image": file}, HTTP_AUTHORIZATION=f"Token {api_token}")

    settings.MAX_IMAGE_PIXELS = 1_900_000
    refused = upload()
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "too_many_pixels"
    settings.MAX_IMAGE_PIXELS = 2_100_000
    assert upload().status_code == 200


def test_onnx_sessions_use_the_configured_threads_and_optimisation(artifacts, settings):
    """The session options are ONNX Runtime's own record of what the runtime asked for."""
    import onnxruntime as ort

    from predictors.serving.registry import get_loader

    settings.ORT_INTRA_OP_THREADS = 2
    settings.ORT_GRAPH_OPTIMIZATION = "basic"
    options = get_loader().get("retina").runtime._session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


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
