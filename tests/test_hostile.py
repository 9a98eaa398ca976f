"""Hostile traffic against the real server: gunicorn_config.py, the runtime environment, loopback.

Decode bombs with the worker's peak memory, slow and short clients while /health/ is
probed, brute-force log-ins, parser breakers and malformed requests, and the hardening
headers. One server for the module (bounded: a handful of requests per test, seconds of
slow clients); on the PostgreSQL pass (DATABASE_URL=postgres://...) it gets a scratch
database of its own on that server.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest

from bench.harness import DIABETES, ROOT, Site, multipart
from bench.hostile import (DECODE_CASES, SlowLoris, flat_png, peak_above_resting_mb, probe_health, send_raw,
                           short_body_request)

pytestmark = pytest.mark.slow

LOGIN_LIMIT = 4
READ_TIMEOUT = 3
PASSWORD = "correct horse battery staple"
# The bound: one upload may take the worker at most this far above its resting size.
DECODE_ALLOWANCE_MB = 60


@pytest.fixture(scope="module")
def database_url():
    """SQLite in the site's own directory, or a scratch PostgreSQL database on the PostgreSQL pass."""
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql"):
        yield None
        return
    import psycopg2

    name = f"healthoracle_hostile_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(url, connect_timeout=3)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    yield urlsplit(url)._replace(path=f"/{name}").geturl()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture(scope="module")
def site(database_url):
    env = {"LOGIN_FAILURE_LIMIT": str(LOGIN_LIMIT), "REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
           "TRUSTED_PROXY_COUNT": "1", "GUNICORN_MAX_REQUESTS": "0"}
    if database_url:
        env["DATABASE_URL"] = database_url
    running = Site(extra_env=env).start()
    running.manage("shell", "-c", "from django.contrib.auth.models import User; "
                   f"User.objects.create_superuser('dr_ada', 'ada@example.org', {PASSWORD!r})")
    # Resting means with the imaging code loaded, as after any first upload.
    body, content_type = multipart("image", "small.png", flat_png(64, 64, 8, 2, 3))
    running.request("POST", "/api/v1/predict/retina", body,
                    {"Authorization": f"Token {running.token}", "Content-Type": content_type})
    yield running
    running.stop()


def api_error(status: int, body: bytes) -> tuple[int, str]:
    parsed = json.loads(body)
    assert set(parsed["error"]) == {"code", "message", "fields"}, parsed
    return status, parsed["error"]["code"]


# --- decode bombs -------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(DECODE_CASES))
def test_decode_bombs_stay_within_the_memory_allowance(site, case):
    data = DECODE_CASES[case]()
    body, content_type = multipart("image", "upload.png", data)
    headers = {"Authorization": f"Token {site.token}", "Content-Type": content_type}
    site.request("GET", "/health/")
    peak, (status, answer, _) = peak_above_resting_mb(
        site, lambda: site.request("POST", "/api/v1/predict/retina", body, headers, timeout=60))
    code = api_error(status, answer)[1]
    if "accepted" in case:
        assert (status, code) == (422, "not_fundus")  # decoded whole, then refused by the gate
    else:
        assert status == 413 and code in ("too_many_pixels", "image_too_large_to_decode")
    assert peak < DECODE_ALLOWANCE_MB, f"{case}: worker peaked {peak:.0f} MB above resting"


# --- slow and short clients -----------------------------------------------------------

def test_slow_header_clients_do_not_starve_health(site):
    with SlowLoris(site.port, connections=8):  # twice the worker's threads
        latencies = probe_health(site, seconds=5)
    assert latencies and all(latency is not None and latency < 1.0 for latency in latencies), latencies


def test_body_that_ends_short_of_its_content_length_is_never_processed(site):
    body = json.dumps(DIABETES).encode()
    assert short_body_request(site.port, site.token, body, missing=10, close_write=True) == b""
    stalled = short_body_request(site.port, site.token, body, missing=10, close_write=False, wait=READ_TIMEOUT + 5)
    status = int(stalled.split(b" ", 2)[1])
    assert api_error(status, stalled.split(b"\r\n\r\n", 1)[1]) == (408, "request_timeout")


