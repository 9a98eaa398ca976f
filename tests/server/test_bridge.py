"""predictors.server.bridge on the real server (gunicorn_config.py, the runtime environment, loopback):
/health/ answered by the event loop whatever the threads are doing, and request bodies read
whole, within the read timeout, before Django sees them.

Timing figures (/health/ percentiles while a model loads, and on the simulated free instance)
live in bench/; here a probe only has to answer within seconds (PROBE_TIMEOUT), which a busy
2-core machine still manages, and while every thread is blocked for longer than that: a
/health/ that needed a thread would not be answered at all.
"""
from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.harness import DIABETES, Site, health_probes, payloads
from bench.hostile import SlowLoris, probe_health, send_raw, short_body_request

from ..support import PROBE_TIMEOUT, STRICT_READ_TIMEOUT, api_error, assert_health_answers, model_load_started


THREADS = 2
# How long a request waits for the locked database before it gives up (SQLite's timeout,
# 5 s by default): longer than the test holds the lock, so the threads stay blocked until
# it lets go, whatever the machine's load.
LOCK_WAIT_SECONDS = 120
# py-spy, from the development environment the tests run in (requirements-dev.txt).
PY_SPY = Path(sys.executable).with_name("py-spy")


def threads_in_the_database(worker: int) -> int:
    """How many of the worker's pool threads (bridge.py names them django_N) are inside a
    database call, by py-spy's dump of their stacks."""
    dump = subprocess.run([str(PY_SPY), "dump", "--json", "--pid", str(worker)], capture_output=True, text=True)
    if dump.returncode != 0:
        pytest.fail(f"py-spy could not read worker {worker}'s stacks: {dump.stderr.strip()}")
    return sum(thread["thread_name"].startswith("django")
               and any("django/db/backends/sqlite3/" in frame["short_filename"] for frame in thread["frames"])
               for thread in json.loads(dump.stdout))


