"""ASGI entry point for gunicorn's asgi worker: the event loop reads, threads serve.

Slow or stalled clients must not tie up the threads that run Django (four clients
trickling a header byte a second used to starve /health/ under the gthread worker).
Here gunicorn's asyncio worker parses every request and this bridge reads the whole
body in the event loop, where a waiting client costs a coroutine, not a thread; only
a complete request is handed to the unchanged WSGI application in a small thread pool,
so Django, its per-thread database connections and ONNX Runtime (which releases the
GIL) behave exactly as under gthread. A body that ends short of its Content-Length,
or does not arrive within REQUEST_READ_TIMEOUT, is never processed. docs/benchmarks.md
has the comparison that chose this over gthread and gevent.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Iterable

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "HealthOracle.settings")

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Bodies up to this size stay in memory; larger ones (uploads) spool to a temporary file.
SPOOL_MEMORY_BYTES = 1024 * 1024
# Larger bodies being read at once: each may spool tens of MB to disk.
MAX_SPOOLED_BODIES = 8


class BufferedWSGIBridge:
    """Serve a WSGI application from an ASGI server, reading each request whole first."""

    def __init__(self, app: WSGIApp, *, threads: int, max_body_bytes: int, read_timeout: float,
                 json_paths: Callable[[str], bool]):
        self.app = app
        self.threads = threads
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.json_paths = json_paths
        self.executor: ThreadPoolExecutor | None = None
        self.large_bodies: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"unsupported ASGI scope {scope['type']!r}")
        if self.executor is None:  # the first request of a worker started without lifespan
            self._start()
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            # Django refuses it from the header alone (RequestLimitsMiddleware): read nothing.
            body, length = io.BytesIO(), declared
        else:
            try:
                received = await asyncio.wait_for(self._read_body(receive, declared), self.read_timeout)
            except TimeoutError:
                await self._refuse(scope, send, 408, "request_timeout",
                                   f"The request did not arrive within {self.read_timeout:.0f} seconds.")
                return
            except BodyTooLarge:
                await self._refuse(scope, send, 413, "request_too_large",
                                   f"The request is over {self.max_body_bytes / 1e6:.0f} MB.")
                return
            if received is None:
                log.info("client left before its request body was complete: %s %s", scope["method"], scope["path"])
                return
            body, length = received
        environ = _environ(scope, body, length)
        loop = asyncio.get_running_loop()
        status, headers, chunks = await loop.run_in_executor(self.executor, self._run, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _read_body(self, receive: Receive, declared: int | None) -> tuple[Any, int] | None:
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
                if length > self.max_body_bytes:
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

    def _run(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        """Run the WSGI application in a pool thread and collect its whole response."""
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
            return chunks.append

        result = self.app(environ, start_response)
        try:
            chunks.extend(chunk for chunk in result if chunk)
        finally:
            if hasattr(result, "close"):
                result.close()
            environ["wsgi.input"].close()
        return started["status"], started["headers"], chunks

    async def _refuse(self, scope: Scope, send: Send, status: int, code: str, message: str) -> None:
        """A refusal made before Django saw the request, in the API's error shape on API paths."""
        if self.json_paths(scope["path"]):
            body = json.dumps({"error": {"code": code, "message": message, "fields": {}}}).encode()
            content_type = b"application/json"
        else:
            body = message.encode()
            content_type = b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.executor is not None:
                    self.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="django")
        self.large_bodies = asyncio.Semaphore(MAX_SPOOLED_BODIES)


class BodyTooLarge(Exception):
    """A body without a Content-Length grew past the limit while it was read."""


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


def _build() -> BufferedWSGIBridge:
    wsgi = get_wsgi_application()
    from django.conf import settings

    from predictors.http import json_path

    return BufferedWSGIBridge(
        wsgi, threads=settings.SERVER_THREADS, max_body_bytes=settings.MAX_REQUEST_BODY_BYTES,
        read_timeout=settings.REQUEST_READ_TIMEOUT, json_paths=json_path)


application = _build()
