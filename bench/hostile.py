"""Hostile clients over raw sockets: slow headers, short bodies, decode bombs.

Shared by bench/worker_classes.py (which measures worker classes against them) and
tests/server/test_bridge.py and the `strict_site` tests (which hold the chosen configuration to them);
tests/images/test_decode.py decodes the same image builders. Standard library only, like
bench/harness.py.
"""
from __future__ import annotations

import io
import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field

from bench.harness import Site, health_probes


@dataclass
class SlowLoris:
    """Connections that each trickle one byte of a never-ending request header a second."""

    port: int
    connections: int
    interval: float = 1.0
    sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "SlowLoris":
        for _ in range(self.connections):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            self.sockets.append(sock)
        threading.Thread(target=self._trickle, daemon=True).start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(self.interval):
            for sock in self.sockets:
                try:
                    sock.sendall(b"a")
                except OSError:
                    pass

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for sock in self.sockets:
            sock.close()


def probe_health(site: Site, seconds: float, every: float = 0.5, timeout: float = 2.0) -> list[float | None]:
    """Latency of /health/ every `every` seconds for `seconds`; None where it failed or timed out."""
    return [probe.seconds if probe.status == 200 else None
            for probe in health_probes(site, every=every, timeout=timeout, seconds=seconds)]


def send_raw(port: int, data: bytes, *, close_write: bool, wait: float = 5.0) -> bytes:
    """Send bytes as they are, optionally half-close, and return whatever comes back within `wait`."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
        return received


def short_body_request(port: int, token: str, body: bytes, *, missing: int, close_write: bool,
                       wait: float = 5.0) -> bytes:
    """A JSON prediction whose Content-Length promises `missing` more bytes than are sent."""
    head = (f"POST /api/v1/predict/diabetes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body) + missing}\r\n\r\n").encode()
    return send_raw(port, head + body, close_write=close_write, wait=wait)


def flat_png(width: int, height: int, bit_depth: int, colour_type: int, channels: int, value: int = 0) -> bytes:
    """A PNG of one flat colour written row by row: a tiny file that decodes to a big image."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + value.to_bytes(bit_depth // 8, "big") * (width * channels)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def float_tiff(width: int, height: int, value: float = 0.0) -> bytes:
    """A deflated 32-bit float TIFF of one value (Pillow is in the runtime and dev environments alike)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("F", (width, height), value).save(buffer, "TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


# The bombs (a few hundred kB, under the old 40 MP cap; now over the 25 MP cap),
# bombs under the pixel cap but over the 50 MB decoded budget, then the largest image of
# each costly kind the new limits accept.
DECODE_CASES = {
    "RGBA PNG 6000×6600": lambda: flat_png(6000, 6600, 8, 6, 4),
    "16-bit grey PNG 6000×6600": lambda: flat_png(6000, 6600, 16, 0, 1),
    "float32 TIFF 6000×6600": lambda: float_tiff(6000, 6600),
    "RGBA PNG 4000×4000": lambda: flat_png(4000, 4000, 8, 6, 4),
    "16-bit grey PNG 5000×5100": lambda: flat_png(5000, 5100, 16, 0, 1),
    "float32 TIFF 4000×4000": lambda: float_tiff(4000, 4000),
    "RGBA PNG 3500×3500 (accepted)": lambda: flat_png(3500, 3500, 8, 6, 4),
    "16-bit RGBA PNG 3500×3500 (accepted)": lambda: flat_png(3500, 3500, 16, 6, 4),
    "16-bit grey PNG 5000×4900 (accepted)": lambda: flat_png(5000, 4900, 16, 0, 1),
    "float32 TIFF 3500×3500 (accepted)": lambda: float_tiff(3500, 3500),
}


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def peak_above_resting_mb(site: Site, send) -> tuple[float, object]:
    """Run `send()` against the site and return the worker's peak RSS above its resting RSS.

    Resets the worker's peak (VmHWM) through /proc/<pid>/clear_refs first, so the figure
    is this one request's, as the kernel counts it.
    """
    worker = site.workers()[0]
    with open(f"/proc/{worker}/clear_refs", "w") as fh:
        fh.write("5")
    resting = status_kb(worker, "VmRSS")
    outcome = send()
    return (status_kb(worker, "VmHWM") - resting) / 1024, outcome