def wait_for_threads_in_the_database(worker: int, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while threads_in_the_database(worker) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{count} of worker {worker}'s threads did not reach the locked database in {timeout} s")
        time.sleep(0.05)


@pytest.mark.slow
def test_health_answers_while_every_thread_is_blocked():
    """The probe is answered by the event loop: threads stuck on a locked database do not delay it.

    The lock is held until the probes are done, so a /health/ that needed a thread would not
    be answered within PROBE_TIMEOUT; the threads are seen waiting before the first probe and
    after the last, and a page that needs a thread is answered only once the lock is gone."""
    site = Site(extra_env={"GUNICORN_THREADS": str(THREADS)})
    database = site.workdir / "bench.sqlite3"
    site.extra_env["DATABASE_URL"] = f"sqlite:///{database}?timeout={LOCK_WAIT_SECONDS}"
    site.start()
    try:
        site.predict("diabetes", DIABETES)  # Django and the model are loaded: only the lock can slow what follows
        worker = site.workers()[0]
        lock = sqlite3.connect(database, timeout=1)
        lock.execute("BEGIN EXCLUSIVE")  # every request that writes to the database now waits in its thread
        held = time.perf_counter()
        with ThreadPoolExecutor(THREADS + 1) as pool:
            try:
                stuck = [pool.submit(site.predict, "diabetes", DIABETES) for _ in range(THREADS)]
                wait_for_threads_in_the_database(worker, THREADS)
                page = pool.submit(site.request, "GET", "/accounts/login/")  # needs a thread, touches no database
                probes = list(health_probes(site, every=0.1, timeout=PROBE_TIMEOUT, seconds=1.0))
                blocked_after = threads_in_the_database(worker)
                page_waiting = not page.done()
            finally:
                lock.rollback()
            released = time.perf_counter() - held
            page_status, _, page_seconds = page.result()
            stuck_statuses = [future.result()[0] for future in stuck]
        lock.close()
        assert page_status == 200 and page_seconds > 1.0, "the pool's threads were not all busy"
        assert page_waiting and blocked_after == THREADS, "the pool's threads were not busy throughout the probes"
        assert probes and all(probe.status == 200 for probe in probes), (probes, released)
        assert stuck_statuses == [200] * THREADS
    finally:
        site.stop()


@pytest.mark.slow
def test_slow_header_clients_do_not_starve_health(strict_site):
    with SlowLoris(strict_site.port, connections=8):  # twice the worker's threads
        latencies = probe_health(strict_site, seconds=5)
    assert latencies and all(latency is not None and latency < 1.0 for latency in latencies), latencies


@pytest.mark.slow
def test_slow_upload_and_cold_model_load_do_not_block_health(quick_site):
    inputs = payloads()
    worker = quick_site.workers()[0]
    slow = socket.create_connection(("127.0.0.1", quick_site.port))
    body_size = 2_000_000
    slow.sendall((f"POST /api/v1/predict/retina HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Token {quick_site.token}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                  f"Content-Length: {body_size}\r\n\r\n").encode())
    stop = threading.Event()

    def dribble():
        while not stop.is_set():
            slow.sendall(b"x" * 100)
            time.sleep(0.05)

    cold: dict = {}

    def cold_ecg():
        cold["status"], cold["body"], _ = quick_site.predict("ecg", inputs["ecg"])

    dribbler = threading.Thread(target=dribble, daemon=True)
    loader = threading.Thread(target=cold_ecg)
    dribbler.start()
    loader.start()
    probes_during_load = 0
    deadline = time.monotonic() + 120
    try:
        while loader.is_alive() and time.monotonic() < deadline:
            loading = model_load_started(worker)
            assert_health_answers(quick_site)
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
    assert_health_answers(quick_site)


@pytest.mark.slow
def test_body_that_ends_short_of_its_content_length_is_never_processed(strict_site):
    body = json.dumps(DIABETES).encode()
    assert short_body_request(strict_site.port, strict_site.token, body, missing=10, close_write=True) == b""
    stalled = short_body_request(strict_site.port, strict_site.token, body, missing=10, close_write=False,
                                 wait=STRICT_READ_TIMEOUT + 5)
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


@pytest.mark.slow
def test_chunked_body_is_read_whole(strict_site):
    payload = json.dumps({**DIABETES, "glucose": "high"}).encode()
    request = (f"POST /api/v1/predict/diabetes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Token {strict_site.token}\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    half = len(payload) // 2
    for part in (payload[:half], payload[half:]):
        request += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    answer = send_raw(strict_site.port, request + b"0\r\n\r\n", close_write=False)
    head, _, body = answer.partition(b"\r\n\r\n")
    error = json.loads(body)["error"]
    assert head.startswith(b"HTTP/1.1 400") and error["code"] == "invalid_fields" and "glucose" in error["fields"]


def empty_request_recording_answers(events: list[str], sent: str):
    """An ASGI receive with an empty body, and a send that writes `sent` to events once an answer's
    last byte is sent."""
    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            events.append(sent)

    return receive, send


def page_and_warmup_order(requests: int) -> list[str]:
    """What a worker did, in order, when `requests` pages (0 or 1) arrived before Django was loaded: each page
    run and sent, and the models' warm-up begun (Served.on_woken)."""
    import asyncio

    from predictors.server import bridge as server_bridge

    events: list[str] = []

    def page(environ, start_response):
        events.append("page run")
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form>"]

    bridge = server_bridge.BufferedWSGIBridge(lambda: server_bridge.Served(
        page, threads=1, max_body_bytes=10_000, read_timeout=5, json_paths=lambda path: False,
        admission=OpenAdmission(), recycler=NoRecycling(), on_woken=lambda: events.append("warm-up begun")))

    receive, send = empty_request_recording_answers(events, "page sent")

    async def wake() -> None:
        scope = {"type": "http", "method": "GET", "path": "/accounts/login/", "headers": []}
        if requests:
            await bridge(scope, receive, send)  # sent as the worker starts: it waits for Django
        else:
            bridge._start()  # the lifespan's start-up, with nobody waiting
            await asyncio.shield(bridge.ready)
        await asyncio.sleep(0.1)

    try:
        asyncio.run(wake())
    finally:
        bridge.executor.shutdown()
    return events


class OpenAdmission:
    """Admits every request at once (predictors/server/admission.py's interface), as image work or not."""

    def __init__(self, image_work: bool = False):
        self.image_work = image_work

    async def admit(self, method, path, body, client_gone):
        from predictors.server.admission import Ticket

        return Ticket(image_work=self.image_work)


class NoRecycling:
    def after_request(self) -> None:
        pass


def test_the_models_warm_only_once_the_page_that_woke_the_worker_is_sent():
    """At a tenth of a CPU a model load beside the waking page takes half of its CPU: the page goes first."""
    assert page_and_warmup_order(requests=1) == ["page run", "page sent", "warm-up begun"]


def test_with_no_visitor_waiting_the_models_warm_as_soon_as_django_is_loaded():
    """A worker woken by a deploy or a probe warms at once, so the first visitor finds the models loaded."""
    assert page_and_warmup_order(requests=0) == ["warm-up begun"]


def test_the_heap_is_trimmed_once_image_work_is_idle_not_after_every_upload(monkeypatch):
    """Trimmed after every image answer, the next upload faulted the same freed pages back in
    (bridge.HeapTrim): uploads that follow each other share one trim, made once they stop."""
    import asyncio

    from predictors.server import bridge as server_bridge

    events: list[str] = []
    monkeypatch.setattr(server_bridge, "trim_heap", lambda: events.append("heap trimmed"))

    def upload(environ, start_response):
        events.append("upload run")
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<p>result</p>"]

    idle = 1.0
    bridge = server_bridge.BufferedWSGIBridge(lambda: server_bridge.Served(
        upload, threads=1, max_body_bytes=10_000, read_timeout=5, json_paths=lambda path: False,
        admission=OpenAdmission(image_work=True), recycler=NoRecycling()), heap_trim_idle_seconds=idle)

    receive, send = empty_request_recording_answers(events, "answer sent")

    async def two_uploads_then_idle() -> None:
        scope = {"type": "http", "method": "POST", "path": "/predict/retina/", "headers": []}
        await bridge(scope, receive, send)
        await asyncio.sleep(idle / 10)
        await bridge(scope, receive, send)
        deadline = time.monotonic() + idle + 10
        while "heap trimmed" not in events and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(idle * 1.5)  # the first upload's trim was called off, not merely late

    try:
        asyncio.run(two_uploads_then_idle())
    finally:
        bridge.executor.shutdown()
    assert events == ["upload run", "answer sent", "upload run", "answer sent", "heap trimmed"]