def test_a_body_cut_off_by_the_read_timeout_closes_its_spooled_file(monkeypatch):
    """The 408 frees the stalled upload's temporary file at once, not whenever it is garbage-collected."""
    import asyncio
    import tempfile

    from predictors.server import bridge as server_bridge

    opened: list[tempfile.SpooledTemporaryFile] = []

    class RecordedSpool(tempfile.SpooledTemporaryFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(server_bridge.tempfile, "SpooledTemporaryFile", RecordedSpool)
    sent: list[dict] = []
    first = True

    async def receive() -> dict:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"x" * 100, "more_body": True}
        await asyncio.Event().wait()  # the client stalls with 900 bytes still owed

    async def send(message: dict) -> None:
        sent.append(message)

    bridge = server_bridge.BufferedWSGIBridge(lambda: server_bridge.Served(
        lambda environ, start_response: [], threads=1, max_body_bytes=10_000, read_timeout=0.2,
        json_paths=lambda path: True, admission=None, recycler=None))
    scope = {"type": "http", "method": "POST", "path": "/api/v1/predict/diabetes",
             "headers": [(b"content-length", b"1000")]}
    try:
        asyncio.run(bridge(scope, receive, send))
    finally:
        bridge.executor.shutdown()
    assert sent[0]["status"] == 408
    assert len(opened) == 1 and opened[0].closed


