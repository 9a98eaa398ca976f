"""The ASGI bridge gunicorn's asyncio worker runs: the event loop reads, threads serve.

Slow or stalled clients must not tie up the threads that run Django (four clients
trickling a header byte a second used to starve /health/ under the gthread worker).
Here gunicorn's asyncio worker parses every request and this bridge reads the whole
body in the event loop, where a waiting client costs a coroutine, not a thread; only
a complete request is handed to the unchanged WSGI application in a small thread pool,
so Django, its per-thread database connections and ONNX Runtime (which releases the
GIL) behave exactly as under gthread. A body that ends short of its Content-Length,
or does not arrive within REQUEST_READ_TIMEOUT, is never processed. docs/benchmarks.md
has the comparison that chose this over gthread and gevent.

Three things happen in the event loop before any thread is involved, because on a
tenth of a CPU a thread may wait seconds for its turn:
- `/health/` is answered here, from the first moment the worker listens: Render's probe
  never queues behind inference, a model load or Django's own start-up. Django is
  imported in a background thread once the worker listens; other requests wait for it.
  What the worker does next in the background (warming its models) waits in turn until
  the requests that waited for Django are answered: at a tenth of a CPU, a model load
  running beside the page that woke the instance would take half of that page's CPU.
- Image work (an upload to an image model) waits here for one of IMAGE_CONCURRENCY
  slots (predictors/server/admission.py), so a queue of uploads holds no thread and forms and
  pages keep running beside them; an upload whose client leaves while it waits is never run.
- The whole server-side time of each request, from its arrival to its response, is
  sent as `Server-Timing: app;dur=<ms>` (bench/serve_bench.py reads it).

The heap an image request's working arrays leave free goes back to the kernel once image
work has been idle for HEAP_TRIM_IDLE_SECONDS (HeapTrim), not after every image answer.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Iterable

from predictors.errors import HttpError, SiteBusy
from predictors.serving.memory import trim_heap

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Bodies up to this size stay in memory; larger ones (uploads) spool to a temporary file.
SPOOL_MEMORY_BYTES = 1024 * 1024
# Larger bodies being read at once: each may spool tens of MB to disk.
MAX_SPOOLED_BODIES = 8
# The liveness probe. predictors/probes.health gives the same answer to anything that
# reaches Django (the test client, the benchmark-only WSGI workers).
HEALTH_PATH = "/health/"
HEALTH_BODY = b'{"status": "ok"}'
HEALTH_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(HEALTH_BODY)).encode()),
                  (b"cache-control", b"max-age=0, no-cache, no-store, must-revalidate, private")]
# Image work idle this long, the heap's free pages go back to the kernel (HeapTrim). Trimmed after
# every image answer instead, the next upload faulted the same pages back in: about 4,000 page faults
# (16 MB) and 4-6 ms of system time per fundus photo, with 1.5 ms for the trim itself, a sixth of its
# CPU. Between uploads a few seconds apart the worker holds what they freed (with ONNX Runtime's
# activation block kept in the heap, serving/memory.py: all four models' worker right after its last
# answer 271.5 MB PSS against 182.0 once trimmed, docs/benchmarks.md); an upload touches those pages
# either way.
HEAP_TRIM_IDLE_SECONDS = 30.0
# The exit status gunicorn's arbiter reads as "this worker cannot boot": it stops instead
# of restarting the worker forever on a broken configuration.
WORKER_BOOT_ERROR = 3


class BufferedWSGIBridge:
    """Serve a WSGI application from an ASGI server, reading each request whole first.

    `load` builds the WSGI application and the Django-side collaborators; it runs in a
    thread of its own when the worker starts, so the worker listens (and answers
    /health/) while Django imports.
    """

    def __init__(self, load: Callable[[], "Served"], heap_trim_idle_seconds: float = HEAP_TRIM_IDLE_SECONDS):
        self.load = load
        self.heap_trim = HeapTrim(heap_trim_idle_seconds)
        self.served: Served | None = None
        self.ready: asyncio.Future | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.large_bodies: asyncio.Semaphore | None = None
        self.waking = 0  # requests that arrived before Django was loaded and are not answered yet
        self.woken = False  # Served.on_woken has run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"unsupported ASGI scope {scope['type']!r}")
        arrived = time.perf_counter()
        if scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
            body = HEALTH_BODY if scope["method"] == "GET" else b""
            await send({"type": "http.response.start", "status": 200, "headers": HEALTH_HEADERS})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        if self.served is not None:
            await self._serve(self.served, scope, receive, send, arrived)
            return
        if self.ready is None:  # the first request of a worker started without lifespan
            self._start()
        self.waking += 1
        try:
            await self._serve(await asyncio.shield(self.ready), scope, receive, send, arrived)
        finally:
            self.waking -= 1
            self._wake_if_answered()

    async def _serve(self, served: "Served", scope: Scope, receive: Receive, send: Send, arrived: float) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > served.max_body_bytes:
            # Django refuses it from the header alone (RequestLimitsMiddleware): read nothing.
            body, length = io.BytesIO(), declared
        else:
            try:
                received = await asyncio.wait_for(self._read_body(receive, declared, served.max_body_bytes),
                                                  served.read_timeout)
            except TimeoutError:
                await self._refuse(scope, send, HttpError(f"The request did not arrive within {served.read_timeout:.0f} "
                                                          "seconds.", status=408, code="request_timeout"))
                return
            except BodyTooLarge:
                await self._refuse(scope, send, HttpError(f"The request is over {served.max_body_bytes / 1e6:.0f} MB.",
                                                          status=413, code="request_too_large"))
                return
            if received is None:
                log.info("client left before its request body was complete: %s %s", scope["method"], scope["path"])
                return
            body, length = received
        environ = _environ(scope, body, length)
        ticket = await served.admission.admit(scope["method"], scope["path"], body,
                                              client_gone=lambda: _disconnected(receive))
        if ticket.abandoned:
            body.close()
            return
        if ticket.refused:
            if served.json_paths(scope["path"]):
                body.close()
                await self._refuse(scope, send, SiteBusy(ticket.retry_after))
                return
            environ.update(ticket.environ())  # the page says so, keeping what was typed and the file
        # The slot is freed when Django's thread is done, not when this coroutine is: the server
        # cancels it a few seconds after a client leaves, and the work still runs to its record.
        if ticket.image_work:
            self.heap_trim.started()
        work = asyncio.get_running_loop().run_in_executor(self.executor, self._run, served.app, environ)
        work.add_done_callback(lambda _: ticket.release())
        if ticket.image_work:  # armed when Django's thread is done, even if this coroutine was cancelled
            work.add_done_callback(lambda _: self.heap_trim.finished(self.executor))
        status, headers, chunks = await asyncio.shield(work)
        duration = (time.perf_counter() - arrived) * 1000
        headers.append((b"server-timing", f"app;dur={duration:.1f}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        served.recycler.after_request()

    async def _read_body(self, receive: Receive, declared: int | None, max_body_bytes: int) -> tuple[Any, int] | None:
        """The whole body, or None if the client disconnected before sending all of it.

        The spooled file is closed here on every way out but a complete body, including the
        read timeout cancelling this coroutine (asyncio.wait_for), so an abandoned upload
        frees its temporary file at once instead of whenever it is garbage-collected.
        """
        spooled = declared is None or declared > SPOOL_MEMORY_BYTES
        if spooled:
            await self.large_bodies.acquire()
        body = None
        complete = False
        try:
            body = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
            length = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                length += len(chunk)
                if length > max_body_bytes:
                    raise BodyTooLarge
                body.write(chunk)
                if not message.get("more_body", False):
                    break
            if declared is not None and length != declared:
                return None
            body.seek(0)
            complete = True
            return body, length
        finally:
            if body is not None and not complete:
                body.close()
            if spooled:
                self.large_bodies.release()

    @staticmethod
    def _run(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        """Run the WSGI application in a pool thread and collect its whole response."""
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
            return chunks.append

        result = app(environ, start_response)
        try:
            chunks.extend(chunk for chunk in result if chunk)
        finally:
            if hasattr(result, "close"):
                result.close()
            environ["wsgi.input"].close()
        return started["status"], started["headers"], chunks

    async def _refuse(self, scope: Scope, send: Send, error: HttpError) -> None:
        """A refusal made before Django saw the request, in the API's error shape on API paths."""
        served = self.served
        if served is not None and served.json_paths(scope["path"]):
            body = error.json()
            content_type = b"application/json"
        else:
            body = error.message.encode()
            content_type = b"text/plain; charset=utf-8"
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
        await send({"type": "http.response.start", "status": error.status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), *headers]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.heap_trim.close()
                if self.executor is not None:
                    self.executor.shutdown(wait=True)
                if self.served is not None:
                    self.served.on_exit()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self) -> None:
        """Listen at once; import Django in a thread and let requests wait for it in the loop."""
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.large_bodies = asyncio.Semaphore(MAX_SPOOLED_BODIES)

        def load() -> None:
            yield_to_event_loop()
            try:
                served = self.load()
            except BaseException as exc:  # a broken configuration: stop the worker as a failed boot would
                named = isinstance(exc, CannotStart)  # wrong settings, each named: no traceback to read
                log.critical("the application cannot start%s", f":\n{exc}" if named else "", exc_info=not named)
                logging.shutdown()
                sys.stderr.flush()
                os._exit(WORKER_BOOT_ERROR)
            loop.call_soon_threadsafe(self._loaded, served)

        threading.Thread(target=load, name="django-setup", daemon=True).start()

    def _loaded(self, served: "Served") -> None:
        self.executor = ThreadPoolExecutor(max_workers=served.threads, thread_name_prefix="django",
                                           initializer=yield_to_event_loop)
        self.served = served
        self.ready.set_result(served)
        served.on_ready()
        self._wake_if_answered()

    def _wake_if_answered(self) -> None:
        """Run Served.on_woken once Django is loaded and no request that waited for it is unanswered."""
        if self.served is not None and not self.waking and not self.woken:
            self.woken = True
            self.served.on_woken()


