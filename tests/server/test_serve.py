"""bin/serve, the README's run command: from nothing to a site a clinician can log in to."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import time
from urllib.parse import urlencode

import pytest

from bench.harness import free_port

from ..support import ROOT, sample

README = ROOT / "README.md"

pytestmark = pytest.mark.slow

START_TIMEOUT = 300  # pip's no-op check, collectstatic, migrate and verifying the shipped models, on a busy machine


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def log_in(port: int, username: str, password: str) -> http.client.HTTPResponse:
    page = get(port, "/accounts/login/")
    csrf = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie", "")).group(1)
    form = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/accounts/login/",
                       body=urlencode({"username": username, "password": password, "csrfmiddlewaretoken": form}),
                       headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf}"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def wait_for_health(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bin/serve exited with {process.returncode} before serving")
        try:
            if get(port, "/health/").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"bin/serve did not answer /health/ within {timeout} s")


def run_readme_api_calls(port: int, env: dict[str, str]) -> list[dict]:
    """The README's curl calls as written ("Running it locally"), on this server's port and with a
    real fundus photo for the README's fundus.jpg; the answers, in order."""
    section = README.read_text().split("## Running it locally", 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    script = script.replace("@fundus.jpg", f"@{sample('fundus', 'retina.jpg')}")
    result = subprocess.run(["bash", "-euc", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    decoder, text, answers = json.JSONDecoder(), result.stdout.strip(), []
    while text:  # curl -s prints the answers back to back
        answer, end = decoder.raw_decode(text)
        answers.append(answer)
        text = text[end:].lstrip()
    return answers


def test_serve_starts_the_site_with_a_demo_clinician_who_can_log_in(tmp_path, server_env):
    port = free_port()
    log_path = tmp_path / "serve.log"
    # What a person's shell has, not this test process's Django settings (tests/settings.py
    # exports a SECRET_KEY and HTTPS_ONLY): pip's configuration and PATH.
    env = {name: value for name, value in os.environ.items() if name.startswith("PIP_") or name in ("PATH", "HOME")}
    env.update({"PORT": str(port), "GUNICORN_ACCESSLOG": "/dev/null",
                # Not the checkout's db.sqlite3: this pass's database, or a SQLite file of this test's own.
                "DATABASE_URL": server_env.get("DATABASE_URL", f"sqlite:///{tmp_path / 'serve.sqlite3'}")})
    with open(log_path, "w") as log:
        # A session of its own: bin/serve execs gunicorn, whose worker must go with it.
        process = subprocess.Popen([str(ROOT / "bin" / "serve")], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_health(port, process, START_TIMEOUT)
        output = log_path.read_text()
        assert f"Serving on http://127.0.0.1:{port}" in output, output
        assert all(re.search(rf"^{name} +ok$", output, re.M) for name in ("diabetes", "heart", "retina", "ecg")), output
        password = re.search(r"Created demo clinician 'demo' with password: (\S+)", output).group(1)
        response = log_in(port, "demo", password)
        assert response.status == 302 and response.getheader("Location") == "/", output
        assert get(port, "/ready/").status == 200
        answers = run_readme_api_calls(port, env)
        assert [answer.get("model") for answer in answers] == ["diabetes", "retina"], answers
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
