"""Faults against the real gunicorn server (runtime environment, gunicorn_config.py)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time

import pytest

from bench.harness import Site, payloads, percentile


pytestmark = pytest.mark.slow


@pytest.fixture
def site(quick_artifacts, tmp_path, runtime_python):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(quick_artifacts, artifacts, ignore=shutil.ignore_patterns("complete"))
    running = Site(artifacts=artifacts, extra_env={"MODEL_RETRY_SECONDS": "0"}).start()
    yield running
    running.stop()


def health_ms(site: Site) -> float:
    status, _, seconds = site.request("GET", "/health/", timeout=5)
    assert status == 200
    return seconds * 1000


def test_worker_killed_mid_request_is_replaced_and_serves_again(site):
    inputs = payloads()
    worker = site.workers()[0]
    outcome = {}

    def slow_request():
        try:
            outcome["status"] = site.predict("ecg", inputs["ecg"])[0]
        except OSError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.15)  # the cold ResNet50 load is under way
    os.kill(worker, signal.SIGKILL)
    thread.join(timeout=30)
    recovered = site.wait_healthy(timeout=20)
    assert recovered < 20
    assert site.workers() and site.workers()[0] != worker
    for model in ("diabetes", "ecg"):
        assert site.predict(model, inputs[model])[0] == 200


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

    def __init__(self, target_port: int):
        self.target_port = target_port
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
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
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


@pytest.fixture
def postgres_database():
    """A scratch PostgreSQL database on the local server that CI provides."""
    import uuid

    import psycopg2

    url = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    try:
        admin = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI provides PostgreSQL at {url}, and it does not answer: {exc}")
        pytest.skip(f"no PostgreSQL server at {url} to take away (set TEST_DATABASE_URL): {exc}")
    admin.autocommit = True
    name = f"healthoracle_fault_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    yield name
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def test_database_unreachable_keeps_health_up_and_fails_fast_with_503(quick_artifacts, postgres_database):
    proxy = TcpProxy(5432)
    site = Site(artifacts=quick_artifacts, extra_env={
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{proxy.port}/{postgres_database}"}).start()
    try:
        inputs = payloads()
        assert site.predict("diabetes", inputs["diabetes"])[0] == 200
        proxy.stop()
        assert health_ms(site) < 1000
        status, body, _ = site.request("GET", "/ready/", timeout=20)
        assert status == 503 and b"database" in body
        status, body, seconds = site.predict("diabetes", inputs["diabetes"])
        assert status == 503 and body["error"]["code"] == "database_unavailable", body
        assert seconds < 10
        assert health_ms(site) < 1000
    finally:
        site.stop()


def test_slow_upload_and_cold_model_load_do_not_block_health(site):
    inputs = payloads()
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

    dribbler = threading.Thread(target=dribble, daemon=True)
    dribbler.start()
    loader = threading.Thread(target=site.predict, args=("ecg", inputs["ecg"]))
    probes = []
    loader.start()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        probes.append(health_ms(site))
        time.sleep(0.05)
    loader.join(timeout=60)
    stop.set()
    slow.close()
    assert len(probes) > 20
    assert percentile(probes, 99) < 500, probes
