"""predictors/middleware.py: limits on a request before it is read, the API over HTTPS only, a database
that goes away, and the headers every response carries."""
from __future__ import annotations

import http.client
import io
import json
import os
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from django.test import Client

from bench.harness import DIABETES, Site, payloads
from predictors.models import Prediction

from .databases import postgres_server_url, scratch_database
from .support import assert_error, assert_health_answers

pytestmark = pytest.mark.django_db


def test_a_body_far_over_the_limit_is_still_refused_unread(logged_in, settings, rf):
    settings.MAX_UPLOAD_BYTES = 100_000
    huge = io.BytesIO(b"\xff" * 1_000_000)
    huge.name = "scan.png"
    response = logged_in.post("/predict/retina/", {"image": huge})
    assert response.status_code == 413 and "Upload too large" in response.content.decode()
    assert Prediction.objects.count() == 0

    class Untouchable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = read

    from predictors.middleware import RequestLimitsMiddleware

    request = rf.post("/predict/retina/", data=b"", content_type="multipart/form-data; boundary=x")
    request.META["CONTENT_LENGTH"] = str(4 * 1_000_000)
    request._stream = Untouchable()
    refusal = RequestLimitsMiddleware(lambda r: pytest.fail("the view ran"))(request)
    assert refusal.status_code == 413


def test_an_http_api_call_to_an_https_only_site_is_refused_not_redirected(artifacts, api_token, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    refused = client.post("/api/v1/predict/diabetes", DIABETES, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {api_token}")
    assert "Location" not in refused
    assert "https://" in assert_error(refused, 403, "https_required")["message"]
    assert Prediction.objects.count() == 0
    assert client.post("/api/v1/predict/diabetes", DIABETES, content_type="application/json", secure=True,
                       HTTP_AUTHORIZATION=f"Bearer {api_token}").status_code == 200
    assert client.get("/accounts/login/").status_code == 301  # pages still redirect


class TcpProxy:
    """Forwards a local port to PostgreSQL until stopped: a database that goes away."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def stop(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def served_post_json(site: Site, model: str, payload: dict) -> tuple[http.client.HTTPResponse, dict]:
    """A prediction with the response's headers, which Site.predict does not return."""
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=60)
    try:
        connection.request("POST", f"/api/v1/predict/{model}", body=json.dumps(payload),
                           headers={"Authorization": f"Token {site.token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        return response, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def postgres_database():
    """A scratch database on this pass's PostgreSQL server (TEST_DATABASE_URL on the SQLite pass)."""
    import psycopg2

    server = postgres_server_url()
    try:
        with scratch_database(server, prefix="healthoracle_fault") as url:
            yield url
    except psycopg2.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI provides PostgreSQL at {server}, and it does not answer: {exc}")
        pytest.skip(f"no PostgreSQL server at {server} to take away (set TEST_DATABASE_URL): {exc}")


@pytest.mark.slow
def test_database_unreachable_keeps_health_up_and_fails_fast_with_503(quick_artifacts, postgres_database):
    database = urlsplit(postgres_database)
    proxy = TcpProxy(database.hostname or "127.0.0.1", database.port or 5432)
    credentials = database.netloc.rpartition("@")[0]
    through_proxy = database._replace(netloc=f"{credentials}@127.0.0.1:{proxy.port}".lstrip("@")).geturl()
    site = Site(artifacts=quick_artifacts, extra_env={"DATABASE_URL": through_proxy}).start()
    try:
        inputs = payloads()
        assert site.predict("diabetes", inputs["diabetes"])[0] == 200
        proxy.stop()
        assert_health_answers(site)
        status, body, _ = site.request("GET", "/ready/", timeout=20)
        assert status == 503 and b"database" in body
        started = time.monotonic()
        response, body = served_post_json(site, "diabetes", inputs["diabetes"])
        assert response.status == 503 and body["error"]["code"] == "database_unavailable", body
        assert int(response.getheader("Retry-After")) > 0
        # Fast means well inside gunicorn's 120 s timeout, which would otherwise kill the worker.
        assert time.monotonic() - started < 30
        assert_health_answers(site)
    finally:
        site.stop()
        proxy.stop()


@pytest.mark.slow
def test_every_response_has_a_policy_and_private_ones_are_never_cached(strict_site):
    connection = http.client.HTTPConnection("127.0.0.1", strict_site.port, timeout=10)
    connection.request("GET", "/accounts/login/")
    page = connection.getresponse()
    page.read()
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "no-store" in page.headers["Cache-Control"]
    connection.request("POST", "/api/v1/predict/diabetes", body=json.dumps(DIABETES),
                       headers={"Authorization": f"Token {strict_site.token}", "Content-Type": "application/json"})
    prediction = connection.getresponse()
    prediction.read()
    assert "no-store" in prediction.headers["Cache-Control"]
    connection.close()
