"""predictors.server.recycling and gunicorn's master: a worker replaced without a gap or a crash,
whether it asked to be (recycling) or was killed mid-request."""
from __future__ import annotations

import http.client
import logging
import os
import re
import signal
import threading
import time

import pytest

from bench.harness import Site, payloads

from ..support import wait_for_model_load_to_start

pytestmark = pytest.mark.slow


RECYCLE_TRAFFIC = 32  # requests sent while the worker is recycled every 5


def test_worker_is_replaced_without_a_gap_and_probes_do_not_count():
    """Recycled every 5 requests (probes not counted): every probe answered at once, no request lost,
    no worker killed or aborted, models warmed again in each new worker."""
    site = Site(extra_env={"GUNICORN_MAX_REQUESTS": "5", "WARM_MODELS": "all", "LOG_LEVEL": "INFO"}).start()
    try:
        first = site.workers()
        for _ in range(30):  # probes alone never recycle
            assert site.request("GET", "/health/", timeout=5)[0] == 200
        assert site.workers() == first
        stop = threading.Event()
        probes: list[float | None] = []

        def probe() -> None:
            while not stop.is_set():
                try:
                    status, _, seconds = site.request("GET", "/health/", timeout=5)
                    probes.append(seconds if status == 200 else None)
                except OSError:
                    probes.append(None)
                stop.wait(0.1)

        prober = threading.Thread(target=probe)
        prober.start()
        pids = set(first)
        statuses = []
        inputs = payloads()
        try:
            for index in range(RECYCLE_TRAFFIC):
                model = ("diabetes", "retina", "heart", "ecg")[index % 4]
                statuses.append(site.predict(model, inputs[model])[0])
                pids.update(site.workers())
            deadline = time.monotonic() + 30
            while len(site.workers()) != 1 and time.monotonic() < deadline:  # the last replacement settles
                pids.update(site.workers())
                time.sleep(0.2)
        finally:
            stop.set()
            prober.join()
        log = site.log_tail(200_000)
        assert statuses == [200] * RECYCLE_TRAFFIC, statuses
        # A worker serves its 5 and whatever arrives until its replacement has booted.
        assert len(pids) >= 3, f"the worker was not recycled twice: {pids}\n{log[-3000:]}"
        assert len(site.workers()) == 1, site.workers()
        assert probes and all(seconds is not None and seconds < 1.0 for seconds in probes), probes
        assert "asks for its replacement" in log and "replaces worker" in log
        for death in ("SIGABRT", "terminate called", "was sent SIGKILL", "WORKER TIMEOUT", "exited with code"):
            assert death not in log, f"{death!r} in the server log:\n{log[-3000:]}"
        assert len(re.findall(r"loaded model ecg", log)) >= 2  # each new worker warms again
    finally:
        site.stop()


def test_with_several_workers_the_arbiter_stops_the_worker_that_asked(tmp_path, monkeypatch):
    """gunicorn stops its oldest worker when the count falls; with several workers that need not be
    the one that asked. gunicorn's own arbiter code, handed our hook, stops the one that asked."""
    import types

    from gunicorn.arbiter import Arbiter

    import gunicorn_config
    from predictors.server import recycling

    arbiter_pid, asking, oldest, replacement = os.getpid(), os.getpid(), 4_000_001, 4_000_003
    monkeypatch.setenv("HEALTHORACLE_ARBITER_PID", str(arbiter_pid))
    monkeypatch.setattr(recycling, "shared_marker_dir", lambda: tmp_path)
    sent = []
    monkeypatch.setattr(recycling.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    recycling.Recycler(0, 1, 0, tmp_path, arbiter_pid).after_request()  # this worker asks
    recycling.Recycler(0, 0, 0, tmp_path, arbiter_pid).on_ready()  # its replacement is ready
    assert sent == [(arbiter_pid, signal.SIGTTIN), (arbiter_pid, signal.SIGTTOU)]

    arbiter = Arbiter.__new__(Arbiter)
    arbiter.WORKERS = {oldest: types.SimpleNamespace(age=1), asking: types.SimpleNamespace(age=2),
                       replacement: types.SimpleNamespace(age=3)}
    arbiter._num_workers = 3
    arbiter.cfg = types.SimpleNamespace(nworkers_changed=gunicorn_config.nworkers_changed,
                                        enable_backlog_metric=False)
    arbiter.log = logging.getLogger("gunicorn.error")
    arbiter._last_logged_active_worker_count = None
    arbiter.spawn_workers = lambda: None
    stopped = []
    arbiter.kill_worker = lambda pid, sig: (stopped.append(pid), arbiter.WORKERS.pop(pid))
    arbiter.handle_ttou()
    assert stopped == [asking]
    # An operator's own SIGTTOU, with no replacement naming anyone, stops the oldest as gunicorn does.
    arbiter.WORKERS[asking] = types.SimpleNamespace(age=4)
    arbiter._num_workers = 3
    arbiter.handle_ttou()
    assert stopped == [asking, oldest]


def test_worker_killed_mid_request_is_replaced_and_serves_again(quick_site):
    inputs = payloads()
    worker = quick_site.workers()[0]
    outcome = {}

    def cold_request():
        try:
            outcome["status"] = quick_site.predict("ecg", inputs["ecg"])[0]
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
    quick_site.wait_healthy(timeout=60)
    replacements = quick_site.workers()
    assert replacements and worker not in replacements
    for model in ("diabetes", "ecg"):
        assert quick_site.predict(model, inputs[model])[0] == 200
    # ...and it died mid-load: the registry logged the replacement's ECG load, never the killed worker's.
    log = quick_site.log_tail(chars=10_000_000)
    assert f"[pid {replacements[0]}] loaded model ecg" in log
    assert f"[pid {worker}] loaded model ecg" not in log


def test_memory_over_the_limit_is_checked_again_once_the_idle_heap_is_handed_back(tmp_path, monkeypatch):
    """The heap freed by image work is returned only once image work idles (bridge.HeapTrim): a worker
    over WORKER_MAX_RSS_MB on that freed heap alone is not replaced; one still over it after the trim is."""
    from predictors.server import recycling
    from predictors.serving.memory import MB

    arbiter_pid = os.getpid()
    monkeypatch.setenv("HEALTHORACLE_ARBITER_PID", str(arbiter_pid))
    sent, held = [], {"rss": 400 * MB}
    monkeypatch.setattr(recycling.os, "kill", lambda pid, sig: sent.append(sig))
    monkeypatch.setattr(recycling, "rss_bytes", lambda: held["rss"])
    monkeypatch.setattr(recycling, "trim_heap", lambda: held.update(rss=300 * MB))
    recycling.Recycler(360, 0, 0, tmp_path, arbiter_pid).after_request()
    assert sent == []

    monkeypatch.setattr(recycling, "trim_heap", lambda: held.update(rss=380 * MB))
    held["rss"] = 400 * MB
    recycling.Recycler(360, 0, 0, tmp_path, arbiter_pid).after_request()
    assert sent == [signal.SIGTTIN]
