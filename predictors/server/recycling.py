"""Replace a worker that has grown, without a gap in service and without counting probes.

gunicorn's own max_requests counts every request, Render's /health/ probes included
(one every few seconds recycles an idle worker about every hour), and it stops the old
worker before its replacement has booted: on 0.1 CPU that is seconds with nobody
listening. So gunicorn_config.py turns it off and this module recycles instead:

- when the worker's resident memory passes WORKER_MAX_RSS_MB after a request: growth
  is what recycling exists for (heap fragmentation around image buffers), and it is
  measured rather than guessed from a count;
- or, when GUNICORN_MAX_REQUESTS is set, after that many requests other than /health/
  (plus up to GUNICORN_MAX_REQUESTS_JITTER), for an operator who prefers a schedule.

The old worker asks the arbiter for one more worker (SIGTTIN) and keeps serving. The
replacement, once Django is imported and it can answer requests, names its predecessor
in a file beside the marker and asks the arbiter for one fewer (SIGTTOU). The arbiter
stops its oldest worker; gunicorn_config.py's nworkers_changed hook makes the named
predecessor the oldest first (retire_named_predecessor), so with several workers it is
the one that asked that goes, not whichever is oldest. It is stopped with SIGTERM and
finishes its requests in flight within GUNICORN_GRACEFUL_TIMEOUT. Both listen on the
same socket in between, so there is no moment without a worker. The replacement loads
models only once its predecessor has exited, so the two never hold two copies.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import tempfile
import time
from pathlib import Path

from predictors.serving.memory import MB, rss_bytes, trim_heap

log = logging.getLogger(__name__)


def marker_path(marker_dir: Path, arbiter_pid: int) -> Path:
    """The file in which a worker that asked for its replacement names itself (one at a time)."""
    return marker_dir / f"healthoracle-recycle-{arbiter_pid}"


def retiring_file(marker: Path) -> Path:
    """The file in which a replacement names the worker the arbiter is to stop."""
    return marker.with_name(marker.name + "-retiring")


def shared_marker_dir() -> Path:
    """Where the workers and their arbiter leave the recycling files: memory-backed where Linux has it."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


def retire_named_predecessor(workers: dict, arbiter_pid: int) -> int | None:
    """In the arbiter, as the worker count falls: make the worker a replacement named the oldest,
    since gunicorn stops the oldest (the lowest `age`). Returns its pid, or None when none is named
    (an operator's own SIGTTOU) or it has already gone."""
    retiring = retiring_file(marker_path(shared_marker_dir(), arbiter_pid))
    try:
        pid = int(retiring.read_text())
    except (OSError, ValueError):
        return None
    retiring.unlink(missing_ok=True)
    if pid not in workers:
        return None
    workers[pid].age = min(worker.age for worker in workers.values()) - 1
    return pid


class Recycler:
    """Counts the requests of one worker and asks for its replacement once."""

    def __init__(self, max_rss_mb: int, max_requests: int, jitter: int, marker_dir: Path, arbiter_pid: int):
        self.max_rss_bytes = max_rss_mb * MB
        self.max_requests = max_requests + (random.randint(0, jitter) if max_requests and jitter else 0)
        self.marker = marker_path(marker_dir, arbiter_pid)
        self.arbiter_pid = arbiter_pid
        self.requests = 0
        self.asked = False
        self.predecessor: int | None = None

    @classmethod
    def from_settings(cls) -> "Recycler":
        from django.conf import settings

        return cls(settings.WORKER_MAX_RSS_MB, settings.WORKER_MAX_REQUESTS, settings.WORKER_MAX_REQUESTS_JITTER,
                   shared_marker_dir(), os.getppid())

    @property
    def enabled(self) -> bool:
        """Only under a gunicorn arbiter that set the environment up for it (gunicorn_config.py)."""
        return os.environ.get("HEALTHORACLE_ARBITER_PID") == str(self.arbiter_pid)

    def after_request(self) -> None:
        """Called by the bridge after each response other than /health/."""
        self.requests += 1
        if self.asked or not self.enabled:
            return
        rss = rss_bytes()
        if self.max_rss_bytes and rss > self.max_rss_bytes:
            # Freed heap is handed back only once image work idles (bridge.HeapTrim): what the
            # limit is about is what the worker still holds once that is returned.
            trim_heap()
            rss = rss_bytes()
        if self.max_rss_bytes and rss > self.max_rss_bytes:
            self._ask(f"resident memory {rss / MB:.0f} MB is over WORKER_MAX_RSS_MB={self.max_rss_bytes // MB}")
        elif self.max_requests and self.requests >= self.max_requests:
            self._ask(f"{self.requests} requests reached GUNICORN_MAX_REQUESTS (probes not counted)")

    def _ask(self, reason: str) -> None:
        try:
            fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # a replacement is already on its way (for this worker or another)
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        self.asked = True
        log.info("worker %d asks for its replacement: %s", os.getpid(), reason)
        os.kill(self.arbiter_pid, signal.SIGTTIN)

    def on_ready(self) -> None:
        """In a new worker that can serve: if it replaces another, have the arbiter stop that one."""
        if not self.enabled:
            return
        try:
            self.predecessor = int(self.marker.read_text())
        except (OSError, ValueError):
            return
        retiring = retiring_file(self.marker)
        retiring.write_text(str(self.predecessor))
        self.marker.unlink(missing_ok=True)
        log.info("worker %d replaces worker %d", os.getpid(), self.predecessor)
        os.kill(self.arbiter_pid, signal.SIGTTOU)

    def predecessor_exited(self, timeout: float) -> None:
        """Wait until the worker this one replaces has exited (up to `timeout` seconds)."""
        if self.predecessor is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(self.predecessor, 0)
            except ProcessLookupError:
                return
            except PermissionError:  # a pid reused by another user's process: ours is gone
                return
            status = Path(f"/proc/{self.predecessor}/stat")
            try:
                if status.read_text().rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped
                    return
            except (OSError, IndexError):
                return
            time.sleep(0.2)