def test_chunked_body_is_read_whole(site):
    payload = json.dumps({**DIABETES, "glucose": "high"}).encode()
    request = (f"POST /api/v1/predict/diabetes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {site.token}\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    half = len(payload) // 2
    for part in (payload[:half], payload[half:]):
        request += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    answer = send_raw(site.port, request + b"0\r\n\r\n", close_write=False)
    head, _, body = answer.partition(b"\r\n\r\n")
    error = json.loads(body)["error"]
    assert head.startswith(b"HTTP/1.1 400") and error["code"] == "invalid_fields" and "glucose" in error["fields"]


# --- log-in throttling ----------------------------------------------------------------

class Browser:
    """A cookie-keeping client for the log-in forms, from one (forwarded) client address."""

    def __init__(self, site: Site, address: str):
        self.site, self.address, self.cookies = site, address, {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, http.client.HTTPResponse]:
        connection = http.client.HTTPConnection("127.0.0.1", self.site.port, timeout=30)
        headers = {"X-Forwarded-For": self.address,
                   "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = "&".join(f"{k}={v}" for k, v in form.items())
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        connection.close()
        return response.status, text, response

    def log_in(self, path: str, username: str, password: str) -> tuple[int, str, http.client.HTTPResponse]:
        _, page, _ = self.request("GET", path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request("POST", path, {"csrfmiddlewaretoken": token, "username": username,
                                           "password": password, "next": "/"})


def test_wrong_passwords_for_one_account_lock_it_with_429_before_hashing(site):
    attacker = Browser(site, "203.0.113.10")
    for _ in range(LOGIN_LIMIT - 1):
        status, page, _ = attacker.log_in("/accounts/login/", "dr_ada", "guess")
        assert status == 200 and "correct username and password" in page
    status, page, response = attacker.log_in("/accounts/login/", "dr_ada", "guess")
    assert status == 429 and "Too many failed log-ins" in page and response.headers["Retry-After"]
    # The account is locked from anywhere, even with the right password, on the admin too.
    elsewhere = Browser(site, "198.51.100.7")
    assert elsewhere.log_in("/accounts/login/", "dr_ada", PASSWORD)[0] == 429
    assert elsewhere.log_in("/admin/login/", "dr_ada", PASSWORD)[0] == 429
    site.manage("axes_reset")
    assert elsewhere.log_in("/accounts/login/", "dr_ada", PASSWORD)[0] == 302


def test_one_address_trying_many_accounts_is_locked_out(site):
    attacker = Browser(site, "203.0.113.20")
    for number in range(LOGIN_LIMIT - 1):
        assert attacker.log_in("/admin/login/", f"someone{number}", "guess")[0] == 200
    status, page, _ = attacker.log_in("/admin/login/", "someone-else", "guess")
    assert status == 429 and "Too many failed log-ins" in page
    assert Browser(site, "198.51.100.8").log_in("/accounts/login/", "dr_ada", PASSWORD)[0] == 302
    site.manage("axes_reset")


def test_session_ends_with_the_browser_and_within_a_shift(site):
    browser = Browser(site, "198.51.100.9")
    status, _, response = browser.log_in("/accounts/login/", "dr_ada", PASSWORD)
    session = next(h for h in response.headers.get_all("Set-Cookie") if h.startswith("sessionid="))
    assert status == 302 and "expires" not in session.lower() and "max-age" not in session.lower()
    history = browser.request("GET", "/history/")
    assert history[0] == 200 and "no-store" in history[2].headers["Cache-Control"]
    site.manage("axes_reset")


# --- parser breakers and the error shape -----------------------------------------------

def api(site: Site, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
        headers: dict | None = None) -> tuple[int, str]:
    sent = {"Authorization": f"Token {site.token}", **(headers or {})}
    if content_type:
        sent["Content-Type"] = content_type
    status, answer, _ = site.request(method, path, body, sent)
    return api_error(status, answer)


def test_json_nested_100000_deep_is_a_400(site):
    assert api(site, "POST", "/api/v1/predict/diabetes", b"[" * 100_000 + b"]" * 100_000,
               "application/json") == (400, "malformed_json")


def test_401_digit_integer_is_refused_not_a_500(site):
    body = json.dumps(DIABETES).replace('"glucose": 168', '"glucose": ' + "9" * 401).encode()
    assert '"glucose": 999' in body.decode()  # the replacement took
    assert api(site, "POST", "/api/v1/predict/diabetes", body, "application/json") == (422, "out_of_range")


@pytest.mark.parametrize("body, content_type, expected", [
    (b"--x\r\n", "multipart/form-data", (400, "malformed_multipart")),
    (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nX-Pad: " + b"a" * 2048
     + b"\r\n\r\nxx\r\n--b--\r\n", "multipart/form-data; boundary=b", (400, "malformed_multipart")),
    (b"{}", "text/plain", (415, "unsupported_media_type")),
])
def test_malformed_uploads_answer_in_the_error_shape(site, body, content_type, expected):
    assert api(site, "POST", "/api/v1/predict/retina", body, content_type) == expected


@pytest.mark.parametrize("method, path, headers, expected", [
    ("GET", "/api/v1/predict/diabetes", {}, (405, "method_not_allowed")),
    ("GET", "/api/v1/nowhere", {}, (404, "not_found")),
    ("POST", "/api/v1/predict/diabetes", {"Host": "evil.example"}, (400, "bad_request")),
    ("POST", "/status/", {"Cookie": "csrftoken=abc"}, (403, "forbidden")),
    ("POST", "/api/v1/predict/diabetes", {"Content-Length": "999999999"}, (413, "request_too_large")),
])
def test_errors_raised_outside_our_views_keep_the_shape(site, method, path, headers, expected):
    assert api(site, method, path, headers=headers) == expected


def test_lower_case_token_scheme_is_accepted(site):
    status, answer, _ = site.request("POST", "/api/v1/predict/diabetes", b"{}",
                                     {"Authorization": f"token {site.token}", "Content-Type": "application/json"})
    assert api_error(status, answer) == (400, "invalid_fields")  # authenticated: the fields are what is wrong


def test_every_response_has_a_policy_and_private_ones_are_never_cached(site):
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    connection.request("GET", "/accounts/login/")
    page = connection.getresponse()
    page.read()
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "no-store" in page.headers["Cache-Control"]
    connection.request("POST", "/api/v1/predict/diabetes", body=json.dumps(DIABETES),
                       headers={"Authorization": f"Token {site.token}", "Content-Type": "application/json"})
    prediction = connection.getresponse()
    prediction.read()
    assert "no-store" in prediction.headers["Cache-Control"]
    connection.close()


def test_openapi_declares_the_image_as_a_binary_file_part(site):
    document = json.loads(site.request("GET", "/api/v1/openapi.json")[1])
    content = document["paths"]["/api/v1/predict/retina"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert content["schema"]["properties"]["image"] == {"type": "string", "format": "binary",
                                                         "description": "The image file"}
    assert "image/png" in content["encoding"]["image"]["contentType"]


# --- settings and probes, in process ---------------------------------------------------

def test_hsts_preload_and_subdomains_are_opt_in(runtime_python):
    code = ("import json, HealthOracle.settings as s; "
            "print(json.dumps([s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD]))")
    env = {"PATH": os.environ.get("PATH", ""), "SECRET_KEY": "x" * 50, "HTTPS_ONLY": "1"}
    out = subprocess.run([runtime_python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [31_536_000, False, False]


@pytest.mark.django_db
def test_ready_does_not_name_the_database_host_when_it_is_down(client, monkeypatch):
    from django.db import OperationalError, connection

    def refuse():
        raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed')

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"
    assert b"db.internal" not in response.content and b"5432" not in response.content
