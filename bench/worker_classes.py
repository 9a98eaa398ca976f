"""Worker classes against slow clients: memory, latency, /health/ under attack.

    .venv/bin/python -m bench.worker_classes [--seconds 10] [--write]

Starts the real site (runtime environment, gunicorn_config.py) once per candidate worker
class (GUNICORN_WORKER_CLASS): gthread (the old setting), gevent (installed with pip into
var/bench-gevent, with psycogreen, since it is not a runtime dependency) and asgi
(gunicorn's asyncio worker with predictors/server/bridge.py). For each: worker PSS idle and after
a warm form prediction, /health/ and form latency, /health/ while 8 connections trickle
header bytes (twice GUNICORN_THREADS), /health/ while ECG predictions run back to back, and
whether a body shorter than its Content-Length is processed. --write records the table
and the decode-memory table in docs/benchmarks.md.
"""
from __future__ import annotations

import subprocess
import threading
import time

from bench.harness import DIABETES, ROOT, RUNTIME_PYTHON, Site, multipart, payloads, percentile
from bench.hostile import DECODE_CASES, SlowLoris, peak_above_resting_mb, probe_health, short_body_request
from bench.report import command_line, header, parser, publish

GEVENT_TARGET = ROOT / "var" / "bench-gevent"
GEVENT_PACKAGES = ("gevent==26.9.0", "psycogreen==1.0.2")
CANDIDATES = ("gthread", "gevent", "asgi")


def gevent_path() -> str:
    if not (GEVENT_TARGET / "gevent").exists():
        subprocess.run([str(RUNTIME_PYTHON), "-m", "pip", "install", "-q", "--target", str(GEVENT_TARGET),
                        *GEVENT_PACKAGES], check=True)
    return str(GEVENT_TARGET)


def summarise(latencies: list[float | None]) -> str:
    answered = [x for x in latencies if x is not None]
    if not answered:
        return f"0/{len(latencies)} answered"
    return f"{len(answered)}/{len(latencies)} answered, max {max(answered) * 1000:.0f} ms"


def measure(worker_class: str, seconds: float) -> dict:
    env = {"GUNICORN_WORKER_CLASS": worker_class}
    if worker_class == "gevent":
        env["PYTHONPATH"] = gevent_path()
    site = Site(extra_env=env).start()
    try:
        inputs = payloads()
        idle = site.pss_mb()["worker"]
        health = [site.request("GET", "/health/")[2] for _ in range(30)]
        form = [site.predict("diabetes", inputs["diabetes"])[2] for _ in range(20)]
        warm = site.pss_mb()["worker"]
        with SlowLoris(site.port, connections=8):
            time.sleep(1)
            loris = probe_health(site, seconds)
        busy = threading.Event()

        def ecg_traffic() -> None:
            while not busy.is_set():
                site.predict("ecg", inputs["ecg"])

        site.predict("ecg", inputs["ecg"])  # loaded: measure inference, not the cold load
        traffic = threading.Thread(target=ecg_traffic)
        traffic.start()
        during_ecg = probe_health(site, seconds / 2, every=0.25)
        busy.set()
        traffic.join()
        body = b'{"pregnancies": 2, "glucose": 168}'
        answer = short_body_request(site.port, site.token, body, missing=20, close_write=True)
        processed = b'"prediction_id"' in answer or b'"error"' in answer
        return {"idle": idle, "warm": warm, "health": health, "form": form, "loris": loris,
                "during_ecg": during_ecg, "short_body": "processed" if processed else "refused"}
    finally:
        site.stop()


def decode_memory() -> list[tuple[str, int, str, float]]:
    """Peak worker RSS above resting while the site answers each decode case (retina API)."""
    site = Site().start()
    rows = []
    try:
        site.predict("diabetes", DIABETES)
        for name, make in DECODE_CASES.items():
            data = make()
            body, content_type = multipart("image", "upload.png", data)
            headers = {"Authorization": f"Token {site.token}", "Content-Type": content_type}
            peak, (status, answer, _) = peak_above_resting_mb(
                site, lambda: site.request("POST", "/api/v1/predict/retina", body, headers))
            code = answer.split(b'"code": "', 1)[-1].split(b'"', 1)[0].decode() if status != 200 else "ok"
            rows.append((name, len(data), f"{status} {code}", peak))
    finally:
        site.stop()
    return rows


def render(results: dict, decode_rows: list, seconds: float, command: str) -> tuple[str, str]:
    lines = [f"{header(command)}: 8 slow connections (one header byte "
             f"a second each) for {seconds:.0f} s while `/health/` is probed every 0.5 s (2 s timeout); "
             f"then ECG predictions back to back while it is probed every 0.25 s.", "",
             "| worker class | worker PSS idle / warm MB | /health/ p50 ms | form prediction p50 ms | "
             "/health/ under 8 slow clients | /health/ during ECG inference | body short of Content-Length |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['idle']} / {r['warm']} | {percentile(r['health'], 50) * 1000:.1f} | "
                     f"{percentile(r['form'], 50) * 1000:.1f} | {summarise(r['loris'])} | "
                     f"{summarise(r['during_ecg'])} | {r['short_body']} |")
    decode = [f"{header(command)}: one authenticated `POST /api/v1/predict/retina` per "
              "file; the worker's peak RSS (VmHWM, reset through /proc/<pid>/clear_refs) above its RSS just "
              "before. The issue's \"before\" figures, same files, old decoder: 1.1-1.6 GB.", "",
              "| upload | file kB | answer | peak above resting MB |", "|---|---|---|---|"]
    decode += [f"| {name} | {size / 1000:.0f} | {answer} | {peak:.1f} |" for name, size, answer, peak in decode_rows]
    return "\n".join(lines), "\n".join(decode)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--seconds", type=float, default=10.0)
    args = options.parse_args()
    results = {name: measure(name, args.seconds) for name in CANDIDATES}
    decode_rows = decode_memory()
    workers, decode = render(results, decode_rows, args.seconds, command_line(options, args))
    publish(workers, "worker-classes", args.write)
    publish(decode, "decode-memory", args.write)


if __name__ == "__main__":
    main()