class HeapTrim:
    """Hands the heap's free pages back to the kernel (trim_heap) once image work has been idle a while.

    An image request's working arrays come from the heap (predictors/serving/memory.py) and are
    free once it is answered. Trimming them at once makes the next upload fault every page back
    in; kept while uploads follow each other, they are reused as they are. The trim runs in a
    pool thread `idle_seconds` after the last image request's Django thread finished, unless
    another image request started in between (its own end sets the clock again).
    """

    def __init__(self, idle_seconds: float):
        self.idle_seconds = idle_seconds
        self.running = 0  # image requests whose Django thread has not finished
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False  # the worker is shutting down: its pool takes no more work

    def started(self) -> None:
        self.running += 1
        self._cancel()

    def finished(self, executor: ThreadPoolExecutor) -> None:
        """Called in the event loop when an image request's Django thread is done."""
        self.running -= 1
        if not self.running and not self.closed:
            self.timer = asyncio.get_running_loop().call_later(self.idle_seconds, self._trim, executor)

    def close(self) -> None:
        self.closed = True
        self._cancel()

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _trim(self, executor: ThreadPoolExecutor) -> None:
        self.timer = None
        asyncio.get_running_loop().run_in_executor(executor, trim_heap)


class Served:
    """What the bridge serves, built once Django is imported: the app and its limits."""

    def __init__(self, app: WSGIApp, *, threads: int, max_body_bytes: int, read_timeout: float,
                 json_paths: Callable[[str], bool], admission: Any, recycler: Any,
                 on_ready: Callable[[], None] = lambda: None, on_woken: Callable[[], None] = lambda: None,
                 on_exit: Callable[[], None] = lambda: None):
        self.app = app
        self.threads = threads
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.json_paths = json_paths
        self.admission = admission
        self.recycler = recycler
        self.on_ready = on_ready  # once Django is loaded
        self.on_woken = on_woken  # once the requests that waited for it are answered too (at once if none did)
        self.on_exit = on_exit


# Niceness of the threads that run Django (and load models): on a throttled fraction of a
# CPU the kernel then runs the event loop first whenever it has something to do, so a
# probe is answered between two slices of inference instead of after them.
WORK_THREAD_NICENESS = 10


def yield_to_event_loop() -> None:
    """Lower this thread's CPU priority below the event loop's (Linux schedules threads one by one)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORK_THREAD_NICENESS)
    except (AttributeError, OSError):
        pass


class CannotStart(Exception):
    """The site's settings are wrong; the message names each variable at fault."""


class BodyTooLarge(Exception):
    """A body without a Content-Length grew past the limit while it was read."""


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone: its body is read whole, so its next message is its leaving."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)  # the server has validated it
    return None


def _environ(scope: Scope, body: Any, length: int) -> dict[str, Any]:
    """The WSGI environ gunicorn's own WSGI workers would build for this request."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(length),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif name in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue  # the body is whole now: CONTENT_LENGTH above says how long
        else:
            key = f"HTTP_{name}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
