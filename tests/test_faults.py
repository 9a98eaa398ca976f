"""Faults against the real gunicorn server (runtime environment, gunicorn_config.py).

Servers use this pass's database (PostgreSQL on the PostgreSQL pass). Timing figures
(/health/ percentiles while a model loads) live in bench/compare_bench.py; here a probe
only has to answer within seconds, which a busy 2-core machine still manages.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.harness import Site, payloads

from .databases import postgres_server_url, scratch_database

# A probe slower than this means /health/ is blocked, not merely slow on a loaded machine.
PROBE_TIMEOUT = 5.0


pytestmark = pytest.mark.slow


@pytest.fixture
def site(quick_artifacts, tmp_path, runtime_python, server_env):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(quick_artifacts, artifacts, ignore=shutil.ignore_patterns("complete"))
    # INFO logs carry the registry's "loaded model" lines, which say when a load finished.
    running = Site(artifacts=artifacts, extra_env={"MODEL_RETRY_SECONDS": "0", "LOG_LEVEL": "INFO",
                                                   **server_env}).start()
    yield running
    running.stop()


def assert_health_answers(site: Site) -> None:
    status, _, _ = site.request("GET", "/health/", timeout=PROBE_TIMEOUT)
    assert status == 200


def model_load_started(pid: int) -> bool:
    """ONNX Runtime is imported only by the registry's load (never at start-up or on /health/),
    so its library in the worker's memory map means an image model load has begun."""
    return "onnxruntime" in Path(f"/proc/{pid}/maps").read_text()


def wait_for_model_load_to_start(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if model_load_started(pid):
            return
        time.sleep(0.005)
    pytest.fail(f"worker {pid} did not start loading a model within {timeout} s")


def test_worker_killed_mid_request_is_replaced_and_serves_again(site):
    inputs = payloads()
    worker = site.workers()[0]
    outcome = {}

    def cold_request():
        try:
            outcome["status"] = site.predict("ecg", inputs["ecg"])[0]
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=cold_request)
    thread.start()
    wait_for_model_load_to_start(worker, timeout=60)
    os.kill(worker, signal.SIGKILL)
    thread.join(timeout=30)
    assert not thread.is_alive()
    # The worker had the request (else the next worker would have answered it) and died
    # with it: the client sees the connection drop, never a half-written or made-up answer.
    assert set(outcome) == {"error"}, outcome
    assert isinstance(outcome["error"], ConnectionError), repr(outcome["error"])
    site.wait_healthy(timeout=60)
    replacements = site.workers()
    assert replacements and worker not in replacements
    for model in ("diabetes", "ecg"):
        assert site.predict(model, inputs[model])[0] == 200
    # ...and it died mid-load: the registry logged the replacement's ECG load, never the killed worker's.
    log = site.log_tail(chars=10_000_000)
    assert f"[pid {replacements[0]}] loaded model ecg" in log
    assert f"[pid {worker}] loaded model ecg" not in log


def test_artifact_deleted_or_corrupted_while_serving_fails_only_that_model(site):
    inputs = payloads()
    assert site.predict("retina", inputs["retina"])[0] == 200
    retina = site.artifacts / "retina"
    shutil.move(retina, site.workdir / "retina-away")
    status, body, _ = site.predict("retina", inputs["retina"])
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert site.predict("heart", inputs["heart"])[0] == 200
    shutil.move(site.workdir / "retina-away", retina)
    assert site.predict("retina", inputs["retina"])[0] == 200
    model_file = site.artifacts / "ecg" / "model.onnx"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    status, body, _ = site.predict("ecg", inputs["ecg"])
    assert status == 503 and "manifest checksum" in body["error"]["message"]
    assert site.request("GET", "/ready/")[0] == 503
    assert site.predict("diabetes", inputs["diabetes"])[0] == 200


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


def post_json(site: Site, model: str, payload: dict) -> tuple[http.client.HTTPResponse, dict]:
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
        response, body = post_json(site, "diabetes", inputs["diabetes"])
        assert response.status == 503 and body["error"]["code"] == "database_unavailable", body
        assert int(response.getheader("Retry-After")) > 0
        # Fast means well inside gunicorn's 120 s timeout, which would otherwise kill the worker.
        assert time.monotonic() - started < 30
        assert_health_answers(site)
    finally:
        site.stop()
        proxy.stop()


def test_slow_upload_and_cold_model_load_do_not_block_health(site):
    inputs = payloads()
    worker = site.workers()[0]
    slow = socket.create_connection(("127.0.0.1", site.port))
    body_size = 2_000_000
    slow.sendall((f"POST /api/v1/predict/retina HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Token {site.token}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                  f"Content-Length: {body_size}\r\n\r\n").encode())
    stop = threading.Event()

    def dribble():
        while not stop.is_set():
            slow.sendall(b"x" * 100)
            time.sleep(0.05)

    cold: dict = {}

    def cold_ecg():
        cold["status"], cold["body"], _ = site.predict("ecg", inputs["ecg"])

    dribbler = threading.Thread(target=dribble, daemon=True)
    loader = threading.Thread(target=cold_ecg)
    dribbler.start()
    loader.start()
    probes_during_load = 0
    deadline = time.monotonic() + 120
    try:
        while loader.is_alive() and time.monotonic() < deadline:
            loading = model_load_started(worker)
            assert_health_answers(site)
            if loading and loader.is_alive():
                probes_during_load += 1
            time.sleep(0.02)
        loader.join(timeout=5)
        assert dribbler.is_alive()  # the slow upload held its thread throughout
    finally:
        stop.set()
        dribbler.join(timeout=5)
        slow.close()
    assert not loader.is_alive()
    assert cold.get("status") == 200, cold
    assert cold["body"]["model"] == "ecg" and cold["body"]["label"] in cold["body"]["probabilities"]
    assert probes_during_load >= 1, "no /health/ probe was answered while the ECG model loaded"
    assert_health_answers(site)
